// What operator commands open in a data folder: its configuration, the store (a connection of
// their own, safe next to a running server: WAL and a busy timeout), and the HSM when needed.
import type Database from 'better-sqlite3';
import { Hsm } from '../hsm/index.js';
import { loadConfig, readPin, resolveIn, type KmipdConfig } from '../server/config.js';
import { openSqliteDatabase, SqliteStore } from '../store/sqlite-store.js';
import { ClientRegistry } from '../store/client-registry.js';
import { RootKeyRegistry } from '../store/root-keys.js';
import { KeyHolds } from '../store/key-holds.js';
import { KeyInventory } from '../store/key-inventory.js';

export interface OperatorStore {
  readonly config: KmipdConfig;
  readonly storePath: string;
  readonly db: Database.Database;
  readonly clients: ClientRegistry;
  readonly rootKeys: RootKeyRegistry;
  readonly holds: KeyHolds;
  readonly inventory: KeyInventory;
  close(): void;
}

export function openOperatorStore(data: string): OperatorStore {
  const config = loadConfig(data);
  const storePath = resolveIn(data, config.store.sqlite);
  const db = openSqliteDatabase(storePath);
  const rootKeys = new RootKeyRegistry(db);
  rootKeys.ensureInitialized(config.hsm.rootKeyLabel);
  return {
    config,
    storePath,
    db,
    clients: new ClientRegistry(db),
    rootKeys,
    holds: new KeyHolds(db),
    inventory: new KeyInventory(db),
    close: () => db.close(),
  };
}

/** Runs `fn` with the operator store open, closing it afterwards. */
export async function withOperatorStore<T>(data: string, fn: (s: OperatorStore) => Promise<T> | T): Promise<T> {
  const s = openOperatorStore(data);
  try {
    return await fn(s);
  } finally {
    s.close();
  }
}

/** The object store as the KMIP operations see it (used to apply the very same Revoke/Destroy). */
export function openObjectStore(s: OperatorStore): SqliteStore {
  return new SqliteStore(s.storePath);
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
