// PKCS#10 certificate signing requests (vCenter's "New Certificate Signing Request" flow). We keep
// exactly two things from a request: its public key (after checking the request's signature, which
// proves the requester holds the private key) and its subject, for display. Requested extensions
// are ignored: the certificate we issue gets our own, fixed set.
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { children, pemOrDer, readWhole } from './der.js';
import { canonicalSubject, describeAcceptableKey, nameAttributes } from './x509-inspect.js';
import { PkiError } from './errors.js';

/** Signature algorithms accepted on a CSR, mapped to the digest node:crypto verifies with. */
const CSR_SIGNATURES: Readonly<Record<string, string>> = {
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

export interface CertificateRequest {
  readonly publicKey: KeyObject;
  /** SubjectPublicKeyInfo DER, as requested. */
  readonly spki: Buffer;
  /** e.g. "RSA 2048", "EC P-256". */
  readonly keyDescription: string;
  /** The requested subject (canonical text); informational only. */
  readonly subject: string;
}

const MAX_CSR_BYTES = 64 * 1024;

export function parseCertificateRequest(input: string | Uint8Array): CertificateRequest {
  const bad = (why: string): never => {
    throw new PkiError('INVALID_ARGUMENT', `invalid certificate signing request: ${why}`);
  };
  let der: Buffer;
  try {
    der = pemOrDer(input, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']);
  } catch (err) {
    return bad((err as Error).message);
  }
  if (der.length > MAX_CSR_BYTES) bad('larger than 64 KiB');
  let info, algorithm, signature, version, subject, spki;
  try {
    [info, algorithm, signature] = children(readWhole(der));
    if (!info || !algorithm || !signature || signature.tag !== 0x03) throw new Error('not a PKCS#10 structure');
    [version, subject, spki] = children(info);
    if (!version || version.tag !== 0x02 || !subject || !spki) throw new Error('not a PKCS#10 structure');
  } catch (err) {
    return bad((err as Error).message);
  }
  if (version.content.length !== 1 || version.content[0] !== 0) bad('unsupported version');
  const algOid = forge.asn1.derToOid(children(algorithm)[0]!.content.toString('binary'));
  const digest = CSR_SIGNATURES[algOid];
  if (!digest) bad(`unsupported signature algorithm ${algOid} (use SHA-256 or better with RSA or ECDSA)`);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spki.raw, format: 'der', type: 'spki' });
  } catch {
    return bad('unreadable public key');
  }
  let keyDescription: string;
  try {
    keyDescription = describeAcceptableKey(publicKey);
  } catch (err) {
    return bad((err as Error).message);
  }
  if (signature.content[0] !== 0) bad('malformed signature');
  const ok = verify(digest!, info.raw, publicKey, signature.content.subarray(1));
  if (!ok) bad('the signature does not verify: the request was altered or not signed by its key');
  return { publicKey, spki: Buffer.from(spki.raw), keyDescription, subject: canonicalSubject(nameAttributes(subject)) };
}
