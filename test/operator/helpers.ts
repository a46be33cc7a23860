// Certificates an operator meets in the field, made in the test with node-forge and node:crypto:
// vCenter's self-signed certificate (no clientAuth usage), an external CA with an intermediate,
// certificate signing requests (RSA and EC), and connections that tell "served" from "refused".
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';
import { expect } from 'vitest';
import { textString, enumeration, integer, structure } from '../../src/ttlv/index.js';
import { CryptographicAlgorithm, ObjectType, Operation, ResultStatus, Tag } from '../../src/kmip/registry/generated.js';
import { Fields } from '../../src/kmip/fields.js';
import { kmipd, type ClientBundle } from '../helpers/kmipd.js';
import { KmipTestClient, type Version } from '../helpers/kmip-client.js';

const { pki, asn1 } = forge;
export const V12: Version = { major: 1, minor: 2 };
export const V21: Version = { major: 2, minor: 1 };

export interface KeyPair {
  readonly privatePem: string;
  readonly publicKey: forge.pki.rsa.PublicKey;
  readonly privateKey: forge.pki.rsa.PrivateKey;
}

export function rsaKeyPair(bits = 2048): KeyPair {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const priv = pki.privateKeyFromPem(privatePem) as forge.pki.rsa.PrivateKey;
  return { privatePem, privateKey: priv, publicKey: pki.setRsaPublicKey(priv.n, priv.e) };
}

export interface Issued {
  readonly certPem: string;
  readonly keyPem: string;
  readonly cert: forge.pki.Certificate;
  readonly key: forge.pki.rsa.PrivateKey;
}

type Eku = 'clientAuth' | 'serverAuth' | 'none';

export function certificate(o: {
  cn: string;
  o?: string;
  issuer?: Issued;
  ca?: boolean;
  eku?: Eku;
  days?: number;
  notBefore?: Date;
  pathLen?: number;
}): Issued {
  const keys = rsaKeyPair();
  const cert = pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = '01' + randomBytes(8).toString('hex');
  cert.validity.notBefore = o.notBefore ?? new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(cert.validity.notBefore.getTime() + (o.days ?? 365) * 86_400_000);
  const subject = [...(o.o ? [{ shortName: 'O', value: o.o }] : []), { shortName: 'CN', value: o.cn }];
  cert.setSubject(subject);
  cert.setIssuer(o.issuer ? o.issuer.cert.subject.attributes : subject);
  const ext: object[] = [];
  if (o.ca) {
    ext.push({ name: 'basicConstraints', cA: true, critical: true, ...(o.pathLen !== undefined ? { pathLenConstraint: o.pathLen } : {}) });
    ext.push({ name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true });
  } else {
    ext.push({ name: 'keyUsage', digitalSignature: true, keyEncipherment: true });
  }
  if (o.eku === 'clientAuth') ext.push({ name: 'extKeyUsage', clientAuth: true });
  if (o.eku === 'serverAuth') ext.push({ name: 'extKeyUsage', serverAuth: true });
  ext.push({ name: 'subjectKeyIdentifier' });
  cert.setExtensions(ext);
  cert.sign(o.issuer ? o.issuer.key : keys.privateKey, forge.md.sha256.create());
  return { certPem: pki.certificateToPem(cert), keyPem: keys.privatePem, cert, key: keys.privateKey };
}

/** A PKCS#10 request with an RSA key, asking for things we must not grant (CA, a SAN, serverAuth). */
export function rsaCsr(cn: string, bits = 2048): { csrPem: string; keyPem: string } {
  const keys = rsaKeyPair(bits);
  const csr = pki.createCertificationRequest();
  csr.publicKey = keys.publicKey;
  csr.setSubject([{ shortName: 'CN', value: cn }]);
  csr.setAttributes([
    {
      name: 'extensionRequest',
      extensions: [
        { name: 'basicConstraints', cA: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: [{ type: 2, value: 'evil.example.com' }] },
      ],
    },
  ]);
  csr.sign(keys.privateKey, forge.md.sha256.create());
  return { csrPem: pki.certificationRequestToPem(csr), keyPem: keys.privatePem };
}

/** forge cannot make EC requests: the CertificationRequestInfo is laid out here, signed by node:crypto. */
export function ecCsr(cn: string, curve: 'prime256v1' | 'secp384r1' | 'secp521r1' = 'prime256v1'): { csrPem: string; keyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  const spki = asn1.fromDer(publicKey.export({ type: 'spki', format: 'der' }).toString('binary'));
  const seq = (v: forge.asn1.Asn1[]) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, v);
  const name = seq([
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [
      seq([
        asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer('2.5.4.3').getBytes()),
        asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTF8, false, cn),
      ]),
    ]),
  ]);
  const info = seq([
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, '\x00'),
    name,
    spki,
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, []),
  ]);
  const infoDer = Buffer.from(asn1.toDer(info).getBytes(), 'binary');
  const signature = sign('sha256', infoDer, privateKey as KeyObject);
  const csr = seq([
    info,
    seq([asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer('1.2.840.10045.4.3.2').getBytes())]),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, '\x00' + signature.toString('binary')),
  ]);
  return {
    csrPem: forge.pem.encode({ type: 'CERTIFICATE REQUEST', body: asn1.toDer(csr).getBytes() }),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** Writes NAME.crt (with `chain` appended: what the client sends), NAME.key and the kmipd CA as a bundle. */
export function writeBundle(dir: string, name: string, certPem: string, keyPem: string, data: string, chain: string[] = []): ClientBundle {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  writeFileSync(cert, [certPem, ...chain].join(''));
  writeFileSync(key, keyPem, { mode: 0o600 });
  return { cert, key, ca: join(data, 'pki', 'ca.crt') };
}

export function caPem(data: string): string {
  return readFileSync(join(data, 'pki', 'ca.crt'), 'utf8');
}

/** The kmipd CA itself, to forge a certificate "signed by the kmipd CA but never enrolled". */
export function kmipdCa(data: string): Issued {
  const certPem = caPem(data);
  const keyPem = readFileSync(join(data, 'pki', 'ca.key'), 'utf8');
  return { certPem, keyPem, cert: pki.certificateFromPem(certPem), key: pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey };
}

/** Runs kmipd expecting failure; resolves with its stderr. */
export async function kmipdFails(...args: string[]): Promise<string> {
  try {
    await kmipd(...args);
  } catch (err) {
    return String((err as { stderr?: string }).stderr ?? err);
  }
  throw new Error(`kmipd ${args.join(' ')} succeeded but should have failed`);
}

/** 'served' if a Discover Versions is answered over this identity, else 'refused'. */
export async function probe(port: number, bundle: ClientBundle, tls: { minVersion?: 'TLSv1.2' | 'TLSv1.3'; maxVersion?: 'TLSv1.2' | 'TLSv1.3' } = {}): Promise<'served' | 'refused'> {
  let k: KmipTestClient;
  try {
    k = await KmipTestClient.connect(port, bundle, tls);
  } catch {
    return 'refused';
  }
  try {
    const r = await k.call(V12, [{ operation: Operation.DiscoverVersions, payload: [] }]);
    return r.items[0]?.status === ResultStatus.Success ? 'served' : 'refused';
  } catch {
    return 'refused';
  } finally {
    k.close();
  }
}

export function createRequest(name?: string, extra: ReturnType<typeof structure>[] = []) {
  const attr = (n: string, v: ReturnType<typeof integer> | ReturnType<typeof enumeration> | ReturnType<typeof structure> | ReturnType<typeof textString>) =>
    structure(Tag.Attribute, [textString(Tag.AttributeName, n), { ...v, tag: Tag.AttributeValue }]);
  return {
    operation: Operation.Create,
    payload: [
      enumeration(Tag.ObjectType, ObjectType.SymmetricKey),
      structure(Tag.TemplateAttribute, [
        attr('Cryptographic Algorithm', enumeration(0, CryptographicAlgorithm.AES)),
        attr('Cryptographic Length', integer(0, 256)),
        attr('Cryptographic Usage Mask', integer(0, 12)),
        ...(name ? [attr('Name', structure(0, [textString(Tag.NameValue, name), enumeration(Tag.NameType, 1)]))] : []),
        ...extra,
      ]),
    ],
  };
}

export function customAttribute(name: string, value: string) {
  return structure(Tag.Attribute, [textString(Tag.AttributeName, name), textString(Tag.AttributeValue, value)]);
}

export async function createKey(k: KmipTestClient, name?: string, extra: ReturnType<typeof structure>[] = []): Promise<string> {
  const r = await k.call(V12, [createRequest(name, extra)]);
  expect(r.items[0]!.status, r.items[0]!.message).toBe(ResultStatus.Success);
  return r.items[0]!.payload.requiredText(Tag.UniqueIdentifier);
}

/** Get → the raw key bytes, or the failure (status, reason). */
export async function getKey(k: KmipTestClient, id: string, version: Version = V12): Promise<Buffer | { reason: number | undefined; message: string | undefined }> {
  const r = await k.call(version, [{ operation: Operation.Get, payload: [textString(Tag.UniqueIdentifier, id)] }]);
  const item = r.items[0]!;
  if (item.status !== ResultStatus.Success) return { reason: item.reason, message: item.message };
  const sk = item.payload.requiredStruct(Tag.SymmetricKey);
  const kb = Fields.of(Fields.of(sk).requiredStruct(Tag.KeyBlock));
  return Buffer.from(Fields.of(kb.requiredStruct(Tag.KeyValue)).requiredBytes(Tag.KeyMaterial));
}

export async function getKeyBytes(k: KmipTestClient, id: string): Promise<Buffer> {
  const r = await getKey(k, id);
  if (!Buffer.isBuffer(r)) throw new Error(`Get ${id} failed: ${r.message}`);
  return r;
}

/** Audit records (JSON lines) of a data folder. */
export function auditRecords(data: string): Record<string, unknown>[] {
  return readFileSync(join(data, 'audit.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export async function eventually<T>(what: string, f: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
