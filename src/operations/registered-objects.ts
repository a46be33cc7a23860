// Managed objects other than the symmetric keys kmipd generates (2.1 Baseline profile): secret
// data, opaque objects, public and private keys, certificates. They are registered by clients and
// served back as they came: the whole object structure is TTLV-encoded and wrapped in the HSM as
// one secret bound to its id (public material too: one path, and nothing a client registered is
// ever on disk in the clear). Attributes the spec derives from the object are set here.
import { createHash, X509Certificate } from 'node:crypto';
import { enumeration, integer, textString } from '../ttlv/build.js';
import { encodeTtlv } from '../ttlv/encode.js';
import { ItemType, type StructureItem, type TtlvItem } from '../ttlv/types.js';
import { CertificateType, ObjectType, ResultReason, Tag } from '../kmip/registry/generated.js';
import { Fields } from '../kmip/fields.js';
import { KmipError } from '../kmip/errors.js';
import type { Attribute } from '../kmip/attributes.js';

/** Object Type → the tag of its structure in Register / Get payloads. */
export const REGISTERED_OBJECT_TAGS: ReadonlyMap<number, number> = new Map([
  [ObjectType.SecretData, Tag.SecretData],
  [ObjectType.OpaqueObject, Tag.OpaqueObject],
  [ObjectType.PublicKey, Tag.PublicKey],
  [ObjectType.PrivateKey, Tag.PrivateKey],
  [ObjectType.Certificate, Tag.Certificate],
]);

export interface RegisteredObject {
  readonly body: StructureItem;
  /** Attributes the server derives from the object (algorithm, length, certificate facts, Key Format Type). */
  readonly derived: Attribute[];
  /** SHA-256 of the object's value, for the Digest attribute. */
  readonly digest: Uint8Array;
  /** The Key Format Type the object came in, when it has a Key Block. */
  readonly keyFormat: number | undefined;
}

const attr = (name: string, value: TtlvItem): Attribute => ({ name, index: 0, value: { ...value, tag: Tag.AttributeValue } as TtlvItem });

function keyBlockFacts(body: Fields): { derived: Attribute[]; value: Uint8Array; keyFormat: number } {
  const block = Fields.of(body.requiredStruct(Tag.KeyBlock), 'Key Block');
  if (block.has(Tag.KeyWrappingData)) throw new KmipError(ResultReason.FeatureNotSupported, 'registering a wrapped key is not supported');
  const keyFormat = block.requiredEnumeration(Tag.KeyFormatType);
  const derived: Attribute[] = [];
  const alg = block.enumeration(Tag.CryptographicAlgorithm);
  const len = block.integer(Tag.CryptographicLength);
  if (alg !== undefined) derived.push(attr('Cryptographic Algorithm', enumeration(0, alg)));
  if (len !== undefined) derived.push(attr('Cryptographic Length', integer(0, len)));
  const kv = block.first(Tag.KeyValue);
  const material = kv?.type === ItemType.Structure ? Fields.of(kv).first(Tag.KeyMaterial) : undefined;
  if (!material) throw new KmipError(ResultReason.InvalidField, 'Key Material is missing');
  // Raw / PKCS formats carry bytes; transparent formats a structure: digest its encoding then.
  const value = material.type === ItemType.ByteString ? material.value : encodeTtlv(material);
  return { derived, value, keyFormat };
}

function certificateFacts(body: Fields): { derived: Attribute[]; value: Uint8Array } {
  const type = body.requiredEnumeration(Tag.CertificateType);
  const value = body.requiredBytes(Tag.CertificateValue);
  const derived = [attr('Certificate Type', enumeration(0, type)), attr('Certificate Length', integer(0, value.length))];
  if (type === CertificateType.X_509) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(Buffer.from(value));
    } catch {
      throw new KmipError(ResultReason.InvalidField, 'Certificate Value is not a DER X.509 certificate');
    }
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
    if (cn !== undefined) derived.push(attr('Certificate Subject CN', textString(0, cn)));
  }
  return { derived, value };
}

export function parseRegisteredObject(objectType: number, payload: Fields): RegisteredObject {
  const tag = REGISTERED_OBJECT_TAGS.get(objectType);
  if (tag === undefined) throw new KmipError(ResultReason.InvalidField, `object type ${objectType} cannot be registered`);
  const body = payload.struct(tag);
  if (!body) throw new KmipError(ResultReason.InvalidField, 'Register needs the object itself');
  const f = Fields.of(body);
  let facts: { derived: Attribute[]; value: Uint8Array; keyFormat?: number };
  switch (objectType) {
    case ObjectType.Certificate:
      facts = certificateFacts(f);
      break;
    case ObjectType.OpaqueObject:
      f.requiredEnumeration(Tag.OpaqueDataType);
      facts = { derived: [], value: f.requiredBytes(Tag.OpaqueDataValue) };
      break;
    default: // keys and secret data: a Key Block
      facts = keyBlockFacts(f);
  }
  return { body, derived: facts.derived, digest: createHash('sha256').update(facts.value).digest(), keyFormat: facts.keyFormat };
}
