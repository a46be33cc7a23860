// Online backup while the server serves and writes; restore onto a fresh data folder pointed at the
// same HSM root key; every key back byte for byte. A backup restored next to another root key
// opens nothing, and restore says so before touching anything.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kmipd, initAndEnroll, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient } from '../helpers/kmip-client.js';
import { createKey, getKeyBytes, kmipdFails } from './helpers.js';

let dir: ReturnType<typeof tempDir>;
let source: string;
let client: ClientBundle;
let server: ServerProcess;
const before = new Map<string, Buffer>();
const during = new Map<string, Buffer>();
let backupFile: string;

beforeAll(async () => {
  dir = tempDir();
  source = join(dir.path, 'source');
  client = await initAndEnroll(source, 'vc');
  server = await startServe(source);
  const k = await KmipTestClient.connect(server.port, client);
  for (let i = 0; i < 30; i++) {
    const id = await createKey(k);
    before.set(id, await getKeyBytes(k, id));
  }
  k.close();
});

afterAll(async () => {
  await server?.stop();
  dir?.remove();
});

describe('kmipd backup', () => {
  it('copies the store consistently while the server keeps creating keys', async () => {
    const writer = await KmipTestClient.connect(server.port, client);
    let stop = false;
    const writing = (async () => {
      while (!stop) {
        const id = await createKey(writer);
        during.set(id, await getKeyBytes(writer, id));
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    backupFile = join(dir.path, 'kmipd-backup.db');
    const { stdout } = await kmipd('backup', '--data', source, '--out', backupFile);
    stop = true;
    await writing;
    writer.close();
    expect(during.size).toBeGreaterThan(0);
    expect(stdout).toMatch(/backup written to .*: \d+ object\(s\), 1 client\(s\), root key\(s\) kmipd-crk-v1/);
    expect(stdout).toContain('opens nothing without those root keys');
    expect(statSync(backupFile).mode & 0o777).toBe(0o600);
    const db = new Database(backupFile, { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    const ids = new Set((db.prepare('SELECT id FROM objects').all() as { id: string }[]).map((r) => r.id));
    db.close();
    for (const id of before.keys()) expect(ids.has(id)).toBe(true);
    expect(await kmipdFails('backup', '--data', source, '--out', backupFile)).toMatch(/already exists/);
  });
});

describe('kmipd restore', () => {
  it('refuses a folder whose HSM holds another root key under the same label, before changing anything', async () => {
    const other = join(dir.path, 'other-hsm');
    await kmipd('init', '--data', other); // its own SoftHSM token, its own kmipd-crk-v1
    const err = await kmipdFails('restore', '--data', other, '--from', backupFile);
    expect(err).toMatch(/lacks root key\(s\) kmipd-crk-v1 \(a key with that label exists, but it is not the one that wrapped these keys\)/);
    const db = new Database(join(other, 'kmipd.db'), { readonly: true });
    expect((db.prepare('SELECT count(*) AS n FROM objects').get() as { n: number }).n).toBe(0);
    db.close();
  });

  it('restores onto a fresh folder pointed at the same HSM root key: every key comes back byte for byte', async () => {
    const target = join(dir.path, 'restored');
    const cfg = JSON.parse(readFileSync(join(source, 'kmipd.json'), 'utf8')) as { hsm: { module: string; tokenLabel: string } };
    const pinFile = join(dir.path, 'hsm.pin');
    writeFileSync(pinFile, (JSON.parse(readFileSync(join(source, 'hsm', 'pins.json'), 'utf8')) as { user_pin: string }).user_pin, { mode: 0o600 });
    // The production way: a PKCS#11 module, a token label, a PIN file and an existing root key.
    process.env['SOFTHSM2_CONF'] = join(source, 'hsm', 'softhsm2.conf');
    await kmipd('init', '--data', target, '--pkcs11-module', cfg.hsm.module, '--token-label', cfg.hsm.tokenLabel, '--pin-file', pinFile, '--existing-root-key');
    const { stdout } = await kmipd('restore', '--data', target, '--from', backupFile);
    expect(stdout).toMatch(/restored \d+ object\(s\) and 1 client\(s\)/);
    expect(await kmipdFails('restore', '--data', target, '--from', backupFile)).toMatch(/already holds/);

    const restored = await startServe(target);
    try {
      // The client registry came back too: the same client certificate is accepted. The new
      // folder has its own server certificate, so the client trusts that folder's CA.
      const k = await KmipTestClient.connect(restored.port, { ...client, ca: join(target, 'pki', 'ca.crt') });
      for (const [id, bytes] of before) expect((await getKeyBytes(k, id)).equals(bytes), id).toBe(true);
      const db = new Database(join(target, 'kmipd.db'), { readonly: true });
      const present = new Set((db.prepare('SELECT id FROM objects').all() as { id: string }[]).map((r) => r.id));
      db.close();
      // Keys created while the backup ran are in it or not, but never half there.
      for (const [id, bytes] of during) if (present.has(id)) expect((await getKeyBytes(k, id)).equals(bytes), id).toBe(true);
      k.close();
    } finally {
      await restored.stop();
      delete process.env['SOFTHSM2_CONF'];
    }
  });
});
