// Who may connect, what is on disk, and how the server stops: against the real server process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type ConnectionOptions } from 'node:tls';
import { decodeTtlv, encodeTtlv, enumeration, integer, structure, textString } from '../../src/ttlv/index.js';
import { Fields } from '../../src/kmip/fields.js';
import { CryptographicAlgorithm, ObjectType, Operation, ResultReason, ResultStatus, Tag } from '../../src/kmip/registry/generated.js';
import { initAndEnroll, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient, parseResponse, requestMessage } from '../helpers/kmip-client.js';

const V12 = { major: 1, minor: 2 };

function createRequest(bits = 256) {
  const attr = (name: string, type: 'enum' | 'int', v: number) =>
    structure(Tag.Attribute, [textString(Tag.AttributeName, name), type === 'enum' ? enumeration(Tag.AttributeValue, v) : integer(Tag.AttributeValue, v)]);
  return {
    operation: Operation.Create,
    payload: [
      enumeration(Tag.ObjectType, ObjectType.SymmetricKey),
      structure(Tag.TemplateAttribute, [
        attr('Cryptographic Algorithm', 'enum', CryptographicAlgorithm.AES),
        attr('Cryptographic Length', 'int', bits),
        attr('Cryptographic Usage Mask', 'int', 12),
      ]),
    ],
  };
}

async function createAndGet(kmip: KmipTestClient): Promise<{ id: string; material: Buffer }> {
  const c = await kmip.call(V12, [createRequest()]);
  const id = c.items[0]!.payload.requiredText(Tag.UniqueIdentifier);
  const g = await kmip.call(V12, [{ operation: Operation.Get, payload: [textString(Tag.UniqueIdentifier, id)] }]);
  expect(g.items[0]!.status).toBe(ResultStatus.Success);
  const sk = g.items[0]!.payload.requiredStruct(Tag.SymmetricKey);
  const kb = Fields.of(Fields.of(sk).requiredStruct(Tag.KeyBlock));
  const material = Buffer.from(Fields.of(kb.requiredStruct(Tag.KeyValue)).requiredBytes(Tag.KeyMaterial));
  return { id, material };
}

let dir: ReturnType<typeof tempDir>;
let other: ReturnType<typeof tempDir>;
let client: ClientBundle;
let foreign: ClientBundle;
let server: ServerProcess;

beforeAll(async () => {
  dir = tempDir();
  other = tempDir();
  [client, foreign] = await Promise.all([initAndEnroll(dir.path, 'good'), initAndEnroll(other.path, 'foreign')]);
  server = await startServe(dir.path);
});

afterAll(async () => {
  await server?.stop();
  dir?.remove();
  other?.remove();
});

function handshake(opts: ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: server.port, servername: 'localhost', ...opts });
    s.once('secureConnect', () => {
      // With TLS 1.3 the server's verdict on our certificate arrives after the handshake.
      s.once('data', () => resolve('data'));
      s.once('close', () => resolve('closed-after-handshake'));
      s.once('error', (e) => resolve(`error: ${e.message}`));
      s.write(Buffer.alloc(0));
    });
    s.once('error', (e) => resolve(`error: ${e.message}`));
  });
}

describe('TLS', () => {
  it('accepts TLS 1.2 and TLS 1.3 with an enrolled certificate', async () => {
    for (const v of ['TLSv1.2', 'TLSv1.3'] as const) {
      const k = await KmipTestClient.connect(server.port, client, { minVersion: v, maxVersion: v });
      expect(k.socket.getProtocol()).toBe(v);
      const r = await k.call(V12, [{ operation: Operation.DiscoverVersions, payload: [] }]);
      expect(r.items[0]!.status).toBe(ResultStatus.Success);
      k.close();
    }
  });

  it('refuses TLS 1.1 and 1.0', async () => {
    for (const v of ['TLSv1', 'TLSv1.1'] as const) {
      const result = await handshake({
        cert: readFileSync(client.cert), key: readFileSync(client.key), ca: readFileSync(client.ca),
        minVersion: v, maxVersion: v, ciphers: 'DEFAULT@SECLEVEL=0',
      });
      expect(result).toMatch(/^error: .*(protocol|version)/i);
    }
  });

  it('refuses a client without a certificate', async () => {
    const result = await handshake({ ca: readFileSync(client.ca) });
    expect(result).not.toBe('data');
    expect(result).toMatch(/error|closed/);
  });

  it('refuses a certificate issued by another CA', async () => {
    const result = await handshake({ cert: readFileSync(foreign.cert), key: readFileSync(foreign.key), ca: readFileSync(client.ca) });
    expect(result).toMatch(/error|closed/);
    const k = await KmipTestClient.connect(server.port, client);
    expect((await k.call(V12, [{ operation: Operation.DiscoverVersions, payload: [] }])).items[0]!.status).toBe(ResultStatus.Success);
    k.close();
  });
});

describe('key material at rest', () => {
  it('never writes plaintext key material to the store', async () => {
    const k = await KmipTestClient.connect(server.port, client);
    const keys = [await createAndGet(k), await createAndGet(k)];
    k.close();
    const files = ['kmipd.db', 'kmipd.db-wal'].map((f) => join(dir.path, f)).filter(existsSync);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const bytes = readFileSync(f);
      for (const key of keys) expect(bytes.includes(key.material)).toBe(false);
    }
    const db = new Database(join(dir.path, 'kmipd.db'), { readonly: true });
    const row = db.prepare('SELECT wrapped_key FROM objects WHERE id = ?').get(keys[0]!.id) as { wrapped_key: Buffer };
    db.close();
    expect(row.wrapped_key.length).toBe(60); // AES-GCM of 32 bytes: 12-byte IV + 32 + 16-byte tag
  });

  it('binds a wrapped key to its object: a blob copied onto another record does not unwrap', async () => {
    const k = await KmipTestClient.connect(server.port, client);
    const a = await createAndGet(k);
    const b = await createAndGet(k);
    const db = new Database(join(dir.path, 'kmipd.db'));
    const blobA = (db.prepare('SELECT wrapped_key FROM objects WHERE id = ?').get(a.id) as { wrapped_key: Buffer }).wrapped_key;
    db.prepare('UPDATE objects SET wrapped_key = ? WHERE id = ?').run(blobA, b.id);
    db.close();
    const r = await k.call(V12, [{ operation: Operation.Get, payload: [textString(Tag.UniqueIdentifier, b.id)] }]);
    expect(r.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.CryptographicFailure });
    expect(JSON.stringify(r.items[0]!.message)).not.toContain(a.material.toString('hex'));
    const again = await createAndGet(k); // the server is still fine
    expect(again.material).toHaveLength(32);
    const ra = await k.call(V12, [{ operation: Operation.Get, payload: [textString(Tag.UniqueIdentifier, a.id)] }]);
    expect(ra.items[0]!.status).toBe(ResultStatus.Success);
    k.close();
  });

  it('keeps the audit log free of key material', async () => {
    const k = await KmipTestClient.connect(server.port, client);
    const key = await createAndGet(k);
    k.close();
    await new Promise((r) => setTimeout(r, 500));
    const audit = readFileSync(join(dir.path, 'audit.log'), 'utf8');
    expect(audit).toContain(key.id);
    expect(audit).toContain('"client":"good"');
    expect(audit).not.toContain(key.material.toString('hex'));
    expect(audit).not.toContain(key.material.toString('base64'));
  });
});

describe('shutdown', () => {
  it('finishes in-flight requests on SIGTERM, then exits 0', async () => {
    const s = await startServe(dir.path);
    const k = await KmipTestClient.connect(s.port, client);
    const creates = Array.from({ length: 30 }, () => createRequest(128));
    k.sendRaw(encodeTtlv(requestMessage(V12, creates, [enumeration(Tag.BatchErrorContinuationOption, 1)])));
    await new Promise((r) => setTimeout(r, 30));
    const exit = s.stop('SIGTERM');
    const answer = await k.next(20_000);
    expect(answer).toBeDefined();
    const r = parseResponse(decodeTtlv(answer!));
    expect(r.items).toHaveLength(30);
    expect(r.items.every((i) => i.status === ResultStatus.Success)).toBe(true);
    expect(await exit).toBe(0);
    // Every acknowledged key is in the store after the stop.
    const db = new Database(join(dir.path, 'kmipd.db'), { readonly: true });
    for (const item of r.items) {
      expect(db.prepare('SELECT 1 FROM objects WHERE id = ?').get(item.payload.requiredText(Tag.UniqueIdentifier))).toBeDefined();
    }
    db.close();
  });
});
