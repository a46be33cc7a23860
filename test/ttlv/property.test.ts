// Property-based checks: any item tree round-trips, and no byte string makes the decoder throw
// anything but TtlvError (or run long).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeTtlv, encodeTtlv, ItemType, TtlvError, type TtlvItem } from '../../src/ttlv/index.js';

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

const tag = fc.oneof(fc.integer({ min: 0x420000, max: 0x42ffff }), fc.integer({ min: 0x540000, max: 0x54ffff }));
const int64 = fc.bigInt({ min: INT64_MIN, max: INT64_MAX });
// Big Integers: small, around word boundaries, and RSA-sized.
const big = fc.oneof(
  fc.bigInt({ min: -(1n << 130n), max: 1n << 130n }),
  fc.integer({ min: 1, max: 4200 }).chain((bits) => fc.constantFrom(1n << BigInt(bits), -(1n << BigInt(bits)), (1n << BigInt(bits)) - 1n, -(1n << BigInt(bits)) - 1n)),
);

const leaf: fc.Arbitrary<TtlvItem> = fc.oneof(
  fc.record({ tag, type: fc.constant(ItemType.Integer), value: fc.integer({ min: -0x80000000, max: 0x7fffffff }) }),
  fc.record({ tag, type: fc.constant(ItemType.LongInteger), value: int64 }),
  fc.record({ tag, type: fc.constant(ItemType.BigInteger), value: big }),
  fc.record({ tag, type: fc.constant(ItemType.Enumeration), value: fc.integer({ min: 0, max: 0xffffffff }) }),
  fc.record({ tag, type: fc.constant(ItemType.Boolean), value: fc.boolean() }),
  fc.record({ tag, type: fc.constant(ItemType.TextString), value: fc.string({ unit: 'binary', maxLength: 40 }) }),
  fc.record({ tag, type: fc.constant(ItemType.ByteString), value: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({ tag, type: fc.constant(ItemType.DateTime), value: int64 }),
  fc.record({ tag, type: fc.constant(ItemType.Interval), value: fc.integer({ min: 0, max: 0xffffffff }) }),
  fc.record({ tag, type: fc.constant(ItemType.DateTimeExtended), value: int64 }),
);

const { item } = fc.letrec<{ item: TtlvItem; struct: TtlvItem }>((rec) => ({
  item: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, rec('struct')),
  struct: fc.record({ tag, type: fc.constant(ItemType.Structure), value: fc.array(rec('item'), { maxLength: 6 }) }),
}));

function depthOf(it: TtlvItem): number {
  return it.type === ItemType.Structure ? 1 + Math.max(0, ...it.value.map(depthOf)) : 1;
}

/** Decode, allowing only TtlvError to escape. */
function tryDecode(bytes: Uint8Array, options?: Parameters<typeof decodeTtlv>[1]): void {
  try {
    decodeTtlv(bytes, options);
  } catch (e) {
    if (!(e instanceof TtlvError)) throw e;
  }
}

describe('TTLV properties', () => {
  it('decode(encode(x)) equals x, and re-encoding is byte-identical', () => {
    fc.assert(
      fc.property(item, (x) => {
        fc.pre(depthOf(x) <= 32);
        const bytes = encodeTtlv(x);
        const back = decodeTtlv(bytes);
        expect(back).toEqual(x);
        expect(encodeTtlv(back).equals(bytes)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('decoding random bytes throws nothing but TtlvError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        tryDecode(bytes);
        tryDecode(bytes, { checkTagRange: false });
      }),
      { numRuns: 3000 },
    );
  });

  it('decoding random bytes behind a plausible header throws nothing but TtlvError', () => {
    // Random bodies rarely get past the first header; give them a valid-looking one.
    const header = fc.record({ tag, type: fc.integer({ min: 0, max: 12 }) });
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 300 }), ({ tag: t, type }, body) => {
        const buf = Buffer.alloc(8 + body.length);
        buf.writeUIntBE(t, 0, 3);
        buf[3] = type;
        buf.writeUInt32BE(body.length, 4);
        buf.set(body, 8);
        tryDecode(buf, { checkTagRange: false });
      }),
      { numRuns: 3000 },
    );
  });

  it('decoding mutated valid encodings throws nothing but TtlvError', () => {
    fc.assert(
      fc.property(
        item,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        (x, flips, cut) => {
          const bytes = Buffer.from(encodeTtlv(x));
          for (const [at, v] of flips) bytes[at % bytes.length] = v;
          tryDecode(bytes);
          tryDecode(bytes.subarray(0, cut % (bytes.length + 1)), { checkTagRange: false, maxDepth: 8 });
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('decodes a large message quickly (linear time)', () => {
    const children: TtlvItem[] = [];
    for (let i = 0; i < 50_000; i++) children.push({ tag: 0x420001, type: ItemType.Integer, value: i });
    const bytes = encodeTtlv({ tag: 0x420078, type: ItemType.Structure, value: children });
    const t0 = performance.now();
    const back = decodeTtlv(bytes);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect((back.value as TtlvItem[]).length).toBe(50_000);
  });
});
