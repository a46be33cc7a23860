// What operator commands open in a data folder: its configuration, the store (a connection of
// their own, safe next to running servers: SQLite's WAL and busy timeout, or PostgreSQL), and the
// HSM when needed. The store is the data folder's (kmipd.json), unless --store names another.
import { Option, type Command } from 'commander';
import { Hsm } from '../hsm/index.js';
import { loadConfig, readPin, resolveIn, type KmipdConfig, type ResolvedConfig } from '../server/config.js';
import { openStoreBackend, type StoreBackend } from '../store/backend.js';
import { resolveStoreLocation, type StoreLocation } from '../store/store-location.js';
import type { ClientRegistry } from '../store/client-registry.js';
import type { RootKeyRegistry } from '../store/root-keys.js';
import type { KeyHolds } from '../store/key-holds.js';
import type { KeyInventory } from '../store/key-inventory.js';
import type { ClientPasswords } from '../store/client-passwords.js';
import type { KeyStore } from '../store/types.js';

/** --store / --store-password-env as parsed, when given. */
export interface StoreOpts {
  readonly store?: string | undefined;
  readonly storePasswordEnv?: string | undefined;
}

/** A data folder, and the store a command should use instead of the folder's own (--store). */
export interface StoreTarget extends StoreOpts {
  readonly data: string;
}

/** The --store and --store-password-env options, for every command that touches the store. */
export function addStoreOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--store <url>', 'store to use instead of the data folder\'s: sqlite:PATH or postgres://USER@HOST:PORT/DATABASE'))
    .addOption(new Option('--store-password-env <name>', 'environment variable holding the PostgreSQL password (default: PGPASSWORD, then ~/.pgpass)'));
}

/** The store options of parsed command options, as a StoreTarget for `data`. */
export function storeTarget(data: string, o: StoreOpts): StoreTarget {
  return { data, store: o.store, storePasswordEnv: o.storePasswordEnv };
}

export function storeLocationOf(t: StoreTarget, config: ResolvedConfig): StoreLocation {
  return resolveStoreLocation(t.data, config.store, { url: t.store, passwordEnv: t.storePasswordEnv });
}

export interface OperatorStore {
  readonly config: ResolvedConfig;
  readonly backend: StoreBackend;
  readonly location: StoreLocation;
  readonly clients: ClientRegistry;
  readonly passwords: ClientPasswords;
  readonly rootKeys: RootKeyRegistry;
  readonly holds: KeyHolds;
  readonly inventory: KeyInventory;
  /** The object store as the KMIP operations see it (used to apply the very same Revoke/Destroy). */
  readonly objects: KeyStore;
  close(): Promise<void>;
}

export async function openOperatorStore(t: StoreTarget): Promise<OperatorStore> {
  const config = loadConfig(t.data);
  const location = storeLocationOf(t, config);
  const backend = await openStoreBackend(location, { poolSize: 2, applicationName: 'kmipd cli' });
  try {
    await backend.rootKeys.ensureInitialized(config.hsm.rootKeyLabel);
  } catch (err) {
    await backend.close();
    throw err;
  }
  return {
    config,
    backend,
    location,
    clients: backend.clients,
    passwords: backend.passwords,
    rootKeys: backend.rootKeys,
    holds: backend.holds,
    inventory: backend.inventory,
    objects: backend.objects,
    close: () => backend.close(),
  };
}

/** Runs `fn` with the operator store open, closing it afterwards. */
export async function withOperatorStore<T>(t: StoreTarget, fn: (s: OperatorStore) => Promise<T> | T): Promise<T> {
  const s = await openOperatorStore(t);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** Opens the data folder's HSM; `rootKeyLabel` is the one this session wraps with (default: configured). */
export async function openDataHsm(data: string, config: KmipdConfig, rootKeyLabel?: string): Promise<Hsm> {
  return Hsm.open({
    modulePath: config.hsm.module,
    tokenLabel: config.hsm.tokenLabel,
    pin: readPin(data, config.hsm.pin),
    rootKeyLabel: rootKeyLabel ?? config.hsm.rootKeyLabel,
    ...(config.hsm.softhsmConf ? { env: { SOFTHSM2_CONF: resolveIn(data, config.hsm.softhsmConf) } } : {}),
  });
}
