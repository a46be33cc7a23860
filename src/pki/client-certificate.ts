// Checks on a client certificate presented over TLS, done by us (the TLS layer only proves the
// peer holds the private key): validity period, key strength, signature algorithms, critical
// extensions, and for certificates trusted through an external CA the whole path to that CA.
import type { X509Certificate } from 'node:crypto';
import {
  basicConstraints,
  describeAcceptableKey,
  hasKeyUsage,
  inspectCertificate,
  OID,
  UNDERSTOOD_EXTENSIONS,
  WEAK_SIGNATURE_OIDS,
  type CertificateDetails,
} from './x509-inspect.js';

/** How many intermediates between a leaf and a trusted CA we follow. */
export const MAX_INTERMEDIATES = 4;

export class CertificateRejected extends Error {
  override readonly name = 'CertificateRejected';
}

function reject(what: string): never {
  throw new CertificateRejected(what);
}

/**
 * What a certificate says that does not depend on the time of the check: its parsed fields, why
 * its key is unacceptable (if it is), and its validity dates. X509Certificate is immutable and the
 * server reuses one object per client certificate (client-trust.ts), so each is worked out once,
 * not at every connection of every ESXi host presenting it.
 */
interface TimelessFacts {
  readonly details: CertificateDetails | { readonly unparseable: string };
  readonly keyProblem: string | undefined;
  /** Milliseconds since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
}
const timeless = new WeakMap<X509Certificate, TimelessFacts>();

function factsOf(cert: X509Certificate): TimelessFacts {
  let facts = timeless.get(cert);
  if (!facts) {
    let details: TimelessFacts['details'];
    try {
      details = inspectCertificate(cert);
    } catch (err) {
      details = { unparseable: err instanceof Error ? err.message : String(err) };
    }
    let keyProblem: string | undefined;
    try {
      describeAcceptableKey(cert.publicKey);
    } catch (err) {
      keyProblem = (err as Error).message;
    }
    facts = { details, keyProblem, notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
    timeless.set(cert, facts);
  }
  return facts;
}

function details(cert: X509Certificate): CertificateDetails {
  const d = factsOf(cert).details;
  return 'unparseable' in d ? reject(`unparseable certificate: ${d.unparseable}`) : d;
}

export function certificateTimes(cert: X509Certificate): { notBefore: Date; notAfter: Date } {
  const { notBefore, notAfter } = factsOf(cert);
  return { notBefore: new Date(notBefore), notAfter: new Date(notAfter) };
}

function checkCommon(cert: X509Certificate, d: CertificateDetails, role: string, now: Date): void {
  const { notBefore, notAfter } = certificateTimes(cert);
  if (!(notBefore <= now)) reject(`${role} certificate is not valid before ${notBefore.toISOString()}`);
  if (!(now <= notAfter)) reject(`${role} certificate expired on ${notAfter.toISOString()}`);
  if (WEAK_SIGNATURE_OIDS.has(d.signatureOid)) reject(`${role} certificate is signed with a broken hash (${d.signatureOid})`);
  const keyProblem = factsOf(cert).keyProblem;
  if (keyProblem !== undefined) {
    reject(`${role} certificate key: ${keyProblem}`);
  }
  for (const [oid, ext] of d.extensions) {
    if (ext.critical && !UNDERSTOOD_EXTENSIONS.has(oid)) reject(`${role} certificate has an unsupported critical extension ${oid}`);
  }
}

/**
 * A certificate pinned by fingerprint (or issued by kmipd and recorded): the fingerprint already
 * matched, so only its time and strength are checked. vCenter's own certificate often lacks the
 * clientAuth extended key usage, and may even be marked as a CA: both are accepted when pinned.
 */
export function checkPinnedCertificate(cert: X509Certificate, now = new Date()): void {
  checkCommon(cert, details(cert), 'client', now);
}

function checkLeafForClientAuth(cert: X509Certificate, d: CertificateDetails): void {
  if (basicConstraints(d).ca) reject('a CA certificate cannot be used as a client certificate');
  const eku = cert.keyUsage; // Node 20 names the Extended Key Usage OIDs "keyUsage"
  if (eku !== undefined && !eku.includes(OID.clientAuth) && !eku.includes(OID.anyExtendedKeyUsage)) {
    reject('client certificate does not allow TLS client authentication (extended key usage)');
  }
  if (hasKeyUsage(d, 'digitalSignature') === false) reject('client certificate key usage does not allow digital signatures');
}

function checkIssuer(issuer: X509Certificate, role: string, below: number, now: Date): void {
  const d = details(issuer);
  checkCommon(issuer, d, role, now);
  const bc = basicConstraints(d);
  if (!bc.ca) reject(`${role} certificate is not a CA`);
  if (hasKeyUsage(d, 'keyCertSign') === false) reject(`${role} certificate may not sign certificates`);
  if (bc.pathLen !== undefined && below > bc.pathLen) reject(`${role} certificate allows ${bc.pathLen} intermediates, found ${below}`);
}

/** Signature checks already done, by child then issuer (both immutable; see TimelessFacts). */
const signatures = new WeakMap<X509Certificate, WeakMap<X509Certificate, boolean>>();

function signedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  let byIssuer = signatures.get(child);
  if (!byIssuer) {
    byIssuer = new WeakMap();
    signatures.set(child, byIssuer);
  }
  let ok = byIssuer.get(issuer);
  if (ok === undefined) {
    ok = child.checkIssued(issuer) && child.verify(issuer.publicKey);
    byIssuer.set(issuer, ok);
  }
  return ok;
}

/**
 * Verifies that `leaf` was issued under `anchor` (directly, or through intermediates the client
 * sent) and is fit for TLS client authentication. Throws CertificateRejected with the reason.
 */
export function checkIssuedUnder(leaf: X509Certificate, intermediates: readonly X509Certificate[], anchor: X509Certificate, now = new Date()): void {
  const d = details(leaf);
  checkCommon(leaf, d, 'client', now);
  checkLeafForClientAuth(leaf, d);
  const used = new Set<X509Certificate>();
  let current = leaf;
  for (let depth = 0; depth <= MAX_INTERMEDIATES; depth++) {
    if (signedBy(current, anchor)) {
      checkIssuer(anchor, 'trusted CA', depth, now);
      return;
    }
    const next = intermediates.find((i) => !used.has(i) && !i.raw.equals(current.raw) && signedBy(current, i));
    if (!next) break;
    checkIssuer(next, 'intermediate CA', depth, now);
    used.add(next);
    current = next;
  }
  reject('client certificate was not issued under the trusted CA');
}
