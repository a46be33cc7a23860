// Attributes as an operator reads them: enumerations by name, dates as ISO-8601, masks as lists of
// flags, byte strings in hex. Attributes never hold key material, so nothing here can print any.
import { ENUM_INFO, State, TAG_INFO, Tag } from '../kmip/registry/generated.js';
import type { Attribute } from '../kmip/attributes.js';
import { ItemType, type TtlvItem } from '../ttlv/types.js';

type Plain = string | number | boolean | Plain[] | { [k: string]: Plain };

const BY_SPEC_NAME = new Map([...ENUM_INFO.values()].map((e) => [e.specName, e]));

function enumName(specName: string, value: number): string {
  const info = BY_SPEC_NAME.get(specName);
  if (!info) return `0x${value.toString(16).padStart(8, '0')}`;
  if (info.kind === 'mask') {
    const flags = [...info.values].filter(([bit]) => bit !== 0 && (value & bit) === bit).map(([, v]) => v.xml);
    return flags.join('|') || '0';
  }
  return info.values.get(value)?.xml ?? `0x${value.toString(16).padStart(8, '0')}`;
}

function isoSeconds(seconds: bigint): string {
  return new Date(Number(seconds) * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

/** `context` is the spec name giving an Enumeration (or mask Integer) its meaning. */
export function plainValue(item: TtlvItem, context: string): Plain {
  switch (item.type) {
    case ItemType.Structure: {
      const out: Record<string, Plain> = {};
      for (const child of item.value) {
        const name = TAG_INFO.get(child.tag)?.name ?? `0x${child.tag.toString(16)}`;
        const v = plainValue(child, name);
        const prev = out[name];
        out[name] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
      }
      return out;
    }
    case ItemType.Enumeration:
      return enumName(context, item.value);
    case ItemType.Integer:
      return BY_SPEC_NAME.get(context)?.kind === 'mask' ? enumName(context, item.value) : item.value;
    case ItemType.LongInteger:
    case ItemType.BigInteger:
      return item.value.toString();
    case ItemType.Boolean:
    case ItemType.TextString:
    case ItemType.Interval:
      return item.value;
    case ItemType.ByteString:
      return Buffer.from(item.value).toString('hex');
    case ItemType.DateTime:
      return isoSeconds(item.value);
    case ItemType.DateTimeExtended:
      return new Date(Number(item.value / 1000n)).toISOString();
  }
}

/** name → value, or → list of values for multi-instance attributes. */
export function plainAttributes(attrs: readonly Attribute[]): Record<string, Plain> {
  const groups = new Map<string, Attribute[]>();
  for (const a of attrs) groups.set(a.name, [...(groups.get(a.name) ?? []), a]);
  const out: Record<string, Plain> = {};
  for (const [name, list] of groups) {
    const values = [...list].sort((x, y) => x.index - y.index).map((a) => plainValue(a.value, name));
    out[name] = values.length === 1 ? values[0]! : values;
  }
  return out;
}

/** The text values of every Name attribute. */
export function namesOf(attrs: readonly Attribute[]): string[] {
  return attrs
    .filter((a) => a.name === 'Name' && a.value.type === ItemType.Structure)
    .map((a) => (a.value.type === ItemType.Structure ? a.value.value.find((c) => c.tag === Tag.NameValue) : undefined))
    .flatMap((v) => (v?.type === ItemType.TextString ? [v.value] : []));
}

/** The value of an attribute as the text an operator would type in a filter. */
export function attributeText(a: Attribute): string {
  const v = plainValue(a.value, a.name);
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

export const STATE_NAMES: Readonly<Record<string, number>> = {
  'pre-active': State.PreActive,
  active: State.Active,
  deactivated: State.Deactivated,
  compromised: State.Compromised,
  destroyed: State.Destroyed,
  'destroyed-compromised': State.DestroyedCompromised,
};

export function stateText(state: number): string {
  return Object.entries(STATE_NAMES).find(([, v]) => v === state)?.[0] ?? String(state);
}
