// `"processes": 2` / `kmipd serve --processes 2`: two serve processes behind one listener, as an operator runs it.
// New connections are dealt to the processes in turn, so consecutive connections land on both:
// a key created through one is read through the other, a session from one resumes on the other,
// /metrics and /readyz speak for both, one process killed takes only its own connections with it
// and comes back, and SIGTERM stops them all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { Operation, ResultStatus, Tag } from '../../src/kmip/registry/generated.js';
import { enroll, initAndEnroll, kmipd, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient } from '../helpers/kmip-client.js';
import { create, simple } from '../helpers/kmip-requests.js';
import { eventually } from '../operator/helpers.js';
import { resolveConfig } from '../../src/server/config.js';
import { parseExposition, sample } from '../admin/prometheus-text.js';

const V = { major: 1, minor: 4 };
let dir: ReturnType<typeof tempDir>;
let client: ClientBundle;
let server: ServerProcess;
let admin: string;
const open: KmipTestClient[] = [];

beforeAll(async () => {
  dir = tempDir();
  client = await initAndEnroll(dir.path, 'multi');
  // As an operator sets it for good: in kmipd.json (the limits test below uses the flag).
  const configPath = join(dir.path, 'kmipd.json');
  writeFileSync(configPath, JSON.stringify({ ...(JSON.parse(readFileSync(configPath, 'utf8')) as object), processes: 2 }));
  server = await startServe(dir.path, ['--admin-listen', '127.0.0.1:0']);
  admin = `http://127.0.0.1:${server.adminPort}`;
});
afterAll(async () => {
  for (const k of open) k.close();
  if (server) expect(await server.stop()).toBe(0);
  dir?.remove();
});

/** The pids of the serve processes a primary started, in order (restarts included). */
function servePids(logs: readonly string[] = server.logs): number[] {
  return logs.flatMap((l) => {
    try {
      const rec = JSON.parse(l) as { msg?: string; processPid?: number };
      return rec.msg === 'serve process started' && rec.processPid ? [rec.processPid] : [];
    } catch {
      return [];
    }
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function connect(extra: Parameters<typeof KmipTestClient.connect>[2] = {}): Promise<KmipTestClient> {
  const k = await KmipTestClient.connect(server.port, client, extra);
  open.push(k);
  return k;
}

/** The status of a Discover Versions on `k`. */
async function discover(k: KmipTestClient): Promise<number> {
  return (await k.call(V, [{ operation: Operation.DiscoverVersions, payload: [] }])).items[0]!.status;
}

async function getKey(k: KmipTestClient, id: string): Promise<number> {
  return (await k.call(V, [simple(Operation.Get, id)])).items[0]!.status;
}

async function readiness(): Promise<{ status: number; checks: Record<string, string> }> {
  const r = await fetch(`${admin}/readyz`);
  return { status: r.status, checks: (JSON.parse(await r.text()) as { checks: Record<string, string> }).checks };
}

describe('serve with processes: 2', () => {
  it('starts two serve processes under one primary, one after the other', () => {
    const pids = servePids();
    expect(pids).toHaveLength(2);
    expect(new Set([...pids, server.proc.pid])).toHaveProperty('size', 3);
    expect(pids.every(alive)).toBe(true);
  });

  it('runs every process on the jemalloc that bin/kmipd-serve preloaded (node:cluster passes the environment on)', () => {
    for (const pid of [server.proc.pid!, ...servePids()]) expect(readFileSync(`/proc/${pid}/maps`, 'utf8')).toMatch(/\/libjemalloc\.so\.2$/m);
    const listening = server.logs.filter((l) => /"(kmipd|serve process) listening"/.test(l)).map((l) => (JSON.parse(l) as { allocator?: string }).allocator);
    expect(listening).toEqual(['jemalloc', 'jemalloc', 'jemalloc']);
  });

  it('is one node in `kmipd cluster status`, under the primary\'s pid, with one heartbeat', async () => {
    const nodes = JSON.parse((await kmipd('cluster', 'status', '--data', dir.path, '--json')).stdout) as { nodes: { pid: number; state?: string }[] };
    expect(nodes.nodes).toHaveLength(1);
    expect(nodes.nodes[0]!.pid).toBe(server.proc.pid);
    // Only the first serve process registers and beats for the node.
    expect(server.logs.filter((l) => l.includes('registered in the cluster'))).toHaveLength(1);
  });

  it('a key created on one connection is read on every other, whichever process holds it', async () => {
    const first = await connect();
    const made = await first.call(V, [create(V)]);
    expect(made.items[0]!.status).toBe(ResultStatus.Success);
    const id = made.items[0]!.payload.requiredText(Tag.UniqueIdentifier);
    const others = [await connect(), await connect(), await connect()];
    for (const k of [first, ...others]) expect(await getKey(k, id)).toBe(ResultStatus.Success);
  });

  it('/metrics adds up both processes and /readyz asks both', async () => {
    const r = await fetch(`${admin}/metrics`);
    expect(r.status).toBe(200);
    const m = parseExposition(await r.text());
    // Four connections open (two on each process) and four Gets answered, counted once each.
    expect(sample(m, 'kmipd_connections_active')).toBe(4);
    expect(sample(m, 'kmipd_requests_total', { operation: 'Get', result: 'Success', reason: '' })).toBe(4);
    // Both processes count the same store: the figure is the store's, not twice it.
    expect(sample(m, 'kmipd_keys', { state: 'PreActive' })).toBe(1);
    expect(await readiness()).toEqual({ status: 200, checks: { processes: 'ok', hsm: 'ok', store: 'ok' } });
  });

  it.each(['TLSv1.3', 'TLSv1.2'] as const)('a %s session from one process resumes on the other (node:cluster shares the ticket keys)', async (version) => {
    const first = await connect({ maxVersion: version, minVersion: version });
    // A TLS 1.3 ticket comes after the handshake, before the first answer.
    await discover(first);
    const session = first.socket.getSession();
    expect(session).toBeDefined();
    const reused: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      const k = await connect({ maxVersion: version, minVersion: version, session: session! });
      expect(await discover(k)).toBe(ResultStatus.Success);
      reused.push(k.socket.isSessionReused());
      k.close();
    }
    expect(reused).toEqual([true, true, true, true]);
  });

  it('SIGHUP to the primary makes every process reopen the audit log', async () => {
    const audit = join(dir.path, 'audit.log');
    renameSync(audit, `${audit}.1`);
    server.proc.kill('SIGHUP');
    await eventually('both processes to reopen', () => server.logs.filter((l) => l.includes('audit log reopened')).length >= 2);
    const [a, b] = [await connect(), await connect()];
    for (const k of [a, b]) expect((await k.call(V, [create(V)])).items[0]!.status).toBe(ResultStatus.Success);
    const creates = () => (existsSync(audit) ? readFileSync(audit, 'utf8').split('\n').filter((l) => l.includes('"operation":"Create"')).length : 0);
    await eventually('both Creates in the new audit.log', () => creates() === 2);
  });

  it('a revoked client loses its connections on every process; others keep theirs', async () => {
    const victim = await enroll(dir.path, 'victim');
    const theirs: KmipTestClient[] = [];
    for (let i = 0; i < 4; i++) {
      const k = await KmipTestClient.connect(server.port, victim);
      open.push(k);
      expect(await discover(k)).toBe(ResultStatus.Success);
      theirs.push(k);
    }
    const ours = [await connect(), await connect()];
    await kmipd('client', 'revoke', 'victim', '--data', dir.path, '--reason', 'test');
    await eventually('all four of its connections closed', () => theirs.every((k) => k.closed));
    for (const k of ours) expect(await discover(k)).toBe(ResultStatus.Success);
  });

  it('after kmipd root rotate, both processes unwrap the re-wrapped keys and wrap new ones under the new root key', async () => {
    const before = [await connect(), await connect()];
    const made: string[] = [];
    for (const k of before) made.push((await k.call(V, [create(V)])).items[0]!.payload.requiredText(Tag.UniqueIdentifier));
    await kmipd('root', 'rotate', '--data', dir.path);
    const after = [await connect(), await connect()];
    for (const k of after) made.push((await k.call(V, [create(V)])).items[0]!.payload.requiredText(Tag.UniqueIdentifier));
    for (const k of [...before, ...after]) for (const id of made) expect(await getKey(k, id)).toBe(ResultStatus.Success);
    const status = JSON.parse((await kmipd('root', 'status', '--data', dir.path, '--json')).stdout) as {
      active: string;
      versions: { label: string; wrappedKeys: number }[];
    };
    expect(status.active).toBe('kmipd-crk-v2');
    expect(status.versions.find((v) => v.label === 'kmipd-crk-v1')?.wrappedKeys).toBe(0);
  });

  it('a killed process takes only its own connections; the primary starts another', async () => {
    const [p0, p1] = servePids();
    const held = [await connect(), await connect(), await connect(), await connect()];
    for (const k of held) expect(await discover(k)).toBe(ResultStatus.Success);
    process.kill(p1!, 'SIGKILL');
    await eventually('the killed process to be gone', () => !alive(p1!));
    const gone = await eventually('the readiness to see it', async () => {
      const r = await readiness();
      return r.status === 503 ? r : undefined;
    });
    expect(gone.checks['processes']).toBe('1 of 2 serving');
    await eventually('its connections to close', () => held.filter((k) => k.closed).length === 2);
    // The other process's connections are untouched.
    for (const k of held.filter((c) => !c.closed)) {
      expect(await discover(k)).toBe(ResultStatus.Success);
    }
    await eventually('a new process', () => servePids().length === 3 && server.logs.some((l) => l.includes('serve process back')));
    expect((await readiness()).status).toBe(200);
    expect(alive(p0!)).toBe(true);
    const fresh = [await connect(), await connect()];
    for (const k of fresh) expect(await discover(k)).toBe(ResultStatus.Success);
  });

  it('SIGTERM stops the primary and every serve process, exit code 0', async () => {
    const pids = servePids().filter(alive);
    expect(pids).toHaveLength(2);
    for (const k of open.splice(0)) k.close();
    expect(await server.stop()).toBe(0);
    await eventually('every serve process to exit', () => pids.every((p) => !alive(p)));
  });
});

/** Whether a TLS handshake completes, or the server closes the connection first. */
function handshakeOutcome(port: number, c: ClientBundle): Promise<'handshake' | 'closed'> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, cert: readFileSync(c.cert), key: readFileSync(c.key), rejectUnauthorized: false });
    s.once('secureConnect', () => (s.destroy(), resolve('handshake')));
    s.once('error', () => resolve('closed'));
    s.once('close', () => resolve('closed'));
  });
}

/** A server of its own on a fresh data folder, stopped (exit code 0) and removed after `run`. */
async function withOwnServer(client: string, serveArgs: string[], run: (s: ServerProcess, c: ClientBundle) => Promise<void>): Promise<void> {
  const d = tempDir();
  try {
    const c = await initAndEnroll(d.path, client);
    const s = await startServe(d.path, serveArgs);
    try {
      await run(s, c);
    } finally {
      expect(await s.stop()).toBe(0);
    }
  } finally {
    d.remove();
  }
}

describe('serve --processes: limits and bad values', () => {
  it('maxConnections is shared out: 2 in total over 2 processes means one each', async () => {
    await withOwnServer('few', ['--processes', '2', '--max-connections', '2'], async (s, c) => {
      const [a, b] = [await KmipTestClient.connect(s.port, c), await KmipTestClient.connect(s.port, c)];
      // The third lands on the first process again, which already holds its one: closed before TLS.
      expect(await handshakeOutcome(s.port, c)).toBe('closed');
      for (const k of [a, b]) expect(await discover(k)).toBe(ResultStatus.Success);
      a.close();
      b.close();
      // Closed connections give their places back.
      await eventually('places back', async () => ((await handshakeOutcome(s.port, c)) === 'handshake' ? true : undefined));
      const again = [await KmipTestClient.connect(s.port, c), await KmipTestClient.connect(s.port, c)];
      for (const k of again) expect(await discover(k)).toBe(ResultStatus.Success);
      for (const k of again) k.close();
    });
  });

  it('with every serve process killed at once, the primary stays and starts them again', async () => {
    // No admin listener: nothing but the restart itself keeps the primary running.
    await withOwnServer('both', ['--processes', '2'], async (s, c) => {
      const [a, b] = servePids(s.logs);
      process.kill(a!, 'SIGKILL');
      process.kill(b!, 'SIGKILL');
      await eventually('two new serve processes', () => s.logs.filter((l) => l.includes('serve process back')).length === 2);
      expect(s.proc.exitCode).toBeNull();
      const k = await KmipTestClient.connect(s.port, c);
      expect(await discover(k)).toBe(ResultStatus.Success);
      k.close();
    });
  });

  it('a serve process that cannot start fails the whole serve, exit code 1, with the reason', async () => {
    const d = tempDir();
    const taken = createNetServer();
    try {
      await initAndEnroll(d.path, 'none');
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const port = (taken.address() as AddressInfo).port;
      const failed = await kmipd('serve', '--data', d.path, '--listen', `127.0.0.1:${port}`, '--processes', '2').then(
        () => undefined,
        (err: { code?: number; stderr?: string }) => err,
      );
      expect(failed?.code).toBe(1);
      expect(failed?.stderr).toMatch(/EADDRINUSE/);
      expect(failed?.stderr).toMatch(/serve process 0 exited \(code 1\) before it listened/);
    } finally {
      taken.close();
      d.remove();
    }
  });

  it('refuses --processes 0 and 65, and the same in kmipd.json', async () => {
    for (const n of ['0', '65']) {
      await expect(kmipd('serve', '--data', '/nonexistent', '--processes', n)).rejects.toMatchObject({ stderr: expect.stringMatching(/--processes/) });
    }
    for (const n of [0, 65, 1.5]) {
      expect(() => resolveConfig({ ...(JSON.parse(readFileSync(join(dir.path, 'kmipd.json'), 'utf8')) as object), processes: n })).toThrow(
        /processes must be an integer from 1 to 64/,
      );
    }
  });
});
