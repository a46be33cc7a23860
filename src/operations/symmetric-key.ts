// The Symmetric Key managed object on the wire (1.x §2.2.2 / 2.x §2.2.7): a Key Block holding
// Raw key material. Parsing copies the key bytes so the request buffer can be dropped and the copy zeroed.
import { byteString, enumeration, integer, structure } from '../ttlv/build.js';
import type { TtlvItem } from '../ttlv/types.js';
import { ItemType } from '../ttlv/types.js';
import { KeyFormatType, ResultReason, Tag } from '../kmip/registry/generated.js';
import { Fields } from '../kmip/fields.js';
import { KmipError } from '../kmip/errors.js';

export interface SymmetricKeyBlock {
  /** Raw or Transparent Symmetric Key, as the client sent it. */
  readonly format: number;
  readonly algorithm: number | undefined;
  readonly lengthBits: number | undefined;
  /** A private copy; the caller zeroes it. */
  readonly material: Buffer;
}

export function parseSymmetricKey(item: TtlvItem | undefined): SymmetricKeyBlock {
  if (!item) throw new KmipError(ResultReason.InvalidField, 'Register of a Symmetric Key needs the Symmetric Key object');
  const block = Fields.of(Fields.of(item, 'Symmetric Key').requiredStruct(Tag.KeyBlock), 'Key Block');
  const format = block.requiredEnumeration(Tag.KeyFormatType);
  if (block.has(Tag.KeyWrappingData)) {
    throw new KmipError(ResultReason.FeatureNotSupported, 'registering a wrapped key is not supported');
  }
  const value = block.first(Tag.KeyValue);
  if (value?.type !== ItemType.Structure) throw new KmipError(ResultReason.InvalidField, 'Key Value structure is missing');
  const kv = Fields.of(value, 'Key Value');
  let material: Uint8Array | undefined;
  if (format === KeyFormatType.Raw) {
    material = kv.bytes(Tag.KeyMaterial);
  } else if (format === KeyFormatType.TransparentSymmetricKey) {
    material = Fields.of(kv.requiredStruct(Tag.KeyMaterial), 'Key Material').bytes(Tag.Key);
  } else {
    throw new KmipError(ResultReason.KeyFormatTypeNotSupported, 'symmetric keys are accepted in Raw or Transparent Symmetric Key format');
  }
  if (!material || material.length === 0) throw new KmipError(ResultReason.InvalidField, 'Key Material is missing');
  return {
    format,
    algorithm: block.enumeration(Tag.CryptographicAlgorithm),
    lengthBits: block.integer(Tag.CryptographicLength),
    material: Buffer.from(material),
  };
}

/** The key formats we serve a symmetric key in (1.4 §9.1.3.2.3). */
export const SERVED_FORMATS: ReadonlySet<number> = new Set([KeyFormatType.Raw, KeyFormatType.TransparentSymmetricKey]);

export function encodeSymmetricKey(material: Uint8Array, algorithm: number, lengthBits: number, format: number = KeyFormatType.Raw): TtlvItem {
  const keyMaterial =
    format === KeyFormatType.TransparentSymmetricKey
      ? structure(Tag.KeyMaterial, [byteString(Tag.Key, material)])
      : byteString(Tag.KeyMaterial, material);
  return structure(Tag.SymmetricKey, [
    structure(Tag.KeyBlock, [
      enumeration(Tag.KeyFormatType, format),
      structure(Tag.KeyValue, [keyMaterial]),
      enumeration(Tag.CryptographicAlgorithm, algorithm),
      integer(Tag.CryptographicLength, lengthBits),
    ]),
  ]);
}
