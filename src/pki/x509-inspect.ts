// The certificate fields node:crypto does not expose in structured form (Node 20): extensions
// with their criticality, basic constraints, key usage bits, the signature algorithm and the
// subject as attribute/value pairs. Read from the DER with our own small reader.
import type { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { children, readWhole, type DerElement } from './der.js';

export const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  issuerAltName: '2.5.29.18',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  certificatePolicies: '2.5.29.32',
  crlDistributionPoints: '2.5.29.31',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  anyExtendedKeyUsage: '2.5.29.37.0',
} as const;

/** Extensions we understand or that carry no constraint we would have to enforce. */
export const UNDERSTOOD_EXTENSIONS: ReadonlySet<string> = new Set([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.issuerAltName,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
  OID.certificatePolicies,
  OID.crlDistributionPoints,
  OID.authorityInfoAccess,
]);

/** Signature algorithms we refuse anywhere in a chain: broken hashes. */
export const WEAK_SIGNATURE_OIDS: ReadonlySet<string> = new Set([
  '1.2.840.113549.1.1.4', // md5WithRSAEncryption
  '1.2.840.113549.1.1.5', // sha1WithRSAEncryption
  '1.2.840.10045.4.1', // ecdsa-with-SHA1
  '1.3.14.3.2.29', // sha1WithRSA (OIW)
  '1.2.840.10040.4.3', // dsa-with-sha1
]);

export interface Extension {
  readonly critical: boolean;
  readonly value: Buffer;
}

export interface CertificateDetails {
  readonly signatureOid: string;
  readonly extensions: ReadonlyMap<string, Extension>;
  readonly subject: readonly (readonly [string, string])[];
  /** SubjectPublicKeyInfo DER. */
  readonly spki: Buffer;
}

const TAG = { boolean: 0x01, integer: 0x02, bitString: 0x03, octetString: 0x04, oid: 0x06, sequence: 0x30 } as const;

function oidOf(el: DerElement): string {
  if (el.tag !== TAG.oid) throw new Error('expected an OBJECT IDENTIFIER');
  return forge.asn1.derToOid(el.content.toString('binary'));
}

export function inspectCertificate(cert: X509Certificate): CertificateDetails {
  const [tbs, sigAlg] = children(readWhole(cert.raw));
  if (!tbs || !sigAlg) throw new Error('malformed certificate');
  const fields = children(tbs);
  const at = fields[0]?.tag === 0xa0 ? 1 : 0; // optional [0] version
  const subject = fields[at + 4];
  const spki = fields[at + 5];
  if (!subject || !spki) throw new Error('malformed certificate');
  const extensions = new Map<string, Extension>();
  const extField = fields.slice(at + 6).find((f) => f.tag === 0xa3);
  if (extField) {
    const [seq] = children(extField);
    for (const ext of seq ? children(seq) : []) {
      const parts = children(ext);
      const id = oidOf(parts[0]!);
      const critical = parts.length === 3 && parts[1]!.tag === TAG.boolean && parts[1]!.content[0] !== 0;
      const value = parts[parts.length - 1]!;
      if (value.tag !== TAG.octetString) throw new Error('malformed extension');
      if (extensions.has(id)) throw new Error(`extension ${id} appears twice`);
      extensions.set(id, { critical, value: value.content });
    }
  }
  return { signatureOid: oidOf(children(sigAlg)[0]!), extensions, subject: nameAttributes(subject), spki: spki.raw };
}

export function basicConstraints(d: CertificateDetails): { ca: boolean; pathLen: number | undefined } {
  const ext = d.extensions.get(OID.basicConstraints);
  if (!ext) return { ca: false, pathLen: undefined };
  const parts = children(readWhole(ext.value));
  let ca = false;
  let pathLen: number | undefined;
  for (const p of parts) {
    if (p.tag === TAG.boolean) ca = p.content[0] !== 0;
    else if (p.tag === TAG.integer) pathLen = p.content.length <= 4 ? p.content.readUIntBE(0, p.content.length) : Number.MAX_SAFE_INTEGER;
  }
  return { ca, pathLen };
}

export type KeyUsageBit = 'digitalSignature' | 'keyCertSign';
const KEY_USAGE_BITS: Readonly<Record<KeyUsageBit, number>> = { digitalSignature: 0, keyCertSign: 5 };

/** undefined when the certificate has no Key Usage extension (any usage). */
export function hasKeyUsage(d: CertificateDetails, bit: KeyUsageBit): boolean | undefined {
  const ext = d.extensions.get(OID.keyUsage);
  if (!ext) return undefined;
  const bits = readWhole(ext.value);
  if (bits.tag !== TAG.bitString) throw new Error('malformed key usage');
  const n = KEY_USAGE_BITS[bit];
  const byte = bits.content[1 + (n >> 3)] ?? 0;
  return (byte & (0x80 >> (n & 7))) !== 0;
}

const SHORT_NAMES: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.5': 'SERIALNUMBER',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'STREET',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.12': 'TITLE',
  '2.5.4.42': 'GN',
  '0.9.2342.19200300.100.1.1': 'UID',
  '0.9.2342.19200300.100.1.25': 'DC',
  '1.2.840.113549.1.9.1': 'EMAILADDRESS',
};
const ALIASES: Readonly<Record<string, string>> = { EMAIL: 'EMAILADDRESS', E: 'EMAILADDRESS', S: 'ST' };

function directoryString(el: DerElement): string {
  switch (el.tag) {
    case 0x0c: // UTF8String
      return el.content.toString('utf8');
    case 0x1e: // BMPString
      return Buffer.from(el.content).swap16().toString('utf16le');
    case 0x1c: {
      // UniversalString
      let s = '';
      for (let i = 0; i + 3 < el.content.length; i += 4) s += String.fromCodePoint(el.content.readUInt32BE(i));
      return s;
    }
    default: // Printable, IA5, Teletex: Latin-1 in practice
      return el.content.toString('latin1');
  }
}

/** A Name as (TYPE, value) pairs in certificate order. */
export function nameAttributes(name: DerElement): [string, string][] {
  const out: [string, string][] = [];
  for (const rdn of children(name)) {
    for (const atv of children(rdn)) {
      const [type, value] = children(atv);
      if (!type || !value) throw new Error('malformed name');
      const oid = oidOf(type);
      out.push([SHORT_NAMES[oid] ?? oid, directoryString(value)]);
    }
  }
  return out;
}

const escape = (v: string) => v.replace(/([\\,+=])/g, '\\$1');

/**
 * Canonical text of a subject for comparison: TYPE=value pairs, types in upper case, sorted, joined
 * by commas (attribute order does not matter; values compare exactly).
 */
export function canonicalSubject(pairs: readonly (readonly [string, string])[]): string {
  return pairs
    .map(([t, v]) => `${t.toUpperCase()}=${escape(v)}`)
    .sort()
    .join(',');
}

/**
 * Parses an operator-typed subject: "CN=vc01.example.com, O=Example" (commas or '+', backslash
 * escapes) or the OpenSSL form "/O=Example/CN=vc01.example.com".
 */
export function parseSubjectArgument(text: string): string {
  const input = text.trim();
  const parts: string[] = [];
  if (input.startsWith('/')) {
    parts.push(...input.slice(1).split('/'));
  } else {
    let cur = '';
    for (let i = 0; i < input.length; i++) {
      const ch = input[i]!;
      if (ch === '\\' && i + 1 < input.length) {
        cur += ch + input[++i]!;
      } else if (ch === ',' || ch === '+') {
        parts.push(cur);
        cur = '';
      } else cur += ch;
    }
    parts.push(cur);
  }
  const pairs = parts.map((p): [string, string] => {
    const eq = p.search(/(?<!\\)=/);
    if (eq <= 0) throw new Error(`subject part ${JSON.stringify(p.trim())} is not TYPE=value`);
    const type = p.slice(0, eq).trim().toUpperCase();
    const value = p.slice(eq + 1).trim().replace(/\\(.)/g, '$1');
    if (value === '') throw new Error(`subject part ${type} has an empty value`);
    return [ALIASES[type] ?? type, value];
  });
  if (pairs.length === 0) throw new Error('empty subject');
  return canonicalSubject(pairs);
}

/** RSA >= 2048 bits, or EC on P-256 / P-384 (what the TLS layer and the issue accept for clients). */
export function describeAcceptableKey(key: import('node:crypto').KeyObject): string {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    const bits = d.modulusLength ?? 0;
    if (bits < 2048) throw new Error(`RSA key of ${bits} bits: at least 2048 are required`);
    if (bits > 16384) throw new Error(`RSA key of ${bits} bits is larger than supported`);
    return `RSA ${bits}`;
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = d.namedCurve;
    if (curve === 'prime256v1') return 'EC P-256';
    if (curve === 'secp384r1') return 'EC P-384';
    throw new Error(`EC curve ${String(curve)} is not accepted: use P-256 or P-384`);
  }
  throw new Error(`${String(key.asymmetricKeyType)} keys are not accepted: use RSA (2048 bits or more) or EC P-256/P-384`);
}
