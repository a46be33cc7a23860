// The store backends every store test runs against: SQLite (a file in a temporary folder) and
// PostgreSQL (a fresh database in a throwaway cluster started by test/helpers/postgres.ts).
import { join } from 'node:path';
import { openStoreBackend, type StoreBackend } from '../../src/store/backend.js';
import type { StoreLocation } from '../../src/store/store-location.js';
import { tempDir } from '../helpers/kmipd.js';
import { startPostgres, TEST_PG_PASSWORD, type TestPostgres } from '../helpers/postgres.js';

export interface FreshStore {
  readonly backend: StoreBackend;
  readonly location: StoreLocation;
  /** Open the same store again (a second node, a CLI run, a restart). */
  reopen(): Promise<StoreBackend>;
}

export interface BackendKind {
  readonly name: 'sqlite' | 'postgres';
  /** Once per file. */
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** An empty store of this kind; every backend it opened is closed by teardown. */
  fresh(): Promise<FreshStore>;
}

function tracked(): { open(loc: StoreLocation): Promise<StoreBackend>; closeAll(): Promise<void> } {
  const opened: StoreBackend[] = [];
  return {
    async open(loc) {
      const b = await openStoreBackend(loc);
      const close = b.close.bind(b);
      let closed = false;
      const once = { ...b, close: async () => (closed ? undefined : ((closed = true), close())) } as StoreBackend;
      opened.push(once);
      return once;
    },
    async closeAll() {
      for (const b of opened.splice(0)) await b.close().catch(() => undefined);
    },
  };
}

export function sqliteKind(): BackendKind {
  let dir: ReturnType<typeof tempDir> | undefined;
  let n = 0;
  const backends = tracked();
  return {
    name: 'sqlite',
    async setup() {
      dir = tempDir('kmipd-store-');
    },
    async teardown() {
      await backends.closeAll();
      dir?.remove();
    },
    async fresh() {
      const location: StoreLocation = { kind: 'sqlite', path: join(dir!.path, `store-${++n}.db`) };
      return { backend: await backends.open(location), location, reopen: () => backends.open(location) };
    },
  };
}

export function postgresKind(): BackendKind & { readonly server: () => TestPostgres } {
  let pg: TestPostgres | undefined;
  let n = 0;
  const backends = tracked();
  return {
    name: 'postgres',
    server: () => pg!,
    async setup() {
      // kmipd takes the password where an operator would put it: PGPASSWORD (or ~/.pgpass).
      process.env['PGPASSWORD'] = TEST_PG_PASSWORD;
      pg = await startPostgres();
    },
    async teardown() {
      await backends.closeAll();
      await pg?.stop();
    },
    async fresh() {
      const url = await pg!.createDatabase(`kmipd_store_${++n}`);
      const location: StoreLocation = { kind: 'postgres', url, password: undefined };
      return { backend: await backends.open(location), location, reopen: () => backends.open(location) };
    },
  };
}

export const BACKENDS = [sqliteKind, postgresKind] as const;
