// Tiny constructors so that code building messages reads as a tree, not as object literals.
// They only shape items; range checks happen once, in encodeTtlv.

import { TtlvError } from './errors.js';
import {
  ItemType,
  type BigIntegerItem,
  type BooleanItem,
  type ByteStringItem,
  type DateTimeExtendedItem,
  type DateTimeItem,
  type EnumerationItem,
  type IntegerItem,
  type IntervalItem,
  type LongIntegerItem,
  type StructureItem,
  type TextStringItem,
  type TtlvItem,
} from './types.js';

export const structure = (tag: number, items: readonly TtlvItem[]): StructureItem => ({ tag, type: ItemType.Structure, value: items });
export const integer = (tag: number, n: number): IntegerItem => ({ tag, type: ItemType.Integer, value: n });
export const longInteger = (tag: number, n: bigint | number): LongIntegerItem => ({ tag, type: ItemType.LongInteger, value: big(n, tag) });
export const bigInteger = (tag: number, n: bigint | number): BigIntegerItem => ({ tag, type: ItemType.BigInteger, value: big(n, tag) });
export const enumeration = (tag: number, n: number): EnumerationItem => ({ tag, type: ItemType.Enumeration, value: n });
export const boolean = (tag: number, b: boolean): BooleanItem => ({ tag, type: ItemType.Boolean, value: b });
export const textString = (tag: number, s: string): TextStringItem => ({ tag, type: ItemType.TextString, value: s });
export const byteString = (tag: number, b: Uint8Array): ByteStringItem => ({ tag, type: ItemType.ByteString, value: b });
/** Seconds since the epoch; a Date is truncated to whole seconds (towards the past). */
export const dateTime = (tag: number, t: bigint | Date): DateTimeItem => ({
  tag,
  type: ItemType.DateTime,
  value: typeof t === 'bigint' ? t : BigInt(Math.floor(millis(t, tag) / 1000)),
});
/** Seconds. */
export const interval = (tag: number, seconds: number): IntervalItem => ({ tag, type: ItemType.Interval, value: seconds });
/** Microseconds since the epoch (KMIP 2.0+); a Date gives millisecond precision. */
export const dateTimeExtended = (tag: number, t: bigint | Date): DateTimeExtendedItem => ({
  tag,
  type: ItemType.DateTimeExtended,
  value: typeof t === 'bigint' ? t : BigInt(millis(t, tag)) * 1000n,
});

function big(n: bigint | number, tag: number): bigint {
  if (typeof n === 'bigint') return n;
  if (!Number.isSafeInteger(n)) throw new TtlvError('BAD_VALUE', `${n} is not a safe integer`, -1, tag);
  return BigInt(n);
}

function millis(d: Date, tag: number): number {
  const ms = d.getTime();
  if (Number.isNaN(ms)) throw new TtlvError('BAD_VALUE', 'invalid Date', -1, tag);
  return ms;
}
