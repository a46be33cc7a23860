// SqliteStore commits new objects on a thread of its own (sqlite-insert-writer.ts). What a caller
// sees must be what the serving connection's own commit gave: durable once resolved, SQLite's
// errors, another process's write lock waited for — here without stopping the event loop.
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { SqliteInsertWriter } from '../../src/store/sqlite-insert-writer.js';
import { LOCK_WAIT_MS } from '../../src/store/sqlite-lock-wait.js';
import { ObjectType, State, Tag } from '../../src/kmip/registry/generated.js';
import { bigInteger, boolean, byteString, dateTime, enumeration, integer, interval, longInteger, structure, textString } from '../../src/ttlv/index.js';
import type { NewObject } from '../../src/store/types.js';

let dir: string;
let path: string;
let store: SqliteStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kmipd-insert-thread-'));
  path = join(dir, 'kmipd.db');
  store = new SqliteStore(path);
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const key = (id: string, fill = 1): NewObject => ({
  id,
  tenant: 't',
  objectType: ObjectType.SymmetricKey,
  state: State.PreActive,
  wrapped: { rootKeyLabel: 'crk', mechanism: 'aes-gcm-v2', blob: new Uint8Array(60).fill(fill) },
  attributes: [{ name: 'Name', index: 0, value: textString(Tag.AttributeValue, id) }],
});

/** Rows of `id` as a fresh connection (another process) reads them from the file. */
function readElsewhere(id: string): { blob: Buffer; names: string[] } | undefined {
  const db = new Database(path, { readonly: true });
  try {
    const row = db.prepare('SELECT seq, wrapped_key FROM objects WHERE id = ?').get(id) as { seq: number; wrapped_key: Buffer } | undefined;
    if (!row) return undefined;
    const names = db.prepare('SELECT name FROM attributes WHERE object_seq = ?').pluck().all(row.seq) as string[];
    return { blob: row.wrapped_key, names };
  } finally {
    db.close();
  }
}

it('has committed an object, wrapped key and attributes, by the time insert resolves', async () => {
  await Promise.all([store.insert(key('a', 1)), store.insert(key('b', 2))]);
  expect(readElsewhere('a')).toEqual({ blob: Buffer.alloc(60, 1), names: ['Name'] });
  expect(readElsewhere('b')).toEqual({ blob: Buffer.alloc(60, 2), names: ['Name'] });
  expect((await store.get('b'))!.attributes[0]!.value).toEqual(textString(Tag.AttributeValue, 'b'));
});

it('stores every value of a batch exactly, whatever its type and padding', async () => {
  const T = Tag.AttributeValue;
  // Lengths that need padding and ones that do not, nested structures, every primitive type.
  const valuesFor = (i: number) => [
    textString(T, 'x'.repeat(i)),
    byteString(T, new Uint8Array(i * 3).fill(i)),
    structure(T, [textString(Tag.NameValue, `n-${i}`), enumeration(Tag.NameType, 1), structure(Tag.Link, [integer(Tag.LinkType, i)])]),
    integer(T, -i - 1),
    longInteger(T, -(1n << BigInt(40 + i))),
    bigInteger(T, (1n << BigInt(64 * i + 3)) + 5n),
    enumeration(T, i),
    boolean(T, i % 2 === 0),
    dateTime(T, 1_764_900_000n + BigInt(i)),
    interval(T, 60 * i),
  ];
  const objects = Array.from({ length: 9 }, (_, i): NewObject => ({
    ...key(`typed-${i}`, i),
    attributes: valuesFor(i).map((value, index) => ({ name: 'Custom', index, value })),
  }));
  await Promise.all(objects.map((o) => store.insert(o)));
  const reopened = new SqliteStore(path);
  try {
    for (const [i, o] of objects.entries()) {
      const got = (await reopened.get(o.id))!;
      expect(Buffer.from(got.wrapped!.blob)).toEqual(Buffer.alloc(60, i));
      expect(got.attributes.map((a) => [a.name, a.index, a.value])).toEqual(o.attributes.map((a) => [a.name, a.index, a.value]));
    }
  } finally {
    await reopened.close();
  }
});

it("refuses a repeated id with SQLite's own error, which the server classifies as for any commit", async () => {
  await store.insert(key('dup'));
  const err = (await store.insert(key('dup', 9)).catch((e: unknown) => e)) as { code?: string };
  expect(err).toBeInstanceOf(Database.SqliteError);
  expect(err.code).toMatch(/^SQLITE_CONSTRAINT/);
  expect(readElsewhere('dup')!.blob).toEqual(Buffer.alloc(60, 1));
});

it("waits for another process's write lock without stopping the event loop, then commits", async () => {
  const other = new Database(path);
  other.exec('BEGIN IMMEDIATE');
  let settled = false;
  const inserted = store.insert(key('waited')).then(() => (settled = true));
  // Timers keep firing while the insert waits: the wait is on the insert thread.
  let ticks = 0;
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 20));
    ticks++;
  }
  expect(ticks).toBe(10);
  expect(settled).toBe(false);
  expect(readElsewhere('waited')).toBeUndefined();
  other.exec('ROLLBACK');
  other.close();
  await inserted;
  expect(readElsewhere('waited')!.names).toEqual(['Name']);
});

it('commits what it was asked to before close returns, and refuses inserts after', async () => {
  const pending = store.insert(key('last'));
  await store.close();
  await pending;
  expect(readElsewhere('last')!.names).toEqual(['Name']);
  await expect(store.insert(key('late'))).rejects.toThrow('the store is closed');
  store = new SqliteStore(path); // for afterEach
});

it('keeps a process alive until close has ended the thread (a script that inserts, closes, then writes its report)', () => {
  // Plain Node on the compiled store (as the bench's bulk loader and the CLI run): with nothing else
  // to keep the process alive, it must still reach the line after close().
  const script = join(dir, 'child.mjs');
  writeFileSync(
    script,
    `import { SqliteStore } from ${JSON.stringify(join(process.cwd(), 'dist/store/sqlite-store.js'))};
     const store = new SqliteStore(${JSON.stringify(join(dir, 'child.db'))});
     await store.insert({ id: 'child', tenant: 't', objectType: 2, state: 1, wrapped: { rootKeyLabel: 'crk', mechanism: 'm', blob: new Uint8Array(4) }, attributes: [] });
     await new Promise((r) => setTimeout(r, 50)); // the thread idle (unreferenced) before close
     await store.close();
     console.log('after close');`,
  );
  expect(execFileSync(process.execPath, [script], { encoding: 'utf8' })).toContain('after close');
});

it('syncs the WAL for the serving connection on its next batch: after the one in flight, one batch for all syncs asked meanwhile', async () => {
  const writer = new SqliteInsertWriter(path, LOCK_WAIT_MS, () => 2);
  const tick = () => new Promise((r) => setImmediate(r));
  try {
    const a = writer.insert(key('a'));
    await tick();
    expect(writer.batchesSent).toBe(1); // a's batch is in the thread
    // Its fdatasync may have started before a commit made now: these wait for the next batch.
    const syncs = [writer.syncWal(), writer.syncWal()];
    let synced = false;
    void Promise.all(syncs).then(() => (synced = true));
    await a;
    expect(synced).toBe(false);
    await Promise.all(syncs);
    expect(writer.batchesSent).toBe(2); // one batch, with no object in it, for both
    // With nothing in flight, a sync gets a batch of its own; one asked beside inserts shares theirs.
    await writer.syncWal();
    expect(writer.batchesSent).toBe(3);
    await Promise.all([writer.insert(key('b')), writer.syncWal(), writer.insert(key('c'))]);
    expect(writer.batchesSent).toBe(4);
    expect(readElsewhere('c')?.names).toEqual(['Name']);
  } finally {
    await writer.close();
  }
  await expect(writer.syncWal()).rejects.toThrow(/closed/);
});

it('makes an update durable while Creates keep the insert thread busy', async () => {
  await store.insert(key('x'));
  const inserts = Array.from({ length: 40 }, (_, i) => store.insert(key(`y${i}`)));
  const updated = store.update('x', { state: State.Active });
  expect(await updated).toBe(true);
  const db = new Database(path, { readonly: true });
  try {
    expect(db.prepare('SELECT state FROM objects WHERE id = ?').pluck().get('x')).toBe(State.Active);
  } finally {
    db.close();
  }
  await Promise.all(inserts);
});
