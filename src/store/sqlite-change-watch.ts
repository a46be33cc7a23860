// Whether a SQLite database may have changed since we last looked, by any writer: PRAGMA
// data_version moves when another connection (the CLI, another process) commits, and
// total_changes() counts the rows written through this connection, by whichever module. Two
// prepared single-value statements: a few microseconds, far less than re-reading what a cache holds.
import type Database from 'better-sqlite3';

/**
 * PRAGMA data_version of one connection. The pragma opens and closes a read transaction on the
 * WAL index (5 µs in the server, ~19 % of a Get's CPU under the profiler with the two checks a Get
 * makes: its client's credential and its object; bench/RESULTS.md, tenth round).
 *
 * Once the server turns sharing on, a reading is reused until the next arrival (a request or a
 * connection arriving, a revocation sweep starting) and at most until the end of the event loop
 * turn it was taken in. That is as fresh as every reader needs: a reading taken after the latest
 * arrival was taken after every request in progress arrived, so a commit it misses came while that
 * request was in progress, and the request may be ordered before that commit. Whoever asks after
 * the commit completed arrives after it and reads again. The turn bound keeps anything that does
 * not mark an arrival (a timer, a job added later) from reading an old value. Off (every check
 * reads) by default: the CLI and anything else without arrivals to mark.
 */
class DataVersionReading {
  private static readonly ofDb = new WeakMap<Database.Database, DataVersionReading>();

  static of(db: Database.Database): DataVersionReading {
    let r = DataVersionReading.ofDb.get(db);
    if (!r) DataVersionReading.ofDb.set(db, (r = new DataVersionReading(db)));
    return r;
  }

  private readonly statement: Database.Statement;
  private sharing = false;
  /** The reading since the latest arrival, in this turn of the event loop, while sharing. */
  private shared: number | undefined;
  private forgetScheduled = false;
  private readonly forget = (): void => {
    this.forgetScheduled = false;
    this.shared = undefined;
  };

  private readonly epochStatement: Database.Statement;

  private constructor(db: Database.Database) {
    this.statement = db.prepare('PRAGMA data_version').pluck();
    this.epochStatement = db.prepare('SELECT epoch FROM change_epoch').pluck();
  }

  /**
   * change_epoch now: moved by every commit that can make a cached value stale, by any connection
   * (triggers, migration 7), not by one that only adds objects or beats the cluster heartbeat.
   */
  epoch(): number {
    return this.epochStatement.get() as number;
  }

  /** data_version as of some time after the latest arrival (now, without sharing). */
  current(): number {
    if (this.shared !== undefined) return this.shared;
    return this.now();
  }

  /** data_version now. */
  now(): number {
    const v = this.statement.get() as number;
    if (this.sharing) {
      this.shared = v;
      if (!this.forgetScheduled) {
        this.forgetScheduled = true;
        setImmediate(this.forget);
      }
    }
    return v;
  }

  /** Turns sharing on; returns what marks an arrival. */
  share(): () => void {
    this.sharing = true;
    return () => {
      this.shared = undefined;
    };
  }
}

export class SqliteChangeWatch {
  /** The watches on each connection, for writeUnwatched. */
  private static readonly watchesOf = new WeakMap<Database.Database, Set<SqliteChangeWatch>>();

  /**
   * Runs `write` on `db`, a commit that no cache on this connection depends on (the cluster
   * heartbeat, every 2 s): without this, each beat counted as a change and emptied every cache, so a
   * boot storm over more keys than a beat's worth of Gets read nearly every object from the database.
   * A watch that was current before the write stays current; one that had not yet looked at an
   * earlier change still sees it. Commits by other connections move data_version, never hidden here.
   */
  static writeUnwatched<T>(db: Database.Database, write: () => T): T {
    const watches = SqliteChangeWatch.watchesOf.get(db);
    if (!watches || db.inTransaction) return write();
    const probe = watches.values().next().value!;
    // Read now, not shared: whether another commit came between the two is what is asked.
    const dataVersion = probe.dataVersion.now();
    const totalChanges = probe.totalChanges.get() as number;
    const epoch = probe.dataVersion.epoch();
    const result = write();
    const dataVersionAfter = probe.dataVersion.now();
    const totalChangesAfter = probe.totalChanges.get() as number;
    const epochAfter = probe.dataVersion.epoch();
    // Only this write happened in between (the calls are synchronous): same data_version.
    if (dataVersionAfter === dataVersion) {
      for (const w of watches) {
        if (w.seenDataVersion === dataVersion && w.seenTotalChanges === totalChanges && w.seenEpoch === epoch) {
          w.seenTotalChanges = totalChangesAfter;
          w.seenEpoch = epochAfter;
        }
      }
    }
    return result;
  }

  /**
   * For the server: share data_version readings between arrivals on `db` (DataVersionReading);
   * call the function returned whenever a request or a connection arrives or a sweep starts.
   */
  static shareBetweenArrivals(db: Database.Database): () => void {
    return DataVersionReading.of(db).share();
  }

  private readonly dataVersion: DataVersionReading;
  private readonly totalChanges: Database.Statement;
  private seenDataVersion = -1;
  private seenTotalChanges = -1;
  private seenEpoch = -1;

  constructor(private readonly db: Database.Database) {
    this.dataVersion = DataVersionReading.of(db);
    this.totalChanges = db.prepare('SELECT total_changes()').pluck();
    let watches = SqliteChangeWatch.watchesOf.get(db);
    if (!watches) SqliteChangeWatch.watchesOf.set(db, (watches = new Set()));
    watches.add(this);
  }

  /**
   * True if the database may have changed since the previous call (and on the first call). Inside
   * an open transaction it is always true: what a read sees there may still be rolled back.
   */
  changed(): boolean {
    if (this.db.inTransaction) return true;
    const dataVersion = this.dataVersion.current();
    const totalChanges = this.totalChanges.get() as number;
    if (dataVersion === this.seenDataVersion && totalChanges === this.seenTotalChanges) return false;
    // Read after data_version: an epoch still as seen now was as seen when that reading was taken.
    const epoch = this.dataVersion.epoch();
    if (totalChanges === this.seenTotalChanges && epoch === this.seenEpoch) {
      // Other connections committed, but only new objects (the insert thread, another process's
      // Creates) or heartbeats: nothing remembered is stale. Entries for objects that did not
      // exist are never remembered (UntilChanged's rememberMissing).
      this.seenDataVersion = dataVersion;
      return false;
    }
    this.seenDataVersion = dataVersion;
    this.seenTotalChanges = totalChanges;
    this.seenEpoch = epoch;
    return true;
  }
}

/**
 * Values read from the database, remembered until it may have changed (SqliteChangeWatch), never
 * filled inside a transaction (a rollback could undo what was read), at most `max` of them (the
 * oldest goes first).
 */
export class UntilChanged<K, V> {
  private readonly entries = new Map<K, V>();
  private readonly watch: SqliteChangeWatch;

  constructor(
    private readonly db: Database.Database,
    private readonly max: number,
    /**
     * Whether a read that found nothing (undefined) is remembered. Only where whatever adds the
     * thing also moves change_epoch: a new object does not, so "no such object" is read each time.
     */
    private readonly rememberMissing: boolean,
  ) {
    this.watch = new SqliteChangeWatch(db);
  }

  /** The remembered value for `key`, or what `read` returns now. */
  get(key: K, read: () => V): V {
    if (this.watch.changed()) this.entries.clear();
    if (this.entries.has(key)) return this.entries.get(key)!;
    const value = read();
    if (!this.db.inTransaction && (value !== undefined || this.rememberMissing)) {
      if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(key, value);
    }
    return value;
  }

  /**
   * Runs `write`, a commit on this connection that changes, of what this cache may hold, only the
   * entries for `keys`, and nothing that any other cache on the connection reads. Those entries are
   * forgotten and the others kept: without this, every Create and every first Get (which flips the
   * key's Fresh attribute) emptied the whole cache. Rules as for SqliteChangeWatch.writeUnwatched:
   * a change this cache had not yet seen, or another connection's commit, still empties it.
   */
  writeOnly<T>(keys: Iterable<K>, write: () => T): T {
    try {
      return SqliteChangeWatch.writeUnwatched(this.db, write);
    } finally {
      for (const key of keys) this.entries.delete(key);
    }
  }
}
