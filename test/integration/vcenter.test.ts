// The conversation vCenter Server and ESXi hold with a KMS, replayed with our own encoder at
// KMIP 1.1 over TLS 1.2: health checks, Query, Create from a Template-Attribute, Get while
// Pre-Active, Get Attributes of x- attributes not yet set, Activate, a batch of three Add
// Attribute items, optional credentials, short parallel connections and session resumption.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { connect, type TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { encodeTtlv, enumeration, integer, structure, textString } from '../../src/ttlv/index.js';
import type { TtlvItem } from '../../src/ttlv/types.js';
import {
  CredentialType,
  CryptographicAlgorithm,
  CryptographicUsageMask,
  ObjectType,
  Operation,
  QueryFunction,
  ResultStatus,
  State,
  Tag,
} from '../../src/kmip/registry/generated.js';
import { Fields } from '../../src/kmip/fields.js';
import { parseAttribute1 } from '../../src/kmip/attributes.js';
import { initAndEnroll, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient, requestMessage, type ParsedResponse } from '../helpers/kmip-client.js';

const V11 = { major: 1, minor: 1 };
const TLS12 = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } as const;

let dir: ReturnType<typeof tempDir>;
let client: ClientBundle;
let server: ServerProcess;

beforeAll(async () => {
  dir = tempDir();
  client = await initAndEnroll(dir.path, 'vcenter01');
  server = await startServe(dir.path);
});
afterAll(async () => {
  expect(await server?.stop()).toBe(0);
  dir?.remove();
});

/** vCenter sends a Username/Password Credential on some requests only. */
const credential = structure(Tag.Authentication, [
  structure(Tag.Credential, [
    enumeration(Tag.CredentialType, CredentialType.UsernameAndPassword),
    structure(Tag.CredentialValue, [textString(Tag.Username, 'vcenter'), textString(Tag.Password, 'secret')]),
  ]),
]);
const batchId = () => randomBytes(8);
const attr11 = (name: string, value: TtlvItem) => structure(Tag.Attribute, [textString(Tag.AttributeName, name), { ...value, tag: Tag.AttributeValue } as TtlvItem]);
const uid = (id: string) => textString(Tag.UniqueIdentifier, id);

function expectSuccess(r: ParsedResponse, ids?: Buffer[]): void {
  expect(r.version).toEqual(V11);
  for (const item of r.items) expect(item, `${item.reason} ${item.message}`).toMatchObject({ status: ResultStatus.Success });
  if (ids) expect(r.items.map((i) => Buffer.from(i.id!))).toEqual(ids);
}

describe('vCenter conversation (KMIP 1.1, TLS 1.2)', () => {
  let kek: string;
  let material: Buffer;

  it('passes the health check: a silent connection, then two empty Discover Versions', async () => {
    const silent = await KmipTestClient.connect(server.port, client, TLS12);
    silent.close();
    const hc = await KmipTestClient.connect(server.port, client, TLS12);
    expect(hc.socket.getProtocol()).toBe('TLSv1.2');
    expect(hc.socket.getCipher().name).toMatch(/^ECDHE-(RSA|ECDSA)-AES(128|256)-GCM-SHA(256|384)$/);
    for (let i = 0; i < 2; i++) {
      const r = await hc.call(V11, [{ operation: Operation.DiscoverVersions, payload: [] }]);
      expectSuccess(r);
      expect(r.items[0]!.payload.structs(Tag.ProtocolVersion).length).toBeGreaterThanOrEqual(5);
    }
    hc.close();
  });

  it('creates, gets while Pre-Active, reads State, activates, tags with three Add Attribute items', async () => {
    const vc = await KmipTestClient.connect(server.port, client, TLS12);
    let ids = [batchId()];
    const q = await vc.call(V11, [{ operation: Operation.Query, id: ids[0], payload: [enumeration(Tag.QueryFunction, QueryFunction.QueryServerInformation)] }]);
    expectSuccess(q, ids);
    expect(q.items[0]!.payload.text(Tag.VendorIdentification)).toMatch(/^kmipd/);

    ids = [batchId()];
    const template = structure(Tag.TemplateAttribute, [
      attr11('Cryptographic Algorithm', enumeration(0, CryptographicAlgorithm.AES)),
      attr11('Cryptographic Usage Mask', integer(0, CryptographicUsageMask.Encrypt | CryptographicUsageMask.Decrypt)),
      attr11('Cryptographic Length', integer(0, 256)),
    ]);
    const c = await vc.call(V11, [{ operation: Operation.Create, id: ids[0], payload: [enumeration(Tag.ObjectType, ObjectType.SymmetricKey), template] }], [credential]);
    expectSuccess(c, ids);
    kek = c.items[0]!.payload.requiredText(Tag.UniqueIdentifier);

    ids = [batchId()];
    const g = await vc.call(V11, [{ operation: Operation.Get, id: ids[0], payload: [uid(kek)] }], [credential]);
    expectSuccess(g, ids);
    const block = Fields.of(Fields.of(g.items[0]!.payload.requiredStruct(Tag.SymmetricKey)).requiredStruct(Tag.KeyBlock));
    material = Buffer.from(Fields.of(block.requiredStruct(Tag.KeyValue)).requiredBytes(Tag.KeyMaterial));
    expect(material).toHaveLength(32);

    for (const name of ['x-Vendor', 'State']) {
      ids = [batchId()];
      const ga = await vc.call(V11, [{ operation: Operation.GetAttributes, id: ids[0], payload: [uid(kek), textString(Tag.AttributeName, name)] }], [credential]);
      expectSuccess(ga, ids);
      const attrs = ga.items[0]!.payload.structs(Tag.Attribute).map(parseAttribute1);
      if (name === 'x-Vendor') expect(attrs).toEqual([]);
      else expect(attrs.map((a) => a.value.value)).toEqual([State.PreActive]);
    }

    ids = [batchId()];
    expectSuccess(await vc.call(V11, [{ operation: Operation.Activate, id: ids[0], payload: [uid(kek)] }], [credential]), ids);

    const tags: [string, string][] = [
      ['x-Vendor', 'VMware, Inc.'],
      ['x-Product', 'VMware vSphere'],
      ['x-Product_Version', '8.0.3'],
    ];
    ids = tags.map(() => batchId());
    const add = await vc.call(
      V11,
      tags.map(([n, val], i) => ({ operation: Operation.AddAttribute, id: ids[i], payload: [uid(kek), attr11(n, textString(0, val))] })),
    );
    expectSuccess(add, ids);
    const more: [string, string][] = [
      ['x-Identifier', 'vm-1042'],
      ['x-Component', 'VM'],
      ['x-Name', 'db-01'],
    ];
    expectSuccess(await vc.call(V11, more.map(([n, val]) => ({ operation: Operation.AddAttribute, id: batchId(), payload: [uid(kek), attr11(n, textString(0, val))] }))));
    const all = await vc.call(V11, [{ operation: Operation.GetAttributes, payload: [uid(kek), ...[...tags, ...more].map(([n]) => textString(Tag.AttributeName, n))] }]);
    expectSuccess(all);
    const read = Object.fromEntries(all.items[0]!.payload.structs(Tag.Attribute).map(parseAttribute1).map((a) => [a.name, a.value.value]));
    expect(read).toEqual(Object.fromEntries([...tags, ...more]));
    vc.close();
  });

  it('serves the same key to an ESXi host on its own connection, without a credential', async () => {
    const esx = await KmipTestClient.connect(server.port, client, TLS12);
    const g = await esx.call(V11, [{ operation: Operation.Get, id: batchId(), payload: [uid(kek)] }]);
    expectSuccess(g);
    const block = Fields.of(Fields.of(g.items[0]!.payload.requiredStruct(Tag.SymmetricKey)).requiredStruct(Tag.KeyBlock));
    expect(Buffer.from(Fields.of(block.requiredStruct(Tag.KeyValue)).requiredBytes(Tag.KeyMaterial))).toEqual(material);
    esx.close();
  });

  it('handles 8 short parallel connections while one peer aborts mid-message', async () => {
    const aborter = await KmipTestClient.connect(server.port, client, TLS12);
    const half = encodeTtlv(requestMessage(V11, [{ operation: Operation.Get, payload: [uid(kek)] }]));
    aborter.sendRaw(half.subarray(0, half.length >> 1));
    const gets = Array.from({ length: 8 }, async () => {
      const k = await KmipTestClient.connect(server.port, client, TLS12);
      const r = await k.call(V11, [{ operation: Operation.Get, id: batchId(), payload: [uid(kek)] }]);
      k.close();
      return r;
    });
    aborter.socket.destroy();
    for (const r of await Promise.all(gets)) expectSuccess(r);
  });
});

describe('TLS sessions and suites', () => {
  function tlsConnect(opts: Record<string, unknown>, port = server.port): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const s = connect({
        host: '127.0.0.1', port, servername: 'localhost',
        cert: readFileSync(client.cert), key: readFileSync(client.key), ca: readFileSync(client.ca),
        ...opts,
      });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    });
  }

  it('resumes TLS 1.2 sessions with client certificates', async () => {
    const first = await tlsConnect(TLS12);
    const session = await new Promise<Buffer>((resolve) => {
      const ready = first.getSession();
      if (ready) resolve(ready);
      else first.once('session', resolve);
    });
    expect(first.isSessionReused()).toBe(false);
    first.end();
    const second = await tlsConnect({ ...TLS12, session });
    expect(second.isSessionReused()).toBe(true);
    const k = await KmipTestClient.connect(server.port, client, { ...TLS12, session });
    expect(k.socket.isSessionReused()).toBe(true);
    expectSuccess(await k.call(V11, [{ operation: Operation.DiscoverVersions, payload: [] }]));
    k.close();
    second.end();
  });

  it('offers the RSA key-exchange AES-CBC-SHA256 suites only with --tls-compat', async () => {
    const old = { ...TLS12, ciphers: 'AES256-SHA256:AES128-SHA256' };
    await expect(tlsConnect(old)).rejects.toThrow();
    const compat = await startServe(dir.path, ['--tls-compat']);
    try {
      const s = await tlsConnect(old, compat.port);
      expect(s.getCipher().name).toMatch(/^AES(128|256)-SHA256$/);
      s.end();
    } finally {
      expect(await compat.stop()).toBe(0);
    }
  });
});
