// `kmipd init`: make a data folder ready to serve. Idempotent: a second run finds everything in
// place and changes nothing. Without --pkcs11-module it embeds a SoftHSM token for evaluation.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { Hsm } from '../hsm/index.js';
import { initSoftHsm } from '../hsm/index.js';
import { initDevPki } from '../pki/index.js';
import { openStoreBackend } from '../store/backend.js';
import { describeStore, isPostgresUrl, parseStoreUrl, redactStoreUrl, resolveStoreLocation } from '../store/store-location.js';
import { configPath, DEFAULT_LIMITS, DEFAULT_LISTEN, loadConfig, readPin, resolveIn, saveConfig, type KmipdConfig, type PinSource } from '../server/config.js';

export interface InitOptions {
  readonly data: string;
  readonly pkcs11Module?: string;
  readonly tokenLabel?: string;
  readonly pinFile?: string;
  readonly pinEnv?: string;
  readonly rootKeyLabel: string;
  /** Production: the root key must already exist in the HSM; never generate one. */
  readonly existingRootKey: boolean;
  readonly serverNames?: string[];
  readonly serverIps?: string[];
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly clientCa?: string;
  readonly listen: string;
  /** sqlite:PATH or postgres://… (recorded without its password); default: the folder's kmipd.db. */
  readonly store?: string | undefined;
  /** Environment variable holding the PostgreSQL password, recorded as store.passwordEnv. */
  readonly storePasswordEnv?: string | undefined;
}

export interface InitReport {
  readonly configCreated: boolean;
  readonly rootKeyCreated: boolean;
  readonly pkiCreated: boolean;
  readonly config: KmipdConfig;
  /** The store, as shown to people (never a password). */
  readonly store: string;
}

/** kmipd.json's store section for --store (a PostgreSQL URL is recorded without its password). */
function storeSettings(o: InitOptions): KmipdConfig['store'] {
  if (o.store === undefined) return { sqlite: 'kmipd.db' };
  if (isPostgresUrl(o.store)) {
    return { sqlite: 'kmipd.db', url: redactStoreUrl(o.store), ...(o.storePasswordEnv ? { passwordEnv: o.storePasswordEnv } : {}) };
  }
  parseStoreUrl(o.store, o.data); // refuses what is neither SQLite nor PostgreSQL
  return { sqlite: o.store.startsWith('sqlite:') ? o.store.slice('sqlite:'.length) : o.store };
}

/** An existing folder keeps its store: `init --store` may only repeat it. */
function sameStore(config: KmipdConfig, o: InitOptions): void {
  if (o.store === undefined) return;
  const wanted = storeSettings(o);
  const recorded = config.store.url ?? `sqlite:${config.store.sqlite}`;
  const asked = wanted.url ?? `sqlite:${wanted.sqlite}`;
  if (recorded !== asked) {
    throw new Error(`${o.data}/kmipd.json already uses the store ${recorded}; edit store in kmipd.json to move it (and the data) elsewhere`);
  }
}

async function freshConfig(o: InitOptions): Promise<KmipdConfig> {
  let hsm: KmipdConfig['hsm'];
  if (o.pkcs11Module) {
    if (!o.tokenLabel) throw new Error('--token-label is required with --pkcs11-module');
    const pin: PinSource | undefined = o.pinFile
      ? { kind: 'file', path: o.pinFile }
      : o.pinEnv
        ? { kind: 'env', name: o.pinEnv }
        : undefined;
    if (!pin) throw new Error('--pin-file or --pin-env is required with --pkcs11-module');
    hsm = { module: o.pkcs11Module, tokenLabel: o.tokenLabel, pin, rootKeyLabel: o.rootKeyLabel };
  } else {
    const soft = await initSoftHsm(resolveIn(o.data, 'hsm'), o.tokenLabel ? { tokenLabel: o.tokenLabel } : undefined);
    hsm = {
      module: soft.config.modulePath,
      tokenLabel: soft.config.tokenLabel,
      pin: { kind: 'json-file', path: relative(o.data, soft.pinFile), field: 'user_pin' },
      rootKeyLabel: o.rootKeyLabel,
      softhsmConf: relative(o.data, soft.confPath),
    };
  }
  const ownTls = o.tlsCert && o.tlsKey && o.clientCa;
  if ((o.tlsCert || o.tlsKey || o.clientCa) && !ownTls) throw new Error('--tls-cert, --tls-key and --client-ca go together');
  return {
    version: 1,
    hsm,
    store: storeSettings(o),
    tls: ownTls
      ? { cert: o.tlsCert!, key: o.tlsKey!, clientCa: o.clientCa!, compatCiphers: false }
      : { cert: 'pki/server.crt', key: 'pki/server.key', clientCa: 'pki/ca.crt', compatCiphers: false },
    pki: ownTls ? undefined : { dir: 'pki' },
    listen: o.listen || DEFAULT_LISTEN,
    limits: { ...DEFAULT_LIMITS },
  };
}

export async function initDataDir(o: InitOptions): Promise<InitReport> {
  mkdirSync(o.data, { recursive: true, mode: 0o700 });
  const configCreated = !existsSync(configPath(o.data));
  const config = configCreated ? await freshConfig(o) : loadConfig(o.data);
  if (!configCreated) sameStore(config, o);
  if (!configCreated && config.pki === undefined) {
    // nothing to create for TLS; the operator's own files must exist
    for (const p of [config.tls.cert, config.tls.key, config.tls.clientCa]) readFileSync(resolveIn(o.data, p));
  }

  const hsm = await Hsm.open({
    modulePath: config.hsm.module,
    tokenLabel: config.hsm.tokenLabel,
    pin: readPin(o.data, config.hsm.pin),
    rootKeyLabel: config.hsm.rootKeyLabel,
    ...(config.hsm.softhsmConf ? { env: { SOFTHSM2_CONF: resolveIn(o.data, config.hsm.softhsmConf) } } : {}),
  });
  let rootKeyCreated = false;
  try {
    if (o.existingRootKey) {
      if (!(await hsm.hasRootKey())) throw new Error(`root key ${config.hsm.rootKeyLabel} not found on token ${config.hsm.tokenLabel}`);
    } else {
      rootKeyCreated = (await hsm.ensureRootKey()).created;
    }
  } finally {
    await hsm.close();
  }

  let pkiCreated = false;
  if (config.pki) {
    const opts: { serverDnsNames?: string[]; serverIps?: string[] } = {};
    if (o.serverNames?.length) opts.serverDnsNames = o.serverNames;
    if (o.serverIps?.length) opts.serverIps = o.serverIps;
    pkiCreated = (await initDevPki(resolveIn(o.data, config.pki.dir), opts)).created;
  }

  // Creates the store, or brings its schema up to date. A password in --store is used for this
  // connection only; serve reads it from store.passwordEnv, PGPASSWORD or ~/.pgpass.
  const location = o.store !== undefined ? parseStoreUrl(o.store, o.data, o.storePasswordEnv) : resolveStoreLocation(o.data, config.store);
  const backend = await openStoreBackend(location, { poolSize: 1, applicationName: 'kmipd init' });
  await backend.close();
  if (configCreated) saveConfig(o.data, config);
  return { configCreated, rootKeyCreated, pkiCreated, config, store: describeStore(location) };
}
