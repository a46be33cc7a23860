// The admin listener of a real `kmipd serve` (separate process, real SoftHSM token, real SQLite
// file): health and readiness, and metrics that move with real KMIP traffic over mutual TLS,
// including failed requests and refused connections. Readiness is made to fail for real: the
// database write lock is taken by another connection, and the SoftHSM token directory is moved
// away, then both are given back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { readdirSync, renameSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { textString } from '../../src/ttlv/index.js';
import { Operation, ResultReason, ResultStatus, Tag } from '../../src/kmip/registry/generated.js';
import { initAndEnroll, kmipd, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient } from '../helpers/kmip-client.js';
import { certificate, createKey, eventually, probe, V12, writeBundle } from '../operator/helpers.js';
import { parseExposition, sample, samplesOf, type Exposition } from './prometheus-text.js';

let dir: ReturnType<typeof tempDir>;
let good: ClientBundle;
let server: ServerProcess;
let admin: string;

async function get(path: string): Promise<{ status: number; type: string | null; body: string }> {
  const r = await fetch(`${admin}${path}`);
  return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
}

async function metrics(): Promise<Exposition> {
  const r = await get('/metrics');
  expect(r.status).toBe(200);
  expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(r.body);
}

async function readiness(): Promise<{ status: number; checks: Record<string, string> }> {
  const r = await get('/readyz');
  return { status: r.status, checks: (JSON.parse(r.body) as { checks: Record<string, string> }).checks };
}

/** Resolves once the server has closed a raw TCP connection that never starts a TLS handshake. */
function silentTcpConnection(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect({ host: '127.0.0.1', port });
    s.on('error', () => undefined);
    s.on('close', () => resolve());
    setTimeout(() => reject(new Error('server kept a silent connection open')), 10_000);
  });
}

/** A ClientHello trickled a byte at a time, never completed: ended by the handshake deadline. */
function tricklingHandshake(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const hello = Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03, ...Array<number>(32).fill(7)]);
    const s = tcpConnect({ host: '127.0.0.1', port });
    let i = 0;
    const t = setInterval(() => (i < hello.length ? s.write(hello.subarray(i, ++i)) : undefined), 100);
    s.on('error', () => undefined);
    s.on('close', () => (clearInterval(t), resolve()));
    setTimeout(() => reject(new Error('server kept a trickling handshake open')), 10_000);
  });
}

/** A TLS 1.1 handshake, which the server must refuse. */
function oldTlsHandshake(port: number, bundle: ClientBundle): Promise<string> {
  return new Promise((resolve) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      port,
      cert: readFileSync(bundle.cert),
      key: readFileSync(bundle.key),
      ca: readFileSync(bundle.ca),
      servername: 'localhost',
      minVersion: 'TLSv1.1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    s.on('secureConnect', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', (e) => resolve(e.message));
  });
}

beforeAll(async () => {
  dir = tempDir();
  good = await initAndEnroll(dir.path, 'good');
  // A client that was enrolled and then revoked.
  await kmipd('client', 'enroll', 'gone', '--data', dir.path, '--out', join(dir.path, 'clients'));
  await kmipd('client', 'revoke', 'gone', '--data', dir.path, '--reason', 'test');
  server = await startServe(dir.path, ['--admin-listen', '127.0.0.1:0', '--handshake-timeout', '1000']);
  admin = `http://127.0.0.1:${server.adminPort!}`;
}, 120_000);

afterAll(async () => {
  const code = await server?.stop();
  dir?.remove();
  expect(code).toBe(0);
});

describe('admin listener', () => {
  it('logs its port and answers /healthz', async () => {
    expect(server.adminPort).toBeGreaterThan(0);
    expect(server.adminPort).not.toBe(server.port);
    const r = await get('/healthz');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ status: 'ok' });
  });

  it('/readyz is 200 with the HSM and the store checked', async () => {
    const r = await get('/readyz');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ status: 'ready', checks: { hsm: 'ok', store: 'ok' } });
  });

  it('answers anything else with 404, and only GET/HEAD', async () => {
    expect((await get('/keys')).status).toBe(404);
    expect((await fetch(`${admin}/metrics`, { method: 'POST', body: 'x' })).status).toBe(405);
  });

  it('counts requests by operation and result, latencies, connections, HSM calls and keys by state', async () => {
    const before = await metrics();
    expect(before.types.get('kmipd_requests_total')).toBe('counter');
    expect(before.types.get('kmipd_request_duration_seconds')).toBe('histogram');
    expect(before.types.get('kmipd_hsm_call_duration_seconds')).toBe('histogram');
    expect(sample(before, 'kmipd_keys', { state: 'PreActive' })).toBe(0);
    expect(sample(before, 'kmipd_connections_active')).toBe(0);

    const k = await KmipTestClient.connect(server.port, good);
    const a = await createKey(k, 'metrics-a');
    await createKey(k, 'metrics-b');
    const activated = await k.call(V12, [{ operation: Operation.Activate, payload: [textString(Tag.UniqueIdentifier, a)] }]);
    expect(activated.items[0]!.status).toBe(ResultStatus.Success);
    const got = await k.call(V12, [{ operation: Operation.Get, payload: [textString(Tag.UniqueIdentifier, a)] }]);
    expect(got.items[0]!.status).toBe(ResultStatus.Success);
    const missing = await k.call(V12, [{ operation: Operation.Get, payload: [textString(Tag.UniqueIdentifier, 'no-such-key')] }]);
    expect(missing.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.ItemNotFound });
    // An operation code the registry does not know: counted under a fixed label, not its number.
    const odd = await k.call(V12, [{ operation: 0x7abc, payload: [] }]);
    expect(odd.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.OperationNotSupported });

    const during = await metrics();
    expect(sample(during, 'kmipd_connections_active')).toBe(1);
    k.close();

    const after = await eventually('the connection to be counted as closed', async () => {
      const m = await metrics();
      return sample(m, 'kmipd_connections_active') === 0 ? m : undefined;
    });
    const requests = (labels: Record<string, string>) => sample(after, 'kmipd_requests_total', labels);
    expect(requests({ operation: 'Create', result: 'Success', reason: '' })).toBe(2);
    expect(requests({ operation: 'Activate', result: 'Success', reason: '' })).toBe(1);
    expect(requests({ operation: 'Get', result: 'Success', reason: '' })).toBe(1);
    expect(requests({ operation: 'Get', result: 'OperationFailed', reason: 'ItemNotFound' })).toBe(1);
    expect(requests({ operation: 'unknown', result: 'OperationFailed', reason: 'OperationNotSupported' })).toBe(1);
    // Labels stay within known sets: no object ids, no client names, no raw operation codes.
    for (const s of samplesOf(after, 'kmipd_requests_total')) {
      expect(Object.keys(s.labels).sort()).toEqual(['operation', 'reason', 'result']);
      expect(s.labels['operation']).toMatch(/^(?:[A-Z][A-Za-z]+|unknown|message)$/);
    }

    const latency = (suffix: string, labels: Record<string, string>) => sample(after, `kmipd_request_duration_seconds_${suffix}`, labels);
    expect(latency('count', { operation: 'Create' })).toBe(2);
    expect(latency('sum', { operation: 'Create' })).toBeGreaterThan(0);
    expect(latency('bucket', { operation: 'Create', le: '+Inf' })).toBe(2);
    expect(latency('count', { operation: 'Get' })).toBe(2);

    const hsm = (labels: Record<string, string>) => sample(after, 'kmipd_hsm_call_duration_seconds_count', labels);
    expect(hsm({ call: 'generate', outcome: 'ok' })).toBe(2);
    expect(hsm({ call: 'unwrap', outcome: 'ok' })).toBe(1);
    expect(sample(after, 'kmipd_hsm_call_duration_seconds_sum', { call: 'generate', outcome: 'ok' })).toBeGreaterThan(0);

    expect(sample(after, 'kmipd_keys', { state: 'PreActive' })).toBe(1);
    expect(sample(after, 'kmipd_keys', { state: 'Active' })).toBe(1);
    expect(sample(after, 'kmipd_keys', { state: 'Destroyed' })).toBe(0);
    // Node's own figures come along (prefixed), e.g. for memory alerts.
    expect(sample(after, 'kmipd_process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('counts refused connections by reason, once each', async () => {
    const revoked = { ...good, cert: join(dir.path, 'clients', 'gone.crt'), key: join(dir.path, 'clients', 'gone.key') };
    const stranger = certificate({ cn: 'stranger', eku: 'clientAuth' });
    const strangerBundle = writeBundle(dir.path, 'stranger', stranger.certPem, stranger.keyPem, dir.path);
    const noCert = { ...good, cert: '', key: '' };

    expect(await probe(server.port, revoked)).toBe('refused');
    expect(await probe(server.port, strangerBundle)).toBe('refused');
    expect(await probe(server.port, strangerBundle)).toBe('refused');
    const noCertAnswer = await new Promise<string>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: server.port, ca: readFileSync(noCert.ca), servername: 'localhost' });
      s.on('secureConnect', () => s.on('close', () => resolve('closed by the server')));
      s.on('error', (e) => resolve(e.message));
    });
    expect(noCertAnswer).toBeTruthy();
    expect(await oldTlsHandshake(server.port, good)).not.toBe('connected');
    await silentTcpConnection(server.port); // closed by the 1 s handshake deadline
    await tricklingHandshake(server.port); // the same deadline: counted once, and not also as a reset
    expect(await probe(server.port, good)).toBe('served');

    let last: Exposition | undefined;
    const m = await eventually('every refusal to be counted', async () => {
      last = await metrics();
      return sample(last, 'kmipd_tls_handshake_failures_total', { reason: 'timeout' }) === 2 ? last : undefined;
    }).catch((err: unknown) => {
      throw new Error(`${String(err)}: ${JSON.stringify(last && samplesOf(last, 'kmipd_tls_handshake_failures_total'))}`);
    });
    const failures = Object.fromEntries(samplesOf(m, 'kmipd_tls_handshake_failures_total').map((s) => [s.labels['reason'], s.value]));
    expect(failures).toEqual({
      revoked_certificate: 1,
      untrusted_certificate: 2,
      no_client_certificate: 1,
      protocol_version: 1,
      timeout: 2,
    });
    // The probe's connection closes from our side; the server counts it out when it sees the close.
    await eventually('no open connection left', async () => (sample(await metrics(), 'kmipd_connections_active') === 0 ? true : undefined));
  });
});

describe('readiness fails for real and recovers', () => {
  it('store: another process holds the database write lock → 503, then 200 once released', async () => {
    const other = new Database(join(dir.path, 'kmipd.db'));
    try {
      other.exec('BEGIN EXCLUSIVE');
      const locked = await readiness();
      expect(locked.status).toBe(503);
      expect(locked.checks['hsm']).toBe('ok');
      expect(locked.checks['store']).toMatch(/locked|busy/i);
      // Liveness and metrics do not depend on the lock (WAL readers go on).
      expect((await get('/healthz')).status).toBe(200);
      expect(sample(await metrics(), 'kmipd_keys', { state: 'Active' })).toBe(1);
      other.exec('ROLLBACK');
    } finally {
      other.close();
    }
    expect(await readiness()).toEqual({ status: 200, checks: { hsm: 'ok', store: 'ok' } });
  });

  it('HSM: the SoftHSM token directory is moved away → 503, then 200 once it is back', async () => {
    const tokens = join(dir.path, 'hsm', 'tokens');
    const token = join(tokens, readdirSync(tokens)[0]!);
    const away = join(dir.path, 'token-away');
    renameSync(token, away);
    try {
      const gone = await readiness();
      expect(gone.status).toBe(503);
      expect(gone.checks['store']).toBe('ok');
      expect(gone.checks['hsm']).toMatch(/root key|token/);
      expect((await get('/healthz')).status).toBe(200);
    } finally {
      renameSync(away, token);
    }
    // The supervisor retries the HSM at most once a second.
    await eventually('readiness to recover', async () => ((await readiness()).status === 200 ? true : undefined));
    expect(await readiness()).toEqual({ status: 200, checks: { hsm: 'ok', store: 'ok' } });
    const m = await metrics();
    expect(sample(m, 'kmipd_hsm_call_duration_seconds_count', { call: 'ping', outcome: 'error' })).toBeGreaterThanOrEqual(1);
    expect(await probe(server.port, good)).toBe('served');
  });
});
