// Upgrading a data folder whose keys were wrapped by an earlier kmipd (format v1: per-object derived
// key, RFC 5649): the server still serves them, and `kmipd root rotate` converts them to the current
// AES-GCM format (v2) with identical key bytes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { LEGACY_KEK_WRAP_MECHANISM, KEK_WRAP_MECHANISM } from '../../src/hsm/index.js';
import { openDataHsm } from '../../src/cli/data-folder.js';
import { loadConfig } from '../../src/server/config.js';
import { kmipd, initAndEnroll, startServe, tempDir, type ClientBundle } from '../helpers/kmipd.js';
import { KmipTestClient } from '../helpers/kmip-client.js';
import { createKey, getKeyBytes } from './helpers.js';

let dir: ReturnType<typeof tempDir>;
let data: string;
let client: ClientBundle;
/** Key id → the bytes its v1 blob holds. */
const legacy = new Map<string, Buffer>();
let current: { id: string; bytes: Buffer };

function mechanisms(): Record<string, string> {
  const db = new Database(join(data, 'kmipd.db'), { readonly: true });
  try {
    const rows = db.prepare('SELECT id, wrap_mechanism AS m FROM objects WHERE wrapped_key IS NOT NULL').all() as { id: string; m: string }[];
    return Object.fromEntries(rows.map((r) => [r.id, r.m]));
  } finally {
    db.close();
  }
}

async function getAll(): Promise<Map<string, Buffer>> {
  const server = await startServe(data);
  const k = await KmipTestClient.connect(server.port, client);
  try {
    const out = new Map<string, Buffer>();
    for (const id of [...legacy.keys(), current.id]) out.set(id, await getKeyBytes(k, id));
    return out;
  } finally {
    k.close();
    await server.stop();
  }
}

beforeAll(async () => {
  dir = tempDir();
  data = join(dir.path, 'data');
  client = await initAndEnroll(data, 'vc');
  const server = await startServe(data);
  const k = await KmipTestClient.connect(server.port, client);
  const ids: string[] = [];
  try {
    for (let i = 0; i < 4; i++) ids.push(await createKey(k));
    current = { id: ids[3]!, bytes: await getKeyBytes(k, ids[3]!) };
  } finally {
    k.close();
    await server.stop();
  }
  // Three of them get a v1 blob, as an earlier kmipd would have stored (new key bytes, same id).
  const hsm = await openDataHsm(data, loadConfig(data));
  const db = new Database(join(data, 'kmipd.db'));
  try {
    for (const id of ids.slice(0, 3)) {
      const v1 = await hsm.generateWrappedKey(id, 256, { format: 'v1' });
      legacy.set(id, await hsm.unwrapKey(id, v1));
      db.prepare('UPDATE objects SET wrap_mechanism = ?, wrapped_key = ?, root_key_label = ? WHERE id = ?').run(v1.mechanism, Buffer.from(v1.blob), v1.rootKeyLabel, id);
    }
  } finally {
    db.close();
    await hsm.close();
  }
});

afterAll(() => dir?.remove());

describe('keys stored in format v1', () => {
  it('are served as before, next to keys in the current format', async () => {
    expect(Object.values(mechanisms()).sort()).toEqual([KEK_WRAP_MECHANISM, LEGACY_KEK_WRAP_MECHANISM, LEGACY_KEK_WRAP_MECHANISM, LEGACY_KEK_WRAP_MECHANISM]);
    const got = await getAll();
    for (const [id, bytes] of legacy) expect(got.get(id)!.equals(bytes), id).toBe(true);
    expect(got.get(current.id)!.equals(current.bytes)).toBe(true);
  });

  it('are converted to the current format by root rotation, with the same bytes', async () => {
    await kmipd('root', 'rotate', '--data', data); // rejects on a non-zero exit
    expect(new Set(Object.values(mechanisms()))).toEqual(new Set([KEK_WRAP_MECHANISM]));
    const got = await getAll();
    for (const [id, bytes] of legacy) expect(got.get(id)!.equals(bytes), id).toBe(true);
    expect(got.get(current.id)!.equals(current.bytes)).toBe(true);
  });
});
