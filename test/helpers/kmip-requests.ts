// Request payload builders for tests, in the 1.x and 2.x shapes.
import { enumeration, integer, structure, textString } from '../../src/ttlv/index.js';
import type { TtlvItem } from '../../src/ttlv/types.js';
import { CryptographicAlgorithm, NameType, ObjectType, Operation, Tag } from '../../src/kmip/registry/generated.js';
import { encodeAttribute, encodeAttributeReference, type Attribute } from '../../src/kmip/attributes.js';
import type { BatchItemRequest, Version } from './kmip-client.js';

export const isV2 = (v: Version) => v.major >= 2;

/** A canonical attribute (value tagged Attribute Value). */
export const attr = (name: string, value: TtlvItem, index = 0): Attribute => ({ name, index, value: { ...value, tag: Tag.AttributeValue } as TtlvItem });
export const text = (name: string, v: string) => attr(name, textString(0, v));
export const nameAttr = (v: string) => attr('Name', structure(0, [textString(Tag.NameValue, v), enumeration(Tag.NameType, NameType.UninterpretedTextString)]));

/** Template-Attribute (1.x) or Attributes (2.x) holding these attributes. */
export function attributes(version: Version, attrs: Attribute[]): TtlvItem {
  const encoded = attrs.map((a) => encodeAttribute(a, version));
  return structure(isV2(version) ? Tag.Attributes : Tag.TemplateAttribute, encoded);
}

export function aesAttributes(bits = 256, extra: Attribute[] = []): Attribute[] {
  return [
    attr('Cryptographic Algorithm', enumeration(0, CryptographicAlgorithm.AES)),
    attr('Cryptographic Length', integer(0, bits)),
    attr('Cryptographic Usage Mask', integer(0, 12)),
    ...extra,
  ];
}

export function create(version: Version, extra: Attribute[] = [], bits = 256): BatchItemRequest {
  return { operation: Operation.Create, payload: [enumeration(Tag.ObjectType, ObjectType.SymmetricKey), attributes(version, aesAttributes(bits, extra))] };
}

const uid = (id: string | undefined) => (id === undefined ? [] : [textString(Tag.UniqueIdentifier, id)]);

export function addAttribute(version: Version, id: string | undefined, a: Attribute): BatchItemRequest {
  const body = isV2(version) ? structure(Tag.NewAttribute, [encodeAttribute(a, version)]) : encodeAttribute(a, version);
  return { operation: Operation.AddAttribute, payload: [...uid(id), body] };
}

export function modifyAttribute(version: Version, id: string | undefined, a: Attribute): BatchItemRequest {
  const body = isV2(version) ? structure(Tag.NewAttribute, [encodeAttribute(a, version)]) : encodeAttribute(a, version);
  return { operation: Operation.ModifyAttribute, payload: [...uid(id), body] };
}

export function deleteAttribute(version: Version, id: string | undefined, name: string, index = 0): BatchItemRequest {
  const body = isV2(version)
    ? [encodeAttributeReference(name, version)]
    : [textString(Tag.AttributeName, name), ...(index ? [integer(Tag.AttributeIndex, index)] : [])];
  return { operation: Operation.DeleteAttribute, payload: [...uid(id), ...body] };
}

export function getAttributes(version: Version, id: string | undefined, names: string[] = []): BatchItemRequest {
  return { operation: Operation.GetAttributes, payload: [...uid(id), ...names.map((n) => encodeAttributeReference(n, version))] };
}

export const simple = (operation: number, id?: string, more: TtlvItem[] = []): BatchItemRequest => ({ operation, payload: [...uid(id), ...more] });
