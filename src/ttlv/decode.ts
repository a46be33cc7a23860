// Strict TTLV decoder. Input comes from unauthenticated-until-proven peers, so every length is
// checked against the limits and the enclosing item before anything is allocated for it, and
// anything the spec does not allow (wrong fixed lengths, non-zero padding, Booleans other than
// 0/1, invalid UTF-8, unknown types, tags outside the KMIP ranges) is rejected rather than fixed up.

import { TtlvError } from './errors.js';
import { ItemType, typeName, type TtlvItem } from './types.js';

export const DEFAULT_MAX_DEPTH = 32;
/** Largest Length field accepted by default (64 MiB); servers normally pass their message limit. */
export const DEFAULT_MAX_LENGTH = 64 * 1024 * 1024;

export interface DecodeLimits {
  /** Maximum nesting: the top-level item is depth 1. Default {@link DEFAULT_MAX_DEPTH}. */
  maxDepth?: number;
  /** Maximum value of any Length field, in bytes. Default {@link DEFAULT_MAX_LENGTH}. */
  maxLength?: number;
}

export interface DecodeOptions extends DecodeLimits {
  /**
   * Require every tag to be 0x42xxxx (KMIP) or 0x54xxxx (extension). Default true.
   * Only test data with made-up tags should turn this off.
   */
  checkTagRange?: boolean;
  /**
   * Tags of structures whose descendants are exempt from the tag-range check. KMIP's Vendor
   * Extension (0x42009C) carries vendor-defined content: the OASIS 1.1 test cases 7.1/7.2 put
   * tag 0x014242 inside one. The codec knows no KMIP tags, so the caller names them.
   */
  anyTagInside?: ReadonlySet<number>;
}

// fatal: invalid UTF-8 throws instead of becoming U+FFFD. ignoreBOM: keep a leading U+FEFF as
// data (the default would silently strip it and break byte-exact round trips).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

interface State {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  pos: number;
  readonly maxDepth: number;
  readonly maxLength: number;
  readonly checkTags: boolean;
  readonly anyTagInside: ReadonlySet<number> | undefined;
}

/**
 * Decode exactly one TTLV item that fills `buf` completely.
 *
 * Byte String values are zero-copy views into `buf` (plain Uint8Array over the same memory):
 * a caller that keeps one beyond the life of `buf`, or reuses `buf`, must copy it.
 *
 * @throws TtlvError on any malformed input; nothing else is thrown for bad bytes.
 */
export function decodeTtlv(buf: Uint8Array, options: DecodeOptions = {}): TtlvItem {
  const s: State = {
    bytes: buf,
    view: new DataView(buf.buffer, buf.byteOffset, buf.byteLength),
    pos: 0,
    maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH,
    maxLength: options.maxLength ?? DEFAULT_MAX_LENGTH,
    checkTags: options.checkTagRange ?? true,
    anyTagInside: options.anyTagInside,
  };
  const item = readItem(s, buf.length, 1, false);
  if (s.pos !== buf.length) {
    throw new TtlvError('TRAILING_BYTES', `${buf.length - s.pos} byte(s) after the top-level item`, s.pos);
  }
  return item;
}

/**
 * Read the item at s.pos, which must end at or before `end`. Advances s.pos past the item and its
 * padding. `depth` is the item's nesting level (1 = top); `freeTags` disables the tag-range check.
 */
function readItem(s: State, end: number, depth: number, freeTags: boolean): TtlvItem {
  const { bytes, view } = s;
  const off = s.pos;
  // Past the top level, running out of parent bytes is a bad length, not a short read.
  const overrun = depth === 1 ? 'TRUNCATED' : 'BAD_LENGTH';
  if (end - off < 8) {
    throw new TtlvError(overrun, `item header needs 8 bytes, ${end - off} left`, off);
  }
  const tag = (bytes[off]! << 16) | (bytes[off + 1]! << 8) | bytes[off + 2]!;
  const type = bytes[off + 3]!;
  const len = view.getUint32(off + 4);

  if (s.checkTags && !freeTags) {
    const hi = tag >>> 16;
    if (hi !== 0x42 && hi !== 0x54) throw new TtlvError('BAD_TAG', 'tag outside the KMIP ranges 0x42xxxx/0x54xxxx', off, tag);
  }
  if (depth > s.maxDepth) throw new TtlvError('TOO_DEEP', `nesting deeper than ${s.maxDepth}`, off, tag);
  if (len > s.maxLength) throw new TtlvError('TOO_LARGE', `length ${len} exceeds the limit of ${s.maxLength}`, off, tag);

  // Check the length the type demands before comparing with what is left, so that a wrong
  // length is reported as such even when the input is also short.
  const need = fixedLength(type);
  if (need === -1) throw new TtlvError('BAD_TYPE', `unknown item type 0x${type.toString(16).padStart(2, '0')}`, off, tag);
  if (need > 0 && len !== need) throw new TtlvError('BAD_LENGTH', `${typeName(type)} length ${len}, must be ${need}`, off, tag);
  if (type === ItemType.Structure && len % 8 !== 0) {
    throw new TtlvError('BAD_LENGTH', `Structure length ${len} is not a multiple of 8`, off, tag);
  }
  if (type === ItemType.BigInteger && (len === 0 || len % 8 !== 0)) {
    throw new TtlvError('BAD_LENGTH', `Big Integer length ${len} is not a positive multiple of 8`, off, tag);
  }

  const start = off + 8;
  const padded = len + ((8 - (len % 8)) % 8);
  if (padded > end - start) {
    throw new TtlvError(overrun, `${typeName(type)} of ${len} byte(s) runs past the end of its ${depth === 1 ? 'input' : 'parent structure'}`, off, tag);
  }
  const valueEnd = start + len;
  const next = start + padded;
  for (let i = valueEnd; i < next; i++) {
    if (bytes[i] !== 0) throw new TtlvError('BAD_PADDING', 'non-zero padding byte', off, tag);
  }

  s.pos = next;
  switch (type) {
    case ItemType.Structure: {
      const children: TtlvItem[] = [];
      const childFree = freeTags || (s.anyTagInside !== undefined && s.anyTagInside.has(tag));
      // Every child consumes a multiple of 8 bytes and len is one, so the loop ends exactly at valueEnd.
      s.pos = start;
      while (s.pos < valueEnd) children.push(readItem(s, valueEnd, depth + 1, childFree));
      return { tag, type: ItemType.Structure, value: children };
    }
    case ItemType.Integer:
      return { tag, type: ItemType.Integer, value: view.getInt32(start) };
    case ItemType.Enumeration:
      return { tag, type: ItemType.Enumeration, value: view.getUint32(start) };
    case ItemType.Interval:
      return { tag, type: ItemType.Interval, value: view.getUint32(start) };
    case ItemType.LongInteger:
      return { tag, type: ItemType.LongInteger, value: view.getBigInt64(start) };
    case ItemType.DateTime:
      return { tag, type: ItemType.DateTime, value: view.getBigInt64(start) };
    case ItemType.DateTimeExtended:
      return { tag, type: ItemType.DateTimeExtended, value: view.getBigInt64(start) };
    case ItemType.Boolean: {
      const hi = view.getUint32(start);
      const lo = view.getUint32(start + 4);
      if (hi !== 0 || lo > 1) throw new TtlvError('BAD_BOOLEAN', 'Boolean value is neither 0 nor 1', off, tag);
      return { tag, type: ItemType.Boolean, value: lo === 1 };
    }
    case ItemType.BigInteger: {
      // Parsed from hex in one step: shifting a growing BigInt word by word is quadratic, and a
      // 256 KiB value took seconds of event-loop time (found by the hostile-input tests).
      let v = BigInt('0x' + Buffer.from(bytes.buffer, bytes.byteOffset + start, len).toString('hex'));
      // Two's complement: a set top bit means the value is negative.
      if (bytes[start]! & 0x80) v -= 1n << BigInt(len * 8);
      return { tag, type: ItemType.BigInteger, value: v };
    }
    case ItemType.TextString: {
      let value: string;
      try {
        value = utf8.decode(bytes.subarray(start, valueEnd));
      } catch {
        throw new TtlvError('BAD_UTF8', 'Text String is not valid UTF-8', off, tag);
      }
      return { tag, type: ItemType.TextString, value };
    }
    case ItemType.ByteString:
      // Zero-copy view (see decodeTtlv): always a plain Uint8Array, even when buf is a Buffer.
      return { tag, type: ItemType.ByteString, value: new Uint8Array(bytes.buffer, bytes.byteOffset + start, len) };
    default:
      // Unreachable: fixedLength() rejected every other type byte.
      throw new TtlvError('BAD_TYPE', `unknown item type 0x${type.toString(16)}`, off, tag);
  }
}

/** Required Length field for fixed-size types, 0 for variable-size types, -1 for unknown types. */
function fixedLength(type: number): number {
  switch (type) {
    case ItemType.Integer:
    case ItemType.Enumeration:
    case ItemType.Interval:
      return 4;
    case ItemType.LongInteger:
    case ItemType.Boolean:
    case ItemType.DateTime:
    case ItemType.DateTimeExtended:
      return 8;
    case ItemType.Structure:
    case ItemType.BigInteger:
    case ItemType.TextString:
    case ItemType.ByteString:
      return 0;
    default:
      return -1;
  }
}
