// Connection-level attacks on a running kmipd: refused TLS versions and certificates, handshake,
// idle and read (slowloris) timeouts, and the connection limits in total and per certificate.
// After each, other clients are served and every stored key comes back byte for byte.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { connect, type ConnectionOptions } from 'node:tls';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initAndEnroll, kmipd, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { reportFigures } from './figures.js';
import { discoverItem, encodeRequest, expectServedAndIntact, RawConnection, seedKeys, V12, type KeySet } from './helpers.js';
import { newTally } from './tally.js';

const HANDSHAKE_MS = 1000;
const IDLE_MS = 1500;
const READ_MS = 1000;
const MAX_CONNECTIONS = 12;
const MAX_PER_CLIENT = 4;

const tally = newTally();
let dir: ReturnType<typeof tempDir>;
let other: ReturnType<typeof tempDir>;
let good: ClientBundle;
let foreign: ClientBundle;
const extra: ClientBundle[] = [];
let server: ServerProcess;
let keys: KeySet;

async function enroll(name: string): Promise<ClientBundle> {
  const out = join(dir.path, 'clients');
  await kmipd('client', 'enroll', name, '--data', dir.path, '--out', out);
  return { cert: join(out, `${name}.crt`), key: join(out, `${name}.key`), ca: join(out, 'ca.crt') };
}

beforeAll(async () => {
  dir = tempDir();
  other = tempDir();
  [good, foreign] = await Promise.all([initAndEnroll(dir.path, 'good'), initAndEnroll(other.path, 'foreign')]);
  extra.push(...(await Promise.all(['second', 'third', 'fourth'].map(enroll))));
  server = await startServe(dir.path, [
    '--handshake-timeout', String(HANDSHAKE_MS),
    '--idle-timeout', String(IDLE_MS),
    '--read-timeout', String(READ_MS),
    '--max-connections', String(MAX_CONNECTIONS),
    '--max-connections-per-client', String(MAX_PER_CLIENT),
  ]);
  keys = await seedKeys(server.port, good, 4);
});

afterAll(async () => {
  if (server && server.proc.exitCode !== null) tally.crashes += 1;
  const code = await server?.stop();
  reportFigures('connections', tally);
  dir?.remove();
  other?.remove();
  expect(code).toBe(0);
});

async function checkIntact(): Promise<void> {
  expect(server.proc.exitCode, 'the server process exited').toBeNull();
  await expectServedAndIntact(server.port, good, keys, tally);
}

/**
 * Connect with `opts`, send a Discover Versions once the handshake is through, and report whether
 * a KMIP answer came back ('answered') or how the connection ended.
 */
function tryKmip(opts: ConnectionOptions): Promise<string> {
  tally.malformedInputs += 1;
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: server.port, servername: 'localhost', ...opts });
    const timer = setTimeout(() => {
      tally.hangs += 1;
      s.destroy();
      resolve('hung');
    }, 10_000);
    const done = (what: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve(what);
    };
    s.once('secureConnect', () => {
      s.write(encodeRequest(V12, [discoverItem()]));
      s.once('data', () => done('answered'));
    });
    s.once('error', (e) => done(`error: ${e.message}`));
    s.once('close', () => done('closed'));
  });
}

const material = (b: ClientBundle): ConnectionOptions => ({ cert: readFileSync(b.cert), key: readFileSync(b.key), ca: readFileSync(b.ca) });

/** A self-signed client certificate (as vCenter's often is) that expires `seconds` from now. */
function shortLivedBundle(name: string, seconds: number): ClientBundle {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = '0a' + randomBytes(8).toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + seconds * 1000);
  cert.setSubject([{ shortName: 'CN', value: name }]);
  cert.setIssuer([{ shortName: 'CN', value: name }]);
  cert.setExtensions([{ name: 'extKeyUsage', clientAuth: true }]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()), forge.md.sha256.create());
  const out = join(dir.path, 'clients');
  writeFileSync(join(out, `${name}.crt`), forge.pki.certificateToPem(cert));
  writeFileSync(join(out, `${name}.key`), privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), { mode: 0o600 });
  return { cert: join(out, `${name}.crt`), key: join(out, `${name}.key`), ca: join(out, 'ca.crt') };
}

describe('refused at the handshake', () => {
  it.each([['TLSv1'], ['TLSv1.1']] as const)('%s', async (v) => {
    const r = await tryKmip({ ...material(good), minVersion: v, maxVersion: v, ciphers: 'DEFAULT@SECLEVEL=0' });
    expect(r).toMatch(/^error: .*(protocol|version)/i);
    await checkIntact();
  });

  it('no client certificate', async () => {
    expect(await tryKmip({ ca: readFileSync(good.ca) })).not.toBe('answered');
    await checkIntact();
  });

  it('a certificate from another CA', async () => {
    expect(await tryKmip({ ...material(foreign), ca: readFileSync(good.ca) })).not.toBe('answered');
    await checkIntact();
  });

  it('a trusted certificate once it has expired', async () => {
    // Long enough to be trusted and used once on a busy machine, short enough not to slow the suite.
    const b = shortLivedBundle('shortlived', 4);
    const expires = Date.now() + 4000;
    await kmipd('client', 'trust', 'shortlived', '--cert', b.cert, '--data', dir.path);
    // Trusted and valid: served. The same certificate after its notAfter: refused.
    expect(await tryKmip(material(b))).toBe('answered');
    await new Promise((r) => setTimeout(r, Math.max(0, expires - Date.now()) + 1100));
    expect(await tryKmip(material(b))).not.toBe('answered');
    await checkIntact();
  });

  it("a revoked certificate, and the revoked client's open connection is closed", async () => {
    const b = await enroll('revoked');
    const open = await RawConnection.open(server.port, b);
    expect(await open.stillServes()).toBe(true);
    await kmipd('client', 'revoke', 'revoked', '--data', dir.path, '--reason', 'hostile-input test');
    expect(await tryKmip(material(b))).not.toBe('answered');
    expect(await open.stillServes()).toBe(false);
    open.close();
    await checkIntact();
  });
});

describe('timeouts', () => {
  it('closes a TCP connection that never starts the TLS handshake', async () => {
    tally.malformedInputs += 1;
    const started = performance.now();
    const closed = await new Promise<boolean>((resolve) => {
      const s = tcpConnect(server.port, '127.0.0.1');
      const t = setTimeout(() => (s.destroy(), resolve(false)), 10_000);
      s.on('close', () => (clearTimeout(t), resolve(true)));
      s.on('error', () => undefined);
    });
    expect(closed).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(HANDSHAKE_MS * 0.8);
    await checkIntact();
  });

  it('closes a handshake dribbled one byte at a time (each byte would reset an inactivity timer)', async () => {
    tally.malformedInputs += 1;
    const started = performance.now();
    const closed = await new Promise<boolean>((resolve) => {
      const s = tcpConnect(server.port, '127.0.0.1');
      // A TLS handshake record header announcing 512 bytes, then one byte every 100 ms.
      const bytes = Buffer.concat([Buffer.from('1603010200', 'hex'), Buffer.alloc(512, 1)]);
      let i = 0;
      const drip = setInterval(() => {
        if (i < bytes.length && !s.destroyed) s.write(bytes.subarray(i, ++i));
      }, 100);
      const t = setTimeout(() => (clearInterval(drip), s.destroy(), resolve(false)), 10_000);
      s.on('close', () => (clearInterval(drip), clearTimeout(t), resolve(true)));
      s.on('error', () => undefined);
    });
    expect(closed).toBe(true);
    expect(performance.now() - started).toBeLessThan(HANDSHAKE_MS + 3000);
    await checkIntact();
  });

  it('closes an idle connection, and keeps one that is used', async () => {
    const idle = await RawConnection.open(server.port, good);
    const busy = await RawConnection.open(server.port, good);
    // Busy: a request every IDLE_MS/3 for twice the idle timeout.
    for (let t = 0; t < 6; t++) {
      await new Promise((r) => setTimeout(r, IDLE_MS / 3));
      expect(await busy.stillServes()).toBe(true);
    }
    expect(idle.closed).toBe(true);
    busy.close();
    idle.close();
    await checkIntact();
  });

  it('closes a connection that sends a request one byte at a time (slowloris)', async () => {
    tally.malformedInputs += 1;
    const c = await RawConnection.open(server.port, good);
    const request = encodeRequest(V12, [discoverItem()]);
    const started = performance.now();
    let i = 0;
    const drip = setInterval(() => {
      if (i < request.length) c.write(request.subarray(i, ++i));
    }, 100);
    const closed = await c.waitClosed(10_000);
    clearInterval(drip);
    expect(closed).toBe(true);
    expect(i).toBeLessThan(request.length); // closed before the request was complete
    expect(performance.now() - started).toBeLessThan(READ_MS + 3000);
    c.close();
    await checkIntact();
  });
});

describe('connection limits', () => {
  it(`refuses a client's connection past ${MAX_PER_CLIENT}, while its others and other clients keep working`, async () => {
    const mine = await Promise.all(Array.from({ length: MAX_PER_CLIENT }, () => RawConnection.open(server.port, extra[0]!)));
    for (const c of mine) expect(await c.stillServes()).toBe(true);
    expect(await tryKmip(material(extra[0]!))).not.toBe('answered');
    for (const c of mine) expect(await c.stillServes()).toBe(true);
    expect(await tryKmip(material(extra[1]!))).toBe('answered');
    mine.pop()!.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(await tryKmip(material(extra[0]!))).toBe('answered');
    for (const c of mine) c.close();
    await checkIntact();
  });

  it(`refuses connections past ${MAX_CONNECTIONS} in total, while open ones keep working`, async () => {
    const open: RawConnection[] = [];
    for (const b of [extra[0]!, extra[1]!, extra[2]!]) {
      for (let i = 0; i < MAX_PER_CLIENT; i++) open.push(await RawConnection.open(server.port, b));
    }
    expect(open).toHaveLength(MAX_CONNECTIONS);
    const refused = await tryKmip(material(good));
    expect(refused).not.toBe('answered');
    for (const c of open) expect(await c.stillServes()).toBe(true);
    open.pop()!.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(await tryKmip(material(good))).toBe('answered');
    for (const c of open) c.close();
    await new Promise((r) => setTimeout(r, 200));
    await checkIntact();
  });
});
