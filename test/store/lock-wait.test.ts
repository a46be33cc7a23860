// LockWait on a real SQLite file with a second connection holding the write lock, as the CLI or
// another serve process would: the write waits without blocking the event loop, goes through
// once the lock is released, fails with SQLITE_BUSY once its time is up, and leaves SQLite's own
// busy timeout as it found it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockWait, LOCK_WAIT_MS, isLockBusy } from '../../src/store/sqlite-lock-wait.js';
import { tempDir } from '../helpers/kmipd.js';

let dir: ReturnType<typeof tempDir>;
let ours: Database.Database;
let theirs: Database.Database;

beforeEach(() => {
  dir = tempDir();
  const path = join(dir.path, 'lock.db');
  ours = new Database(path);
  ours.pragma('journal_mode = WAL');
  ours.pragma(`busy_timeout = ${LOCK_WAIT_MS}`);
  ours.exec('CREATE TABLE t (v INTEGER)');
  theirs = new Database(path);
});
afterEach(() => {
  ours.close();
  if (theirs.inTransaction) theirs.exec('ROLLBACK');
  theirs.close();
  dir.remove();
});

const insert = (v: number) => () => ours.prepare('INSERT INTO t (v) VALUES (?)').run(v);

describe('LockWait', () => {
  it('waits for a lock held elsewhere while the event loop keeps running, then writes', async () => {
    theirs.exec('BEGIN IMMEDIATE');
    let ticks = 0;
    const ticker = setInterval(() => (ticks += 1), 1);
    const write = new LockWait(ours).write(insert(1));
    await sleep(60);
    const ticksWhileLocked = ticks;
    theirs.exec('COMMIT');
    await write;
    clearInterval(ticker);
    expect(ticksWhileLocked).toBeGreaterThan(5); // the loop ran while the write waited
    expect(ours.prepare('SELECT v FROM t').pluck().all()).toEqual([1]);
    expect(ours.pragma('busy_timeout', { simple: true })).toBe(LOCK_WAIT_MS);
  });

  it('gives up with SQLITE_BUSY once its time is up, having written nothing', async () => {
    theirs.exec('BEGIN IMMEDIATE');
    const err: unknown = await new LockWait(ours, 100).write(insert(2)).catch((e: unknown) => e);
    expect(isLockBusy(err)).toBe(true);
    theirs.exec('ROLLBACK');
    expect(ours.prepare('SELECT count(*) FROM t').pluck().get()).toBe(0);
    expect(ours.pragma('busy_timeout', { simple: true })).toBe(LOCK_WAIT_MS);
  });

  it('does not retry any other error', async () => {
    let attempts = 0;
    const err = await new LockWait(ours)
      .write(() => {
        attempts += 1;
        ours.exec('INSERT INTO missing VALUES (1)');
      })
      .catch((e: unknown) => e as Error);
    expect(attempts).toBe(1);
    expect(String(err)).toMatch(/no such table/);
  });
});
