// A throwaway PostgreSQL server for tests: Debian's initdb and pg_ctl, a cluster in a temporary
// folder, listening on a free loopback port only, password authentication (scram-sha-256) so that
// kmipd's password handling is exercised too. PostgreSQL refuses to run as root: when the tests run
// as root, the server runs as the `postgres` system user (created by the Debian package) and owns
// the folder. Missing PostgreSQL is an error, never a skip: `scripts/setup.sh --test` installs it.
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export const TEST_PG_USER = 'kmipd';
/** Test-only password of the throwaway cluster (loopback, deleted after the file's tests). */
export const TEST_PG_PASSWORD = 'kmipd-test-password-not-secret';

export interface TestPostgres {
  readonly host: string;
  readonly port: number;
  /** The PostgreSQL major version. */
  readonly version: number;
  /** URL of a database, without the password (kmipd takes it from PGPASSWORD). */
  url(database: string): string;
  /** Creates an empty database and returns its URL (without the password). */
  createDatabase(name: string): Promise<string>;
  /** Runs SQL as the cluster owner in `database` and returns the rows. */
  query<T extends object = Record<string, unknown>>(database: string, sql: string, params?: unknown[]): Promise<T[]>;
  stop(): Promise<void>;
}

/** The newest PostgreSQL installed by Debian (/usr/lib/postgresql/VERSION/bin). */
export function postgresBinaries(): { bin: string; version: number } {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base)
    ? readdirSync(base)
        .filter((v) => /^\d+$/.test(v) && existsSync(join(base, v, 'bin', 'initdb')) && existsSync(join(base, v, 'bin', 'pg_ctl')))
        .map(Number)
        .sort((a, b) => b - a)
    : [];
  const [version] = versions;
  if (version === undefined) {
    throw new Error(
      'PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): the cluster tests need it. ' +
        'Run `bash scripts/setup.sh --test` (it installs the Debian package postgresql) or `apt-get install postgresql`.',
    );
  }
  return { bin: join(base, String(version), 'bin'), version };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Runs a PostgreSQL program, as the postgres system user when we are root. */
function asOwner(asRoot: boolean, program: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return asRoot ? run('runuser', ['-u', 'postgres', '--', program, ...args]) : run(program, args);
}

export async function startPostgres(): Promise<TestPostgres> {
  const { bin, version } = postgresBinaries();
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'kmipd-pg-'));
  const dataDir = join(dir, 'data');
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, `${TEST_PG_PASSWORD}\n`, { mode: 0o600 });
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
    chownSync(pwfile, uid, gid);
  }
  chmodSync(dir, 0o700);
  const stopSync = () => {
    try {
      execFileSync(asRoot ? 'runuser' : join(bin, 'pg_ctl'), [...(asRoot ? ['-u', 'postgres', '--', join(bin, 'pg_ctl')] : []), '-D', dataDir, '-m', 'immediate', 'stop'], {
        stdio: 'ignore',
      });
    } catch {
      /* not running */
    }
  };
  // A test process that dies without afterAll must not leave a server behind.
  process.once('exit', stopSync);
  try {
    await asOwner(asRoot, join(bin, 'initdb'), [
      '-D', dataDir,
      '-U', TEST_PG_USER,
      `--pwfile=${pwfile}`,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '-E', 'UTF8',
      '--locale=C',
      '--no-sync', // a throwaway cluster: initdb need not fsync its template files
    ]);
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await asOwner(asRoot, join(bin, 'pg_ctl'), [
          '-D', dataDir,
          '-l', join(dir, 'postgres.log'),
          '-w', '-t', '60',
          '-o', `-c listen_addresses=127.0.0.1 -p ${port} -c unix_socket_directories=${dir} -c max_connections=200 -c shared_buffers=32MB`,
          'start',
        ]);
        break;
      } catch (err) {
        if (attempt >= 3) throw err;
      }
    }
    const host = '127.0.0.1';
    const url = (database: string) => `postgres://${TEST_PG_USER}@${host}:${port}/${database}`;
    const query = async <T extends object>(database: string, sql: string, params: unknown[] = []): Promise<T[]> => {
      const c = new pg.Client({ host, port, user: TEST_PG_USER, password: TEST_PG_PASSWORD, database });
      await c.connect();
      try {
        return (await c.query<T>(sql, params)).rows;
      } finally {
        await c.end();
      }
    };
    return {
      host,
      port,
      version,
      url,
      async createDatabase(name) {
        if (!/^[a-z][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
        await query('postgres', `CREATE DATABASE ${name}`);
        return url(name);
      },
      query,
      async stop() {
        process.off('exit', stopSync);
        try {
          await asOwner(asRoot, join(bin, 'pg_ctl'), ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    stopSync();
    process.off('exit', stopSync);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
