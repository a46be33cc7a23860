// What every suite shares: the checkout under test, a scratch folder, progress output, and the
// store-size reading.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import Database from 'better-sqlite3';
import type { ClientFiles } from './connection.js';
import { prepareKmipdData, type KmipdLaunch } from './targets.js';

/** `root` is the checkout this bench/ folder belongs to; `workDir`, the scratch folder for data folders, is removed at the end unless --keep. */
export interface BenchContext extends KmipdLaunch {
  /** Write V8 CPU profiles of the servers here, when set. */
  readonly profileDir: string | undefined;
  /** `processes` written into every kmipd data folder (serve processes behind one listener). */
  readonly serverProcesses: number;
  /** `hsm.makeKeysAhead` written into every kmipd data folder; kmipd's default when undefined. */
  readonly keysAhead?: boolean | undefined;
  log(msg: string): void;
}

/** One `kmipd init` + `client enroll` per run (RSA key generation takes seconds); copied for each suite. */
const pristine = new Map<string, Promise<string>>();

/** A fresh kmipd data folder (initialised, the bench client enrolled, no keys). */
export async function freshKmipdData(ctx: BenchContext, name: string): Promise<{ dir: string; client: ClientFiles }> {
  let made = pristine.get(ctx.workDir);
  if (!made) {
    const p = join(ctx.workDir, 'pristine');
    made = (async () => {
      mkdirSync(p, { recursive: true });
      await prepareKmipdData(ctx.root, p);
      return p;
    })();
    pristine.set(ctx.workDir, made);
  }
  const source = await made;
  const dir = join(ctx.workDir, name);
  rmSync(dir, { recursive: true, force: true });
  // Paths in kmipd.json are relative to the folder; SoftHSM's own configuration names its token
  // folder absolutely, so the copy is pointed at its own token.
  cpSync(source, dir, { recursive: true });
  const softhsmConf = (JSON.parse(readFileSync(join(dir, 'kmipd.json'), 'utf8')) as { hsm?: { softhsmConf?: string } }).hsm?.softhsmConf;
  if (softhsmConf) {
    const confPath = isAbsolute(softhsmConf) ? softhsmConf : join(dir, softhsmConf);
    if (confPath.startsWith(dir)) writeFileSync(confPath, readFileSync(confPath, 'utf8').split(source).join(dir));
  }
  if (ctx.serverProcesses > 1 || ctx.keysAhead !== undefined) {
    const configPath = join(dir, 'kmipd.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as { hsm: Record<string, unknown> };
    const hsm = ctx.keysAhead === undefined ? config.hsm : { ...config.hsm, makeKeysAhead: ctx.keysAhead };
    writeFileSync(configPath, JSON.stringify({ ...config, hsm, ...(ctx.serverProcesses > 1 ? { processes: ctx.serverProcesses } : {}) }, null, 2));
  }
  const client = await prepareKmipdData(ctx.root, dir);
  return { dir, client };
}

export function fileBytes(paths: readonly string[]): number {
  return paths.reduce((a, p) => a + (existsSync(p) ? statSync(p).size : 0), 0);
}

/** Rows in `table` of a SQLite file (read-only; the server must be stopped). */
export function countRows(dbPath: string, table: string): number {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

export interface StoreSize {
  readonly bytes: number;
  readonly objects: number;
  readonly bytesPerObject: number;
}

export function storeSize(files: readonly string[], table: string): StoreSize {
  const bytes = fileBytes(files);
  const objects = countRows(files[0]!, table);
  return { bytes, objects, bytesPerObject: objects ? Math.round(bytes / objects) : NaN };
}
