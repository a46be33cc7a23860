// Whether a SQLite database may have changed since we last looked, by any writer: PRAGMA
// data_version moves when another connection (the CLI, another process) commits, and
// total_changes() counts the rows written through this connection, by whichever module. Two
// prepared single-value statements: a few microseconds, far less than re-reading what a cache holds.
import type Database from 'better-sqlite3';

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
    const dataVersion = probe.dataVersion.get() as number;
    const totalChanges = probe.totalChanges.get() as number;
    const result = write();
    const dataVersionAfter = probe.dataVersion.get() as number;
    const totalChangesAfter = probe.totalChanges.get() as number;
    // Only this write happened in between (the calls are synchronous): same data_version.
    if (dataVersionAfter === dataVersion) {
      for (const w of watches) {
        if (w.seenDataVersion === dataVersion && w.seenTotalChanges === totalChanges) w.seenTotalChanges = totalChangesAfter;
      }
    }
    return result;
  }

  private readonly dataVersion: Database.Statement;
  private readonly totalChanges: Database.Statement;
  private seenDataVersion = -1;
  private seenTotalChanges = -1;

  constructor(private readonly db: Database.Database) {
    this.dataVersion = db.prepare('PRAGMA data_version').pluck();
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
    const dataVersion = this.dataVersion.get() as number;
    const totalChanges = this.totalChanges.get() as number;
    if (dataVersion === this.seenDataVersion && totalChanges === this.seenTotalChanges) return false;
    this.seenDataVersion = dataVersion;
    this.seenTotalChanges = totalChanges;
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
  ) {
    this.watch = new SqliteChangeWatch(db);
  }

  /** The remembered value for `key`, or what `read` returns now. */
  get(key: K, read: () => V): V {
    if (this.watch.changed()) this.entries.clear();
    if (this.entries.has(key)) return this.entries.get(key)!;
    const value = read();
    if (!this.db.inTransaction) {
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
