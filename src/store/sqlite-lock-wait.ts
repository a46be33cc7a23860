// Waiting for another process's write lock without pausing this one. SQLite's own busy handler
// waits inside the call, and better-sqlite3 calls are synchronous: while the CLI, another serve
// process or another node holds the lock, a write would stop every request of this process for
// up to the busy timeout. Writes on the request path instead try without waiting and, while the
// lock is taken, try again from the event loop, for the same time in total.
import type Database from 'better-sqlite3';
import { setTimeout as sleep } from 'node:timers/promises';

/** How long a write waits for another process's lock before it fails (SQLITE_BUSY). */
export const LOCK_WAIT_MS = 5000;
/** Longest pause between two attempts: short, since a commit elsewhere takes about a millisecond. */
const MAX_RETRY_DELAY_MS = 8;

/** SQLITE_BUSY and its extended codes: another connection holds the lock. */
export function isLockBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/** Writes on one connection that wait for another process's lock from the event loop. */
export class LockWait {
  constructor(
    private readonly db: Database.Database,
    /** How long write() keeps trying (tests shorten it). */
    private readonly waitMs = LOCK_WAIT_MS,
  ) {}

  /**
   * Runs `attempt` (a whole transaction: it must leave nothing behind when it throws) until it
   * does not fail for a lock held elsewhere, or `waitMs` have passed; then its error stands.
   */
  async write<T>(attempt: () => T): Promise<T> {
    const started = performance.now();
    for (let delay = 1; ; delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS)) {
      try {
        return this.withoutWaiting(attempt);
      } catch (err) {
        if (!isLockBusy(err) || performance.now() - started + delay > this.waitMs) throw err;
      }
      await sleep(delay);
    }
  }

  /** `attempt` with SQLite's busy wait off: SQLITE_BUSY at once if another process holds the lock. */
  withoutWaiting<T>(attempt: () => T): T {
    this.setBusyTimeout(0);
    try {
      return attempt();
    } finally {
      this.setBusyTimeout(LOCK_WAIT_MS);
    }
  }

  // SQLite applies PRAGMA busy_timeout while preparing the statement, so a statement prepared once
  // and run again changes nothing: it is prepared each time. exec(), not pragma(): pragma() also
  // wraps it in a Statement object and collects its rows, 2.1 against 0.5 µs, and every update
  // (a key's first Get flips Fresh) sets the timeout twice (bench/RESULTS.md, twenty-first round).
  private setBusyTimeout(ms: number): void {
    this.db.exec(`PRAGMA busy_timeout = ${ms}`);
  }
}
