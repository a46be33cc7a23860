// The body of the thread that commits new objects (sqlite-insert-writer.ts starts it).
//
// It is sent to the thread as source text (Function.prototype.toString), so that the same code runs
// from the TypeScript sources under vitest and from dist/ in production: insertThreadMain may use
// only its parameters and the globals of a worker, never a binding of this module. Only types are
// imported. The SQL comes from the main side, which owns the schema.
import type Database from 'better-sqlite3';

/** What the thread is started with (workerData). */
export interface InsertThreadData {
  /** The database file. */
  readonly path: string;
  /** Absolute path of better-sqlite3's entry, resolved by the main side. */
  readonly betterSqlite3: string;
  /** How long a batch waits for another process's write lock (on this thread, not the server's). */
  readonly lockWaitMs: number;
  /** INSERT of one objects row; its parameters are those of InsertBatch's objects, in order. */
  readonly insertObjectSql: string;
  /** insertAttributesSql[n - 1]: an INSERT of n attribute rows (object_seq, name, idx, value). */
  readonly insertAttributesSql: readonly string[];
}

/**
 * A batch of objects to commit in one transaction. `meta` holds, per object: id, tenant, object
 * type, state, root key label, wrap mechanism, wrapped key length, created_at, attribute bag length,
 * count of attribute rows, then per row name, index and value length. `bytes` holds each object's
 * wrapped key, its attribute bag (objects.unindexed_attributes) and then its rows' encoded values,
 * in the same order.
 */
export interface InsertBatch {
  readonly n: number;
  /** PRAGMA synchronous to commit with: the serving connection's (FULL unless a bulk loader lowered it). */
  readonly synchronous: number;
  readonly meta: readonly (string | number)[];
  readonly bytes: Uint8Array;
}

/** What the main side sends: a batch (with no object: only a sync), or null once, to close the connection and end the thread. */
export type InsertThreadMessage = InsertBatch | null;

export type InsertFailure = readonly [index: number, message: string, code: string | undefined];

/** The outcome of batch n: committed except `failed`, or nothing committed (`error`). */
export type InsertReply =
  | { readonly n: number; readonly failed: readonly InsertFailure[] }
  | { readonly n: number; readonly error: readonly [message: string, code: string | undefined] };

export function insertThreadMain(require: NodeRequire): void {
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  const { closeSync, fdatasyncSync, openSync } = require('node:fs') as typeof import('node:fs');
  const data = workerData as InsertThreadData;
  const Sqlite = require(data.betterSqlite3) as typeof Database;
  const db = new Sqlite(data.path);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.pragma('secure_delete = ON');
  db.pragma('busy_timeout = 0'); // waited for below, in shorter steps than SQLite's own handler
  const FULL = 2;
  const NORMAL = 1;
  let synchronous = -1;
  let walFd: number | undefined;

  /**
   * Runs `commit` (one or more transactions) durably as synchronous=FULL would, but syncs the WAL
   * after releasing the write lock: with FULL the fsync ran inside the lock, and a second serve
   * process's inserts waited for it (p99 37 ms against 9 ms, two processes). An fdatasync of the
   * -wal file covers every frame written to it before it started, by any connection (the serving
   * one's commits at NORMAL wait for it too: SqliteInsertWriter.syncWal), so it makes those commits
   * exactly as durable as FULL would; SQLite itself syncs the WAL before a checkpoint copies it into
   * the database, and the database after, at NORMAL too. Below FULL (a bulk loader), commits at
   * that level without a sync.
   */
  function durably<T>(wanted: number, commit: () => T): T {
    const level = wanted >= FULL ? NORMAL : wanted;
    if (level !== synchronous) {
      db.pragma(`synchronous = ${level}`);
      synchronous = level;
    }
    const result = commit();
    if (wanted >= FULL) {
      // The -wal file exists once a connection has committed (this one, or the serving one before
      // asking for a sync); it lives as long as the connection.
      walFd ??= openSync(`${data.path}-wal`, 'r');
      fdatasyncSync(walFd);
    }
    return result;
  }

  const pause = new Int32Array(new SharedArrayBuffer(4));
  /** `attempt` (a whole transaction), again while another process holds the write lock, for up to lockWaitMs. */
  function whenUnlocked<T>(attempt: () => T): T {
    const started = Date.now();
    for (let delayMs = 0.25; ; delayMs = Math.min(delayMs * 2, 2)) {
      try {
        return attempt();
      } catch (err) {
        if (!codeOf(err)?.startsWith('SQLITE_BUSY') || Date.now() - started + delayMs > data.lockWaitMs) throw err;
      }
      Atomics.wait(pause, 0, 0, delayMs); // sleeps this thread only
    }
  }
  const insertObject = db.prepare(data.insertObjectSql);
  const insertAttributes = data.insertAttributesSql.map((sql) => db.prepare(sql));
  const chunk = insertAttributes.length;

  /** The object of the batch whose entries start at `at` in meta and whose bytes start at `offset` (see starts). */
  function insertOne(m: InsertBatch['meta'], bytes: Buffer, at: number, offset: number): void {
    const blobLength = m[at + 6] as number;
    const bagLength = m[at + 8] as number;
    const bagAt = offset + blobLength;
    const info = insertObject.run(m[at], m[at + 1], m[at + 2], m[at + 3], m[at + 4], m[at + 5], bytes.subarray(offset, bagAt), m[at + 7], bytes.subarray(bagAt, bagAt + bagLength));
    const seq = Number(info.lastInsertRowid);
    const count = m[at + 9] as number;
    at += 10;
    offset = bagAt + bagLength;
    for (let start = 0; start < count; start += chunk) {
      const rows = Math.min(chunk, count - start);
      const values: unknown[] = new Array(rows * 4);
      for (let r = 0; r < rows; r++, at += 3) {
        const length = m[at + 2] as number;
        values[4 * r] = seq;
        values[4 * r + 1] = m[at];
        values[4 * r + 2] = m[at + 1];
        values[4 * r + 3] = bytes.subarray(offset, offset + length);
        offset += length;
      }
      insertAttributes[rows - 1]!.run(values);
    }
  }

  /** Where each object of the batch starts in meta and bytes. */
  function starts(batch: InsertBatch): [number, number][] {
    const out: [number, number][] = [];
    let at = 0;
    let offset = 0;
    while (at < batch.meta.length) {
      out.push([at, offset]);
      const count = batch.meta[at + 9] as number;
      offset += (batch.meta[at + 6] as number) + (batch.meta[at + 8] as number);
      for (let a = 0; a < count; a++) offset += batch.meta[at + 10 + 3 * a + 2] as number;
      at += 10 + 3 * count;
    }
    return out;
  }

  // Made once: db.transaction() defines its wrapper's properties at each call (perf, sqlite-store.ts).
  const insertAll = db.transaction((meta: InsertBatch['meta'], bytes: Buffer, objects: readonly (readonly [number, number])[]) => {
    for (const [at, offset] of objects) insertOne(meta, bytes, at, offset);
  });
  const insertEach = db.transaction(insertOne);

  const codeOf = (err: unknown): string | undefined => {
    const code = (err as { code?: unknown } | null)?.code;
    return typeof code === 'string' ? code : undefined;
  };

  parentPort!.on('message', (batch: InsertBatch | null) => {
    if (batch === null) {
      // The writer is closing: nothing is in flight (it waited for every reply).
      db.close();
      if (walFd !== undefined) closeSync(walFd);
      parentPort!.close();
      return;
    }
    const objects = starts(batch);
    const bytes = Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
    try {
      if (objects.length === 0) {
        // Only a sync, for commits of the serving connection (SqliteInsertWriter.syncWal).
        durably(batch.synchronous, () => undefined);
        parentPort!.postMessage({ n: batch.n, failed: [] } satisfies InsertReply);
        return;
      }
      try {
        durably(batch.synchronous, () => whenUnlocked(() => insertAll.immediate(batch.meta, bytes, objects)));
        parentPort!.postMessage({ n: batch.n, failed: [] } satisfies InsertReply);
        return;
      } catch (err) {
        // The lock stayed taken for the whole wait, or the sync failed: nothing acknowledged.
        if (codeOf(err)?.startsWith('SQLITE_BUSY') || !codeOf(err)?.startsWith('SQLITE_')) throw err;
      }
      // One bad row (a duplicate id) must not fail the others: each on its own.
      const failed: InsertFailure[] = [];
      durably(batch.synchronous, () =>
        objects.forEach(([at, offset], i) => {
          try {
            whenUnlocked(() => insertEach.immediate(batch.meta, bytes, at, offset));
          } catch (err) {
            failed.push([i, err instanceof Error ? err.message : String(err), codeOf(err)]);
          }
        }),
      );
      parentPort!.postMessage({ n: batch.n, failed } satisfies InsertReply);
    } catch (err) {
      parentPort!.postMessage({ n: batch.n, error: [err instanceof Error ? err.message : String(err), codeOf(err)] } satisfies InsertReply);
    }
  });
}
