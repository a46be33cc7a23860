import { createHash, generateKeyPair as generateKeyPairCb, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

import forge from 'node-forge';

import { ipToBytes } from './names.js';
import { children, readWhole } from './der.js';

const generateKeyPair = promisify(generateKeyPairCb);
const { pki, asn1 } = forge;

export const DAY_MS = 86_400_000;
// Tolerate clients whose clocks run a little behind ours.
const BACKDATE_MS = 5 * 60_000;

export interface RsaKey {
  /** Unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"): what vCenter and PyKMIP accept. */
  pkcs8Pem: string;
  forgePublic: forge.pki.rsa.PublicKey;
}

/** Native RSA keygen (forge's pure-JS keygen takes seconds); forge only sees the public half. */
export async function generateRsaKey(bits: number): Promise<RsaKey> {
  const { publicKey, privateKey } = await generateKeyPair('rsa', { modulusLength: bits, publicExponent: 0x10001 });
  return {
    pkcs8Pem: exportPkcs8(privateKey),
    forgePublic: pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
  };
}

function exportPkcs8(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** 16 random bytes, top bit clear (positive INTEGER) and first byte non-zero (minimal DER). */
export function randomSerialHex(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) || 0x01;
  return b.toString('hex');
}

type Attr = forge.pki.CertificateField;
// UTF8String rather than forge's default PrintableString, which cannot carry '_' (valid in names).
// The typings declare valueTagClass as asn1.Class although forge stores an asn1.Type there.
const UTF8 = asn1.Type.UTF8 as unknown as forge.asn1.Class;
const attr = (shortName: string, value: string): Attr => ({ shortName, value, valueTagClass: UTF8 });

export interface Issuer {
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
}

export function loadIssuer(certPem: string, keyPem: string): Issuer {
  return { cert: pki.certificateFromPem(certPem), key: pki.privateKeyFromPem(keyPem) };
}

/**
 * Issuer name copied from the CA certificate. forge keeps parsed UTF8String values as raw
 * UTF-8 bytes but encodes them again on output, so decode first to keep the name byte-identical.
 */
function issuerAttrs(ca: forge.pki.Certificate): Attr[] {
  return ca.subject.attributes.map((a) =>
    (a.valueTagClass as number) === asn1.Type.UTF8 && typeof a.value === 'string'
      ? { ...a, value: forge.util.decodeUtf8(a.value) }
      : a,
  );
}

function issuerKeyId(ca: forge.pki.Certificate): string {
  const ext = ca.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
  return ext?.subjectKeyIdentifier
    ? forge.util.hexToBytes(ext.subjectKeyIdentifier)
    : ca.generateSubjectKeyIdentifier().getBytes();
}

function baseCert(publicKey: forge.pki.rsa.PublicKey, notAfter: Date, subject: Attr[]): forge.pki.Certificate {
  const cert = pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = new Date(Date.now() - BACKDATE_MS);
  cert.validity.notAfter = notAfter;
  cert.setSubject(subject);
  return cert;
}

export function buildCaCertificate(key: forge.pki.rsa.PrivateKey, publicKey: forge.pki.rsa.PublicKey, days: number): string {
  const id = randomBytes(4).toString('hex');
  const subject = [attr('O', 'kmipd'), attr('CN', `kmipd CA ${id}`)];
  const cert = baseCert(publicKey, new Date(Date.now() + days * DAY_MS), subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    // pathlen 0: this CA signs leaf certificates only, never another CA.
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return pki.certificateToPem(cert);
}

export interface LeafSpec {
  publicKey: forge.pki.rsa.PublicKey;
  subject: Attr[];
  notAfter: Date;
  usage: 'serverAuth' | 'clientAuth';
  dnsNames?: string[];
  ips?: string[];
}

export function buildLeafCertificate(issuer: Issuer, spec: LeafSpec): { pem: string; serialHex: string } {
  // A leaf must not outlive its CA: chains would stop validating at the CA's expiry anyway.
  const caNotAfter = issuer.cert.validity.notAfter;
  const notAfter = spec.notAfter > caNotAfter ? caNotAfter : spec.notAfter;
  const cert = baseCert(spec.publicKey, notAfter, spec.subject);
  cert.setIssuer(issuerAttrs(issuer.cert));
  const altNames = [
    ...(spec.dnsNames ?? []).map((value) => ({ type: 2, value })),
    ...(spec.ips ?? []).map((ip) => ({ type: 7, value: Buffer.from(ipToBytes(ip)).toString('binary') })),
  ];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', [spec.usage]: true },
    ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: issuerKeyId(issuer.cert) },
  ]);
  cert.sign(issuer.key, forge.md.sha256.create());
  return { pem: pki.certificateToPem(cert), serialHex: cert.serialNumber };
}

export { attr as subjectAttr };

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value (after the unused-bits octet). */
function keyIdentifierOf(spkiDer: Uint8Array): string {
  const [, bits] = children(readWhole(Buffer.from(spkiDer)));
  if (!bits || bits.tag !== 0x03) throw new Error('malformed SubjectPublicKeyInfo');
  return createHash('sha1').update(bits.content.subarray(1)).digest().toString('binary');
}

/**
 * Like buildLeafCertificate, for any public key given as SubjectPublicKeyInfo DER (forge can only
 * represent RSA keys): forge lays out the TBSCertificate, the requested key is put in place of the
 * placeholder, and the CA key signs the result.
 */
export function buildLeafCertificateForSpki(issuer: Issuer, spkiDer: Uint8Array, spec: Omit<LeafSpec, 'publicKey'>): { pem: string; serialHex: string } {
  const spki = asn1.fromDer(Buffer.from(spkiDer).toString('binary'));
  const caNotAfter = issuer.cert.validity.notAfter;
  const notAfter = spec.notAfter > caNotAfter ? caNotAfter : spec.notAfter;
  // Placeholder key so forge can lay the structure out; replaced below and never signed.
  const cert = baseCert(issuer.cert.publicKey as forge.pki.rsa.PublicKey, notAfter, spec.subject);
  cert.setIssuer(issuerAttrs(issuer.cert));
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, critical: true },
    { name: 'extKeyUsage', [spec.usage]: true },
    { name: 'subjectKeyIdentifier', value: asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, keyIdentifierOf(spkiDer)) },
    { name: 'authorityKeyIdentifier', keyIdentifier: issuerKeyId(issuer.cert) },
  ]);
  cert.siginfo.algorithmOid = pki.oids.sha256WithRSAEncryption!;
  // getTBSCertificate exists in forge but is missing from its typings.
  const tbs = (pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(cert);
  const fields = tbs.value as forge.asn1.Asn1[];
  // version [0], serial, signature, issuer, validity, subject, subjectPublicKeyInfo, …
  if (fields.length < 7 || fields[6]!.type !== asn1.Type.SEQUENCE) throw new Error('unexpected TBSCertificate layout');
  fields[6] = spki;
  const tbsDer = asn1.toDer(tbs).getBytes();
  const md = forge.md.sha256.create();
  md.update(tbsDer);
  const signature = issuer.key.sign(md);
  const algorithm = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(pki.oids.sha256WithRSAEncryption!).getBytes()),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''),
  ]);
  const full = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    algorithm,
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, String.fromCharCode(0) + signature),
  ]);
  return { pem: forge.pem.encode({ type: 'CERTIFICATE', body: asn1.toDer(full).getBytes() }), serialHex: cert.serialNumber };
}
