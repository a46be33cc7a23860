// Online backup and restore of the SQLite store with SQLite's backup API: a consistent copy taken
// while the server keeps writing. The copy holds wrapped keys only; without the HSM root key(s)
// it opens nothing.
import Database from 'better-sqlite3';
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { MIGRATIONS } from './sqlite-migrations.js';
import { openSqliteDatabase } from './sqlite-store.js';

export interface BackupSummary {
  readonly objects: number;
  readonly clients: number;
  readonly rootKeyLabels: readonly string[];
  readonly schemaVersion: number;
}

function tempBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A backup is one self-contained file: no WAL beside it. */
function singleFile(path: string): void {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = DELETE');
  } finally {
    db.close();
  }
}

/** What a store file holds, read without changing it. Throws if it is not a kmipd store. */
export function inspectStoreFile(path: string): BackupSummary {
  if (!existsSync(path)) throw new Error(`${path} does not exist`);
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(`${path} is damaged: ${String(check)}`);
    const schemaVersion = db.pragma('user_version', { simple: true }) as number;
    if (schemaVersion < 1) throw new Error(`${path} is not a kmipd store`);
    if (schemaVersion > MIGRATIONS.length) throw new Error(`${path} was written by a newer kmipd (schema ${schemaVersion})`);
    const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
    const labels = (
      db.prepare('SELECT DISTINCT root_key_label AS l FROM objects WHERE wrapped_key IS NOT NULL AND root_key_label IS NOT NULL').all() as { l: string }[]
    ).map((r) => r.l);
    return {
      objects: count('SELECT count(*) AS n FROM objects'),
      clients: schemaVersion >= 2 ? count('SELECT count(*) AS n FROM clients') : 0,
      rootKeyLabels: labels.sort(),
      schemaVersion,
    };
  } finally {
    db.close();
  }
}

/** One wrapped key per root key label: enough to prove an HSM holds the right root keys. */
export function sampleWrappedKeys(path: string): { id: string; rootKeyLabel: string; mechanism: string; blob: Buffer }[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare(
        `SELECT id, root_key_label, wrap_mechanism, wrapped_key FROM objects WHERE seq IN (
           SELECT min(seq) FROM objects WHERE wrapped_key IS NOT NULL AND root_key_label IS NOT NULL GROUP BY root_key_label)`,
      )
      .all() as { id: string; root_key_label: string; wrap_mechanism: string; wrapped_key: Buffer }[];
    return rows.map((r) => ({ id: r.id, rootKeyLabel: r.root_key_label, mechanism: r.wrap_mechanism, blob: r.wrapped_key }));
  } finally {
    db.close();
  }
}

/** Consistent online copy of the store at `storePath` into `outPath` (0600; never overwrites). */
export async function backupStore(storePath: string, outPath: string): Promise<BackupSummary> {
  if (!existsSync(storePath)) throw new Error(`${storePath} does not exist`);
  if (existsSync(outPath)) throw new Error(`${outPath} already exists`);
  const tmp = tempBeside(outPath);
  closeSync(openSync(tmp, 'wx', 0o600)); // owner-only before SQLite writes a byte into it
  const db = openSqliteDatabase(storePath);
  try {
    await db.backup(tmp);
    singleFile(tmp);
    fsyncFile(tmp);
    const summary = inspectStoreFile(tmp);
    renameSync(tmp, outPath);
    return summary;
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  } finally {
    db.close();
  }
}

/**
 * Replace the store at `storePath` by the backup at `backupPath`. The caller makes sure no server
 * uses `storePath`. The old file and its -wal/-shm are removed first: a stale WAL left beside the
 * restored file would be replayed into it.
 */
export async function restoreStore(backupPath: string, storePath: string): Promise<BackupSummary> {
  const summary = inspectStoreFile(backupPath);
  const tmp = tempBeside(storePath);
  closeSync(openSync(tmp, 'wx', 0o600));
  const src = new Database(backupPath, { readonly: true, fileMustExist: true });
  try {
    await src.backup(tmp);
    fsyncFile(tmp);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  } finally {
    src.close();
  }
  for (const suffix of ['-wal', '-shm', '']) rmSync(`${storePath}${suffix}`, { force: true });
  renameSync(tmp, storePath);
  // Bring an older backup up to this kmipd's schema.
  openSqliteDatabase(storePath).close();
  return summary;
}
