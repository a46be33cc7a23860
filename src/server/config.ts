// kmipd.json: the one configuration file in a data folder. Relative paths are relative to the folder.
// It never holds a PIN, only where to read one.
//
// CONFIG_SCHEMA below is the single description of that file: the loader validates kmipd.json
// and fills defaults from it, and the configuration reference in the README is generated from it
// (config-reference.ts), so the documentation cannot drift from what the code accepts. Its type
// is checked against KmipdConfig: a setting added to one and not the other does not compile.
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { MAX_HSM_SESSIONS } from '../hsm/config.js';
import { DEFAULT_LIMITS, LIMIT_MINIMUM, type LimitName, type Limits } from './limits.js';

export { DEFAULT_LIMITS, type Limits } from './limits.js';

export type PinSource =
  | { readonly kind: 'json-file'; readonly path: string; readonly field: string }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'env'; readonly name: string };

export interface KmipdConfig {
  readonly version: 1;
  readonly hsm: {
    readonly module: string;
    readonly tokenLabel: string;
    readonly pin: PinSource;
    readonly rootKeyLabel: string;
    /** SoftHSM only: its configuration file, passed as SOFTHSM2_CONF. */
    readonly softhsmConf?: string | undefined;
    /** PKCS#11 sessions `serve` opens; more than 1 runs the HSM's slow calls off the event loop. */
    readonly sessions?: number | undefined;
    /** Make Create's keys ahead on a thread of their own (src/hsm/prewrapped-keys.ts). */
    readonly makeKeysAhead?: boolean | undefined;
  };
  readonly store: {
    readonly sqlite: string;
    /** A PostgreSQL store (cluster), postgres://USER@HOST:PORT/DB without the password; SQLite when absent. */
    readonly url?: string | undefined;
    /** Environment variable holding the PostgreSQL password (else PGPASSWORD, then ~/.pgpass). */
    readonly passwordEnv?: string | undefined;
  };
  readonly tls: { readonly cert: string; readonly key: string; readonly clientCa: string; readonly compatCiphers: boolean };
  readonly pki: { readonly dir: string } | undefined;
  readonly listen: string;
  /** `serve` processes sharing the listener (each with its own HSM sessions and store connection). */
  readonly processes?: number | undefined;
  /** The admin HTTP listener (health, readiness, metrics); off unless `listen` is set. */
  readonly admin?: { readonly listen: string | undefined } | undefined;
  readonly limits: Limits;
}

/** A loaded configuration: every section and setting with a default is present. */
export type ResolvedConfig = KmipdConfig & {
  readonly admin: { readonly listen: string | undefined };
  readonly hsm: { readonly sessions: number; readonly makeKeysAhead: boolean };
  readonly processes: number;
};

export const CONFIG_FILE = 'kmipd.json';
/** Most `serve` processes: beyond the cores of any machine we expect, each holds HSM sessions. */
export const MAX_SERVE_PROCESSES = 64;
export const DEFAULT_LISTEN = '127.0.0.1:5696';

// ---------------------------------------------------------------------------------------------
// The schema

interface SettingBase<T> {
  readonly kind: 'setting';
  /** How the value is written, for the reference (e.g. "string", "integer ≥ 64", "HOST:PORT"). */
  readonly type: string;
  readonly description: string;
  /** The `kmipd serve` flag that overrides the setting for one run. */
  readonly serveFlag?: string;
  /** Checks a value read from the file; throws with `where` in the message. */
  readonly parse: (value: unknown, where: string) => T;
}

/** A setting `kmipd init` always writes: a file without it is refused. `initWrites` documents what init puts there. */
export interface RequiredSetting<T> extends SettingBase<T> {
  readonly initWrites: string;
}

/** A setting that takes `default` when missing (older files, hand-written files). */
export interface DefaultedSetting<T> extends SettingBase<T> {
  readonly default: T;
  /** How the default reads in the reference, when the value itself does not say it (e.g. "off"). */
  readonly defaultText?: string;
}

export type Setting<T> = RequiredSetting<T> | DefaultedSetting<T>;

export interface Section<S> {
  readonly kind: 'section';
  /** An optional section may be absent as a whole (the value is then undefined). */
  readonly optional: boolean;
  readonly description?: string;
  readonly entries: Schema<S>;
}

type Leaf = string | number | boolean | PinSource;
type EntryFor<T> = [NonNullable<T>] extends [Leaf] ? Setting<T> : Section<NonNullable<T>>;

/** One schema entry per key of the configuration type, no more, no fewer. */
export type Schema<C> = { readonly [K in keyof C]-?: EntryFor<C[K]> };

// Value checks. Each throws an Error naming the key, so a broken kmipd.json says where it is broken.
const shown = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v));

function text(value: unknown, where: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new Error(`${where} must be a non-empty string, got ${shown(value)}`);
  return value;
}

// null is accepted for "not set" too: `kmipd config check` prints unset settings as null.
function optionalText(value: unknown, where: string): string | undefined {
  return value === undefined || value === null ? undefined : text(value, where);
}

/** A store URL: PostgreSQL, and never with a password in it (kmipd.json is not a secret). */
function storeUrl(value: unknown, where: string): string | undefined {
  const s = optionalText(value, where);
  if (s === undefined) return undefined;
  if (!/^postgres(ql)?:\/\//i.test(s)) throw new Error(`${where} must be a postgres:// URL, got ${shown(s)}`);
  if (/^[^/]*\/\/[^/@]*:[^/@]*@/.test(s) || /[?&]password=/i.test(s)) {
    throw new Error(`${where} must not hold the password: give it with store.passwordEnv, PGPASSWORD or ~/.pgpass`);
  }
  return s;
}

function sessionCount(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > MAX_HSM_SESSIONS) {
    throw new Error(`${where} must be an integer from 1 to ${MAX_HSM_SESSIONS}, got ${shown(value)}`);
  }
  return value;
}

function processCount(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > MAX_SERVE_PROCESSES) {
    throw new Error(`${where} must be an integer from 1 to ${MAX_SERVE_PROCESSES}, got ${shown(value)}`);
  }
  return value;
}

function flag(value: unknown, where: string): boolean {
  if (typeof value !== 'boolean') throw new Error(`${where} must be true or false, got ${shown(value)}`);
  return value;
}

function address(value: unknown, where: string): string {
  const s = text(value, where);
  try {
    parseListen(s);
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
  return s;
}

function optionalAddress(value: unknown, where: string): string | undefined {
  return value === undefined || value === null ? undefined : address(value, where);
}

function pinSource(value: unknown, where: string): PinSource {
  const o = value as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null) throw new Error(`${where} must be a PIN source object, got ${shown(value)}`);
  const only = (...keys: string[]) => {
    const extra = Object.keys(o).filter((k) => !keys.includes(k));
    if (extra.length) throw new Error(`${where}: unknown key(s) ${extra.join(', ')} for kind ${shown(o['kind'])}`);
  };
  switch (o['kind']) {
    case 'env':
      only('kind', 'name');
      return { kind: 'env', name: text(o['name'], `${where}.name`) };
    case 'file':
      only('kind', 'path');
      return { kind: 'file', path: text(o['path'], `${where}.path`) };
    case 'json-file':
      only('kind', 'path', 'field');
      return { kind: 'json-file', path: text(o['path'], `${where}.path`), field: text(o['field'], `${where}.field`) };
    default:
      throw new Error(`${where}.kind must be "env", "file" or "json-file", got ${shown(o['kind'])}`);
  }
}

const section = <S>(entries: Schema<S>, o: { optional?: boolean; description?: string } = {}): Section<S> => ({
  kind: 'section',
  optional: o.optional ?? false,
  ...(o.description ? { description: o.description } : {}),
  entries,
});

const required = <T>(s: Omit<RequiredSetting<T>, 'kind'>): RequiredSetting<T> => ({ kind: 'setting', ...s });
const defaulted = <T>(s: Omit<DefaultedSetting<T>, 'kind'>): DefaultedSetting<T> => ({ kind: 'setting', ...s });

/** The value check, description and serve flag of one resource limit (defaults and minima: limits.ts). */
function limit(name: LimitName, unit: 'bytes' | 'ms' | 'count', description: string, serveFlag: string): DefaultedSetting<number> & { readonly serveFlag: string } {
  const min = LIMIT_MINIMUM[name];
  return {
    kind: 'setting',
    type: `integer ≥ ${min}${unit === 'count' ? '' : ` (${unit})`}`,
    description,
    default: DEFAULT_LIMITS[name],
    serveFlag,
    parse: (value, where) => {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
        throw new Error(`${where} must be an integer of at least ${min}, got ${shown(value)}`);
      }
      return value;
    },
  };
}

/** The resource limits (defaults and minima live in limits.ts), each with its `kmipd serve` flag. */
export const LIMIT_SETTINGS: { readonly [K in LimitName]: DefaultedSetting<number> & { readonly serveFlag: string } } = {
  maxMessageSize: limit('maxMessageSize', 'bytes', 'largest request accepted, header included; larger is refused before it is buffered', '--max-message-size <bytes>'),
  maxDepth: limit('maxDepth', 'count', 'deepest TTLV nesting accepted', '--max-depth <n>'),
  maxBatchItems: limit('maxBatchItems', 'count', 'most batch items in one request', '--max-batch-items <n>'),
  maxAttributes: limit('maxAttributes', 'count', 'most attributes (or attribute names) in one batch item', '--max-attributes <n>'),
  handshakeTimeoutMs: limit('handshakeTimeoutMs', 'ms', 'TLS handshake deadline, counted from the TCP accept', '--handshake-timeout <ms>'),
  idleTimeoutMs: limit('idleTimeoutMs', 'ms', 'silence allowed on a connection with nothing outstanding', '--idle-timeout <ms>'),
  readTimeoutMs: limit('readTimeoutMs', 'ms', "time from a request's first byte to its last (slowloris guard)", '--read-timeout <ms>'),
  maxConnections: limit('maxConnections', 'count', 'open TCP connections in total, handshakes included; past it new connections are closed', '--max-connections <n>'),
  maxConnectionsPerClient: limit('maxConnectionsPerClient', 'count', 'open connections per client certificate', '--max-connections-per-client <n>'),
};

/** `processes`, with its `kmipd serve --processes` flag. */
const PROCESSES_SETTING = defaulted<number | undefined>({
  type: `integer 1–${MAX_SERVE_PROCESSES}`,
  description:
    '`serve` processes answering on the one listener, each with its own HSM sessions and store connection; new connections go to them in turn, session tickets work across them. `1`: one process (one core). Up to the number of cores for more requests or handshakes per second. `maxConnections` is shared out between them; `maxConnectionsPerClient` holds in each',
  default: 1,
  serveFlag: '--processes <n>',
  parse: processCount,
});

export const CONFIG_SCHEMA = section<KmipdConfig>({
  version: required<1>({
    type: '`1`',
    description: 'format of this file',
    initWrites: '1',
    parse: (v, where) => {
      if (v !== 1) throw new Error(`${where}: unsupported config version ${shown(v)}`);
      return 1;
    },
  }),
  hsm: section({
    module: required({
      type: 'path',
      description: 'PKCS#11 module (shared library) of the HSM',
      initWrites: 'the SoftHSM2 module found on the machine, or `--pkcs11-module`',
      parse: text,
    }),
    tokenLabel: required({
      type: 'string',
      description: 'label of the token; the slot is found by label',
      initWrites: '`kmipd`, or `--token-label`',
      parse: text,
    }),
    pin: required({
      type: 'PIN source',
      description:
        'where the token user PIN is read on every (re)connection, never the PIN itself: `{"kind":"env","name":…}`, `{"kind":"file","path":…}` or `{"kind":"json-file","path":…,"field":…}`',
      initWrites: '`hsm/pins.json` field `user_pin` (SoftHSM), or `--pin-env` / `--pin-file`',
      parse: pinSource,
    }),
    rootKeyLabel: required({
      type: 'string',
      description: '`CKA_LABEL` of the first root key; after `kmipd root rotate` the store records which version is active',
      initWrites: '`kmipd-crk-v1`, or `--root-key-label`',
      parse: text,
    }),
    softhsmConf: defaulted({
      type: 'path',
      description: 'SoftHSM only: its configuration file, passed to the module as `SOFTHSM2_CONF`',
      default: undefined,
      defaultText: 'absent (`init` writes `hsm/softhsm2.conf` for its SoftHSM token)',
      parse: optionalText,
    }),
    sessions: defaulted<number | undefined>({
      type: `integer 1–${MAX_HSM_SESSIONS}`,
      description:
        'PKCS#11 sessions `serve` opens. `1`: every HSM call on the event loop, fastest with an HSM inside the process (SoftHSM). More, for a network HSM (milliseconds per call): up to that many calls in flight, their encrypt and decrypt on libuv threads while requests keep being served; above 4, set `UV_THREADPOOL_SIZE` in the environment to at least this many',
      default: 1,
      parse: sessionCount,
    }),
    makeKeysAhead: defaulted<boolean | undefined>({
      type: 'boolean',
      description:
        "a thread of `serve` makes Create's AES keys in batches, on one more HSM session of its own, while Creates arrive; a Create takes one made under the active root key less than a second before, so its HSM calls (three round trips with a network HSM) leave the event loop. Only the wrapped key and its digest leave the thread. `false`: each key is made when its Create arrives",
      default: true,
      parse: flag,
    }),
  }),
  store: section({
    sqlite: required({ type: 'path', description: 'SQLite database file (unless `store.url` names another store)', initWrites: '`kmipd.db`', parse: text }),
    url: defaulted({
      type: 'URL',
      description:
        'the store, when not the SQLite file: `postgres://USER@HOST:PORT/DATABASE` (a cluster shares it; never with the password); `--store` overrides it for one command',
      default: undefined,
      defaultText: 'absent (SQLite); `init --store` writes it',
      parse: storeUrl,
    }),
    passwordEnv: defaulted({
      type: 'name',
      description: 'environment variable holding the PostgreSQL password; without it PGPASSWORD, then `~/.pgpass`',
      default: undefined,
      defaultText: 'absent',
      parse: optionalText,
    }),
  }),
  tls: section({
    cert: required({ type: 'path', description: 'server certificate (PEM); a running server picks up a new one by itself', initWrites: '`pki/server.crt`, or `--tls-cert`', parse: text }),
    key: required({ type: 'path', description: 'private key of `tls.cert` (PEM)', initWrites: '`pki/server.key`, or `--tls-key`', parse: text }),
    clientCa: required({
      type: 'path',
      description: 'no longer grants trust by itself: clients are enrolled in the store (`client enroll / sign-csr / trust / trust-ca`)',
      initWrites: '`pki/ca.crt`, or `--client-ca`',
      parse: text,
    }),
    compatCiphers: defaulted({
      type: 'boolean',
      description: 'also offer the RSA key-exchange AES-CBC-SHA256 suites older vCenters negotiate',
      default: false,
      serveFlag: '--tls-compat',
      parse: flag,
    }),
  }),
  pki: section(
    {
      dir: required({ type: 'path', description: 'dev PKI folder (CA key) used by `client enroll`, `client sign-csr`, `ca …`', initWrites: '`pki`', parse: text }),
    },
    { optional: true, description: 'the whole `pki` section is absent with an external PKI (`init --tls-cert …`)' },
  ),
  listen: required({
    type: 'HOST:PORT',
    description: 'address the KMIP listener (mutual TLS) binds; `[::1]:5696` for IPv6',
    initWrites: '`127.0.0.1:5696`, or `init --listen`',
    serveFlag: '--listen <host:port>',
    parse: address,
  }),
  processes: PROCESSES_SETTING,
  admin: section(
    {
      listen: defaulted({
        type: 'HOST:PORT',
        description:
          'admin HTTP listener: `/healthz`, `/readyz`, `/metrics` (plain HTTP, no authentication: bind it to loopback or a management network)',
        default: undefined,
        defaultText: 'off',
        serveFlag: '--admin-listen <host:port>',
        parse: optionalAddress,
      }),
    },
    { optional: false },
  ),
  limits: section<Limits>(LIMIT_SETTINGS),
});

// ---------------------------------------------------------------------------------------------
// Loading

/** Checks `raw` against a section of the schema: unknown keys and bad values are errors, defaults are filled. */
function resolveSection(s: Section<unknown>, raw: unknown, where: string): Record<string, unknown> {
  const label = where || 'the top level';
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${label} must be an object, got ${shown(raw)}`);
  const given = raw as Record<string, unknown>;
  const entries = s.entries as Record<string, Section<unknown> | Setting<unknown>>;
  const unknown = Object.keys(given).filter((k) => !Object.hasOwn(entries, k));
  // A misspelt setting must not silently leave its default in force.
  if (unknown.length) throw new Error(`${label}: unknown key(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${Object.keys(entries).join(', ')})`);
  const out: Record<string, unknown> = {};
  for (const [key, entry] of Object.entries(entries)) {
    const at = where ? `${where}.${key}` : key;
    const value = given[key];
    if (entry.kind === 'section') {
      if ((value === undefined || value === null) && entry.optional) out[key] = undefined;
      else out[key] = resolveSection(entry, value ?? {}, at);
    } else if (value === undefined) {
      if ('initWrites' in entry) throw new Error(`${at} is missing (kmipd init writes it)`);
      out[key] = entry.default;
    } else {
      out[key] = entry.parse(value, at);
    }
  }
  return out;
}

/** Validates a parsed kmipd.json and fills its defaults. */
export function resolveConfig(raw: unknown, where = CONFIG_FILE): ResolvedConfig {
  try {
    return resolveSection(CONFIG_SCHEMA as Section<unknown>, raw, '') as unknown as ResolvedConfig;
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
}

export function configPath(dataDir: string): string {
  return join(dataDir, CONFIG_FILE);
}

export function resolveIn(dataDir: string, p: string): string {
  return isAbsolute(p) ? p : join(dataDir, p);
}

export function loadConfig(dataDir: string): ResolvedConfig {
  const path = configPath(dataDir);
  if (!existsSync(path)) throw new Error(`${path} not found: run \`kmipd init --data ${dataDir}\` first`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
  return resolveConfig(raw, path);
}

export function saveConfig(dataDir: string, cfg: KmipdConfig): void {
  const path = configPath(dataDir);
  writeFileSync(`${path}.tmp`, JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

export function readPin(dataDir: string, src: PinSource): string {
  switch (src.kind) {
    case 'env': {
      const v = process.env[src.name];
      if (!v) throw new Error(`HSM PIN environment variable ${src.name} is not set`);
      return v;
    }
    case 'file':
      return readFileSync(resolveIn(dataDir, src.path), 'utf8').trim();
    case 'json-file': {
      const v = (JSON.parse(readFileSync(resolveIn(dataDir, src.path), 'utf8')) as Record<string, unknown>)[src.field];
      if (typeof v !== 'string') throw new Error(`${src.path} has no ${src.field}`);
      return v;
    }
  }
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (!m) throw new Error(`--listen must be HOST:PORT, got ${JSON.stringify(listen)}`);
  const port = Number(m[3]);
  if (port < 0 || port > 65535) throw new Error(`port out of range in ${listen}`);
  return { host: (m[1] ?? m[2])!, port };
}
