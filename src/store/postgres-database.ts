// A pool of PostgreSQL connections (node-postgres) for one kmipd process, with what every part of
// the PostgreSQL backend relies on:
//   - durability: every statement outside a transaction commits on its own (autocommit), every
//     transaction commits before its call returns, and synchronous_commit is at least `on` (raised
//     to `on` if the server says `off`, `local` or `remote_write`; `remote_apply` is kept), so an
//     acknowledged Create is on disk, and on a synchronous standby when one is configured;
//   - bounded waits: a node never hangs on a lost database (connect, lock and statement timeouts,
//     TCP keepalive); the caller gets an error it answers as a failure;
//   - no crash on a connection the server drops (pool 'error' events are logged);
//   - BIGINT read as a JavaScript number (sequence numbers, counts and timestamps stay far below 2^53).
import pg from 'pg';
import type { Logger } from 'pino';
import { POSTGRES_MIGRATIONS } from './postgres-migrations.js';

/** What a statement runs on: the pool (autocommit) or one transaction's connection. */
export interface Queryable {
  rows<T extends object>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Number of rows the statement changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
}

export interface PgOptions {
  /** postgres://… without the password. */
  readonly url: string;
  /** Undefined: node-postgres falls back to PGPASSWORD, then ~/.pgpass. */
  readonly password: string | undefined;
  readonly poolSize: number;
  readonly applicationName: string;
  readonly log?: Logger | undefined;
}

const INT8_OID = 20;
const int8 = (v: string): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`integer ${v} from the database is out of range`);
  return n;
};
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID && format !== 'binary' ? int8 : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/** synchronous_commit settings weaker than `on` (they acknowledge before the WAL is flushed everywhere it must be). */
const WEAKER_THAN_ON = new Set(['off', 'local', 'remote_write']);

/** Key of the advisory lock that serialises schema migrations across nodes starting together. */
const MIGRATION_LOCK = 0x6b6d697064; // "kmipd"

/** SQLSTATE classes worth one more try of a whole transaction. */
const RETRYABLE = new Set(['40001', '40P01']); // serialization_failure, deadlock_detected

export const STATEMENT_TIMEOUT_MS = 30_000;
export const LOCK_TIMEOUT_MS = 10_000;
export const CONNECT_TIMEOUT_MS = 5_000;

/**
 * The URL to connect with. node-postgres lets a connection string override a separate `password`
 * option (with an empty one when the URL has none), so a password we were given goes into the URL,
 * in memory only; without one, node-postgres reads PGPASSWORD, then ~/.pgpass.
 */
function withPassword(url: string, password: string | undefined): string {
  if (password === undefined) return url;
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** Connection failures an operator can act on, said in words (never with a password). */
function explainConnectError(err: unknown, url: string): Error {
  const message = err instanceof Error ? err.message : String(err);
  if (/client password must be a string|password authentication failed|no password supplied/i.test(message)) {
    return new Error(
      `PostgreSQL ${url} refused the connection: ${message.replace(/^SASL: SCRAM-SERVER-FIRST-MESSAGE: /, '')}. ` +
        'Give the password with PGPASSWORD, ~/.pgpass or --store-password-env (store.passwordEnv in kmipd.json)',
    );
  }
  return err instanceof Error ? err : new Error(message);
}

/**
 * A commit waiting for the synchronous standby can be cancelled (statement timeout, or an
 * administrator's pg_cancel_backend): PostgreSQL then reports success with only a WARNING, the
 * transaction being committed on the primary alone. For kmipd that is not a success (a key must
 * not be acknowledged in one zone only), so each connection watches for that warning, and the
 * statement that drew it fails.
 */
const SYNC_REP_CANCELLED = /canceling wait for synchronous replication/i;
const notReplicated = new WeakMap<pg.ClientBase, boolean>();

export class NotReplicatedError extends Error {
  override readonly name = 'NotReplicatedError';
  constructor() {
    super('committed on the PostgreSQL primary but not confirmed by the synchronous standby (wait cancelled): not acknowledged');
  }
}

function watchReplication(c: pg.ClientBase): void {
  c.on('notice', (n: { message?: string }) => {
    if (SYNC_REP_CANCELLED.test(n.message ?? '')) notReplicated.set(c, true);
  });
}

async function checked<R>(c: pg.ClientBase, run: () => Promise<R>): Promise<R> {
  notReplicated.delete(c);
  const result = await run();
  if (notReplicated.get(c)) {
    notReplicated.delete(c);
    throw new NotReplicatedError();
  }
  return result;
}

function queryable(c: pg.PoolClient): Queryable {
  return {
    rows: <T extends object>(sql: string, params: readonly unknown[] = []) => checked(c, async () => (await c.query<T>(sql, params as unknown[])).rows),
    run: (sql: string, params: readonly unknown[] = []) => checked(c, async () => (await c.query(sql, params as unknown[])).rowCount ?? 0),
  };
}

/** Statements outside a transaction: each on a connection of its own for its duration (autocommit). */
function pooled(pool: pg.Pool): Queryable {
  const once = async <R>(fn: (q: Queryable) => Promise<R>): Promise<R> => {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      return await fn(queryable(client));
    } catch (err) {
      if (isConnectionFailure(err)) broken = err as Error;
      throw err;
    } finally {
      client.release(broken);
    }
  };
  return {
    rows: <T extends object>(sql: string, params?: readonly unknown[]) => once((q) => q.rows<T>(sql, params)),
    run: (sql: string, params?: readonly unknown[]) => once((q) => q.run(sql, params)),
  };
}

/** An error after which the connection must not be handed out again. */
function isConnectionFailure(err: unknown): boolean {
  return !(err instanceof pg.DatabaseError) && !(err instanceof NotReplicatedError);
}

export class PgDatabase implements Queryable {
  private readonly direct: Queryable;

  private constructor(
    private readonly pool: pg.Pool,
    readonly synchronousCommit: string,
  ) {
    this.direct = pooled(pool);
  }

  /** Connects, checks the durability setting, and brings the schema up to date. */
  static async open(o: PgOptions): Promise<PgDatabase> {
    const base: pg.PoolConfig = {
      connectionString: withPassword(o.url, o.password),
      application_name: o.applicationName,
      types: TYPES,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      lock_timeout: LOCK_TIMEOUT_MS,
      idle_in_transaction_session_timeout: 60_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    };
    // One connection first, to learn what the server would do by default.
    const probe = new pg.Client(base);
    let configured: string;
    try {
      await probe.connect();
      configured = (await probe.query<{ synchronous_commit: string }>('SHOW synchronous_commit')).rows[0]!.synchronous_commit;
    } catch (err) {
      throw explainConnectError(err, o.url);
    } finally {
      // Also after a failed connect: its socket would keep the process alive.
      await probe.end().catch(() => undefined);
    }
    const raise = WEAKER_THAN_ON.has(configured);
    if (raise) o.log?.warn({ configured }, 'PostgreSQL synchronous_commit is weaker than on: kmipd sets it to on for its connections');
    const pool = new pg.Pool({
      ...base,
      ...(raise ? { options: '-c synchronous_commit=on' } : {}),
      max: o.poolSize,
      idleTimeoutMillis: 30_000,
    });
    pool.on('error', (err) => o.log?.warn({ err: err.message }, 'PostgreSQL connection lost (idle); it will be replaced'));
    pool.on('connect', watchReplication);
    const db = new PgDatabase(pool, raise ? 'on' : configured);
    try {
      await db.migrate();
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    return db;
  }

  rows<T extends object>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.direct.rows<T>(sql, params);
  }

  run(sql: string, params?: readonly unknown[]): Promise<number> {
    return this.direct.run(sql, params);
  }

  /**
   * Runs `fn` in one transaction on one connection and commits before resolving. A deadlock or
   * serialization failure retries the whole transaction (at most three tries); `fn` must not have
   * effects outside the database.
   */
  async tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(fn);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (attempt >= 3 || typeof code !== 'string' || !RETRYABLE.has(code)) throw err;
      }
    }
  }

  private async once<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let discard: Error | undefined;
    try {
      const q = queryable(client);
      await q.run('BEGIN');
      const result = await fn(q);
      await q.run('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        // The connection is unusable (the server went away): do not hand it out again.
        discard = rollbackErr as Error;
      }
      throw err;
    } finally {
      client.release(discard);
    }
  }

  /** Applies the missing migrations, one transaction under an advisory lock (nodes starting together). */
  private async migrate(): Promise<number> {
    return this.tx(async (q) => {
      await q.rows('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await q.run(
        `CREATE TABLE IF NOT EXISTS kmipd_schema (
           singleton BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
           version INTEGER NOT NULL
         )`,
      );
      await q.run('INSERT INTO kmipd_schema (version) VALUES (0) ON CONFLICT (singleton) DO NOTHING');
      const [row] = await q.rows<{ version: number }>('SELECT version FROM kmipd_schema');
      const current = row!.version;
      if (current > POSTGRES_MIGRATIONS.length) {
        throw new Error(`database schema version ${current} is newer than this kmipd (${POSTGRES_MIGRATIONS.length})`);
      }
      for (let v = current; v < POSTGRES_MIGRATIONS.length; v++) {
        await q.run(POSTGRES_MIGRATIONS[v]!);
        await q.run('UPDATE kmipd_schema SET version = $1', [v + 1]);
      }
      return POSTGRES_MIGRATIONS.length;
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
