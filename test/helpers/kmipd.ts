// Runs the real kmipd CLI (compiled, in a child process) against a temporary data folder.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const KMIPD = join(ROOT, 'bin/kmipd.js');
/** How operators start the server (start.sh, the container, the systemd unit): jemalloc preloaded. */
export const KMIPD_SERVE = join(ROOT, 'bin/kmipd-serve');
const run = promisify(execFile);

export async function kmipd(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, [KMIPD, ...args], { cwd: ROOT, maxBuffer: 16 << 20 });
}

export function tempDir(prefix = 'kmipd-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface ClientBundle {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export async function initAndEnroll(data: string, client = 'testclient'): Promise<ClientBundle> {
  await kmipd('init', '--data', data);
  return enroll(data, client);
}

/** `kmipd client enroll` into DATA/clients, for a folder that is initialised already. */
export async function enroll(data: string, client: string): Promise<ClientBundle> {
  const out = join(data, 'clients');
  await kmipd('client', 'enroll', client, '--data', data, '--out', out);
  return { cert: join(out, `${client}.crt`), key: join(out, `${client}.key`), ca: join(out, 'ca.crt') };
}

export interface ServerProcess {
  readonly port: number;
  /** The admin HTTP port, when started with --admin-listen. */
  readonly adminPort?: number | undefined;
  readonly proc: ChildProcess;
  readonly logs: string[];
  /** Send a signal and resolve with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Start `kmipd serve` on an ephemeral loopback port, through bin/kmipd-serve as operators do, and
 * wait until it listens (and its admin listener, if asked for). `wrapper` runs it through another
 * command first (e.g. `unshare` for a private tmpfs in the disk-full tests); `env` is added to the
 * server's environment.
 */
export async function startServe(data: string, extra: readonly string[] = [], wrapper: readonly string[] = [], env: Readonly<Record<string, string>> = {}): Promise<ServerProcess> {
  const [cmd, ...args] = [...wrapper, '/bin/sh', KMIPD_SERVE, '--data', data, '--listen', '127.0.0.1:0', ...extra];
  const proc = spawn(cmd!, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE: process.execPath, ...env } });
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const wantAdmin = extra.includes('--admin-listen');
  let kmipPort: number | undefined;
  let adminPort: number | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`kmipd serve did not start:\n${logs.join('\n')}`)), 30_000);
    proc.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        try {
          const rec = JSON.parse(line) as { msg?: string; port?: number };
          if (rec.msg === 'kmipd listening' && rec.port) kmipPort = rec.port;
          if (rec.msg === 'kmipd admin listening' && rec.port) adminPort = rec.port;
          if (kmipPort !== undefined && (!wantAdmin || adminPort !== undefined)) {
            clearTimeout(timer);
            resolve(kmipPort);
          }
        } catch {
          /* not JSON */
        }
      }
    });
    void exited.then((code) => reject(new Error(`kmipd serve exited with ${code}:\n${logs.join('\n')}`)));
  });
  return {
    port,
    adminPort,
    proc,
    logs,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill(signal);
      return exited;
    },
  };
}
