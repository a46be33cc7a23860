// A store backend: everything kmipd keeps in its database, behind one interface, on SQLite (one
// file, the embedded default) or PostgreSQL (shared by the nodes of a cluster). The server and the
// operator commands open one, use its parts, and close it; neither knows which database it is.
import type { Logger } from 'pino';
import type { KeyStore, StoreHealth } from './types.js';
import type { ClientRegistry } from './client-registry.js';
import { ClientPasswords } from './client-passwords.js';
import type { RootKeyRegistry } from './root-keys.js';
import type { KeyHolds } from './key-holds.js';
import type { KeyInventory } from './key-inventory.js';
import type { ClusterNodes } from './cluster-nodes.js';
import { describeStore, type StoreLocation } from './store-location.js';
import { SqliteStore } from './sqlite-store.js';
import { SqliteClientRegistry } from './sqlite-client-registry.js';
import { SqlitePasswordRows } from './sqlite-client-passwords.js';
import { SqliteRootKeys } from './sqlite-root-keys.js';
import { SqliteKeyHolds } from './sqlite-key-holds.js';
import { SqliteKeyInventory } from './sqlite-key-inventory.js';
import { SqliteClusterNodes } from './sqlite-cluster-nodes.js';
import { MIGRATIONS } from './sqlite-migrations.js';
import { SqliteChangeWatch } from './sqlite-change-watch.js';
import { PgDatabase } from './postgres-database.js';
import { PostgresStore } from './postgres-store.js';
import { PostgresClientRegistry } from './postgres-client-registry.js';
import { PostgresPasswordRows } from './postgres-client-passwords.js';
import { PostgresRootKeys } from './postgres-root-keys.js';
import { PostgresKeyHolds } from './postgres-key-holds.js';
import { PostgresKeyInventory } from './postgres-key-inventory.js';
import { PostgresClusterNodes } from './postgres-cluster-nodes.js';
import { POSTGRES_MIGRATIONS } from './postgres-migrations.js';

/** What `kmipd cluster status` says about the database itself. */
export interface DatabaseStatus {
  readonly kind: StoreLocation['kind'];
  /** sqlite:PATH, or the PostgreSQL URL without its password. */
  readonly where: string;
  /** e.g. "SQLite 3.50.4" or "PostgreSQL 15.18". */
  readonly server: string;
  readonly schemaVersion: number;
  /** Durability facts, as name → value (journal mode, synchronous_commit, standbys, …). */
  readonly durability: Readonly<Record<string, string>>;
}

export interface StoreBackend {
  readonly location: StoreLocation;
  /** Managed objects (KMIP), with readiness and figures for the admin endpoint. */
  readonly objects: KeyStore & StoreHealth;
  readonly clients: ClientRegistry;
  readonly passwords: ClientPasswords;
  readonly rootKeys: RootKeyRegistry;
  readonly holds: KeyHolds;
  readonly inventory: KeyInventory;
  readonly cluster: ClusterNodes;
  status(): Promise<DatabaseStatus>;
  /**
   * For the server: checks whether another process changed the database may be shared between
   * arrivals (SQLite: one PRAGMA data_version reading, see sqlite-change-watch.ts; PostgreSQL
   * has nothing to share). Call the function returned whenever a request or a connection arrives,
   * or anything else starts that must see every commit made before it started.
   */
  shareChangeChecks(): () => void;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  readonly log?: Logger | undefined;
  /** PostgreSQL connections this process may hold (a server wants more than a CLI command). */
  readonly poolSize?: number | undefined;
  /** Shown by PostgreSQL in pg_stat_activity. */
  readonly applicationName?: string | undefined;
}

/** Opens (creating and migrating as needed) the store at `loc`. */
export async function openStoreBackend(loc: StoreLocation, o: OpenStoreOptions = {}): Promise<StoreBackend> {
  return loc.kind === 'sqlite' ? openSqliteBackend(loc) : openPostgresBackend(loc, o);
}

function openSqliteBackend(loc: Extract<StoreLocation, { kind: 'sqlite' }>): StoreBackend {
  const objects = new SqliteStore(loc.path);
  const db = objects.db;
  return {
    location: loc,
    objects,
    clients: new SqliteClientRegistry(db),
    passwords: new ClientPasswords(new SqlitePasswordRows(db)),
    rootKeys: new SqliteRootKeys(db),
    holds: new SqliteKeyHolds(db),
    inventory: new SqliteKeyInventory(db),
    cluster: new SqliteClusterNodes(db),
    async status() {
      return {
        kind: 'sqlite',
        where: describeStore(loc),
        server: `SQLite ${String((db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v)}`,
        schemaVersion: Math.min(db.pragma('user_version', { simple: true }) as number, MIGRATIONS.length),
        durability: {
          journal_mode: String(db.pragma('journal_mode', { simple: true })),
          // 2 = FULL: every commit is fsynced before it returns.
          synchronous: ['off', 'normal', 'full', 'extra'][db.pragma('synchronous', { simple: true }) as number] ?? 'unknown',
        },
      };
    },
    shareChangeChecks: () => SqliteChangeWatch.shareBetweenArrivals(db),
    close: () => objects.close(),
  };
}

async function openPostgresBackend(loc: Extract<StoreLocation, { kind: 'postgres' }>, o: OpenStoreOptions): Promise<StoreBackend> {
  const db = await PgDatabase.open({
    url: loc.url,
    password: loc.password,
    poolSize: o.poolSize ?? 4,
    applicationName: o.applicationName ?? 'kmipd',
    log: o.log,
  });
  return {
    location: loc,
    objects: new PostgresStore(db),
    clients: new PostgresClientRegistry(db),
    passwords: new ClientPasswords(new PostgresPasswordRows(db)),
    rootKeys: new PostgresRootKeys(db),
    holds: new PostgresKeyHolds(db),
    inventory: new PostgresKeyInventory(db),
    cluster: new PostgresClusterNodes(db),
    async status() {
      const [facts] = await db.rows<{ version: string; standby: boolean; sync: string; names: string; schema: number }>(
        `SELECT current_setting('server_version') AS version, pg_is_in_recovery() AS standby,
                current_setting('synchronous_commit') AS sync, current_setting('synchronous_standby_names') AS names,
                (SELECT version FROM kmipd_schema) AS schema`,
      );
      const replicas = await db.rows<{ name: string; state: string; sync_state: string }>(
        `SELECT coalesce(application_name, '') AS name, coalesce(state, '') AS state, coalesce(sync_state, '') AS sync_state
         FROM pg_stat_replication ORDER BY application_name`,
      );
      return {
        kind: 'postgres',
        where: loc.url,
        server: `PostgreSQL ${facts!.version}${facts!.standby ? ' (standby: read-only)' : ''}`,
        schemaVersion: Math.min(facts!.schema, POSTGRES_MIGRATIONS.length),
        durability: {
          synchronous_commit: facts!.sync,
          synchronous_standby_names: facts!.names || '(none)',
          standbys: replicas.length === 0 ? '(none connected)' : replicas.map((r) => `${r.name || '?'} ${r.sync_state} ${r.state}`).join(', '),
        },
      };
    },
    // Every read is a query of its own: nothing to share.
    shareChangeChecks: () => () => {},
    close: () => db.close(),
  };
}
