// The servers under test, each started as its own process on a loopback port: kmipd from a
// checkout (compiled, started by bin/kmipd-serve as operators start it), and PyKMIP's server
// (Debian's python3-pykmip) for comparison.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BenchConnection, LOOPBACK, readClientMaterial, type ClientFiles, type Endpoint } from './connection.js';
import { discoverVersionsRequest } from './requests.js';
import type { MemoryAllocator } from '../src/server/memory-allocator.js';
import { checkAnswer } from './response.js';
import { expectCpus, onCpus, type CpuSet } from './cpu-placement.js';

const run = promisify(execFile);
export const SYSTEM_PYTHON = '/usr/bin/python3';
export const PYKMIP_SERVER = '/usr/bin/pykmip-server';
export const BENCH_CLIENT = 'bench';

export interface ServerUnderTest {
  readonly name: 'kmipd' | 'pykmip';
  readonly endpoint: Endpoint;
  readonly client: ClientFiles;
  readonly pid: number;
  /** Files that hold the stored objects (database and its journal). */
  readonly storeFiles: readonly string[];
  /** SIGTERM, then SIGKILL after a grace period; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Servers started and not yet stopped, so that an interrupted run can still end them. */
const live = new Map<ChildProcess, { group: boolean }>();

/** SIGKILL every server this process started and has not stopped (for an interrupted run). */
export function killAllServers(): void {
  for (const [proc, { group }] of live) {
    try {
      if (group && proc.pid) process.kill(-proc.pid, 'SIGKILL');
      else proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

function track(proc: ChildProcess, group: boolean): void {
  live.set(proc, { group });
  proc.once('exit', () => {
    // A detached group's helpers may outlive the leader: keep it listed until stop() ends them.
    if (!group) live.delete(proc);
  });
}

function exitOf(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
}

async function stopProcess(proc: ChildProcess, graceMs: number, group = false): Promise<number | null> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      // A process group id is the leader's pid: this reaches the children the server itself started.
      if (group && proc.pid) process.kill(-proc.pid, sig);
      else proc.kill(sig);
    } catch {
      // already gone
    }
  };
  const exited = exitOf(proc);
  if (proc.exitCode === null && proc.signalCode === null) {
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
  if (group) signal('SIGKILL'); // helpers of the leader that outlived it
  live.delete(proc);
  return exited;
}

// ------------------------------------------------------------------ kmipd

export function kmipdBin(kmipdRoot: string): string {
  return join(kmipdRoot, 'bin/kmipd.js');
}

async function kmipdCli(kmipdRoot: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [kmipdBin(kmipdRoot), ...args], { cwd: kmipdRoot, maxBuffer: 16 << 20 });
  return stdout;
}

/** `kmipd init` and `kmipd client enroll bench` (both idempotent) in dataDir. */
export async function prepareKmipdData(kmipdRoot: string, dataDir: string): Promise<ClientFiles> {
  await kmipdCli(kmipdRoot, 'init', '--data', dataDir);
  const out = join(dataDir, 'clients');
  const files = { cert: join(out, `${BENCH_CLIENT}.crt`), key: join(out, `${BENCH_CLIENT}.key`), ca: join(out, 'ca.crt') };
  if (!existsSync(files.key)) await kmipdCli(kmipdRoot, 'client', 'enroll', BENCH_CLIENT, '--data', dataDir, '--out', out);
  return files;
}

/**
 * `kmipd serve` flags that let n connections in, for builds that limit connections (flags are
 * passed only when this build's `serve --help` lists them).
 */
export async function connectionLimitArgs(kmipdRoot: string, n: number): Promise<string[]> {
  const help = await kmipdCli(kmipdRoot, 'serve', '--help');
  const args: string[] = [];
  if (help.includes('--max-connections ')) args.push('--max-connections', String(n));
  if (help.includes('--max-connections-per-client')) args.push('--max-connections-per-client', String(n));
  return args;
}

export interface KmipdOptions {
  /** Write a V8 CPU profile of the server into this folder when it stops. */
  readonly cpuProfDir?: string;
  readonly serveArgs?: readonly string[];
  /** More options for the server's node process (e.g. --perf-basic-prof for perf). */
  readonly nodeArgs?: readonly string[];
  /** Environment variables added to the server's (e.g. UV_THREADPOOL_SIZE). */
  readonly env?: Readonly<Record<string, string>>;
}

/** The allocators bin/kmipd-serve can start kmipd on, as its `kmipd listening` line names them. */
export type Malloc = MemoryAllocator;

/** What starting kmipd needs from the run: the checkout, its scratch folder, the allocator to measure. */
export interface KmipdLaunch {
  /** The checkout whose bin/kmipd-serve is started. */
  readonly root: string;
  /** The run's scratch folder (the node-options script goes here, not into a server's data folder). */
  readonly workDir: string;
  /**
   * The allocator kmipd is measured with (`--malloc`; bin/kmipd-serve's KMIPD_MALLOC). A server that
   * reports another one stops the bench, so a result never claims one it was not measured with.
   */
  readonly malloc: Malloc;
  /** The CPUs servers run on (`--server-cpus`); anywhere when undefined. */
  readonly serverCpus?: CpuSet | undefined;
}

/**
 * The node binary, or a script in the scratch folder that runs it with `args` (--cpu-prof is
 * refused in NODE_OPTIONS, and kmipd-serve takes the binary from NODE). One script per distinct
 * `args`, named by their hash, so servers started with different options never share one.
 */
export function nodeWith(workDir: string, args: readonly string[]): string {
  if (args.length === 0) return process.execPath;
  const quoted = [process.execPath, ...args].map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');
  const script = join(workDir, `node-with-options-${createHash('sha256').update(quoted).digest('hex').slice(0, 12)}.sh`);
  // Its name says its content, so one already there is right. A new one is renamed into place
  // whole: a shell that is reading it for another server never sees it truncated.
  if (!existsSync(script)) {
    writeFileSync(`${script}.${process.pid}`, `#!/bin/sh\nexec ${quoted} "$@"\n`, { mode: 0o755 });
    renameSync(`${script}.${process.pid}`, script);
  }
  return script;
}

export async function startKmipd(launch: KmipdLaunch, dataDir: string, client: ClientFiles, opts: KmipdOptions = {}): Promise<ServerUnderTest> {
  const nodeArgs = [...(opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : []), ...(opts.nodeArgs ?? [])];
  // kmipd-serve execs $NODE, so proc.pid is the server's (its CPU and memory are read from /proc).
  // taskset execs the shell, which execs node: the pid stays the server's.
  const [command, args] = onCpus(launch.serverCpus, '/bin/sh', [join(launch.root, 'bin/kmipd-serve'), '--data', dataDir, '--listen', `${LOOPBACK}:0`, ...(opts.serveArgs ?? [])]);
  const proc = spawn(command, args, {
    cwd: launch.root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE: nodeWith(launch.workDir, nodeArgs), KMIPD_MALLOC: launch.malloc, ...opts.env },
  });
  track(proc, false);
  const logs: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`kmipd serve did not start:\n${logs.join('\n')}`)), 60_000);
    proc.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (logs.length < 200) logs.push(line);
        try {
          const rec = JSON.parse(line) as { msg?: string; port?: number; allocator?: string };
          if (rec.msg === 'kmipd listening' && rec.port) {
            clearTimeout(timer);
            if (rec.allocator === launch.malloc) resolve(rec.port);
            else {
              proc.kill('SIGKILL');
              reject(new Error(`kmipd serve runs on the ${rec.allocator} allocator, not ${launch.malloc} (--malloc); jemalloc needs libjemalloc2 (scripts/setup.sh installs it)`));
            }
          }
        } catch {
          // not JSON
        }
      }
    });
    void exitOf(proc).then((code) => {
      clearTimeout(timer);
      reject(new Error(`kmipd serve exited with ${code}:\n${logs.join('\n')}`));
    });
  });
  if (launch.serverCpus) expectCpus('kmipd serve', proc.pid!, launch.serverCpus);
  const db = join(dataDir, 'kmipd.db');
  return {
    name: 'kmipd',
    endpoint: { port, tls: {} },
    client,
    pid: proc.pid!,
    storeFiles: [db, `${db}-wal`],
    stop: () => stopProcess(proc, 30_000),
  };
}

// ------------------------------------------------------------------ PyKMIP

/** TLS 1.2 suites PyKMIP's TLS1.2 authentication suite offers for an RSA server certificate. */
const PYKMIP_TLS = { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256:AES256-SHA256:AES128-SHA256' } as const;

export function pykmipAvailable(): boolean {
  return existsSync(PYKMIP_SERVER) && existsSync(SYSTEM_PYTHON);
}

async function freeLoopbackPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, LOOPBACK, resolve));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/**
 * PyKMIP's server with its SQLite backend in `dir`, using kmipd's dev PKI (server certificate
 * and CA) from `kmipdData`, so the same client certificate works against both servers.
 */
export async function startPykmip(dir: string, kmipdData: string, client: ClientFiles, cpus?: CpuSet): Promise<ServerUnderTest> {
  mkdirSync(join(dir, 'policies'), { recursive: true });
  const port = await freeLoopbackPort();
  const db = join(dir, 'pykmip.db');
  const conf = join(dir, 'server.conf');
  writeFileSync(
    conf,
    [
      '[server]',
      `hostname=${LOOPBACK}`,
      `port=${port}`,
      `certificate_path=${join(kmipdData, 'pki/server.crt')}`,
      `key_path=${join(kmipdData, 'pki/server.key')}`,
      `ca_path=${join(kmipdData, 'pki/ca.crt')}`,
      'auth_suite=TLS1.2',
      `policy_path=${join(dir, 'policies')}`,
      'enable_tls_client_auth=True',
      // Its best case: INFO would log several lines per request.
      'logging_level=WARNING',
      `database_path=${db}`,
      '',
    ].join('\n'),
  );
  // Its own process group: the server starts helper processes (multiprocessing manager, policy monitor).
  const [command, args] = onCpus(cpus, SYSTEM_PYTHON, [PYKMIP_SERVER, '-f', conf, '-l', join(dir, 'server.log')]);
  const proc = spawn(command, args, {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  track(proc, true);
  const stderr: string[] = [];
  proc.stderr!.on('data', (d: Buffer) => stderr.length < 200 && stderr.push(d.toString()));
  const endpoint: Endpoint = { port, tls: PYKMIP_TLS };
  const material = readClientMaterial(client);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`pykmip-server exited with ${proc.exitCode}:\n${stderr.join('')}`);
    try {
      const c = await BenchConnection.open(endpoint, material, undefined, 5_000);
      const ok = checkAnswer(await c.request(discoverVersionsRequest())).ok;
      c.close();
      if (ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stopProcess(proc, 1_000, true);
      throw new Error(`pykmip-server did not answer on port ${port}:\n${stderr.join('')}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  if (cpus) expectCpus('pykmip-server', proc.pid!, cpus);
  return {
    name: 'pykmip',
    endpoint,
    client,
    pid: proc.pid!,
    storeFiles: [db, `${db}-journal`],
    stop: () => stopProcess(proc, 3_000, true),
  };
}
