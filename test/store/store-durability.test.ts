// Durable before acknowledged: an insert, or an update of the serving connection, resolves only
// after an fdatasync of the WAL that started after its commit (the insert thread's group commit;
// insert-thread.test.ts has how syncs ride on its batches).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { State, ObjectType } from '../../src/kmip/registry/generated.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kmipd-durability-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('SqliteStore inserts', () => {
  const newObject = (id: string) => ({
    id,
    tenant: 'default',
    objectType: ObjectType.SymmetricKey,
    state: State.PreActive,
    wrapped: { rootKeyLabel: 'crk', mechanism: 'aes-gcm-v2', blob: new Uint8Array(60) },
    attributes: [],
  });

  it('are acknowledged after the commit and sync, and every acknowledged row is in the file', async () => {
    const dir = tempDir();
    const path = join(dir, 'kmipd.db');
    const store = new SqliteStore(path);
    const ids = Array.from({ length: 50 }, (_, i) => `obj-${i}`);
    await Promise.all(ids.map((id) => store.insert(newObject(id))));
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(0);
    // Another connection (as after a crash and restart) sees every acknowledged row.
    const other = new Database(path, { readonly: true });
    expect((other.prepare('SELECT count(*) AS n FROM objects').get() as { n: number }).n).toBe(50);
    other.close();
    // The connection is back to synchronous=FULL for everything else it does.
    expect(store.db.pragma('synchronous', { simple: true })).toBe(2);
    await store.close();
  });

  it('serve at synchronous=FULL through updates; a store relaxed for bulk loading stays OFF', async () => {
    const dir = tempDir();
    const serving = new SqliteStore(join(dir, 'serving.db'));
    await serving.insert(newObject('a'));
    // An update commits at NORMAL and waits for the insert thread's next WAL sync; the level it leaves is FULL.
    expect(await serving.update('a', { state: State.Active })).toBe(true);
    expect(serving.db.pragma('synchronous', { simple: true })).toBe(2);
    await serving.close();

    const loading = new SqliteStore(join(dir, 'loading.db'));
    loading.relaxDurabilityForBulkLoad();
    await loading.insert(newObject('b'));
    expect(await loading.update('b', { state: State.Active })).toBe(true);
    expect(loading.db.pragma('synchronous', { simple: true })).toBe(0);
    expect((await loading.get('b'))?.state).toBe(State.Active);
    await loading.close();
  });
});
