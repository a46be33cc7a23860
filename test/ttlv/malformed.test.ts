// Hand-made malformed inputs: each must be rejected with a TtlvError whose code and offset point
// at the offending item.
import { describe, expect, it } from 'vitest';
import { decodeTtlv, DEFAULT_MAX_DEPTH, ItemType, TtlvError } from '../../src/ttlv/index.js';
import { expectTtlvError, fromHex } from './helpers.js';

/** Header bytes: 3-byte tag, type, 4-byte length. */
function header(tag: number, type: number, len: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUIntBE(tag, 0, 3);
  b[3] = type;
  b.writeUInt32BE(len, 4);
  return b;
}
const struct = (tag: number, ...children: Buffer[]): Buffer => {
  const body = Buffer.concat(children);
  return Buffer.concat([header(tag, ItemType.Structure, body.length), body]);
};
const int = (tag: number, n: number): Buffer => {
  const b = Buffer.alloc(16);
  header(tag, ItemType.Integer, 4).copy(b);
  b.writeInt32BE(n, 8);
  return b;
};

/** n Structures nested inside each other, the innermost empty. */
function nested(n: number): Buffer {
  const b = Buffer.alloc(8 * n);
  for (let k = 0; k < n; k++) header(0x420001, ItemType.Structure, 8 * (n - 1 - k)).copy(b, 8 * k);
  return b;
}

describe('decodeTtlv rejects malformed input', () => {
  it('an inner length running past its parent', () => {
    // Structure of 16 bytes holding a Byte String that claims 16 value bytes (needs 24).
    const buf = Buffer.concat([header(0x420001, ItemType.Structure, 16), header(0x420002, ItemType.ByteString, 16), Buffer.alloc(8)]);
    const e = expectTtlvError(() => decodeTtlv(buf), 'BAD_LENGTH', 8);
    expect(e.tag).toBe(0x420002);
    expect(e.message).toMatch(/offset 0x8, tag 0x420002/);
  });

  it('a child header cut by the end of its parent', () => {
    // Parent length 24 = one Integer (16) + half a header (8 bytes are there but the parent ends).
    const buf = Buffer.concat([header(0x420001, ItemType.Structure, 16), int(0x420002, 1), header(0x420003, ItemType.Integer, 4), Buffer.alloc(8)]);
    expectTtlvError(() => decodeTtlv(buf), 'TRAILING_BYTES', 24);
    const inner = Buffer.concat([header(0x420001, ItemType.Structure, 24), int(0x420002, 1), header(0x420003, ItemType.Integer, 4)]);
    expectTtlvError(() => decodeTtlv(inner), 'BAD_LENGTH', 24);
  });

  it('a top-level item longer than the input', () => {
    expectTtlvError(() => decodeTtlv(fromHex('4200200200000004000000FF')), 'TRUNCATED', 0);
    expectTtlvError(() => decodeTtlv(fromHex('42002001')), 'TRUNCATED', 0);
    expectTtlvError(() => decodeTtlv(new Uint8Array(0)), 'TRUNCATED', 0);
    expectTtlvError(() => decodeTtlv(Buffer.concat([header(0x420001, ItemType.Structure, 32), int(0x420002, 1)])), 'TRUNCATED', 0);
  });

  it('non-zero padding', () => {
    expectTtlvError(() => decodeTtlv(fromHex('42002002000000040000000800000001')), 'BAD_PADDING', 0);
    expectTtlvError(() => decodeTtlv(fromHex('420020070000000B48656C6C6F20576F726C640000000001')), 'BAD_PADDING', 0);
    const inStruct = struct(0x420001, int(0x420002, 1), fromHex('42000308000000010180000000000000'));
    expectTtlvError(() => decodeTtlv(inStruct), 'BAD_PADDING', 24);
  });

  it('missing padding', () => {
    // "Hello World" (11 bytes) with no padding at the top level: the input ends too early.
    expectTtlvError(() => decodeTtlv(fromHex('420020070000000B48656C6C6F20576F726C64')), 'TRUNCATED', 0);
    // Inside a Structure whose length counts the unpadded string (19 bytes).
    const s = Buffer.concat([header(0x420001, ItemType.Structure, 19), fromHex('420020070000000B48656C6C6F20576F726C64')]);
    expectTtlvError(() => decodeTtlv(s), 'BAD_LENGTH', 0);
    // Structure length right for padded content, but the next item starts where padding belongs.
    const t = Buffer.concat([
      header(0x420001, ItemType.Structure, 40),
      fromHex('420020070000000B48656C6C6F20576F726C64'),
      int(0x420002, 7),
      Buffer.alloc(5),
    ]);
    expectTtlvError(() => decodeTtlv(t), 'BAD_PADDING', 8);
  });

  it('a Boolean other than 0 or 1', () => {
    expectTtlvError(() => decodeTtlv(fromHex('42002006000000080000000000000002')), 'BAD_BOOLEAN', 0);
    expectTtlvError(() => decodeTtlv(fromHex('42002006000000080100000000000001')), 'BAD_BOOLEAN', 0);
    expectTtlvError(() => decodeTtlv(fromHex('4200200600000004000000010000000')), 'BAD_LENGTH', 0);
  });

  it('invalid UTF-8', () => {
    for (const bad of ['C0AF', 'ED A0 80', 'F8 88 80 80 80', 'E2 82', 'FF']) {
      const bytes = fromHex(bad);
      const item = Buffer.concat([header(0x420020, ItemType.TextString, bytes.length), bytes, Buffer.alloc((8 - (bytes.length % 8)) % 8)]);
      expectTtlvError(() => decodeTtlv(struct(0x420001, item)), 'BAD_UTF8', 8);
    }
  });

  it('keeps a leading byte-order mark as data', () => {
    const item = decodeTtlv(fromHex('4200200700000004EFBBBF4100000000'));
    expect(item.value).toBe('\uFEFFA');
  });

  it('a wrong type byte', () => {
    for (const t of [0x00, 0x0c, 0x42, 0xff]) {
      const e = expectTtlvError(() => decodeTtlv(Buffer.concat([header(0x420020, t, 4), Buffer.alloc(8)])), 'BAD_TYPE', 0);
      expect(e.tag).toBe(0x420020);
    }
  });

  it('wrong fixed lengths', () => {
    const cases: Array<[number, number]> = [
      [ItemType.Integer, 8],
      [ItemType.Enumeration, 8],
      [ItemType.Interval, 0],
      [ItemType.LongInteger, 4],
      [ItemType.DateTime, 16],
      [ItemType.DateTimeExtended, 4],
      [ItemType.Boolean, 1],
      [ItemType.BigInteger, 0],
      [ItemType.BigInteger, 12],
      [ItemType.Structure, 4],
    ];
    for (const [type, len] of cases) {
      expectTtlvError(() => decodeTtlv(Buffer.concat([header(0x420020, type, len), Buffer.alloc(16)])), 'BAD_LENGTH', 0);
    }
  });

  it('tags outside the KMIP ranges, unless exempted', () => {
    expectTtlvError(() => decodeTtlv(int(0x000000, 1)), 'BAD_TAG', 0);
    expectTtlvError(() => decodeTtlv(int(0x430001, 1)), 'BAD_TAG', 0);
    expectTtlvError(() => decodeTtlv(struct(0x420001, int(0x420002, 1), int(0xffffff, 1))), 'BAD_TAG', 24);
    expect(decodeTtlv(int(0x540001, 5)).value).toBe(5);
    expect(decodeTtlv(int(0xaaaaaa, 5), { checkTagRange: false }).value).toBe(5);
    // Exemption applies to descendants of the named structure only, at any depth.
    const vendor = struct(0x42009c, struct(0x123456, int(0x014242, 1)));
    const msg = struct(0x420001, vendor);
    expect(() => decodeTtlv(msg, { anyTagInside: new Set([0x42009c]) })).not.toThrow();
    expectTtlvError(() => decodeTtlv(msg), 'BAD_TAG', 16);
    expectTtlvError(() => decodeTtlv(struct(0x420001, vendor, int(0x014242, 1)), { anyTagInside: new Set([0x42009c]) }), 'BAD_TAG', 40);
  });

  it('a depth bomb of 100 nested structures', () => {
    const bomb = nested(100);
    // The first item past the limit is at depth 33, offset 32 * 8.
    const e = expectTtlvError(() => decodeTtlv(bomb), 'TOO_DEEP', 8 * DEFAULT_MAX_DEPTH);
    expect(e.message).toContain('0x100');
    expect(decodeTtlv(nested(DEFAULT_MAX_DEPTH)).type).toBe(ItemType.Structure);
    expect(() => decodeTtlv(bomb, { maxDepth: 100 })).not.toThrow();
    expectTtlvError(() => decodeTtlv(bomb, { maxDepth: 99 }), 'TOO_DEEP', 8 * 99);
    expectTtlvError(() => decodeTtlv(nested(3), { maxDepth: 2 }), 'TOO_DEEP', 16);
  });

  it('a header announcing 0xFFFFFFF0 bytes, without allocating them', () => {
    const before = process.memoryUsage().arrayBuffers;
    const huge = header(0x420078, ItemType.Structure, 0xfffffff0);
    expectTtlvError(() => decodeTtlv(huge), 'TOO_LARGE', 0);
    // With the limit raised past it, the short input is what rejects it.
    expectTtlvError(() => decodeTtlv(huge, { maxLength: 0xffffffff }), 'TRUNCATED', 0);
    // Same for a Byte String or Text String deep inside a message.
    const inner = struct(0x420001, header(0x420002, ItemType.ByteString, 0xfffffff0));
    expectTtlvError(() => decodeTtlv(inner), 'TOO_LARGE', 8);
    expectTtlvError(() => decodeTtlv(inner, { maxLength: 0xffffffff }), 'BAD_LENGTH', 8);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('an item over a configured maxLength', () => {
    const s = struct(0x420001, int(0x420002, 1), int(0x420003, 2));
    expect(() => decodeTtlv(s, { maxLength: 32 })).not.toThrow();
    expectTtlvError(() => decodeTtlv(s, { maxLength: 31 }), 'TOO_LARGE', 0);
    const t = fromHex('420020070000000B48656C6C6F20576F726C640000000000');
    expect(() => decodeTtlv(struct(0x420001, t), { maxLength: 24 })).not.toThrow();
    expectTtlvError(() => decodeTtlv(struct(0x420001, t), { maxLength: 23 }), 'TOO_LARGE', 0);
    expect(() => decodeTtlv(t, { maxLength: 11 })).not.toThrow();
    expectTtlvError(() => decodeTtlv(t, { maxLength: 10 }), 'TOO_LARGE', 0);
  });

  it('trailing bytes after the item', () => {
    const e = expectTtlvError(() => decodeTtlv(Buffer.concat([int(0x420020, 1), Buffer.alloc(8)])), 'TRAILING_BYTES', 16);
    expect(e.tag).toBeUndefined();
    expectTtlvError(() => decodeTtlv(Buffer.concat([int(0x420020, 1), Buffer.from([0])])), 'TRAILING_BYTES', 16);
  });

  it('reports errors as TtlvError with code, offset and tag in the message', () => {
    const e = expectTtlvError(() => decodeTtlv(struct(0x420001, int(0x420002, 1), fromHex('42000A06000000080000000000000009'))), 'BAD_BOOLEAN', 24);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('TtlvError');
    expect(e.tag).toBe(0x42000a);
    expect(e.message).toBe('Boolean value is neither 0 nor 1 (at offset 0x18, tag 0x42000A)');
  });

  it('decodes views of a larger buffer and keeps Byte Strings zero-copy', () => {
    const inner = fromHex('42002008000000030102030000000000');
    const big = Buffer.concat([Buffer.alloc(5, 0xee), inner, Buffer.alloc(3, 0xee)]);
    const view = big.subarray(5, 5 + inner.length);
    const item = decodeTtlv(view);
    expect(item.type).toBe(ItemType.ByteString);
    const bytes = item.value as Uint8Array;
    expect(Object.getPrototypeOf(bytes)).toBe(Uint8Array.prototype);
    expect([...bytes]).toEqual([1, 2, 3]);
    big[5 + 8] = 9; // the view shares the input's memory
    expect(bytes[0]).toBe(9);
  });

  it('only ever throws TtlvError for truncations of a valid message', () => {
    const msg = struct(0x420078, struct(0x420077, int(0x42000d, 1)), fromHex('420020070000000B48656C6C6F20576F726C640000000000'));
    for (let n = 0; n < msg.length; n++) {
      expect(() => decodeTtlv(msg.subarray(0, n))).toThrow(TtlvError);
    }
  });
});
