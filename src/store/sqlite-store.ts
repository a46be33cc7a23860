// SQLite store (better-sqlite3). WAL with synchronous=FULL: a committed transaction is on disk
// before the call returns, so a success answered after insert()/update() is durable.
// secure_delete overwrites freed pages, so an erased wrapped key does not linger in the file.
import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { decodeTtlv, encodeTtlv } from '../ttlv/index.js';
import { State, Tag } from '../kmip/registry/generated.js';
import { dateTime } from '../ttlv/build.js';
import type { Attribute } from '../kmip/attributes.js';
import { MIGRATIONS } from './sqlite-migrations.js';
import { isValueIndexed, sqliteValueIndexCondition } from './value-index.js';
import { UntilChanged } from './sqlite-change-watch.js';
import { SqliteAttributeRows } from './sqlite-attribute-rows.js';
import { LockWait, LOCK_WAIT_MS } from './sqlite-lock-wait.js';
import { SqliteInsertWriter } from './sqlite-insert-writer.js';
import { attributeBagHoldsBetween, bagEntryPrefix, byNameAndIndex, decodeAttributeBag, replaceInBag, storedForm } from './attribute-bag.js';
import { wrappedKeyOf, type KeyStore, type LocateQuery, type LocateResult, type NewObject, type ObjectUpdate, type StoreHealth, type StoredObject } from './types.js';

interface ObjectRow {
  seq: number;
  id: string;
  tenant: string;
  object_type: number;
  state: number;
  root_key_label: string | null;
  wrap_mechanism: string | null;
  wrapped_key: Buffer | null;
  /** NULL: every attribute is a row (objects stored before migration 8); see attribute-bag.ts. */
  unindexed_attributes: Buffer | null;
}
/** objectWithAttributes: the object's columns, then its attributes (see attributesFrom). */
type ObjectWithAttributesRow = [
  id: string,
  tenant: string,
  objectType: number,
  state: number,
  rootKeyLabel: string | null,
  mechanism: string | null,
  wrappedKey: Buffer | null,
  attributes: string,
  values: Buffer | null,
  /** 1 if an operator hold stops the key being served. */
  held: 0 | 1,
  /** objects.unindexed_attributes (attribute-bag.ts). */
  bag: Buffer | null,
];
/** name, index, and byte length of the encoded value. */
type AttributeEntry = [name: string, index: number, length: number];

const EMPTY = new Uint8Array(0);

/** Attributes from their entries and the concatenation of their encoded values, in the same order. */
function attributesFrom(entries: readonly AttributeEntry[], values: Uint8Array): Attribute[] {
  let at = 0;
  const attrs = entries.map(([name, index, length]): Attribute => {
    const value = decodeTtlv(values.subarray(at, at + length));
    at += length;
    return { name, index, value };
  });
  if (at !== values.length) throw new Error(`attribute values are ${values.length} bytes, their entries say ${at}`);
  return attrs;
}

/**
 * Attribute rows and bagged attributes (attribute-bag.ts), each in (name, index) order, merged in
 * that order. A bagged object has no row of a bagged name, so no two compare equal.
 */
function mergeInKeyOrder(rows: readonly Attribute[], bagged: readonly Attribute[]): Attribute[] {
  if (bagged.length === 0) return rows as Attribute[];
  const out: Attribute[] = [];
  let i = 0;
  let j = 0;
  while (i < rows.length && j < bagged.length) out.push(byNameAndIndex(rows[i]!, bagged[j]!) < 0 ? rows[i++]! : bagged[j++]!);
  while (i < rows.length) out.push(rows[i++]!);
  while (j < bagged.length) out.push(bagged[j++]!);
  return out;
}

/**
 * An object with its attribute rows as one JSON list and one BLOB of values (`order` orders both
 * aggregates), whether an operator holds it, and its attribute bag: one read for everything a Get
 * checks.
 */
export function objectWithAttributesSql(order: string): string {
  return `SELECT o.id, o.tenant, o.object_type, o.state, o.root_key_label, o.wrap_mechanism, o.wrapped_key,
            (SELECT json_group_array(json_array(a.name, a.idx, length(a.value))${order}) FROM attributes a WHERE a.object_seq = o.seq),
            (SELECT unhex(group_concat(hex(a.value), ''${order})) FROM attributes a WHERE a.object_seq = o.seq),
            EXISTS (SELECT 1 FROM key_holds h WHERE h.object_id = o.id),
            o.unindexed_attributes
          FROM objects o WHERE o.id = ?`;
}

/**
 * Whether attribute entries are in strictly increasing (name, index) order. JavaScript compares
 * UTF-16 code units where SQLite compares UTF-8 bytes; the two disagree only for names with
 * characters beyond U+FFFF, which then take the ordered read (correct, just slower).
 */
function inKeyOrder(entries: readonly AttributeEntry[]): boolean {
  for (let i = 1; i < entries.length; i++) {
    const [prevName, prevIndex] = entries[i - 1]!;
    const [name, index] = entries[i]!;
    if (!(prevName < name || (prevName === name && prevIndex < index))) return false;
  }
  return true;
}

/** Locate statement shapes kept prepared (see locateStatement). */
const MAX_LOCATE_SHAPES = 64;

/**
 * How long one step of a Locate that no index narrows may hold the event loop (locateInSteps).
 * Each step covers as many objects as the step before managed in that time (~0.6 µs each on the
 * bench machine, more with longer conditions or a colder cache). At 100,000 keys, fixed steps of
 * 2,048 objects raised the other clients' p99 by 2 ms and steps of 512 quadrupled the Locate's own
 * time (bench/RESULTS.md, seventeenth round).
 */
const LOCATE_STEP_MS = 1;
const FIRST_LOCATE_STEP = 1024;
const MIN_LOCATE_STEP = 64;
const MAX_LOCATE_STEP = 65_536;

/** Objects (sequence numbers) the next step covers, from how long this one took. */
export function nextLocateStep(step: number, tookMs: number): number {
  const fitting = Math.round((step * LOCATE_STEP_MS) / Math.max(tookMs, 0.001));
  return Math.max(MIN_LOCATE_STEP, Math.min(MAX_LOCATE_STEP, step * 4, fitting));
}

/** Objects kept by SqliteStore.get (a few KiB each). */
const MAX_RECENT_OBJECTS = 8192;

/** Freezes plain objects and arrays all the way down (byte buffers cannot be frozen). */
function deepFreeze<T>(v: T): T {
  if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v) || Object.isFrozen(v)) return v;
  for (const child of Object.values(v)) deepFreeze(child);
  return Object.freeze(v);
}

/** How long a write probe (readiness) waits for another process's write lock. */
const PROBE_BUSY_TIMEOUT_MS = 200;

const DESTROYED_STATES = [State.Destroyed, State.DestroyedCompromised];

/** PRAGMA synchronous as this store sets it: FULL to serve, OFF only for the bench's bulk loader. */
const SYNCHRONOUS_OFF = 0;
const SYNCHRONOUS_FULL = 2;
type SynchronousLevel = typeof SYNCHRONOUS_OFF | typeof SYNCHRONOUS_FULL;

/** The value index's condition as queries on `attributes` state it; built once, not per Locate. */
const IN_VALUE_INDEX = sqliteValueIndexCondition('name');

export function openSqliteDatabase(path: string): Database.Database {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // Created owner-only before SQLite opens it; SQLite gives its -wal and -shm files the same mode.
  closeSync(openSync(path, 'a', 0o600));
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('secure_delete = ON');
  db.pragma(`busy_timeout = ${LOCK_WAIT_MS}`);
  defineAttributeBagBetween(db);
  migrate(db);
  return db;
}

/**
 * Locate's range conditions on the attributes kept in objects.unindexed_attributes call this
 * (locateCondition). Equality is a byte search instead (attribute-bag.ts); a range on one of those
 * attributes is not something Locate asks today (it ranges dates only, which are rows).
 */
export function defineAttributeBagBetween(db: Database.Database): void {
  db.function('attribute_bag_between', { deterministic: true }, (bag, name, low, high) =>
    attributeBagHoldsBetween(bag as Buffer | null, name as string, low as Buffer, high as Buffer) ? 1 : 0,
  );
}

export function migrate(db: Database.Database): number {
  // One write transaction from reading the version to the last migration: two processes opening a
  // fresh database at once (CLI and server, two nodes) cannot both apply the same step.
  db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new Error(`database schema version ${current} is newer than this kmipd (${MIGRATIONS.length})`);
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }
  }).immediate();
  return MIGRATIONS.length;
}

export class SqliteStore implements KeyStore, StoreHealth {
  /** The connection; the SQLite backend (sqlite-backend.ts) shares it with the operator tables. */
  readonly db: Database.Database;
  private readonly stmts;

  /** Request-path writes wait for another process's lock from the event loop, not inside SQLite. */
  private readonly lockWait: LockWait;
  private readonly attributeRows: SqliteAttributeRows;
  private readonly inserts: SqliteInsertWriter;
  /**
   * PRAGMA synchronous of this connection, which the insert thread's commits follow. Kept here
   * rather than read back: better-sqlite3's pragma() prepares a statement at every call, and that
   * read, once per batch of Creates, was 2.1 % of the main thread under Create (bench/RESULTS.md,
   * seventeenth round). A prepared PRAGMA statement would not do: SQLite evaluates it while preparing.
   */
  private synchronous: SynchronousLevel = SYNCHRONOUS_FULL;

  /**
   * `fixedLocateStep`: objects per step of a Locate that no index narrows, instead of steps sized
   * by their time (locateInSteps); only for tests, to make many steps of few objects.
   */
  constructor(
    path: string,
    private readonly fixedLocateStep?: number,
  ) {
    this.db = openSqliteDatabase(path);
    this.recent = new UntilChanged(this.db, MAX_RECENT_OBJECTS, false);
    this.lockWait = new LockWait(this.db);
    this.attributeRows = new SqliteAttributeRows(this.db);
    // Its commits are another connection's to this one; they only add objects, which leaves
    // this connection's caches as they are (change_epoch, sqlite-change-watch.ts).
    this.inserts = new SqliteInsertWriter(path, LOCK_WAIT_MS, () => this.synchronous);
    const db = this.db;
    this.stmts = {
      deleteAttributes: db.prepare('DELETE FROM attributes WHERE object_seq = ? AND name = ?'),
      objectById: db.prepare('SELECT * FROM objects WHERE id = ?'),
      // get() in one statement and few JS values: better-sqlite3 makes a Buffer per BLOB and a
      // keyed object per row, which cost more than the SQL. So the attributes come back as one
      // JSON list of [name, idx, byte length] and one BLOB of their values, in the same order.
      objectWithAttributes: db.prepare(objectWithAttributesSql('')).raw(),
      // The same, with the order asked for: see readObject.
      objectWithAttributesOrdered: db.prepare(objectWithAttributesSql(' ORDER BY a.name, a.idx')).raw(),
      setState: db.prepare('UPDATE objects SET state = ? WHERE seq = ?'),
      // Overwrite before clearing; with secure_delete the old bytes do not survive in free pages.
      zeroKey: db.prepare('UPDATE objects SET wrapped_key = zeroblob(length(wrapped_key)) WHERE seq = ?'),
      eraseKey: db.prepare('UPDATE objects SET wrapped_key = NULL, wrap_mechanism = NULL WHERE seq = ?'),
      removeObject: db.prepare('DELETE FROM objects WHERE id = ?'),
      deleteAllAttributes: db.prepare('DELETE FROM attributes WHERE object_seq = ?'),
      lastSeq: db.prepare('SELECT max(seq) FROM objects').pluck(),
      restoreObject: db.prepare('UPDATE objects SET state = ?, root_key_label = ?, wrap_mechanism = ?, wrapped_key = ?, unindexed_attributes = ? WHERE seq = ?'),
      setStateAndBag: db.prepare('UPDATE objects SET state = ?, unindexed_attributes = ? WHERE seq = ?'),
    };
    this.updateTransaction = db.transaction((id: string, change: ObjectUpdate) => this.applyUpdate(id, change));
  }

  /**
   * Made once: better-sqlite3's db.transaction() defines the wrapper's properties at each call,
   * ~10 % of an update's time on the event loop (perf of a key's first-Get Fresh flip).
   */
  private readonly updateTransaction: Database.Transaction<(id: string, change: ObjectUpdate) => boolean>;

  /** Commits on their own thread (sqlite-insert-writer.ts), durable before this resolves. */
  insert(obj: NewObject): Promise<void> {
    return this.inserts.insert(obj);
  }

  /**
   * Commits stop waiting for the disk (synchronous=OFF, here and on the insert thread), so a crash
   * may lose them: for the bench's bulk loader, never for serving.
   */
  relaxDurabilityForBulkLoad(): void {
    this.db.exec('PRAGMA synchronous = OFF');
    this.synchronous = SYNCHRONOUS_OFF;
  }

  /**
   * Runs `commit` (one or more transactions) with synchronous=NORMAL, so that committing does not
   * wait for the disk; `sync()` resolves once what it wrote is on disk, from the insert thread's
   * next WAL sync, which new objects' group commit shares (SqliteInsertWriter.syncWal). Everything
   * else on this connection keeps synchronous=FULL. A store relaxed for bulk loading is left as it
   * is, and not synced.
   */
  private commitWithoutWaiting<T>(commit: () => T): { result: T; sync: () => Promise<void> } {
    if (this.synchronous !== SYNCHRONOUS_FULL) return { result: commit(), sync: () => Promise.resolve() };
    this.db.exec('PRAGMA synchronous = NORMAL');
    let result: T;
    try {
      result = commit();
    } finally {
      this.db.exec('PRAGMA synchronous = FULL');
    }
    return { result, sync: () => this.inserts.syncWal() };
  }

  /**
   * Objects read recently, as long as nothing may have written the database since (see
   * SqliteChangeWatch), except this store's own writes to other objects (writeObjects): a boot
   * storm fetches the same keys again and again, and reading and decoding an object was the
   * largest cost of a Get after the HSM. Holds wrapped keys and attributes only, never key
   * material; entries are frozen, the oldest goes first.
   */
  private readonly recent: UntilChanged<string, StoredObject | undefined>;

  /**
   * Runs `write`, which changes the objects `ids` (their rows, attributes, holds) and nothing else
   * any cache on this connection reads (the client registry's caches read the client tables): the
   * other objects stay in memory. Bulk changes (applyDueTransitions) are ordinary writes.
   */
  private writeObjects<T>(ids: readonly string[], write: () => T): T {
    return this.recent.writeOnly(ids, write);
  }

  async get(id: string): Promise<StoredObject | undefined> {
    return this.recent.get(id, () => {
      const obj = this.readObject(id);
      return obj && deepFreeze(obj);
    });
  }

  /**
   * Both aggregates of objectWithAttributes read the attributes table, which is stored in (object,
   * name, index) order (WITHOUT ROWID), through the same search: they list the rows in that order
   * with no sort, and in the same order as each other. An ORDER BY inside each aggregate made SQLite
   * sort anyway: 19 of the 43 µs of reading an object not in memory, at 100 k keys. SQLite does not
   * promise the order of an aggregate without ORDER BY, so it is checked here, and a list out of
   * order is read again with the ORDER BY (sqlite-read-path.test.ts also pins the query plan).
   */
  private readObject(id: string): StoredObject | undefined {
    let row = this.stmts.objectWithAttributes.get(id) as ObjectWithAttributesRow | undefined;
    if (!row) return undefined;
    let entries = JSON.parse(row[7]) as AttributeEntry[];
    if (!inKeyOrder(entries)) {
      row = this.stmts.objectWithAttributesOrdered.get(id) as ObjectWithAttributesRow | undefined;
      if (!row) return undefined;
      entries = JSON.parse(row[7]) as AttributeEntry[];
    }
    const [objectId, tenant, objectType, state, rootKeyLabel, mechanism, wrappedKey, , values, held, bag] = row;
    return {
      id: objectId,
      tenant,
      objectType,
      state,
      wrapped: wrappedKeyOf({ root_key_label: rootKeyLabel, wrap_mechanism: mechanism, wrapped_key: wrappedKey }),
      attributes: mergeInKeyOrder(attributesFrom(entries, values ?? EMPTY), bag === null ? [] : decodeAttributeBag(bag)),
      heldByOperator: held === 1,
    };
  }

  async update(id: string, change: ObjectUpdate): Promise<boolean> {
    // IMMEDIATE: take the write lock before reading, so a writer in another process (the CLI,
    // another node) makes us wait (lockWait) instead of failing with SQLITE_BUSY_SNAPSHOT.
    const { result, sync } = await this.lockWait.write(() => this.commitWithoutWaiting(() => this.writeObjects([id], () => this.updateTransaction.immediate(id, change))));
    // Durable before the answer, but the fsync off the event loop: the first Get
    // of every new key flips its Fresh attribute, and a synchronous fsync there held up everyone.
    await sync();
    return result;
  }

  /** update()'s transaction (see updateTransaction). */
  private applyUpdate(id: string, change: ObjectUpdate): boolean {
    const row = this.stmts.objectById.get(id) as ObjectRow | undefined;
    if (!row) return false;
    const bagged = new Map<string, readonly Attribute[]>();
    for (const [name, attrs] of change.replace ?? []) {
      if (row.unindexed_attributes !== null && !isValueIndexed(name)) {
        bagged.set(name, attrs);
        continue;
      }
      this.stmts.deleteAttributes.run(row.seq, name);
      this.attributeRows.insert(row.seq, attrs);
    }
    // Always, unchanged state or not: the objects row's update is what moves change_epoch for
    // an attribute added to an existing object (an INSERT into attributes alone does not).
    // One UPDATE of the row for the state and the bag (a key's first Get flips Fresh, in its bag).
    const state = change.state ?? row.state;
    if (bagged.size > 0) this.stmts.setStateAndBag.run(state, replaceInBag(row.unindexed_attributes!, bagged), row.seq);
    else this.stmts.setState.run(state, row.seq);
    if (change.eraseKey) {
      this.stmts.zeroKey.run(row.seq);
      this.stmts.eraseKey.run(row.seq);
    }
    return true;
  }

  async applyDueTransitions(now: bigint): Promise<void> {
    // Encoded Date-Time values of positive times sort like the times themselves (big-endian).
    const nowValue = encodeTtlv(dateTime(Tag.AttributeValue, now));
    await this.lockWait.write(() => this.db.transaction(() => {
      this.db.prepare(`UPDATE objects SET state = ${State.Deactivated} WHERE state IN (${State.PreActive}, ${State.Active}) AND ${dueObjectsCondition('Deactivation Date')}`).run(nowValue);
      this.db.prepare(`UPDATE objects SET state = ${State.Active} WHERE state = ${State.PreActive} AND ${dueObjectsCondition('Activation Date')}`).run(nowValue);
    })());
  }

  async remove(id: string): Promise<void> {
    await this.lockWait.write(() => this.writeObjects([id], () => this.stmts.removeObject.run(id)));
  }

  async restore(obj: StoredObject): Promise<void> {
    await this.lockWait.write(() => this.writeObjects([obj.id], () => this.db.transaction(() => {
      const row = this.stmts.objectById.get(obj.id) as ObjectRow | undefined;
      if (!row) return;
      const w = obj.wrapped;
      const { rows, bag } = storedForm(obj.attributes);
      this.stmts.restoreObject.run(obj.state, w?.rootKeyLabel ?? null, w?.mechanism ?? null, w ? Buffer.from(w.blob) : null, bag, row.seq);
      this.stmts.deleteAllAttributes.run(row.seq);
      this.attributeRows.insert(row.seq, rows);
    }).immediate()));
  }

  async locate(q: LocateQuery): Promise<LocateResult> {
    const { cond, params, indexed } = locateCondition(q);
    if (!indexed) {
      // One at a time: stepped Locates taking turns would each put a step into every turn of the
      // event loop (at a million keys, sweeping clients then slowed every Get to ~11 ms at p50).
      const run = this.broadLocates.then(() => this.locateInSteps(q, cond, params));
      this.broadLocates = run.catch(() => undefined);
      return run;
    }
    const { count, page } = this.countAndPage(cond);
    const total = count.get(...params) as number;
    const rows = page.all(...params, q.maxItems === undefined ? -1 : q.maxItems, q.offset) as string[];
    return { ids: rows, total };
  }

  /**
   * A Locate's two statements over `where` (a WHERE clause over `objects o`): the count of the
   * matches, and one page of their ids, newest first (parameters: where's, then LIMIT and OFFSET).
   */
  private countAndPage(where: string): { count: Database.Statement; page: Database.Statement } {
    return {
      count: this.locateStatement(`SELECT count(*) FROM objects o ${where}`).pluck(),
      // `? + 0`, not a bare `?`: SQLite's planner reads the value bound to a bare LIMIT or OFFSET
      // parameter, and a statement whose plan read a binding is prepared again at its next run after
      // any bind. That was every Locate: ~12 µs per run, more with a longer condition
      // (bench/RESULTS.md, eighth round). An expression is evaluated at run time only.
      page: this.locateStatement(`SELECT o.id FROM objects o ${where} ORDER BY o.seq DESC LIMIT (? + 0) OFFSET (? + 0)`).pluck(),
    };
  }

  /**
   * A Locate that no index narrows tests every object of the tenant (~0.6 µs each): at a million
   * keys, 0.7 s with the event loop, every other client, held. So it goes through the objects in
   * steps of about LOCATE_STEP_MS, newest first, and lets the event loop serve others between
   * steps. Objects created meanwhile are above the first step and not seen, as if created after the
   * Locate; each step counts and reads its own part, as the two statements of a Locate in one go
   * each read theirs.
   */
  private async locateInSteps(q: LocateQuery, cond: string, params: readonly unknown[]): Promise<LocateResult> {
    const { count, page } = this.countAndPage(`${cond === '' ? 'WHERE' : `${cond} AND`} o.seq BETWEEN ? AND ?`);
    const ids: string[] = [];
    let total = 0;
    let skip = q.offset;
    let room = q.maxItems ?? Infinity;
    let step = this.fixedLocateStep ?? FIRST_LOCATE_STEP;
    for (let high = (this.stmts.lastSeq.get() as number | null) ?? 0; high >= 1; ) {
      const started = performance.now();
      const low = Math.max(1, high - step + 1);
      const here = count.get(...params, low, high) as number;
      total += here;
      if (here <= skip) {
        skip -= here;
      } else {
        if (room > 0) {
          const found = page.all(...params, low, high, room === Infinity ? -1 : room, skip) as string[];
          for (const id of found) ids.push(id); // not push(...found): up to MAX_LOCATE_STEP arguments
          room -= found.length;
        }
        skip = 0;
      }
      high = low - 1;
      if (high < 1) break;
      if (this.fixedLocateStep === undefined) step = nextLocateStep(step, performance.now() - started);
      await new Promise((resolve) => setImmediate(resolve));
    }
    return { ids, total };
  }

  /**
   * Locate's statements, prepared once per shape of query (which conditions, how many states):
   * preparing them again at each call took longer than running them on a small store.
   */
  private locateStatement(sql: string): Database.Statement {
    let st = this.locateStatements.get(sql);
    if (!st) {
      if (this.locateStatements.size >= MAX_LOCATE_SHAPES) this.locateStatements.delete(this.locateStatements.keys().next().value!);
      st = this.db.prepare(sql);
      this.locateStatements.set(sql, st);
    }
    return st;
  }

  private readonly locateStatements = new Map<string, Database.Statement>();
  /** The latest Locate that no index narrows, queued or running (see locate). */
  private broadLocates: Promise<unknown> = Promise.resolve();

  async probeWritable(): Promise<void> {
    // Taking the write lock is the write: it fails if another process holds it, or if the
    // connection or file is read-only; nothing reaches the disk, since nothing is committed.
    // A short busy timeout of its own: SQLite calls block the event loop, and a probe must not
    // pause the server for the full 5 s that a real write may wait.
    const busy = this.db.pragma('busy_timeout', { simple: true }) as number;
    this.db.pragma(`busy_timeout = ${PROBE_BUSY_TIMEOUT_MS}`);
    try {
      this.db.exec('BEGIN IMMEDIATE');
      this.db.exec('ROLLBACK');
    } finally {
      this.db.pragma(`busy_timeout = ${busy}`);
    }
  }

  async countByState(): Promise<ReadonlyMap<number, number>> {
    // Grouped in the order of the (object_type, state) index: one covering scan, no sort
    // (about 50 ms per million objects, against 125 ms grouping by state alone).
    const rows = this.db.prepare('SELECT state, count(*) AS n FROM objects GROUP BY object_type, state').all() as { state: number; n: number }[];
    const counts = new Map<number, number>();
    for (const r of rows) counts.set(r.state, (counts.get(r.state) ?? 0) + r.n);
    return counts;
  }

  async close(): Promise<void> {
    if (!this.db.open) return;
    await this.inserts.close(); // what was asked to be stored or synced is (or is refused) first
    this.db.close();
  }
}

/**
 * Locate's WHERE clause over `objects o`, and its parameters (the count and the page share it).
 * `indexed`: an exact match on an indexed attribute narrows the objects read (see `driver`).
 */
export function locateCondition(q: LocateQuery): { cond: string; params: unknown[]; indexed: boolean } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.tenant !== undefined) {
    where.push('o.tenant = ?');
    params.push(q.tenant);
  }
  if (q.objectType !== undefined) {
    where.push('o.object_type = ?');
    params.push(q.objectType);
  }
  if (q.states !== undefined) {
    where.push(`o.state IN (${q.states.map(() => '?').join(',') || 'NULL'})`);
    params.push(...q.states);
  }
  if (!q.includeDestroyed) {
    where.push(`o.state NOT IN (${DESTROYED_STATES.join(',')})`);
  }
  // The first exact match on an indexed attribute drives the query from the value index (a set of
  // object rows looked up by rowid); the other conditions then filter that set. Without this SQLite
  // walks every object and probes the index per object: a Locate by name at 1 M keys took a
  // second. The index is partial (value-index.ts): its condition is repeated for SQLite to use it.
  const driver = q.matches.find((m) => m.upTo === undefined && isValueIndexed(m.name));
  if (driver) {
    where.unshift(`o.seq IN (SELECT object_seq FROM attributes WHERE name = ? AND value = ? AND ${IN_VALUE_INDEX})`);
    params.unshift(driver.name, encodeTtlv(driver.value));
  }
  for (const m of q.matches) {
    if (m === driver) continue;
    // Encoded values of one non-negative numeric type sort like the numbers (big-endian).
    const test = m.upTo === undefined ? 'a.value = ?' : 'a.value BETWEEN ? AND ?';
    const values = m.upTo === undefined ? [encodeTtlv(m.value)] : [encodeTtlv(m.value), encodeTtlv(m.upTo)];
    const rows = `EXISTS (SELECT 1 FROM attributes a WHERE a.object_seq = o.seq AND a.name = ? AND ${test})`;
    if (isValueIndexed(m.name)) {
      where.push(rows);
      params.push(m.name, ...values);
    } else {
      // The bag (attribute-bag.ts), or rows for an object stored before migration 8, which has no bag.
      const inBag = m.upTo === undefined ? 'instr(o.unindexed_attributes, ?) > 0' : 'attribute_bag_between(o.unindexed_attributes, ?, ?, ?)';
      where.push(`(${inBag} OR (o.unindexed_attributes IS NULL AND ${rows}))`);
      params.push(...(m.upTo === undefined ? [bagEntryPrefix(m.name, values[0]!)] : [m.name, ...values]), m.name, ...values);
    }
  }
  return { cond: where.length ? `WHERE ${where.join(' AND ')}` : '', params, indexed: driver !== undefined };
}

/** `seq IN` the objects whose `name` (a date attribute) is at or before the parameter, from the value index. */
export function dueObjectsCondition(name: 'Activation Date' | 'Deactivation Date'): string {
  return `seq IN (SELECT object_seq FROM attributes WHERE name = '${name}' AND value <= ? AND ${IN_VALUE_INDEX})`;
}
