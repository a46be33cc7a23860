// TTLV encoder. Two passes: measure the whole tree, then write into one zero-filled buffer, so
// padding needs no writes and no intermediate buffers are concatenated. Values are range-checked:
// silently wrapping an out-of-range number would put a different value on the wire.

import { kMaxLength } from 'node:buffer';
import { TtlvError } from './errors.js';
import { ItemType, typeName, type TtlvItem } from './types.js';

/** Guards against cyclic or absurd trees built in code (decoded trees are far shallower). */
const MAX_ENCODE_DEPTH = 256;
const MAX_LENGTH = 0xffffffff;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
// Unpaired surrogates cannot be encoded as UTF-8; Buffer.write would silently replace them.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * Encode one item (usually a whole message) to TTLV.
 * Tags only need to fit in 24 bits here: the KMIP range rule is enforced on input, and echoing a
 * vendor extension's own tags must stay possible.
 * @throws TtlvError BAD_TAG / BAD_TYPE / BAD_VALUE / TOO_LARGE / TOO_DEEP (offset -1)
 */
export function encodeTtlv(item: TtlvItem): Buffer {
  // Sizes that are costly to recompute (structure lengths, UTF-8 lengths, Big Integer lengths),
  // recorded in pre-order by the measuring pass and consumed in the same order by the writer.
  const lengths: number[] = [];
  const total = measure(item, lengths, 1);
  if (total > kMaxLength) throw new TtlvError('TOO_LARGE', `encoding needs ${total} bytes`, -1, item.tag);
  // Zero-filled either way; allocUnsafe takes a message (under 4 KiB) from Node's shared slab
  // instead of a new ArrayBuffer, which V8 must later sweep and free on another thread (perf, Get:
  // ~3 % of the serve process in allocating, sweeping and freeing those). A response carrying a key
  // is zeroed once written, wherever its bytes live.
  const out = Buffer.allocUnsafe(total).fill(0);
  const w = { out, pos: 0, next: 0, lengths };
  write(w, item);
  return out;
}

/** Bytes the item occupies including header and padding. */
function measure(item: TtlvItem, lengths: number[], depth: number): number {
  const { tag } = item;
  if (!Number.isInteger(tag) || tag < 0 || tag > 0xffffff) throw bad('BAD_TAG', `tag ${String(tag)} does not fit in 24 bits`);
  if (depth > MAX_ENCODE_DEPTH) throw new TtlvError('TOO_DEEP', `nesting deeper than ${MAX_ENCODE_DEPTH}`, -1, tag);
  switch (item.type) {
    case ItemType.Structure: {
      if (!Array.isArray(item.value)) throw bad('BAD_VALUE', 'Structure value must be an array', tag);
      const slot = lengths.length;
      lengths.push(0);
      let len = 0;
      for (const child of item.value) len += measure(child, lengths, depth + 1);
      if (len > MAX_LENGTH) throw new TtlvError('TOO_LARGE', `Structure of ${len} bytes`, -1, tag);
      lengths[slot] = len;
      return 8 + len;
    }
    case ItemType.Integer:
      checkNumber(item.value, -0x80000000, 0x7fffffff, item.type, tag);
      return 16;
    case ItemType.Enumeration:
    case ItemType.Interval:
      checkNumber(item.value, 0, 0xffffffff, item.type, tag);
      return 16;
    case ItemType.LongInteger:
    case ItemType.DateTime:
    case ItemType.DateTimeExtended:
      if (typeof item.value !== 'bigint' || item.value < INT64_MIN || item.value > INT64_MAX) {
        throw bad('BAD_VALUE', `${typeName(item.type)} must be a bigint in the signed 64-bit range`, tag);
      }
      return 16;
    case ItemType.Boolean:
      if (typeof item.value !== 'boolean') throw bad('BAD_VALUE', 'Boolean value must be a boolean', tag);
      return 16;
    case ItemType.BigInteger: {
      if (typeof item.value !== 'bigint') throw bad('BAD_VALUE', 'Big Integer value must be a bigint', tag);
      const len = bigIntegerLength(item.value);
      if (len > MAX_LENGTH - 7) throw new TtlvError('TOO_LARGE', `Big Integer of ${len} bytes`, -1, tag);
      lengths.push(len);
      return 8 + len;
    }
    case ItemType.TextString: {
      if (typeof item.value !== 'string') throw bad('BAD_VALUE', 'Text String value must be a string', tag);
      if (LONE_SURROGATE.test(item.value)) throw bad('BAD_VALUE', 'Text String contains an unpaired surrogate', tag);
      const len = Buffer.byteLength(item.value, 'utf8');
      if (len > MAX_LENGTH - 7) throw new TtlvError('TOO_LARGE', `Text String of ${len} bytes`, -1, tag);
      lengths.push(len);
      return 8 + pad8(len);
    }
    case ItemType.ByteString: {
      if (!(item.value instanceof Uint8Array)) throw bad('BAD_VALUE', 'Byte String value must be a Uint8Array', tag);
      const len = item.value.length;
      if (len > MAX_LENGTH - 7) throw new TtlvError('TOO_LARGE', `Byte String of ${len} bytes`, -1, tag);
      return 8 + pad8(len);
    }
    default: {
      const type = (item as { type: unknown }).type;
      throw bad('BAD_TYPE', `unknown item type ${String(type)}`, tag);
    }
  }
}

interface Writer {
  readonly out: Buffer;
  pos: number;
  /** Index of the next entry of `lengths` to consume. */
  next: number;
  readonly lengths: readonly number[];
}

function write(w: Writer, item: TtlvItem): void {
  const { out } = w;
  const p = w.pos;
  out[p] = item.tag >>> 16;
  out[p + 1] = (item.tag >>> 8) & 0xff;
  out[p + 2] = item.tag & 0xff;
  out[p + 3] = item.type;
  const v = p + 8;
  switch (item.type) {
    case ItemType.Structure: {
      const len = w.lengths[w.next++]!;
      out.writeUInt32BE(len, p + 4);
      w.pos = v;
      for (const child of item.value) write(w, child);
      return;
    }
    case ItemType.Integer:
      out.writeUInt32BE(4, p + 4);
      out.writeInt32BE(item.value, v);
      w.pos = v + 8;
      return;
    case ItemType.Enumeration:
    case ItemType.Interval:
      out.writeUInt32BE(4, p + 4);
      out.writeUInt32BE(item.value, v);
      w.pos = v + 8;
      return;
    case ItemType.LongInteger:
    case ItemType.DateTime:
    case ItemType.DateTimeExtended:
      out.writeUInt32BE(8, p + 4);
      out.writeBigInt64BE(item.value, v);
      w.pos = v + 8;
      return;
    case ItemType.Boolean:
      out.writeUInt32BE(8, p + 4);
      out[v + 7] = item.value ? 1 : 0;
      w.pos = v + 8;
      return;
    case ItemType.BigInteger: {
      const len = w.lengths[w.next++]!;
      out.writeUInt32BE(len, p + 4);
      // Fill 64-bit words from the right; >> on a negative bigint sign-extends, as needed.
      let x = item.value;
      for (let q = v + len - 8; q >= v; q -= 8) {
        out.writeBigUInt64BE(BigInt.asUintN(64, x), q);
        x >>= 64n;
      }
      w.pos = v + len;
      return;
    }
    case ItemType.TextString: {
      const len = w.lengths[w.next++]!;
      out.writeUInt32BE(len, p + 4);
      out.write(item.value, v, len, 'utf8');
      w.pos = v + pad8(len);
      return;
    }
    case ItemType.ByteString: {
      const len = item.value.length;
      out.writeUInt32BE(len, p + 4);
      out.set(item.value, v);
      w.pos = v + pad8(len);
      return;
    }
  }
}

/**
 * Minimal two's complement length rounded up to a multiple of 8 (at least 8). The OASIS test
 * vectors all use this length; a value with its top bit set gets a leading sign word.
 */
export function bigIntegerLength(x: bigint): number {
  const magnitude = x < 0n ? -x - 1n : x; // bits needed besides the sign bit
  const bytes = Math.ceil((bitLength(magnitude) + 1) / 8);
  return Math.max(8, pad8(bytes));
}

function bitLength(x: bigint): number {
  if (x === 0n) return 0;
  const h = x.toString(16);
  return (h.length - 1) * 4 + (32 - Math.clz32(parseInt(h[0]!, 16)));
}

function pad8(n: number): number {
  return n + ((8 - (n % 8)) % 8);
}

function checkNumber(value: unknown, min: number, max: number, type: number, tag: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw bad('BAD_VALUE', `${typeName(type)} value ${String(value)} is not an integer in [${min}, ${max}]`, tag);
  }
}

function bad(code: 'BAD_TAG' | 'BAD_TYPE' | 'BAD_VALUE', detail: string, tag?: number): TtlvError {
  return new TtlvError(code, detail, -1, tag);
}
