import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  certificateSummary,
  initDevPki,
  issueClientCertificate,
  PkiError,
  pkiPaths,
  writeClientBundle,
  type IssuedClient,
} from '../../src/pki/index.js';
import { modeOf, removeTempDirs, tempDir, tempFilesIn } from './helpers.js';

const DAY = 86_400_000;

afterAll(removeTempDirs);

function ext(pem: string, name: string): Record<string, unknown> | undefined {
  return forge.pki.certificateFromPem(pem).getExtension(name) as Record<string, unknown> | undefined;
}

async function readAll(paths: string[]): Promise<Buffer[]> {
  return Promise.all(paths.map((p) => readFile(p)));
}

describe('initDevPki', () => {
  let dir: string;
  let first: Awaited<ReturnType<typeof initDevPki>>;

  beforeAll(async () => {
    dir = join(await tempDir(), 'pki'); // not existing yet: init must create it
    first = await initDevPki(dir);
  });

  it('creates the four files with private modes for keys', async () => {
    const p = first.paths;
    expect(first.created).toBe(true);
    expect(p).toEqual(pkiPaths(dir));
    expect(p.caCert).toBe(join(dir, 'ca.crt'));
    expect(await modeOf(dir)).toBe(0o700);
    expect(await modeOf(p.caKey)).toBe(0o600);
    expect(await modeOf(p.serverKey)).toBe(0o600);
    expect(await modeOf(p.caCert)).toBe(0o644);
    expect(await modeOf(p.serverCert)).toBe(0o644);
    expect(await tempFilesIn(dir)).toEqual([]);
    for (const key of [p.caKey, p.serverKey]) {
      expect(await readFile(key, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    }
  });

  it('is idempotent: a second call changes nothing', async () => {
    const p = first.paths;
    const files = [p.caCert, p.caKey, p.serverCert, p.serverKey];
    const before = await readAll(files);
    const mtimes = await Promise.all(files.map(async (f) => (await stat(f)).mtimeMs));
    const again = await initDevPki(dir);
    expect(again.created).toBe(false);
    expect(await readAll(files)).toEqual(before);
    expect(await Promise.all(files.map(async (f) => (await stat(f)).mtimeMs))).toEqual(mtimes);
  });

  it('builds a CA with the required profile', async () => {
    const pem = await readFile(first.paths.caCert, 'utf8');
    const ca = new X509Certificate(pem);
    expect(ca.ca).toBe(true);
    expect(ca.subject).toMatch(/^O=kmipd\nCN=kmipd CA [0-9a-f]{8}$/);
    expect(ca.issuer).toBe(ca.subject);
    expect(ca.verify(ca.publicKey)).toBe(true);
    expect(ca.publicKey.asymmetricKeyDetails?.modulusLength).toBe(3072);
    expect(forge.pki.certificateFromPem(pem).siginfo.algorithmOid).toBe(forge.pki.oids['sha256WithRSAEncryption']);
    expect(ext(pem, 'basicConstraints')).toMatchObject({ cA: true, pathLenConstraint: 0, critical: true });
    expect(ext(pem, 'keyUsage')).toMatchObject({ keyCertSign: true, cRLSign: true, critical: true, digitalSignature: false });
    expect(ext(pem, 'subjectKeyIdentifier')).toBeDefined();
    const s = certificateSummary(pem);
    const years = (s.notAfter.getTime() - s.notBefore.getTime()) / (365 * DAY);
    expect(years).toBeGreaterThan(9.9);
    expect(years).toBeLessThan(10.1);
  });

  it('builds a server certificate signed by the CA', async () => {
    const caPem = await readFile(first.paths.caCert, 'utf8');
    const pem = await readFile(first.paths.serverCert, 'utf8');
    const ca = new X509Certificate(caPem);
    const srv = new X509Certificate(pem);
    expect(srv.verify(ca.publicKey)).toBe(true);
    expect(srv.checkIssued(ca)).toBe(true);
    expect(srv.ca).toBe(false);
    expect(srv.subject).toBe('O=kmipd\nCN=localhost');
    expect(srv.subjectAltName).toContain('DNS:localhost');
    expect(srv.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(srv.subjectAltName).toContain('IP Address:0:0:0:0:0:0:0:1');
    expect(srv.checkHost('localhost')).toBe('localhost');
    expect(srv.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(srv.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // EKU serverAuth only
    expect(srv.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(srv.checkPrivateKey(createPrivateKey(await readFile(first.paths.serverKey, 'utf8')))).toBe(true);
    expect(ext(pem, 'keyUsage')).toMatchObject({ digitalSignature: true, keyEncipherment: true, keyCertSign: false, critical: true });
    const caSki = ext(caPem, 'subjectKeyIdentifier')?.['subjectKeyIdentifier'];
    const aki = forge.pki.certificateFromPem(pem).getExtension('authorityKeyIdentifier') as { value: string } | undefined;
    expect(aki).toBeDefined();
    // AKI value is SEQUENCE { [0] keyIdentifier }: the key id must be the CA's SKI.
    const akiSeq = forge.asn1.fromDer(aki!.value);
    const keyId = (akiSeq.value as forge.asn1.Asn1[])[0]!.value as string;
    expect(forge.util.bytesToHex(keyId)).toBe(caSki);
    const s = certificateSummary(pem);
    expect(s.notAfter.getTime() - s.notBefore.getTime()).toBeLessThanOrEqual(825 * DAY);
    expect(s.notAfter.getTime() - Date.now()).toBeGreaterThan(700 * DAY);
  });

  it('reissues only the server pair when it is missing or does not match', async () => {
    const p = first.paths;
    const caBefore = await readAll([p.caCert, p.caKey]);
    const oldServer = await readFile(p.serverCert, 'utf8');

    await rm(p.serverCert);
    const r1 = await initDevPki(dir);
    expect(r1.created).toBe(true);
    expect(await readAll([p.caCert, p.caKey])).toEqual(caBefore);
    const reissued = await readFile(p.serverCert, 'utf8');
    expect(reissued).not.toBe(oldServer);
    expect(new X509Certificate(reissued).checkIssued(new X509Certificate(caBefore[0]!))).toBe(true);

    // A server key that does not belong to the cert (e.g. a crash between the two writes).
    const stray = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    await writeFile(p.serverKey, stray, { mode: 0o600 });
    const r2 = await initDevPki(dir);
    expect(r2.created).toBe(true);
    const cert = new X509Certificate(await readFile(p.serverCert));
    expect(cert.checkPrivateKey(createPrivateKey(await readFile(p.serverKey, 'utf8')))).toBe(true);
    expect(await readAll([p.caCert, p.caKey])).toEqual(caBefore);
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it('honours custom server names and IPs (CN = first name)', async () => {
    const d = await tempDir();
    await initDevPki(d, { serverDnsNames: ['kmip.example.test', 'alt.example.test'], serverIps: ['10.1.2.3', '::ffff:192.0.2.1'] });
    const srv = new X509Certificate(await readFile(pkiPaths(d).serverCert));
    expect(srv.subject).toBe('O=kmipd\nCN=kmip.example.test');
    expect(srv.subjectAltName).toBe(
      'DNS:kmip.example.test, DNS:alt.example.test, IP Address:10.1.2.3, IP Address:0:0:0:0:0:FFFF:C000:201',
    );
    expect(srv.subjectAltName).not.toContain('localhost');
  });

  it('rejects bad server names before writing anything', async () => {
    const d = join(await tempDir(), 'never');
    await expect(initDevPki(d, { serverDnsNames: ['bad_name!'] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(initDevPki(d, { serverIps: ['300.1.1.1'] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(initDevPki(d, { serverDnsNames: [], serverIps: [] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(stat(d)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('recovers a CA key left without its certificate, refuses a CA cert without its key', async () => {
    const d = await tempDir();
    const key = generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    await writeFile(join(d, 'ca.key'), key, { mode: 0o600 });
    const r = await initDevPki(d);
    expect(r.created).toBe(true);
    expect(await readFile(r.paths.caKey, 'utf8')).toBe(key);
    expect(new X509Certificate(await readFile(r.paths.caCert)).checkPrivateKey(createPrivateKey(key))).toBe(true);

    await rm(r.paths.caKey);
    await expect(initDevPki(d)).rejects.toMatchObject({ code: 'CA_MISSING' });
  });
});

describe('client enrollment', () => {
  let pki: string;
  let caPem: string;
  let issued: IssuedClient;

  beforeAll(async () => {
    pki = await tempDir();
    await initDevPki(pki);
    caPem = await readFile(pkiPaths(pki).caCert, 'utf8');
    issued = await issueClientCertificate(pki, 'vcenter-01');
  });

  it('issues a clientAuth certificate for CN=name signed by the CA', () => {
    const ca = new X509Certificate(caPem);
    const cert = new X509Certificate(issued.certPem);
    expect(issued.name).toBe('vcenter-01');
    expect(issued.caPem).toBe(caPem);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.issuer).toBe(ca.subject);
    expect(cert.subject).toBe('O=kmipd clients\nCN=vcenter-01');
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']); // EKU clientAuth only
    expect(cert.ca).toBe(false);
    expect(cert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(ext(issued.certPem, 'keyUsage')).toMatchObject({ digitalSignature: true, keyEncipherment: true, critical: true });
    expect(issued.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(cert.checkPrivateKey(createPrivateKey(issued.keyPem))).toBe(true);
  });

  it('reports serial, fingerprint and expiry consistent with the certificate', () => {
    const cert = new X509Certificate(issued.certPem);
    expect(issued.serialHex).toMatch(/^[0-7][0-9a-f]{31}$/);
    expect(issued.serialHex).not.toMatch(/^00/);
    expect(cert.serialNumber.toLowerCase()).toBe(issued.serialHex);
    expect(issued.fingerprintSha256).toBe(cert.fingerprint256.replace(/:/g, '').toLowerCase());
    expect(issued.notAfter.getTime()).toBe(new Date(cert.validTo).getTime());
    const days = (issued.notAfter.getTime() - Date.now()) / DAY;
    expect(days).toBeGreaterThan(729);
    expect(days).toBeLessThanOrEqual(731);
  });

  it('uses fresh keys and serials per enrollment, honours days', async () => {
    const other = await issueClientCertificate(pki, 'vcenter-01', { days: 30 });
    expect(other.serialHex).not.toBe(issued.serialHex);
    expect(other.keyPem).not.toBe(issued.keyPem);
    expect(Math.round((other.notAfter.getTime() - Date.now()) / DAY)).toBe(30);
    await expect(issueClientCertificate(pki, 'x', { days: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(issueClientCertificate(pki, 'x', { days: 1.5 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('accepts names with dots, dashes and underscores', async () => {
    const c = await issueClientCertificate(pki, 'esx_host-1.lab');
    expect(certificateSummary(c.certPem).subjectCN).toBe('esx_host-1.lab');
    const maxLen = 'a'.repeat(64);
    expect(certificateSummary((await issueClientCertificate(pki, maxLen)).certPem).subjectCN).toBe(maxLen);
  });

  it.each([
    ['../x', '../x'],
    ['empty', ''],
    ['65 chars', 'a'.repeat(65)],
    ['slash', 'a/b'],
    ['backslash', 'a\\b'],
    ['dot', '.'],
    ['dot-dot', '..'],
    ['hidden', '.x'],
    ['leading dash', '-x'],
    ['space', 'a b'],
    ['NUL', 'a\0b'],
    ['non-ASCII', 'caf\u00e9'],
  ])('rejects a bad name (%s)', async (_label, name) => {
    const err = await issueClientCertificate(pki, name).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PkiError);
    expect(err).toMatchObject({ code: 'INVALID_NAME' });
  });

  it('fails clearly without a CA', async () => {
    await expect(issueClientCertificate(await tempDir(), 'x')).rejects.toMatchObject({ code: 'CA_MISSING' });
  });

  it('writes the bundle with the right names and modes, atomically', async () => {
    const out = join(await tempDir(), 'clients', 'vc');
    const r = await writeClientBundle(out, issued);
    expect(r).toEqual({ certPath: join(out, 'vcenter-01.crt'), keyPath: join(out, 'vcenter-01.key'), caPath: join(out, 'ca.crt') });
    expect(await modeOf(out)).toBe(0o700);
    expect(await modeOf(r.keyPath)).toBe(0o600);
    expect(await modeOf(r.certPath)).toBe(0o644);
    expect(await modeOf(r.caPath)).toBe(0o644);
    expect(await readFile(r.keyPath, 'utf8')).toBe(issued.keyPem);
    expect(await readFile(r.keyPath, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(await readFile(r.certPath, 'utf8')).toBe(issued.certPem);
    expect(await readFile(r.caPath, 'utf8')).toBe(caPem);
    const cert = new X509Certificate(await readFile(r.certPath));
    expect(cert.checkPrivateKey(createPrivateKey(await readFile(r.keyPath)))).toBe(true);
    expect(await tempFilesIn(out)).toEqual([]);
  });

  it('refuses to overwrite an existing key unless forced', async () => {
    const out = await tempDir();
    const { keyPath, certPath } = await writeClientBundle(out, issued);
    const second = await issueClientCertificate(pki, 'vcenter-01');

    const err = await writeClientBundle(out, second).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PkiError);
    expect(err).toMatchObject({ code: 'EXISTS' });
    expect(await readFile(keyPath, 'utf8')).toBe(issued.keyPem);
    expect(await readFile(certPath, 'utf8')).toBe(issued.certPem);
    expect(await tempFilesIn(out)).toEqual([]);

    await writeClientBundle(out, second, { force: true });
    expect(await readFile(keyPath, 'utf8')).toBe(second.keyPem);
    expect(await readFile(certPath, 'utf8')).toBe(second.certPem);
    expect(await modeOf(keyPath)).toBe(0o600);
    expect(await tempFilesIn(out)).toEqual([]);
  });

  it('refuses inconsistent or colliding bundles', async () => {
    const out = await tempDir();
    await expect(writeClientBundle(out, { ...issued, name: '../evil' })).rejects.toMatchObject({ code: 'INVALID_NAME' });
    await expect(writeClientBundle(out, { ...issued, name: 'CA' })).rejects.toMatchObject({ code: 'INVALID_NAME' });
    const other = await issueClientCertificate(pki, 'other');
    await expect(writeClientBundle(out, { ...issued, keyPem: other.keyPem })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(await tempFilesIn(out)).toEqual([]);
  });
});
