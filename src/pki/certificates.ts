import { createHash, X509Certificate } from 'node:crypto';

import forge from 'node-forge';

const { asn1 } = forge;

// node:crypto parses and validates the certificate (any key type, PEM or DER); forge's ASN.1
// reader is used only to pull out the structured fields Node 20 exposes as display strings.

function toX509(certPemOrDer: string | Uint8Array): X509Certificate {
  return new X509Certificate(typeof certPemOrDer === 'string' ? certPemOrDer : Buffer.from(certPemOrDer));
}

/** SHA-256 over the certificate DER, lowercase hex without colons (the form used for pinning). */
export function certificateFingerprintSha256(certPemOrDer: string | Uint8Array): string {
  return createHash('sha256').update(toX509(certPemOrDer).raw).digest('hex');
}

export interface CertificateSummary {
  subjectCN: string | undefined;
  issuerCN: string | undefined;
  /** Lowercase hex of the serial's value, without colons or a DER sign byte. */
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  fingerprintSha256: string;
}

export function certificateSummary(certPem: string): CertificateSummary {
  const raw = toX509(certPem).raw;
  const cert = asn1.fromDer(raw.toString('binary'));
  const tbs = children(children(cert)[0]);
  // The version field is optional ([0] EXPLICIT); everything after it is positional.
  const first = tbs[0];
  const at = first !== undefined && first.tagClass === asn1.Class.CONTEXT_SPECIFIC ? 1 : 0;
  const [serial, , issuer, validity, subject] = tbs.slice(at);
  if (!serial || !issuer || !validity || !subject) throw new Error('malformed certificate');
  const [nb, na] = children(validity);
  if (!nb || !na) throw new Error('malformed certificate validity');
  return {
    subjectCN: commonName(subject),
    issuerCN: commonName(issuer),
    serialHex: Buffer.from(bytes(serial), 'binary').toString('hex').replace(/^(00)+(?=..)/, ''),
    notBefore: asn1Time(nb),
    notAfter: asn1Time(na),
    fingerprintSha256: createHash('sha256').update(raw).digest('hex'),
  };
}

function children(node: forge.asn1.Asn1 | undefined): forge.asn1.Asn1[] {
  if (!node || !Array.isArray(node.value)) throw new Error('malformed certificate');
  return node.value;
}

function bytes(node: forge.asn1.Asn1): string {
  if (typeof node.value !== 'string') throw new Error('malformed certificate');
  return node.value;
}

function asn1Time(node: forge.asn1.Asn1): Date {
  return node.type === asn1.Type.UTCTIME ? asn1.utcTimeToDate(bytes(node)) : asn1.generalizedTimeToDate(bytes(node));
}

const OID_COMMON_NAME = '2.5.4.3';
const UNIVERSAL_STRING = 28;

/** The most specific (last) CN in an RDNSequence, decoded according to its string type. */
function commonName(name: forge.asn1.Asn1): string | undefined {
  let cn: string | undefined;
  for (const rdn of children(name)) {
    for (const atv of children(rdn)) {
      const [type, value] = children(atv);
      if (!type || !value || asn1.derToOid(bytes(type)) !== OID_COMMON_NAME) continue;
      cn = decodeDirectoryString(value);
    }
  }
  return cn;
}

function decodeDirectoryString(node: forge.asn1.Asn1): string {
  const buf = Buffer.from(bytes(node), 'binary');
  switch (node.type as number) {
    case asn1.Type.UTF8:
      return buf.toString('utf8');
    case asn1.Type.BMPSTRING:
      return buf.swap16().toString('utf16le');
    case UNIVERSAL_STRING: {
      let s = '';
      for (let i = 0; i + 3 < buf.length; i += 4) s += String.fromCodePoint(buf.readUInt32BE(i));
      return s;
    }
    default:
      // PrintableString / IA5String / TeletexString: treat as Latin-1, the common practice.
      return buf.toString('latin1');
  }
}
