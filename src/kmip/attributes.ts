// The canonical attribute model and its two wire forms.
// Inside the server an attribute is (name, index, value) where the value item is tagged
// Attribute Value, exactly the KMIP 1.x form. KMIP 2.x carries each attribute under its own tag
// inside an Attributes structure, and custom ones as an Attribute with a Vendor Identification; we convert at the edge.
import type { StructureItem, TtlvItem } from '../ttlv/types.js';
import { ItemType } from '../ttlv/types.js';
import { enumeration, integer, structure, textString } from '../ttlv/build.js';
import { Tag, TAG_INFO } from './registry/generated.js';
import { Fields } from './fields.js';
import { invalidField, KmipError } from './errors.js';
import { ResultReason } from './registry/generated.js';
import { attributeDefinition, isCustomName } from './attribute-definitions.js';
import { isV2, registryVersionBit, type ProtocolVersion } from './version.js';

export interface Attribute {
  readonly name: string;
  readonly index: number;
  /** Tagged Attribute Value. */
  readonly value: TtlvItem;
}

const constants = new WeakSet<Attribute>();

/** Freezes an item tree all the way down; a byte buffer, which cannot be frozen, is refused. */
function frozenThrough<T>(v: T): T {
  if (ArrayBuffer.isView(v)) throw new TypeError('a constant attribute cannot hold bytes: they could still be changed');
  if (v === null || typeof v !== 'object') return v;
  for (const child of Object.values(v)) frozenThrough(child);
  return Object.freeze(v);
}

/**
 * An attribute made once and shared by every object that has it (the server's flags on each new
 * key, say). It is frozen all the way down, so whoever encodes it may keep the encoding
 * (isConstantAttribute): the store's attribute bag does.
 */
export function constantAttribute(name: string, value: TtlvItem, index = 0): Attribute {
  const a = frozenThrough<Attribute>({ name, index, value });
  constants.add(a);
  return a;
}

/** Whether `a` came from constantAttribute: it and its value can never change. */
export function isConstantAttribute(a: Attribute): boolean {
  return constants.has(a);
}

/** Re-tag an item (shallow: children keep their own tags). */
export function retag(item: TtlvItem, tag: number): TtlvItem {
  return { ...item, tag } as TtlvItem;
}

const TAG_BY_NAME = new Map<string, number>([...TAG_INFO.entries()].map(([tag, info]) => [info.name, tag]));

export function tagOfAttribute(name: string): number | undefined {
  return TAG_BY_NAME.get(name);
}

/** Check a client-supplied value against the standard definition (custom ones are free-form). */
export function validateAttributeValue(name: string, value: TtlvItem): void {
  if (isCustomName(name)) return;
  const def = attributeDefinition(name);
  if (!def) throw new KmipError(ResultReason.InvalidField, `unsupported attribute ${JSON.stringify(name)}`);
  if (def.type !== value.type) {
    throw invalidField(`attribute ${name} must have item type ${def.type}, got ${value.type}`);
  }
}

/** KMIP 1.x Attribute structure → canonical. */
export function parseAttribute1(item: TtlvItem): Attribute {
  const f = Fields.of(item, 'Attribute');
  const name = f.requiredText(Tag.AttributeName);
  const value = f.first(Tag.AttributeValue);
  return { name, index: f.integer(Tag.AttributeIndex) ?? 0, value: value ?? structure(Tag.AttributeValue, []) };
}

/** KMIP 1.x Attribute with a name and no value (as in Delete Attribute / Get Attributes). */
export function attributeValuePresent(item: TtlvItem): boolean {
  return Fields.of(item, 'Attribute').has(Tag.AttributeValue);
}

/** 2.x names a custom attribute by vendor + name ("x" + "ID" → "x-ID"); an empty vendor means a standard name (PyKMIP sends that). */
function vendorName(vendor: string, name: string): string {
  return vendor === '' ? name : `${vendor}-${name}`;
}

/** One child of a KMIP 2.x Attributes structure → canonical. */
export function parseAttribute2(item: TtlvItem): Attribute {
  // 2.x custom attributes: an Attribute structure carrying Vendor Identification + Attribute Name.
  if (item.tag === Tag.Attribute) {
    const f = Fields.of(item, 'Attribute');
    const name = vendorName(f.requiredText(Tag.VendorIdentification), f.requiredText(Tag.AttributeName));
    const value = f.first(Tag.AttributeValue);
    if (!value) throw invalidField('Attribute is missing Attribute Value');
    return { name, index: 0, value };
  }
  const info = TAG_INFO.get(item.tag);
  if (!info) throw invalidField(`unknown attribute tag 0x${item.tag.toString(16)}`);
  return { name: info.name, index: 0, value: retag(item, Tag.AttributeValue) };
}

export function parseAttributes2(attrs: StructureItem | undefined): Attribute[] {
  return attrs ? attrs.value.map(parseAttribute2) : [];
}

/** Is this attribute defined at that protocol version (never send a 1.0 client a 1.4 attribute)? */
export function attributeExistsIn(name: string, version: ProtocolVersion): boolean {
  if (isCustomName(name)) return true;
  const since = attributeDefinition(name)?.sinceMajor;
  if (since !== undefined && version.major < since) return false;
  const tag = tagOfAttribute(name);
  const info = tag === undefined ? undefined : TAG_INFO.get(tag);
  return info !== undefined && (info.versions & registryVersionBit(version)) !== 0;
}

/** Drop fields a version does not define from a value (e.g. Digest's Key Format Type for 1.0). */
export function gateFields(item: TtlvItem, version: ProtocolVersion): TtlvItem {
  if (item.type !== ItemType.Structure) return item;
  const bit = registryVersionBit(version);
  const kept = item.value.filter((c) => ((TAG_INFO.get(c.tag)?.versions ?? bit) & bit) !== 0).map((c) => gateFields(c, version));
  return { ...item, value: kept };
}

/**
 * Fields added to an attribute's structure after the attribute itself, whose tags are older than
 * that (so the tag registry cannot tell): Digest gained Key Format Type in 1.1 (1.1 §3.17).
 */
const LATER_FIELDS: ReadonlyMap<string, readonly { tag: number; since: ProtocolVersion }[]> = new Map([
  ['Digest', [{ tag: Tag.KeyFormatType, since: { major: 1, minor: 1 } }]],
]);

function dropLaterFields(name: string, value: TtlvItem, version: ProtocolVersion): TtlvItem {
  const later = LATER_FIELDS.get(name);
  if (!later || value.type !== ItemType.Structure) return value;
  const missing = later.filter((f) => version.major < f.since.major || (version.major === f.since.major && version.minor < f.since.minor)).map((f) => f.tag);
  return missing.length ? { ...value, value: value.value.filter((c) => !missing.includes(c.tag)) } : value;
}

/** Canonical → wire form at a version. 1.x: Attribute; 2.x: the attribute's own tag, or Attribute with a Vendor Identification. */
export function encodeAttribute(canonical: Attribute, version: ProtocolVersion): TtlvItem {
  const attr = { ...canonical, value: dropLaterFields(canonical.name, gateFields(canonical.value, version), version) };
  if (!isV2(version)) {
    const children: TtlvItem[] = [textString(Tag.AttributeName, attr.name)];
    // Index 0 is implied when absent (1.4 §2.1.1); the OASIS test cases omit it.
    if (attr.index !== 0) children.push(integer(Tag.AttributeIndex, attr.index));
    children.push(attr.value);
    return structure(Tag.Attribute, children);
  }
  if (isCustomName(attr.name)) {
    return structure(Tag.Attribute, [
      textString(Tag.VendorIdentification, attr.name.slice(0, 1)),
      textString(Tag.AttributeName, attr.name.slice(2)),
      attr.value,
    ]);
  }
  const tag = tagOfAttribute(attr.name);
  if (tag === undefined) throw new Error(`no tag for attribute ${attr.name}`);
  return retag(attr.value, tag);
}

/** Attribute names as requested: 1.x Attribute Name strings, 2.x Attribute Reference (tag enum or vendor ref). */
export function parseAttributeReferences(payload: Fields, version: ProtocolVersion): string[] {
  if (!isV2(version)) return payload.texts(Tag.AttributeName);
  return payload.all(Tag.AttributeReference).map((ref) => {
    if (ref.type === ItemType.Enumeration) {
      const info = TAG_INFO.get(ref.value);
      if (!info) throw invalidField(`Attribute Reference names unknown tag 0x${ref.value.toString(16)}`);
      return info.name;
    }
    const f = Fields.of(ref, 'Attribute Reference');
    return vendorName(f.requiredText(Tag.VendorIdentification), f.requiredText(Tag.AttributeName));
  });
}

export function encodeAttributeReference(name: string, version: ProtocolVersion): TtlvItem {
  if (!isV2(version)) return textString(Tag.AttributeName, name);
  if (isCustomName(name)) {
    return structure(Tag.AttributeReference, [
      textString(Tag.VendorIdentification, name.slice(0, 1)),
      textString(Tag.AttributeName, name.slice(2)),
    ]);
  }
  const tag = tagOfAttribute(name);
  if (tag === undefined) throw new Error(`no tag for attribute ${name}`);
  return enumeration(Tag.AttributeReference, tag);
}
