// Encoder range checks, Big Integer lengths, builders and the pretty-printer.
import { describe, expect, it } from 'vitest';
import { TAG_INFO, Tag } from '../../src/kmip/registry/generated.js';
import {
  bigInteger,
  bigIntegerLength,
  boolean,
  byteString,
  dateTime,
  dateTimeExtended,
  decodeTtlv,
  encodeTtlv,
  enumeration,
  formatTtlv,
  integer,
  interval,
  ItemType,
  longInteger,
  structure,
  textString,
  type TtlvItem,
} from '../../src/ttlv/index.js';
import { expectTtlvError, fromHex, toHex } from './helpers.js';

const T = 0x420020;

describe('encodeTtlv', () => {
  it('writes the spec 9.1.2 examples from builders', () => {
    expect(toHex(encodeTtlv(integer(T, 8)))).toBe('42002002000000040000000800000000');
    expect(toHex(encodeTtlv(longInteger(T, 123456789000000000n)))).toBe('420020030000000801B69B4BA5749200');
    expect(toHex(encodeTtlv(bigInteger(T, 1234567890000000000000000000n)))).toBe('42002004000000100000000003FD35EB6BC2DF4618080000');
    expect(toHex(encodeTtlv(enumeration(T, 255)))).toBe('4200200500000004000000FF00000000');
    expect(toHex(encodeTtlv(boolean(T, true)))).toBe('42002006000000080000000000000001');
    expect(toHex(encodeTtlv(textString(T, 'Hello World')))).toBe('420020070000000B48656C6C6F20576F726C640000000000');
    expect(toHex(encodeTtlv(byteString(T, new Uint8Array([1, 2, 3]))))).toBe('42002008000000030102030000000000');
    expect(toHex(encodeTtlv(dateTime(T, new Date('2008-03-14T11:56:40Z'))))).toBe('42002009000000080000000047DA67F8');
    expect(toHex(encodeTtlv(interval(T, 864000)))).toBe('4200200A00000004000D2F0000000000');
    expect(toHex(encodeTtlv(structure(T, [enumeration(0x420004, 254), integer(0x420005, 255)])))).toBe(
      '42002001000000204200040500000004000000FE000000004200050200000004000000FF00000000',
    );
  });

  it('returns a Buffer of exactly the encoded size', () => {
    const out = encodeTtlv(structure(T, [textString(0x420001, 'x'), structure(0x420002, [])]));
    expect(Buffer.isBuffer(out)).toBe(true);
    expect(out.length).toBe(8 + 16 + 8);
  });

  it('pads strings of every length with zeros', () => {
    for (let n = 0; n <= 17; n++) {
      const s = 'a'.repeat(n);
      const out = encodeTtlv(textString(T, s));
      expect(out.length).toBe(8 + Math.ceil(n / 8) * 8);
      expect(out.readUInt32BE(4)).toBe(n);
      expect([...out.subarray(8 + n)].every((b) => b === 0)).toBe(true);
      expect(decodeTtlv(out).value).toBe(s);
    }
    // UTF-8 length, not UTF-16 length.
    expect(encodeTtlv(textString(T, 'κόσμε')).readUInt32BE(4)).toBe(10);
    expect(encodeTtlv(textString(T, '🔑')).readUInt32BE(4)).toBe(4);
  });

  it('encodes Big Integers in the minimal multiple of 8 bytes, two\'s complement', () => {
    const cases: Array<[bigint, string]> = [
      [0n, '0000000000000000'],
      [1n, '0000000000000001'],
      [-1n, 'FFFFFFFFFFFFFFFF'],
      [-1000n, 'FFFFFFFFFFFFFC18'],
      [(1n << 63n) - 1n, '7FFFFFFFFFFFFFFF'],
      [1n << 63n, '00000000000000008000000000000000'],
      [-(1n << 63n), '8000000000000000'],
      [-(1n << 63n) - 1n, 'FFFFFFFFFFFFFFFF7FFFFFFFFFFFFFFF'],
      [65537n, '0000000000010001'],
    ];
    for (const [v, hex] of cases) {
      expect(bigIntegerLength(v), String(v)).toBe(hex.length / 2);
      const out = encodeTtlv(bigInteger(T, v));
      expect(toHex(out.subarray(8)), String(v)).toBe(hex);
      expect(decodeTtlv(out).value).toBe(v);
    }
    // A 2048-bit modulus with the top bit set needs a sign word: 264 bytes.
    expect(bigIntegerLength((1n << 2048n) - 1n)).toBe(264);
    expect(bigIntegerLength((1n << 2047n) - 1n)).toBe(256);
  });

  it('rejects out-of-range numbers instead of wrapping them', () => {
    const bad: TtlvItem[] = [
      integer(T, 2 ** 31),
      integer(T, -(2 ** 31) - 1),
      integer(T, 1.5),
      integer(T, Number.NaN),
      enumeration(T, -1),
      enumeration(T, 2 ** 32),
      interval(T, -1),
      interval(T, 2 ** 32),
      longInteger(T, 1n << 63n),
      longInteger(T, -(1n << 63n) - 1n),
      dateTime(T, 1n << 63n),
      dateTimeExtended(T, -(1n << 64n)),
    ];
    for (const item of bad) expectTtlvError(() => encodeTtlv(structure(0x420001, [item])), 'BAD_VALUE', -1);
    expect(() => encodeTtlv(integer(T, -(2 ** 31)))).not.toThrow();
    expect(() => encodeTtlv(integer(T, 2 ** 31 - 1))).not.toThrow();
    expect(() => encodeTtlv(enumeration(T, 2 ** 32 - 1))).not.toThrow();
    expect(() => encodeTtlv(longInteger(T, -(1n << 63n)))).not.toThrow();
  });

  it('rejects values of the wrong JS type, bad tags and unknown types', () => {
    const cast = (x: unknown): TtlvItem => x as TtlvItem;
    expectTtlvError(() => encodeTtlv(cast({ tag: T, type: ItemType.LongInteger, value: 5 })), 'BAD_VALUE');
    expectTtlvError(() => encodeTtlv(cast({ tag: T, type: ItemType.Integer, value: 5n })), 'BAD_VALUE');
    expectTtlvError(() => encodeTtlv(cast({ tag: T, type: ItemType.Boolean, value: 1 })), 'BAD_VALUE');
    expectTtlvError(() => encodeTtlv(cast({ tag: T, type: ItemType.TextString, value: 1 })), 'BAD_VALUE');
    expectTtlvError(() => encodeTtlv(cast({ tag: T, type: ItemType.ByteString, value: [1, 2] })), 'BAD_VALUE');
    expectTtlvError(() => encodeTtlv(cast({ tag: T, type: ItemType.Structure, value: {} })), 'BAD_VALUE');
    expectTtlvError(() => encodeTtlv(cast({ tag: T, type: 0x0c, value: 0 })), 'BAD_TYPE');
    expectTtlvError(() => encodeTtlv(integer(0x1000000, 1)), 'BAD_TAG');
    expectTtlvError(() => encodeTtlv(integer(-1, 1)), 'BAD_TAG');
    // Any 24-bit tag can be written (vendor extensions are echoed as received).
    expect(toHex(encodeTtlv(integer(0x014242, 1)).subarray(0, 3))).toBe('014242');
  });

  it('rejects unpaired surrogates, which UTF-8 cannot carry', () => {
    expectTtlvError(() => encodeTtlv(textString(T, 'a\uD800b')), 'BAD_VALUE');
    expectTtlvError(() => encodeTtlv(textString(T, '\uDC00')), 'BAD_VALUE');
    expect(decodeTtlv(encodeTtlv(textString(T, '\uD83D\uDD11'))).value).toBe('🔑');
  });

  it('rejects trees nested absurdly deep (e.g. cycles) with TOO_DEEP', () => {
    const items: TtlvItem[] = [];
    const cyclic = structure(T, items);
    items.push(cyclic);
    expectTtlvError(() => encodeTtlv(cyclic), 'TOO_DEEP');
  });
});

describe('builders', () => {
  it('build the documented shapes', () => {
    expect(longInteger(T, 5)).toEqual({ tag: T, type: ItemType.LongInteger, value: 5n });
    expect(bigInteger(T, -7)).toEqual({ tag: T, type: ItemType.BigInteger, value: -7n });
    expect(dateTime(T, 99n).value).toBe(99n);
    expect(dateTime(T, new Date(1999)).value).toBe(1n);
    expect(dateTime(T, new Date(-1)).value).toBe(-1n);
    expect(dateTimeExtended(T, new Date(1500)).value).toBe(1_500_000n);
    expect(dateTimeExtended(T, 7n).type).toBe(ItemType.DateTimeExtended);
  });
  it('refuse numbers that cannot become exact bigints, and invalid Dates', () => {
    expectTtlvError(() => longInteger(T, 1.5), 'BAD_VALUE');
    expectTtlvError(() => bigInteger(T, 2 ** 60), 'BAD_VALUE');
    expectTtlvError(() => dateTime(T, new Date('nonsense')), 'BAD_VALUE');
  });
});

describe('formatTtlv', () => {
  const msg = structure(Tag.RequestMessage, [
    structure(Tag.RequestHeader, [
      structure(Tag.ProtocolVersion, [integer(Tag.ProtocolVersionMajor, 1), integer(Tag.ProtocolVersionMinor, 1)]),
      dateTime(Tag.TimeStamp, 1205495800n),
      boolean(Tag.AsynchronousIndicator, false),
    ]),
    structure(Tag.BatchItem, [
      enumeration(Tag.Operation, 1),
      structure(Tag.RequestPayload, []),
      textString(Tag.UniqueIdentifier, 'a "quoted" id'),
      byteString(Tag.KeyMaterial, new Uint8Array([0xde, 0xad])),
      bigInteger(Tag.Modulus, -255n),
      longInteger(Tag.UsageLimitsTotal, 1000n),
      interval(Tag.LeaseTime, 3600),
      dateTimeExtended(0x540001, 1205495800123456n),
    ]),
  ]);

  it('prints an indented tree with tag names', () => {
    const text = formatTtlv(msg, (t) => TAG_INFO.get(t)?.xml);
    expect(text).toBe(
      [
        'RequestMessage (0x420078) Structure',
        '  RequestHeader (0x420077) Structure',
        '    ProtocolVersion (0x420069) Structure',
        '      ProtocolVersionMajor (0x42006A) Integer: 1',
        '      ProtocolVersionMinor (0x42006B) Integer: 1',
        '    TimeStamp (0x420092) Date-Time: 1205495800 (2008-03-14T11:56:40.000Z)',
        '    AsynchronousIndicator (0x420007) Boolean: false',
        '  BatchItem (0x42000F) Structure',
        '    Operation (0x42005C) Enumeration: 0x00000001 (1)',
        '    RequestPayload (0x420079) Structure (empty)',
        '    UniqueIdentifier (0x420094) Text String: "a \\"quoted\\" id"',
        '    KeyMaterial (0x420043) Byte String: [2] DEAD',
        '    Modulus (0x420052) Big Integer: -0xFF',
        '    UsageLimitsTotal (0x420097) Long Integer: 1000',
        '    LeaseTime (0x420049) Interval: 3600 s',
        '    0x540001 Date-Time Extended: 1205495800123456 µs (2008-03-14T11:56:40.123Z)',
      ].join('\n'),
    );
  });

  it('prints hex tags without a name function', () => {
    expect(formatTtlv(integer(T, -3))).toBe('0x420020 Integer: -3');
    expect(formatTtlv(dateTime(T, 1n << 62n))).toContain('out of Date range');
  });

  it('formats every decoded message of a vector file without throwing', () => {
    const buf = fromHex('42007801000000604200770100000038420069010000002042006A0200000004000000010000000042006B0200000004000000010000000042000D0200000004000000010000000042000F010000001842005C05000000040000001E000000004200790100000000');
    expect(formatTtlv(decodeTtlv(buf)).split('\n')).toHaveLength(9);
  });
});
