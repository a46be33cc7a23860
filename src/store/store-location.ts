// Where the store is: the SQLite file of a data folder (the embedded default), or a PostgreSQL
// database shared by the nodes of a cluster. Given as a URL (`kmipd … --store URL`, or `store.url`
// in kmipd.json):
//   sqlite:PATH                       a SQLite file (relative to the data folder); a bare path too
//   postgres://USER@HOST:PORT/DB?…     (or postgresql://) a PostgreSQL database
// A PostgreSQL password is never written to kmipd.json nor logged. It comes, in this order, from
// the URL given on the command line, from the environment variable named by --store-password-env
// (store.passwordEnv), or from node-postgres' own defaults: PGPASSWORD, then ~/.pgpass.
import { isAbsolute, join } from 'node:path';

export type StoreLocation =
  | { readonly kind: 'sqlite'; readonly path: string }
  | {
      readonly kind: 'postgres';
      /** The URL without its password: safe to log, to show and to record. */
      readonly url: string;
      /** Undefined: PGPASSWORD, then ~/.pgpass. */
      readonly password: string | undefined;
    };

/** The store settings of kmipd.json. */
export interface StoreSettings {
  /** SQLite file, used unless `url` names another store. */
  readonly sqlite: string;
  readonly url?: string | undefined;
  /** Environment variable holding the PostgreSQL password. */
  readonly passwordEnv?: string | undefined;
}

export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

/** `url` without the password (and without a `password` query parameter). */
export function redactStoreUrl(url: string): string {
  if (!isPostgresUrl(url)) return url;
  const u = parsePostgresUrl(url);
  u.password = '';
  u.searchParams.delete('password');
  return u.toString();
}

function parsePostgresUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`invalid PostgreSQL URL (expected postgres://USER@HOST:PORT/DATABASE): ${JSON.stringify(redactLoosely(url))}`);
  }
  if (!u.hostname) throw new Error('the PostgreSQL URL needs a host: postgres://USER@HOST:PORT/DATABASE');
  if (u.pathname.length <= 1) throw new Error('the PostgreSQL URL needs a database: postgres://USER@HOST:PORT/DATABASE');
  return u;
}

/** For error messages about a URL we could not parse: drop anything between ':' and '@'. */
function redactLoosely(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
}

/** Where `spec` points, relative paths being relative to the data folder. */
export function parseStoreUrl(spec: string, dataDir: string, passwordEnv?: string): StoreLocation {
  if (isPostgresUrl(spec)) {
    const u = parsePostgresUrl(spec);
    const inUrl = u.password ? decodeURIComponent(u.password) : (u.searchParams.get('password') ?? undefined);
    return { kind: 'postgres', url: redactStoreUrl(spec), password: inUrl ?? passwordFromEnv(passwordEnv) };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) throw new Error(`unsupported store ${JSON.stringify(redactLoosely(spec))}: use sqlite:PATH or postgres://USER@HOST:PORT/DATABASE`);
  const path = spec.startsWith('sqlite:') ? spec.slice('sqlite:'.length) : spec;
  if (!path) throw new Error('sqlite: needs a path, e.g. sqlite:kmipd.db');
  return { kind: 'sqlite', path: isAbsolute(path) ? path : join(dataDir, path) };
}

function passwordFromEnv(name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`the store password environment variable ${name} is not set`);
  return v;
}

/** The store a command uses: --store if given, else kmipd.json's store.url, else its SQLite file. */
export function resolveStoreLocation(dataDir: string, settings: StoreSettings, override?: { url?: string | undefined; passwordEnv?: string | undefined }): StoreLocation {
  const passwordEnv = override?.passwordEnv ?? settings.passwordEnv;
  if (override?.url !== undefined) return parseStoreUrl(override.url, dataDir, passwordEnv);
  if (settings.url !== undefined) return parseStoreUrl(settings.url, dataDir, passwordEnv);
  return parseStoreUrl(`sqlite:${settings.sqlite}`, dataDir);
}

/** How a location reads in logs and status output (never a password). */
export function describeStore(loc: StoreLocation): string {
  return loc.kind === 'sqlite' ? `sqlite:${loc.path}` : loc.url;
}
