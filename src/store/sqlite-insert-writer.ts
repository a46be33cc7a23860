// New objects are committed on a thread of their own (sqlite-insert-thread.ts), with its own
// connection, so that their SQLite work (b-tree inserts, WAL writes, fsync, checkpoints) runs on the
// second core while the event loop serves requests. Under Create that work was about a third of
// the server's main thread (bench/RESULTS.md, twelfth round).
//
// Group commit: one batch is in the thread at a time; what arrives meanwhile goes in the next, as
// one transaction. The thread syncs the WAL after each commit, before its reply, so each insert()
// resolves only once its object is on disk. Another process holding the write lock makes the
// thread wait, not the event loop.
//
// The serving connection's own commits (a key's first Get flips Fresh; Activate, Revoke...) are
// made durable by the same syncs (syncWal): the WAL is one file, and an fdatasync of it covers
// every frame written before it started, by any connection. With a sync of their own on libuv's
// pool, the two streams of fdatasync queued behind each other at the disk: vCenter's flow for a
// new key (Create, then Get) ran at ~4,600 operations/s, each Get as slow as a Create
// (bench/RESULTS.md, twenty-first round).
import Database from 'better-sqlite3';
import { createRequire } from 'node:module';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { encodeTtlv, structure, type TtlvItem } from '../ttlv/index.js';
import { Tag } from '../kmip/registry/generated.js';
import type { NewObject } from './types.js';
import type { Attribute } from '../kmip/attributes.js';
import { attributeInsertSql, ROWS_PER_INSERT } from './sqlite-attribute-rows.js';
import { storedForm } from './attribute-bag.js';
import { insertThreadMain, type InsertBatch, type InsertReply, type InsertThreadData, type InsertThreadMessage } from './sqlite-insert-thread.js';

const INSERT_OBJECT_SQL = `INSERT INTO objects (id, tenant, object_type, state, root_key_label, wrap_mechanism, wrapped_key, created_at, unindexed_attributes)
   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`;

const BETTER_SQLITE3 = createRequire(import.meta.url).resolve('better-sqlite3');

interface Pending {
  readonly obj: NewObject;
  /** The object's attributes as stored: rows, and the rest in one bag (attribute-bag.ts). */
  readonly rows: readonly Attribute[];
  readonly bag: Buffer;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** The thread's error as a commit on the serving connection would have thrown it (classified alike). */
function storeError(message: string, code: string | undefined): Error {
  return code === undefined ? new Error(message) : new Database.SqliteError(message, code);
}

/**
 * The batch as the thread reads it (InsertBatch): names and numbers in one array, the wrapped keys,
 * attribute bags (attribute-bag.ts) and encoded attribute values in one buffer of its own,
 * transferred rather than copied. Wrapped keys only: key material never reaches the store in
 * plaintext.
 */
function pack(n: number, batch: readonly Pending[], synchronous: number): InsertBatch {
  const createdAt = Math.floor(Date.now() / 1000);
  // Every attribute row's value of the batch in one encoding: the children of one structure, each
  // found after the one before by its own header (a TTLV item encodes the same wherever it sits).
  // One encoding per value cost twice the CPU: 6.1-6.5 against 3.3-3.6 µs for a Create's 17 values
  // (when all were rows; the bag's values are encoded the same way, in encodeAttributeBag).
  const items: TtlvItem[] = [];
  // A loop, not flatMap: V8's flatMap builtin took more than the encoding itself (perf).
  for (const { rows } of batch) for (const a of rows) items.push(a.value);
  const values = encodeTtlv(structure(Tag.TemplateAttribute, items));
  let total = values.length - TTLV_HEADER;
  for (const { obj, bag } of batch) total += obj.wrapped.blob.length + bag.length;
  // Not a Buffer: a small one may sit in Node's shared slab, which must not be transferred.
  const bytes = new Uint8Array(total);
  const meta: (string | number)[] = [];
  let at = 0;
  let valueAt = TTLV_HEADER;
  for (const { obj, rows, bag } of batch) {
    const { blob } = obj.wrapped;
    meta.push(obj.id, obj.tenant, obj.objectType, obj.state, obj.wrapped.rootKeyLabel, obj.wrapped.mechanism, blob.length, createdAt, bag.length, rows.length);
    bytes.set(blob, at);
    at += blob.length;
    bytes.set(bag, at);
    at += bag.length;
    const first = valueAt;
    for (const a of rows) {
      const length = TTLV_HEADER + padded(values.readUInt32BE(valueAt + 4));
      meta.push(a.name, a.index, length);
      valueAt += length;
    }
    bytes.set(values.subarray(first, valueAt), at);
    at += valueAt - first;
  }
  return { n, synchronous, meta, bytes };
}

const TTLV_HEADER = 8;
/** A TTLV value's length with its padding: structures' lengths are already multiples of 8. */
const padded = (length: number): number => (length + 7) & ~7;

interface SyncWaiter {
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

export class SqliteInsertWriter {
  private thread: Worker | undefined;
  private readonly queued: Pending[] = [];
  /** syncWal() callers waiting for the next batch sent. */
  private readonly syncsQueued: SyncWaiter[] = [];
  private inFlight: { readonly n: number; readonly batch: readonly Pending[]; readonly syncs: readonly SyncWaiter[] } | undefined;
  private sent = 0;
  private sendScheduled = false;
  private closing = false;
  private readonly drained: (() => void)[] = [];

  constructor(
    private readonly path: string,
    private readonly lockWaitMs: number,
    /** PRAGMA synchronous of the serving connection, which the thread's commits follow. */
    private readonly synchronous: () => number,
  ) {}

  /** Resolves once `obj` is committed and on disk; rejects (nothing stored) as SQLite would have. */
  insert(obj: NewObject): Promise<void> {
    if (this.closing) return Promise.reject(new Error('the store is closed'));
    let stored: { rows: Attribute[]; bag: Buffer };
    try {
      // Here, not in pack: a repeated attribute refuses this object, not its whole batch.
      stored = storedForm(obj.attributes);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.queued.push({ obj, ...stored, resolve, reject });
      this.sendSoon();
    });
  }

  /**
   * Resolves once an fdatasync of the database's -wal file that started after this call has
   * completed, so that whatever another connection committed to the WAL before the call is on
   * disk (the serving connection commits with synchronous=NORMAL and waits for this). It rides on
   * the next batch sent, with no object in it if none is waiting. Below synchronous=FULL (a bulk
   * loader), nothing is synced, as nothing is for inserts.
   */
  syncWal(): Promise<void> {
    if (this.closing) return Promise.reject(new Error('the store is closed'));
    return new Promise((resolve, reject) => {
      this.syncsQueued.push({ resolve, reject });
      this.sendSoon();
    });
  }

  /** Unless a batch is in flight (its reply sends the next) or a send is already due. */
  private sendSoon(): void {
    if (this.inFlight || this.sendScheduled) return; // goes with the next batch
    this.sendScheduled = true;
    // What arrives in the same turn of the event loop shares the batch.
    setImmediate(() => {
      this.sendScheduled = false;
      this.send();
    });
  }

  /** Batches sent to the thread so far, those carrying only syncs included (tests). */
  get batchesSent(): number {
    return this.sent;
  }

  /** Commits what is queued, waits for every reply, then ends the thread. */
  async close(): Promise<void> {
    this.closing = true;
    this.send();
    while (this.inFlight || this.queued.length > 0 || this.syncsQueued.length > 0) await new Promise<void>((resolve) => this.drained.push(resolve));
    const thread = this.thread;
    if (!thread) return;
    this.thread = undefined;
    const exited = once(thread, 'exit');
    thread.ref(); // the process waits for the thread to close its connection
    thread.postMessage(null satisfies InsertThreadMessage);
    await exited;
  }

  private send(): void {
    if (this.inFlight || (this.queued.length === 0 && this.syncsQueued.length === 0)) return;
    const batch = this.queued.splice(0);
    const syncs = this.syncsQueued.splice(0);
    let message: InsertBatch;
    let thread: Worker;
    try {
      message = pack(++this.sent, batch, this.synchronous());
      thread = this.started();
    } catch (err) {
      for (const p of [...batch, ...syncs]) p.reject(err);
      return this.settle();
    }
    this.inFlight = { n: message.n, batch, syncs };
    thread.ref(); // a batch in flight keeps the process alive until it is answered
    thread.postMessage(message satisfies InsertThreadMessage, [message.bytes.buffer as ArrayBuffer]); // pack's own buffer
  }

  private answered(reply: InsertReply): void {
    const flight = this.inFlight;
    if (!flight || flight.n !== reply.n) return; // a reply from a thread already given up on
    this.inFlight = undefined;
    this.thread?.unref();
    if ('error' in reply) {
      const [message, code] = reply.error;
      for (const p of [...flight.batch, ...flight.syncs]) p.reject(storeError(message, code));
    } else {
      // The WAL was synced after the batch's commit, whichever of its objects were refused.
      const failed = new Map(reply.failed.map(([i, message, code]) => [i, storeError(message, code)]));
      flight.batch.forEach((p, i) => {
        const err = failed.get(i);
        if (err) p.reject(err);
        else p.resolve();
      });
      for (const s of flight.syncs) s.resolve();
    }
    this.settle();
  }

  /** After a batch is done: the next one goes at once (it has waited a commit already), or close() may go on. */
  private settle(): void {
    this.send();
    if (!this.inFlight && this.queued.length === 0 && this.syncsQueued.length === 0) for (const resolve of this.drained.splice(0)) resolve();
  }

  /** The thread stopped: its batch in flight fails (committed or not, it was not acknowledged). */
  private lost(thread: Worker, err: Error): void {
    if (this.thread !== thread) return;
    this.thread = undefined;
    const flight = this.inFlight;
    this.inFlight = undefined;
    for (const p of [...(flight?.batch ?? []), ...(flight?.syncs ?? [])]) p.reject(err);
    this.settle();
  }

  private started(): Worker {
    if (this.thread) return this.thread;
    const data: InsertThreadData = {
      path: this.path,
      betterSqlite3: BETTER_SQLITE3,
      lockWaitMs: this.lockWaitMs,
      insertObjectSql: INSERT_OBJECT_SQL,
      insertAttributesSql: Array.from({ length: ROWS_PER_INSERT }, (_, i) => attributeInsertSql(i + 1)),
    };
    const thread = new Worker(`(${insertThreadMain.toString()})(require)`, { eval: true, workerData: data });
    thread.unref();
    thread.on('message', (reply: InsertReply) => this.answered(reply));
    thread.on('error', (err) => this.lost(thread, err));
    thread.on('exit', (code) => this.lost(thread, new Error(`the store's insert thread exited (code ${code})`)));
    this.thread = thread;
    return thread;
  }
}
