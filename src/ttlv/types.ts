// The TTLV item model. The codec knows nothing about KMIP semantics: a tag is a 24-bit number,
// an item is a tag, a type and a value. Types whose range exceeds a JS number use bigint.

/** TTLV item types (KMIP 1.0-2.1). Values are the wire type byte. */
export const ItemType = {
  Structure: 0x01,
  Integer: 0x02,
  LongInteger: 0x03,
  BigInteger: 0x04,
  Enumeration: 0x05,
  Boolean: 0x06,
  TextString: 0x07,
  ByteString: 0x08,
  DateTime: 0x09,
  Interval: 0x0a,
  DateTimeExtended: 0x0b,
} as const;
export type ItemType = (typeof ItemType)[keyof typeof ItemType];

interface Base<T extends ItemType, V> {
  readonly tag: number;
  readonly type: T;
  readonly value: V;
}

export type StructureItem = Base<typeof ItemType.Structure, readonly TtlvItem[]>;
/** Signed 32-bit. */
export type IntegerItem = Base<typeof ItemType.Integer, number>;
/** Signed 64-bit. */
export type LongIntegerItem = Base<typeof ItemType.LongInteger, bigint>;
/** Two's complement, big-endian, length a multiple of 8. */
export type BigIntegerItem = Base<typeof ItemType.BigInteger, bigint>;
/** Unsigned 32-bit. */
export type EnumerationItem = Base<typeof ItemType.Enumeration, number>;
export type BooleanItem = Base<typeof ItemType.Boolean, boolean>;
export type TextStringItem = Base<typeof ItemType.TextString, string>;
export type ByteStringItem = Base<typeof ItemType.ByteString, Uint8Array>;
/** Seconds since the POSIX epoch, signed 64-bit. */
export type DateTimeItem = Base<typeof ItemType.DateTime, bigint>;
/** Seconds, unsigned 32-bit. */
export type IntervalItem = Base<typeof ItemType.Interval, number>;
/** Microseconds since the POSIX epoch, signed 64-bit (KMIP 2.0+). */
export type DateTimeExtendedItem = Base<typeof ItemType.DateTimeExtended, bigint>;

export type TtlvItem =
  | StructureItem
  | IntegerItem
  | LongIntegerItem
  | BigIntegerItem
  | EnumerationItem
  | BooleanItem
  | TextStringItem
  | ByteStringItem
  | DateTimeItem
  | IntervalItem
  | DateTimeExtendedItem;

/** Narrow an item to the variant of a given type. */
export type ItemOf<T extends ItemType> = Extract<TtlvItem, { type: T }>;

const TYPE_NAMES: Readonly<Record<number, string>> = {
  [ItemType.Structure]: 'Structure',
  [ItemType.Integer]: 'Integer',
  [ItemType.LongInteger]: 'Long Integer',
  [ItemType.BigInteger]: 'Big Integer',
  [ItemType.Enumeration]: 'Enumeration',
  [ItemType.Boolean]: 'Boolean',
  [ItemType.TextString]: 'Text String',
  [ItemType.ByteString]: 'Byte String',
  [ItemType.DateTime]: 'Date-Time',
  [ItemType.Interval]: 'Interval',
  [ItemType.DateTimeExtended]: 'Date-Time Extended',
};

/** Spec name of an item type ("Long Integer"), or "type 0x.." for an unknown type byte. */
export function typeName(type: number): string {
  return TYPE_NAMES[type] ?? `type 0x${type.toString(16).padStart(2, '0')}`;
}
