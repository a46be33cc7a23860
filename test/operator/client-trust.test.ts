// The four ways vCenter can be made a trusted client, revocation and renewal: the real CLI against
// the real server over real mutual TLS, with certificates made in the test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { Operation, ResultStatus } from '../../src/kmip/registry/generated.js';
import { kmipd, initAndEnroll, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient } from '../helpers/kmip-client.js';
import {
  auditRecords,
  certificate,
  createKey,
  ecCsr,
  eventually,
  kmipdCa,
  kmipdFails,
  probe,
  rsaCsr,
  V12,
  writeBundle,
  type Issued,
} from './helpers.js';

let dir: ReturnType<typeof tempDir>;
let data: string;
let work: string;
let server: ServerProcess;
let enrolled: ClientBundle;

beforeAll(async () => {
  dir = tempDir();
  data = join(dir.path, 'data');
  work = join(dir.path, 'work');
  mkdirSync(work);
  enrolled = await initAndEnroll(data, 'vcenter01');
  server = await startServe(data);
});

afterAll(async () => {
  await server?.stop();
  dir?.remove();
});

/** A TLS session from one served connection, to resume with. */
async function sessionFrom(bundle: ClientBundle, version: 'TLSv1.2' | 'TLSv1.3'): Promise<Buffer> {
  const k = await KmipTestClient.connect(server.port, bundle, { minVersion: version, maxVersion: version });
  try {
    const r = await k.call(V12, [{ operation: Operation.DiscoverVersions, payload: [] }]);
    expect(r.items[0]!.status).toBe(ResultStatus.Success);
    expect(k.socket.isSessionReused()).toBe(false);
    // TLS 1.3 tickets arrive after the handshake, before the first answer.
    const session = k.socket.getSession();
    expect(session).toBeDefined();
    return session!;
  } finally {
    k.close();
  }
}

/** Connects resuming `session`: whether it was resumed, and whether the server then served a request. */
async function resumeWith(bundle: ClientBundle, version: 'TLSv1.2' | 'TLSv1.3', session: Buffer): Promise<{ reused: boolean; outcome: 'served' | 'refused' }> {
  const opts: Partial<ConnectionOptions> = { minVersion: version, maxVersion: version, session };
  const k = await KmipTestClient.connect(server.port, bundle, opts);
  const reused = k.socket.isSessionReused();
  try {
    const r = await k.call(V12, [{ operation: Operation.DiscoverVersions, payload: [] }]);
    return { reused, outcome: r.items[0]?.status === ResultStatus.Success ? 'served' : 'refused' };
  } catch {
    return { reused, outcome: 'refused' };
  } finally {
    k.close();
  }
}

const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();

describe('enrolled clients and the dev CA', () => {
  it('serves a client enrolled with `client enroll` as a manager, on TLS 1.2 and 1.3', async () => {
    expect(await probe(server.port, enrolled, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' })).toBe('served');
    expect(await probe(server.port, enrolled, { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' })).toBe('served');
    const k = await KmipTestClient.connect(server.port, enrolled);
    await createKey(k);
    k.close();
  });

  it('refuses a certificate signed by the kmipd CA that was never enrolled, and audits the refusal', async () => {
    const rogue = certificate({ cn: 'vcenter01', issuer: kmipdCa(data), eku: 'clientAuth' });
    const bundle = writeBundle(work, 'rogue', rogue.certPem, rogue.keyPem, data);
    for (const v of ['TLSv1.2', 'TLSv1.3'] as const) expect(await probe(server.port, bundle, { minVersion: v, maxVersion: v })).toBe('refused');
    const fp = fingerprintOf(rogue.certPem);
    const refusal = await eventually('refusal audit', () =>
      auditRecords(data).find((r) => r['operation'] === 'Connect' && r['fingerprint'] === fp && r['result'] === 'Refused'),
    );
    expect(refusal['reason']).toBe('certificate is not enrolled');
  });
});

describe('client sign-csr (vCenter: New Certificate Signing Request)', () => {
  it('signs an RSA request: clientAuth, not a CA, none of the requested extensions, and the client is served', async () => {
    const { csrPem, keyPem } = rsaCsr('vc-csr.example.com');
    writeFileSync(join(work, 'rsa.csr'), csrPem);
    const { stdout, stderr } = await kmipd('client', 'sign-csr', 'vc-csr', '--data', data, '--csr', join(work, 'rsa.csr'));
    expect(stdout.startsWith('-----BEGIN CERTIFICATE-----')).toBe(true);
    expect(stderr).toContain('RSA 2048');
    const x = new X509Certificate(stdout);
    expect(x.verify(new X509Certificate(readFileSync(enrolled.ca)).publicKey)).toBe(true);
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(x.ca).toBe(false);
    expect(x.subjectAltName).toBeUndefined();
    expect(x.subject).toContain('CN=vc-csr');
    expect(await probe(server.port, writeBundle(work, 'vc-csr', stdout, keyPem, data))).toBe('served');
  });

  it('signs an EC P-256 request', async () => {
    const { csrPem, keyPem } = ecCsr('vc-ec');
    writeFileSync(join(work, 'ec.csr'), csrPem);
    const { stdout, stderr } = await kmipd('client', 'sign-csr', 'vc-ec', '--data', data, '--csr', join(work, 'ec.csr'), '--role', 'reader');
    expect(stderr).toContain('EC P-256');
    expect(new X509Certificate(stdout).publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(await probe(server.port, writeBundle(work, 'vc-ec', stdout, keyPem, data))).toBe('served');
  });

  it('refuses a weak key, an unsupported curve and a request whose signature does not verify', async () => {
    writeFileSync(join(work, 'weak.csr'), rsaCsr('weak', 1024).csrPem);
    expect(await kmipdFails('client', 'sign-csr', 'weak', '--data', data, '--csr', join(work, 'weak.csr'))).toMatch(/at least 2048/);
    writeFileSync(join(work, 'p521.csr'), ecCsr('p521', 'secp521r1').csrPem);
    expect(await kmipdFails('client', 'sign-csr', 'p521', '--data', data, '--csr', join(work, 'p521.csr'))).toMatch(/P-256 or P-384/);
    // Same request, another subject: the signature no longer matches what was signed.
    const good = rsaCsr('aaaaaaaa').csrPem;
    const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const at = der.indexOf(Buffer.from('aaaaaaaa'));
    der.write('bbbbbbbb', at);
    writeFileSync(join(work, 'tampered.csr'), `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`);
    expect(await kmipdFails('client', 'sign-csr', 'tampered', '--data', data, '--csr', join(work, 'tampered.csr'))).toMatch(/signature does not verify/);
    const { stdout } = await kmipd('client', 'list', '--data', data, '--json');
    const names = (JSON.parse(stdout) as { name: string }[]).map((c) => c.name);
    expect(names).not.toContain('weak');
    expect(names).not.toContain('tampered');
  });
});

describe('client trust (vCenter: vCenter certificate)', () => {
  it("pins vCenter's self-signed certificate without the clientAuth usage", async () => {
    const vc = certificate({ cn: 'vcsa.example.com', eku: 'serverAuth' });
    const bundle = writeBundle(work, 'vcsa', vc.certPem, vc.keyPem, data);
    expect(await probe(server.port, bundle)).toBe('refused');
    writeFileSync(join(work, 'vcsa-only.crt'), vc.certPem);
    const { stdout } = await kmipd('client', 'trust', 'vcsa', '--data', data, '--cert', join(work, 'vcsa-only.crt'), '--tenant', 'blue');
    expect(stdout).toContain(fingerprintOf(vc.certPem));
    expect(await probe(server.port, bundle)).toBe('served');
  });

  it('refuses to pin an expired certificate, or one already registered', async () => {
    const old = certificate({ cn: 'old', notBefore: new Date(Date.now() - 10 * 86_400_000), days: 2 });
    writeFileSync(join(work, 'old.crt'), old.certPem);
    expect(await kmipdFails('client', 'trust', 'old', '--data', data, '--cert', join(work, 'old.crt'))).toMatch(/expired/);
    expect(await kmipdFails('client', 'trust', 'again', '--data', data, '--cert', join(work, 'vcsa-only.crt'))).toMatch(/already registered for client vcsa/);
  });
});

describe('client trust-ca (vCenter: vCenter Root CA certificate)', () => {
  let root: Issued;
  let intermediate: Issued;

  beforeAll(() => {
    root = certificate({ cn: 'Corp Root CA', o: 'Corp', ca: true, days: 3650 });
    intermediate = certificate({ cn: 'Corp Issuing CA', o: 'Corp', ca: true, issuer: root, pathLen: 0 });
    writeFileSync(join(work, 'root.crt'), root.certPem);
  });

  it('accepts only the trusted subject when --subject is given', async () => {
    await kmipd('client', 'trust-ca', 'vc-a', '--data', data, '--cert', join(work, 'root.crt'), '--subject', 'CN=vc-a.corp, O=Corp', '--role', 'writer');
    const a = certificate({ cn: 'vc-a.corp', o: 'Corp', issuer: root, eku: 'clientAuth' });
    const b = certificate({ cn: 'vc-b.corp', o: 'Corp', issuer: root, eku: 'clientAuth' });
    expect(await probe(server.port, writeBundle(work, 'vc-a', a.certPem, a.keyPem, data))).toBe('served');
    expect(await probe(server.port, writeBundle(work, 'vc-b', b.certPem, b.keyPem, data))).toBe('refused');
  });

  it('follows an intermediate the client sends, and still refuses a certificate not meant for client authentication', async () => {
    writeFileSync(join(work, 'root2.crt'), root.certPem);
    await kmipd('client', 'trust-ca', 'vc-i', '--data', data, '--cert', join(work, 'root2.crt'), '--subject', '/O=Corp/CN=vc-i.corp');
    const leaf = certificate({ cn: 'vc-i.corp', o: 'Corp', issuer: intermediate, eku: 'clientAuth' });
    const bundle = writeBundle(work, 'vc-i', leaf.certPem, leaf.keyPem, data, [intermediate.certPem]);
    expect(await probe(server.port, bundle)).toBe('served');
    // Same subject, but without the intermediate the path cannot be built.
    expect(await probe(server.port, writeBundle(work, 'vc-i-alone', leaf.certPem, leaf.keyPem, data))).toBe('refused');
    const serverOnly = certificate({ cn: 'vc-i.corp', o: 'Corp', issuer: intermediate, eku: 'serverAuth' });
    expect(await probe(server.port, writeBundle(work, 'vc-i-srv', serverOnly.certPem, serverOnly.keyPem, data, [intermediate.certPem]))).toBe('refused');
  });

  it('admits a resumed session of a client trusted through an intermediate (the session carries only the leaf)', async () => {
    const bundle = { cert: join(work, 'vc-i.crt'), key: join(work, 'vc-i.key'), ca: enrolled.ca };
    for (const v of ['TLSv1.2', 'TLSv1.3'] as const) {
      const session = await sessionFrom(bundle, v);
      expect(await resumeWith(bundle, v, session)).toEqual({ reused: true, outcome: 'served' });
    }
  });

  it('refuses a leaf certificate as a trusted CA, and a second unrestricted trust in the same CA', async () => {
    const leaf = certificate({ cn: 'not-a-ca', eku: 'clientAuth' });
    writeFileSync(join(work, 'leaf.crt'), leaf.certPem);
    expect(await kmipdFails('client', 'trust-ca', 'x', '--data', data, '--cert', join(work, 'leaf.crt'))).toMatch(/not a CA certificate/);
    expect(await kmipdFails('client', 'trust-ca', 'y', '--data', data, '--cert', join(work, 'root.crt'))).toMatch(/already trusted for client/);
  });
});

describe('client list', () => {
  it('shows name, tenant, role, trust, fingerprint, expiry and last seen', async () => {
    const { stdout } = await kmipd('client', 'list', '--data', data, '--json');
    const list = JSON.parse(stdout) as { name: string; tenant: string; role: string; lastSeenAt: string | null; credentials: { trust: string; fingerprint: string; expires: string; subject: string | null }[] }[];
    const by = new Map(list.map((c) => [c.name, c]));
    expect(by.get('vcenter01')).toMatchObject({ tenant: 'default', role: 'manager' });
    expect(by.get('vcenter01')!.credentials[0]).toMatchObject({ trust: 'issued', fingerprint: fingerprintOf(readFileSync(enrolled.cert, 'utf8')) });
    expect(by.get('vcenter01')!.lastSeenAt).not.toBeNull();
    expect(by.get('vcsa')).toMatchObject({ tenant: 'blue', role: 'manager' });
    expect(by.get('vcsa')!.credentials[0]!.trust).toBe('pinned');
    expect(by.get('vc-ec')!.role).toBe('reader');
    expect(by.get('vc-a')!.credentials[0]).toMatchObject({ trust: 'ca', subject: 'CN=vc-a.corp,O=Corp' });
    const table = (await kmipd('client', 'list', '--data', data)).stdout;
    expect(table).toMatch(/^NAME\s+TENANT\s+ROLE\s+TRUST\s+FINGERPRINT/);
    expect(table).toMatch(/vcsa\s+blue\s+manager\s+pinned/);
  });
});

describe('client revoke and renew', () => {
  it('closes the open connections of a revoked client at once and refuses its next handshake, without a restart', async () => {
    const victim = await initAndEnroll(data, 'victim');
    const open = await KmipTestClient.connect(server.port, victim);
    expect((await open.call(V12, [{ operation: Operation.DiscoverVersions, payload: [] }])).items[0]!.status).toBe(ResultStatus.Success);
    const bystander = await KmipTestClient.connect(server.port, enrolled);
    const pid = server.proc.pid;
    await kmipd('client', 'revoke', 'victim', '--data', data, '--reason', 'laptop stolen');
    await open.waitClosed(5000); // idle connection: closed by the server, not by a request
    expect(await probe(server.port, victim)).toBe('refused');
    expect((await bystander.call(V12, [{ operation: Operation.DiscoverVersions, payload: [] }])).items[0]!.status).toBe(ResultStatus.Success);
    bystander.close();
    expect(server.proc.pid).toBe(pid);
    expect(server.proc.exitCode).toBeNull();
    const rec = auditRecords(data).find((r) => r['operation'] === 'client revoke' && r['client'] === 'victim');
    expect(rec).toMatchObject({ source: 'cli', result: 'Success', revocationReason: 'laptop stolen', msg: 'operator action' });
    expect(rec!['reason']).toBeUndefined();
    const fp = fingerprintOf(readFileSync(victim.cert, 'utf8'));
    await eventually('revoked refusal audit', () =>
      auditRecords(data).find((r) => r['operation'] === 'Connect' && r['fingerprint'] === fp && String(r['reason']).includes('revoked')),
    );
  });

  it('refuses a resumed TLS session once its client is revoked, on TLS 1.2 and 1.3', async () => {
    const resumer = await initAndEnroll(data, 'resumer');
    const sessions = { 'TLSv1.2': await sessionFrom(resumer, 'TLSv1.2'), 'TLSv1.3': await sessionFrom(resumer, 'TLSv1.3') };
    for (const v of ['TLSv1.2', 'TLSv1.3'] as const) expect(await resumeWith(resumer, v, sessions[v])).toEqual({ reused: true, outcome: 'served' });
    // The audit names the client of a resumed connection as it does for a full handshake.
    const k = await KmipTestClient.connect(server.port, resumer, { maxVersion: 'TLSv1.2', session: sessions['TLSv1.2'] });
    expect(k.socket.isSessionReused()).toBe(true);
    const id = await createKey(k, 'resumed-key');
    k.close();
    const created = await eventually('audit of the resumed connection', () => auditRecords(data).find((r) => r['operation'] === 'Create' && r['object'] === id));
    expect(created).toMatchObject({ client: 'resumer', fingerprint: fingerprintOf(readFileSync(resumer.cert, 'utf8')), result: 'Success' });
    await kmipd('client', 'revoke', 'resumer', '--data', data);
    for (const v of ['TLSv1.2', 'TLSv1.3'] as const) expect((await resumeWith(resumer, v, sessions[v])).outcome).toBe('refused');
  });

  it('renews: the new certificate works at once, the old one until it is revoked', async () => {
    const out = join(dir.path, 'renewed');
    const oldFp = fingerprintOf(readFileSync(enrolled.cert, 'utf8'));
    const oldBundle = writeBundle(work, 'vcenter01-old', readFileSync(enrolled.cert, 'utf8'), readFileSync(enrolled.key, 'utf8'), data);
    await kmipd('client', 'renew', 'vcenter01', '--data', data, '--out', out);
    const fresh = { cert: join(out, 'vcenter01.crt'), key: join(out, 'vcenter01.key'), ca: join(out, 'ca.crt') };
    expect(await probe(server.port, fresh)).toBe('served');
    expect(await probe(server.port, oldBundle)).toBe('served');
    await kmipd('client', 'revoke', 'vcenter01', '--data', data, '--fingerprint', oldFp);
    expect(await probe(server.port, oldBundle)).toBe('refused');
    expect(await probe(server.port, fresh)).toBe('served');
  });

  it('renews a pinned client with its new certificate', async () => {
    const next = certificate({ cn: 'vcsa.example.com', eku: 'serverAuth' });
    writeFileSync(join(work, 'vcsa-next.crt'), next.certPem);
    await kmipd('client', 'renew', 'vcsa', '--data', data, '--cert', join(work, 'vcsa-next.crt'), '--revoke-previous');
    expect(await probe(server.port, writeBundle(work, 'vcsa-next', next.certPem, next.keyPem, data))).toBe('served');
    expect(await probe(server.port, { cert: join(work, 'vcsa.crt'), key: join(work, 'vcsa.key'), ca: enrolled.ca })).toBe('refused');
  });
});
