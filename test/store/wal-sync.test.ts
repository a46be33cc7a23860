// Group commit off the event loop: an insert is acknowledged only after an fdatasync of the WAL that
// started after its commit, and concurrent committers share syncs.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { WalSync, type FdatasyncFn } from '../../src/store/sqlite-wal-sync.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { State, ObjectType } from '../../src/kmip/registry/generated.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kmipd-walsync-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A real WAL file, and an fdatasync we complete by hand so the ordering can be observed. */
function manualSync(): { wal: string; sync: FdatasyncFn; started: number[]; finishOne(): void } {
  const dir = tempDir();
  const db = new Database(join(dir, 'x.db'));
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (x)');
  const pending: (() => void)[] = [];
  const started: number[] = [];
  return {
    wal: join(dir, 'x.db-wal'),
    started,
    sync: (fd, cb) => {
      started.push(fd);
      pending.push(() => cb(null));
    },
    finishOne: () => pending.shift()!(),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('WalSync', () => {
  it('a caller arriving while a sync runs waits for the next one; later callers share it', async () => {
    const m = manualSync();
    const w = new WalSync(m.wal, m.sync);
    const done: string[] = [];
    void w.durable().then(() => done.push('a'));
    await tick();
    void w.durable().then(() => done.push('b'));
    void w.durable().then(() => done.push('c'));
    await tick();
    expect(m.started).toHaveLength(1); // b and c wait: the running sync may predate their commits
    m.finishOne();
    await tick();
    expect(done).toEqual(['a']);
    expect(m.started).toHaveLength(2); // one sync for both b and c
    m.finishOne();
    await tick();
    expect(done).toEqual(['a', 'b', 'c']);
    await w.settled();
    w.close();
  });

  it('a failed sync fails its callers and the next sync still runs', async () => {
    const dir = tempDir();
    const db = new Database(join(dir, 'y.db'));
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (x)');
    let fail = true;
    const w = new WalSync(join(dir, 'y.db-wal'), (fd, cb) => {
      const f = fail;
      fail = false;
      setImmediate(() => cb(f ? Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }) : null));
    });
    await expect(w.durable()).rejects.toThrow(/EIO/);
    await expect(w.durable()).resolves.toBeUndefined();
    w.close();
    db.close();
  });
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
    // An update commits at NORMAL and syncs the WAL itself; the level it leaves is FULL.
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
