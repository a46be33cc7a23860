import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

import forge from 'node-forge';

import { CERT_FILE_MODE, KEY_FILE_MODE, PRIVATE_DIR_MODE, pathExists, writeFileAtomic } from './atomic-file.js';
import { certificateSummary } from './certificates.js';
import { PkiError } from './errors.js';
import { buildCaCertificate, buildLeafCertificate, buildLeafCertificateForSpki, DAY_MS, generateRsaKey, loadIssuer, subjectAttr, type Issuer } from './issue.js';
import { parseCertificateRequest } from './csr.js';
import { assertValidClientName, ipToBytes, isValidDnsName } from './names.js';

const CA_DAYS = 3650;
// Stays under the 825-day ceiling that Apple and some TLS stacks impose on server certificates.
const SERVER_DAYS = 730;
const CLIENT_DAYS = 730;
const MAX_CLIENT_DAYS = 3650;

export interface PkiPaths {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
}

export function pkiPaths(dir: string): PkiPaths {
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
  };
}

export interface InitDevPkiOptions {
  /** Replaces the default ['localhost', os.hostname()]; the first entry becomes the CN. */
  serverDnsNames?: string[];
  /** Replaces the default ['127.0.0.1', '::1']. */
  serverIps?: string[];
}

/**
 * Create the dev CA and server certificate in `dir`. Idempotent: an existing CA is never
 * replaced (enrolled clients depend on it), and an existing server cert/key pair is kept
 * as long as the key matches the cert; otherwise the server pair is (re)issued.
 */
export async function initDevPki(dir: string, opts: InitDevPkiOptions = {}): Promise<{ created: boolean; paths: PkiPaths }> {
  const paths = pkiPaths(dir);
  const names = serverNames(opts);
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });

  const [hasCaCert, hasCaKey] = await Promise.all([pathExists(paths.caCert), pathExists(paths.caKey)]);
  let created = false;
  if (hasCaCert && !hasCaKey) {
    throw new PkiError('CA_MISSING', `${paths.caCert} exists but ${paths.caKey} is missing; cannot issue certificates`);
  }
  if (!hasCaKey) {
    const key = await generateRsaKey(3072);
    // Key first: a crash before the cert is written is recovered below on the next run.
    await writeFileAtomic(paths.caKey, key.pkcs8Pem, { mode: KEY_FILE_MODE, noClobber: true });
  }
  if (!hasCaCert) {
    // Self-sign (again) from the key on disk, so a CA key left by an interrupted run is reused.
    const keyPem = await readFile(paths.caKey, 'utf8');
    const priv = forge.pki.privateKeyFromPem(keyPem);
    const pub = forge.pki.setRsaPublicKey(priv.n, priv.e);
    await writeFileAtomic(paths.caCert, buildCaCertificate(priv, pub, CA_DAYS), { mode: CERT_FILE_MODE, noClobber: true });
    created = true;
  }

  if (created || !(await serverPairUsable(paths))) {
    await issueServerPair(dir, names, SERVER_DAYS);
    created = true;
  }
  return { created, paths };
}

function serverNames(opts: InitDevPkiOptions): { cn: string; dns: string[]; ips: string[] } {
  let dns: string[];
  if (opts.serverDnsNames) {
    const bad = opts.serverDnsNames.find((n) => !isValidDnsName(n));
    if (bad !== undefined) throw new PkiError('INVALID_ARGUMENT', `invalid server DNS name ${JSON.stringify(bad)}`);
    dns = opts.serverDnsNames;
  } else {
    // The machine hostname is a convenience; skip it if it is not a usable DNS name.
    dns = ['localhost', hostname()].filter(isValidDnsName);
  }
  dns = dedupe(dns.map((n) => n.replace(/\.$/, '')));
  const ips = dedupe(opts.serverIps ?? ['127.0.0.1', '::1']);
  ips.forEach(ipToBytes); // throws on a bad address before anything is written
  const cn = dns[0] ?? ips[0];
  if (cn === undefined) throw new PkiError('INVALID_ARGUMENT', 'the server certificate needs at least one DNS name or IP');
  return { cn, dns, ips };
}

/**
 * A new server key and certificate from the dev CA. The key is written first: if we crash between
 * the two writes the pair mismatches, so init reissues it and a watching server keeps the old pair.
 */
async function issueServerPair(pkiDir: string, names: { cn: string; dns: string[]; ips: string[] }, days: number): Promise<string> {
  const paths = pkiPaths(pkiDir);
  const issuer = await loadCa(pkiDir);
  const key = await generateRsaKey(2048);
  const { pem } = buildLeafCertificate(issuer, {
    publicKey: key.forgePublic,
    subject: [subjectAttr('O', 'kmipd'), subjectAttr('CN', names.cn)],
    notAfter: new Date(Date.now() + days * DAY_MS),
    usage: 'serverAuth',
    dnsNames: names.dns,
    ips: names.ips,
  });
  await writeFileAtomic(paths.serverKey, key.pkcs8Pem, { mode: KEY_FILE_MODE });
  await writeFileAtomic(paths.serverCert, pem, { mode: CERT_FILE_MODE });
  return pem;
}

function dedupe(values: string[]): string[] {
  const seen = new Set<string>();
  return values.filter((v) => {
    const k = v.toLowerCase();
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

async function serverPairUsable(paths: PkiPaths): Promise<boolean> {
  if (!(await pathExists(paths.serverCert)) || !(await pathExists(paths.serverKey))) return false;
  try {
    const [certPem, keyPem] = await Promise.all([readFile(paths.serverCert, 'utf8'), readFile(paths.serverKey, 'utf8')]);
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false; // unreadable or garbage: reissue
  }
}

async function loadCa(pkiDir: string): Promise<Issuer & { certPem: string }> {
  const paths = pkiPaths(pkiDir);
  let certPem: string;
  let keyPem: string;
  try {
    [certPem, keyPem] = await Promise.all([readFile(paths.caCert, 'utf8'), readFile(paths.caKey, 'utf8')]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new PkiError('CA_MISSING', `no CA in ${pkiDir} (expected ca.crt and ca.key); run the PKI init first`);
    }
    throw err;
  }
  if (!new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem))) {
    throw new PkiError('INVALID_ARGUMENT', `${paths.caKey} does not match ${paths.caCert}`);
  }
  return { ...loadIssuer(certPem, keyPem), certPem };
}

export interface IssuedClient {
  name: string;
  certPem: string;
  /** Unencrypted PKCS#8 PEM. */
  keyPem: string;
  caPem: string;
  fingerprintSha256: string;
  serialHex: string;
  notAfter: Date;
}

/** Issue a client (clientAuth) certificate signed by the CA in `pkiDir`. Writes nothing. */
export async function issueClientCertificate(pkiDir: string, name: string, opts: { days?: number } = {}): Promise<IssuedClient> {
  assertValidClientName(name);
  const days = opts.days ?? CLIENT_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > MAX_CLIENT_DAYS) {
    throw new PkiError('INVALID_ARGUMENT', `days must be an integer from 1 to ${MAX_CLIENT_DAYS}`);
  }
  const ca = await loadCa(pkiDir);
  const key = await generateRsaKey(2048);
  const { pem, serialHex } = buildLeafCertificate(ca, {
    publicKey: key.forgePublic,
    subject: [subjectAttr('O', 'kmipd clients'), subjectAttr('CN', name)],
    notAfter: new Date(Date.now() + days * DAY_MS),
    usage: 'clientAuth',
  });
  const summary = certificateSummary(pem);
  return {
    name,
    certPem: pem,
    keyPem: key.pkcs8Pem,
    caPem: ca.certPem,
    fingerprintSha256: summary.fingerprintSha256,
    serialHex,
    notAfter: summary.notAfter,
  };
}

/**
 * Write NAME.crt, NAME.key (0600) and ca.crt into `outDir` (created 0700 if missing).
 * An existing NAME.key is only replaced with `force`, so a re-run cannot silently
 * destroy a key that a client is already using.
 */
export async function writeClientBundle(
  outDir: string,
  issued: IssuedClient,
  opts: { force?: boolean } = {},
): Promise<{ certPath: string; keyPath: string; caPath: string }> {
  assertValidClientName(issued.name);
  if (issued.name.toLowerCase() === 'ca') {
    throw new PkiError('INVALID_NAME', 'a client named "ca" would collide with ca.crt in the bundle');
  }
  if (!new X509Certificate(issued.certPem).checkPrivateKey(createPrivateKey(issued.keyPem))) {
    throw new PkiError('INVALID_ARGUMENT', `certificate and key for ${issued.name} do not match`);
  }
  const certPath = join(outDir, `${issued.name}.crt`);
  const keyPath = join(outDir, `${issued.name}.key`);
  const caPath = join(outDir, 'ca.crt');
  const force = opts.force === true;
  await mkdir(outDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  // Early check so nothing is touched; the noClobber write closes the remaining race.
  if (!force && (await pathExists(keyPath))) {
    throw new PkiError('EXISTS', `${keyPath} already exists; use force to replace it`);
  }
  await writeFileAtomic(keyPath, issued.keyPem, { mode: KEY_FILE_MODE, noClobber: !force });
  await writeFileAtomic(certPath, issued.certPem, { mode: CERT_FILE_MODE });
  await writeFileAtomic(caPath, issued.caPem, { mode: CERT_FILE_MODE });
  return { certPath, keyPath, caPath };
}

export interface SignedCertificate {
  certPem: string;
  caPem: string;
  fingerprintSha256: string;
  serialHex: string;
  notAfter: Date;
  /** e.g. "RSA 2048", "EC P-256". */
  keyDescription: string;
  /** The subject the request asked for (not copied into the certificate). */
  requestedSubject: string;
}

/**
 * Sign a client's certificate signing request with the CA in `pkiDir`. The request's signature,
 * key type and size are checked; nothing but its public key is used: the subject is ours
 * (O=kmipd clients, CN=NAME) and so are the extensions (clientAuth, digitalSignature, not a CA).
 */
export async function signClientCsr(pkiDir: string, name: string, csr: string | Uint8Array, opts: { days?: number } = {}): Promise<SignedCertificate> {
  assertValidClientName(name);
  const days = opts.days ?? CLIENT_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > MAX_CLIENT_DAYS) {
    throw new PkiError('INVALID_ARGUMENT', `days must be an integer from 1 to ${MAX_CLIENT_DAYS}`);
  }
  const request = parseCertificateRequest(csr);
  const ca = await loadCa(pkiDir);
  const { pem, serialHex } = buildLeafCertificateForSpki(ca, request.spki, {
    subject: [subjectAttr('O', 'kmipd clients'), subjectAttr('CN', name)],
    notAfter: new Date(Date.now() + days * DAY_MS),
    usage: 'clientAuth',
  });
  const x509 = new X509Certificate(pem);
  // Belt and braces: the certificate verifies under the CA and carries exactly the requested key.
  if (!x509.verify(new X509Certificate(ca.certPem).publicKey) || !x509.publicKey.equals(request.publicKey)) {
    throw new PkiError('INVALID_ARGUMENT', 'internal error: the issued certificate does not check out');
  }
  const summary = certificateSummary(pem);
  return {
    certPem: pem,
    caPem: ca.certPem,
    fingerprintSha256: summary.fingerprintSha256,
    serialHex,
    notAfter: summary.notAfter,
    keyDescription: request.keyDescription,
    requestedSubject: request.subject,
  };
}

/** The DNS names and IPs of a certificate's subjectAltName, as Node prints them. */
function altNamesOf(cert: X509Certificate): { dns: string[]; ips: string[] } {
  const dns: string[] = [];
  const ips: string[] = [];
  for (const part of (cert.subjectAltName ?? '').split(', ')) {
    if (part.startsWith('DNS:')) dns.push(part.slice(4));
    else if (part.startsWith('IP Address:')) ips.push(part.slice(11));
  }
  return { dns, ips };
}

/**
 * Issue a new server key and certificate from the dev CA, with the same names as the current one
 * unless others are given. The key is written first: a server watching the files only switches
 * once the pair matches again.
 */
export async function rotateServerCertificate(
  pkiDir: string,
  opts: InitDevPkiOptions & { days?: number } = {},
): Promise<{ fingerprintSha256: string; notAfter: Date; dnsNames: string[]; ips: string[] }> {
  const paths = pkiPaths(pkiDir);
  const current = altNamesOf(new X509Certificate(await readFile(paths.serverCert, 'utf8')));
  const names = serverNames({
    serverDnsNames: opts.serverDnsNames ?? current.dns,
    serverIps: opts.serverIps ?? current.ips,
  });
  const days = opts.days ?? SERVER_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > 825) throw new PkiError('INVALID_ARGUMENT', 'days must be an integer from 1 to 825');
  const pem = await issueServerPair(pkiDir, names, days);
  const summary = certificateSummary(pem);
  return { fingerprintSha256: summary.fingerprintSha256, notAfter: summary.notAfter, dnsNames: names.dns, ips: names.ips };
}
