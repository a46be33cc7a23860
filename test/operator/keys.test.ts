// `kmipd keys list/show/revoke/destroy` on the store of a running server: revocation stops serving
// at once, destroy crypto-erases, attributes stay, everything is audited, no material is shown.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { textString } from '../../src/ttlv/index.js';
import { Operation, ResultReason, ResultStatus, Tag } from '../../src/kmip/registry/generated.js';
import { kmipd, initAndEnroll, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient } from '../helpers/kmip-client.js';
import { auditRecords, createKey, customAttribute, getKey, getKeyBytes, kmipdFails, V12, V21 } from './helpers.js';

let dir: ReturnType<typeof tempDir>;
let data: string;
let client: ClientBundle;
let server: ServerProcess;
let kmip: KmipTestClient;
const ids: Record<string, string> = {};
const material: Record<string, Buffer> = {};

beforeAll(async () => {
  dir = tempDir();
  data = join(dir.path, 'data');
  client = await initAndEnroll(data, 'vc');
  server = await startServe(data);
  kmip = await KmipTestClient.connect(server.port, client);
  for (const [name, cluster] of [['kek-a', 'prod'], ['kek-b', 'prod'], ['kek-c', 'test']] as const) {
    ids[name] = await createKey(kmip, name, [customAttribute('x-cluster', cluster)]);
    material[name] = await getKeyBytes(kmip, ids[name]);
  }
  const r = await kmip.call(V12, [{ operation: Operation.Activate, payload: [textString(Tag.UniqueIdentifier, ids['kek-c']!)] }]);
  expect(r.items[0]!.status).toBe(ResultStatus.Success);
});

afterAll(async () => {
  kmip?.close();
  await server?.stop();
  dir?.remove();
});

interface KeyJson {
  id: string;
  tenant: string;
  state: string;
  names: string[];
  algorithm: string;
  rootKey: string | null;
  keyMaterial: string;
  operatorRevoked: boolean;
  attributes: Record<string, unknown>;
}

const list = async (...filters: string[]) => JSON.parse((await kmipd('keys', 'list', '--data', data, '--json', ...filters)).stdout) as KeyJson[];

describe('keys list and show', () => {
  it('lists every key with its tenant, state, name, algorithm and root key', async () => {
    const all = await list();
    expect(all.map((k) => k.id)).toEqual([ids['kek-a'], ids['kek-b'], ids['kek-c']]);
    expect(all[0]).toMatchObject({ tenant: 'default', state: 'pre-active', names: ['kek-a'], algorithm: 'AES-256', rootKey: 'kmipd-crk-v1', keyMaterial: 'wrapped' });
    const { stdout } = await kmipd('keys', 'list', '--data', data);
    expect(stdout.split('\n')[0]).toMatch(/^ID\s+TENANT\s+STATE\s+NAME\s+ALGORITHM\s+ROOT KEY\s+SERVED\s+CREATED/);
  });

  it('filters by state, name, custom attribute and tenant', async () => {
    expect((await list('--state', 'active')).map((k) => k.id)).toEqual([ids['kek-c']]);
    expect((await list('--state', 'active', '--state', 'pre-active')).length).toBe(3);
    expect((await list('--name', 'kek-b')).map((k) => k.id)).toEqual([ids['kek-b']]);
    expect((await list('--attr', 'x-cluster=prod')).map((k) => k.id)).toEqual([ids['kek-a'], ids['kek-b']]);
    expect((await list('--attr', 'x-cluster=prod', '--name', 'kek-a')).map((k) => k.id)).toEqual([ids['kek-a']]);
    expect(await list('--tenant', 'nobody')).toEqual([]);
    expect((await list('--tenant', 'default')).length).toBe(3);
    expect(await kmipdFails('keys', 'list', '--data', data, '--state', 'sleeping')).toMatch(/--state must be one of/);
  });

  it('shows attributes, never key material', async () => {
    const { stdout } = await kmipd('keys', 'show', ids['kek-a']!, '--data', data, '--json');
    const k = JSON.parse(stdout) as KeyJson & { operatorRevocation: unknown };
    expect(k.attributes).toMatchObject({ 'Cryptographic Algorithm': 'AES', 'Cryptographic Length': 256, 'x-cluster': 'prod' });
    expect(k.operatorRevocation).toBeNull();
    const text = (await kmipd('keys', 'show', ids['kek-a']!, '--data', data)).stdout;
    // Where the material stands, not the material.
    expect(text).toMatch(/^key material: wrapped \(under root key \S+\)$/m);
    expect(text).toMatch(/^served: {7}yes$/m);
    for (const out of [stdout, text]) {
      expect(out).not.toContain(material['kek-a']!.toString('hex'));
      expect(out).not.toContain(material['kek-a']!.toString('base64'));
    }
    expect(await kmipdFails('keys', 'show', 'no-such-id', '--data', data)).toMatch(/no key with id/);
  });
});

describe('keys revoke', () => {
  it('stops serving the key at once, on a connection already open, while attributes stay readable', async () => {
    const id = ids['kek-a']!;
    expect(Buffer.isBuffer(await getKey(kmip, id))).toBe(true);
    const { stdout } = await kmipd('keys', 'revoke', id, '--data', data, '--reason', 'cessation-of-operation', '--message', 'decommissioned');
    expect(stdout).toMatch(/state deactivated/);
    for (const v of [V12, V21]) expect(await getKey(kmip, id, v)).toMatchObject({ reason: ResultReason.PermissionDenied });
    const attrs = await kmip.call(V12, [{ operation: Operation.GetAttributes, payload: [textString(Tag.UniqueIdentifier, id)] }]);
    expect(attrs.items[0]!.status).toBe(ResultStatus.Success);
    const k = JSON.parse((await kmipd('keys', 'show', id, '--data', data, '--json')).stdout) as KeyJson & { operatorRevocation: { reason: string } };
    expect(k).toMatchObject({ state: 'deactivated', operatorRevoked: true, operatorRevocation: { reason: 'cessation-of-operation' } });
    expect(k.attributes['Revocation Reason']).toEqual({ 'Revocation Reason Code': 'CessationOfOperation', 'Revocation Message': 'decommissioned' });
  });

  it('maps key-compromise to Compromised (KMIP Revoke semantics) and other keys keep being served', async () => {
    await kmipd('keys', 'revoke', ids['kek-c']!, '--data', data, '--reason', 'key-compromise', '--compromised-at', '2024-01-01T00:00:00Z');
    const k = JSON.parse((await kmipd('keys', 'show', ids['kek-c']!, '--data', data, '--json')).stdout) as KeyJson;
    expect(k.state).toBe('compromised');
    expect(k.attributes['Compromise Occurrence Date']).toBe('2024-01-01T00:00:00Z');
    expect(await getKey(kmip, ids['kek-c']!)).toMatchObject({ reason: ResultReason.PermissionDenied });
    expect(await getKeyBytes(kmip, ids['kek-b']!)).toEqual(material['kek-b']);
  });

  it('refuses an unknown reason and an unknown key, and leaves no hold behind', async () => {
    expect(await kmipdFails('keys', 'revoke', ids['kek-b']!, '--data', data, '--reason', 'bored')).toMatch(/--reason must be one of/);
    expect(await kmipdFails('keys', 'revoke', 'missing', '--data', data, '--reason', 'superseded')).toMatch(/no key with id missing/);
    expect(await getKeyBytes(kmip, ids['kek-b']!)).toEqual(material['kek-b']);
  });
});

describe('keys destroy', () => {
  it('refuses without --yes and refuses an Active key, like KMIP Destroy', async () => {
    expect(await kmipdFails('keys', 'destroy', ids['kek-b']!, '--data', data)).toMatch(/--yes/);
    const active = await createKey(kmip);
    await kmip.call(V12, [{ operation: Operation.Activate, payload: [textString(Tag.UniqueIdentifier, active)] }]);
    expect(await kmipdFails('keys', 'destroy', active, '--data', data, '--yes')).toMatch(/Active and cannot be destroyed/);
  });

  it('crypto-erases: the wrapped key is gone from the store, the attributes stay as a tombstone', async () => {
    const id = ids['kek-a']!;
    const { stdout } = await kmipd('keys', 'destroy', id, '--data', data, '--yes');
    expect(stdout).toMatch(/destroyed/);
    const db = new Database(join(data, 'kmipd.db'), { readonly: true });
    const row = db.prepare('SELECT wrapped_key, wrap_mechanism, state FROM objects WHERE id = ?').get(id) as { wrapped_key: Buffer | null; wrap_mechanism: string | null };
    db.close();
    expect(row).toMatchObject({ wrapped_key: null, wrap_mechanism: null });
    expect(await getKey(kmip, id, V21)).toMatchObject({ reason: ResultReason.ObjectDestroyed });
    const attrs = await kmip.call(V12, [{ operation: Operation.GetAttributes, payload: [textString(Tag.UniqueIdentifier, id)] }]);
    expect(attrs.items[0]!.status).toBe(ResultStatus.Success);
    const k = JSON.parse((await kmipd('keys', 'show', id, '--data', data, '--json')).stdout) as KeyJson;
    expect(k).toMatchObject({ state: 'destroyed', keyMaterial: 'erased', rootKey: null });
    expect(k.attributes['Destroy Date']).toBeDefined();
  });

  it('audits every operator action on keys, failures included', async () => {
    const recs = auditRecords(data).filter((r) => r['source'] === 'cli');
    expect(recs.filter((r) => r['operation'] === 'keys revoke' && r['result'] === 'Success').map((r) => r['object'])).toEqual([ids['kek-a'], ids['kek-c']]);
    expect(recs.some((r) => r['operation'] === 'keys revoke' && r['result'] === 'Failed' && r['object'] === 'missing')).toBe(true);
    expect(recs.find((r) => r['operation'] === 'keys destroy' && r['result'] === 'Success')).toMatchObject({ object: ids['kek-a'] });
    expect(recs.every((r) => typeof r['actor'] === 'string')).toBe(true);
  });
});
