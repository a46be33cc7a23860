// Generators of hostile requests for property-based fuzzing (fast-check): valid requests of every
// supported operation as seeds, byte-level and tree-level mutations of them, and random but
// well-formed TTLV requests built from KMIP tags. Destroy and Revoke are not seeded, so a fuzz run
// cannot legitimately erase the keys whose survival the tests check.
import fc from 'fast-check';
import { encodeTtlv, ItemType, type StructureItem, type TtlvItem } from '../../src/ttlv/index.js';
import { Operation, ObjectType, QueryFunction, TAG_INFO, Tag, CryptographicAlgorithm, NameType } from '../../src/kmip/registry/generated.js';
import { byteString, enumeration, integer, structure, textString, dateTime, longInteger, interval, boolean } from '../../src/ttlv/build.js';
import { requestMessage, type BatchItemRequest, type Version } from '../helpers/kmip-client.js';
import { createItem, getItem, discoverItem, V12, V21 } from './helpers.js';

const V10: Version = { major: 1, minor: 0 };
const V14: Version = { major: 1, minor: 4 };
const V20: Version = { major: 2, minor: 0 };

function v1Attribute(name: string, value: TtlvItem): TtlvItem {
  return structure(Tag.Attribute, [textString(Tag.AttributeName, name), { ...value, tag: Tag.AttributeValue } as TtlvItem]);
}

function registerItem(version: Version): BatchItemRequest {
  const key = structure(Tag.SymmetricKey, [
    structure(Tag.KeyBlock, [
      enumeration(Tag.KeyFormatType, 1),
      structure(Tag.KeyValue, [byteString(Tag.KeyMaterial, Buffer.alloc(32, 0x42))]),
      enumeration(Tag.CryptographicAlgorithm, CryptographicAlgorithm.AES),
      integer(Tag.CryptographicLength, 256),
    ]),
  ]);
  const attrs =
    version.major >= 2
      ? structure(Tag.Attributes, [integer(Tag.CryptographicUsageMask, 12)])
      : structure(Tag.TemplateAttribute, [v1Attribute('Cryptographic Usage Mask', integer(0, 12))]);
  return { operation: Operation.Register, payload: [enumeration(Tag.ObjectType, ObjectType.SymmetricKey), attrs, key] };
}

function locateItem(version: Version): BatchItemRequest {
  const name = structure(0, [textString(Tag.NameValue, 'vm-kek'), enumeration(Tag.NameType, NameType.UninterpretedTextString)]);
  const payload: TtlvItem[] =
    version.major >= 2
      ? [integer(Tag.MaximumItems, 5), structure(Tag.Attributes, [enumeration(Tag.ObjectType, ObjectType.SymmetricKey), { ...name, tag: Tag.Name } as TtlvItem])]
      : [integer(Tag.MaximumItems, 5), v1Attribute('Object Type', enumeration(0, ObjectType.SymmetricKey)), v1Attribute('Name', name)];
  return { operation: Operation.Locate, payload };
}

/** Valid requests, one per operation and shape the server implements (except Destroy and Revoke). */
export function seedRequests(knownId = '00000000-0000-4000-8000-000000000000'): { name: string; item: StructureItem }[] {
  const seeds: { name: string; item: StructureItem }[] = [];
  const add = (name: string, v: Version, items: BatchItemRequest[], headerExtra: TtlvItem[] = []) =>
    seeds.push({ name, item: requestMessage(v, items, headerExtra) });
  for (const v of [V10, V12, V14, V20, V21]) {
    const tag = `${v.major}.${v.minor}`;
    add(`discover ${tag}`, v, [discoverItem()]);
    add(`create+get ${tag}`, v, [createItem(v, 128), getItem()]);
    add(`register ${tag}`, v, [registerItem(v)]);
    add(`locate ${tag}`, v, [locateItem(v)]);
  }
  add('query', V14, [{ operation: Operation.Query, payload: [enumeration(Tag.QueryFunction, QueryFunction.QueryOperations), enumeration(Tag.QueryFunction, QueryFunction.QueryObjects)] }]);
  add('get known', V12, [getItem(knownId)]);
  add('get attributes', V12, [{ operation: Operation.GetAttributes, payload: [textString(Tag.UniqueIdentifier, knownId), textString(Tag.AttributeName, 'State')] }]);
  add('get attribute list', V21, [{ operation: Operation.GetAttributeList, payload: [textString(Tag.UniqueIdentifier, knownId)] }]);
  add('create+activate+add', V12, [
    createItem(V12, 256),
    { operation: Operation.Activate, payload: [] },
    { operation: Operation.AddAttribute, payload: [v1Attribute('x-note', textString(0, 'fuzz'))] },
  ]);
  add('header extras', V12, [discoverItem()], [integer(Tag.MaximumResponseSize, 4096), boolean(Tag.AsynchronousIndicator, false), enumeration(Tag.BatchErrorContinuationOption, 1)]);
  return seeds;
}

// --- byte level ---------------------------------------------------------------------------------

/** Offsets of every item header in a well-formed TTLV buffer. */
export function itemOffsets(buf: Uint8Array): number[] {
  const out: number[] = [];
  const walk = (start: number, end: number) => {
    let p = start;
    while (p + 8 <= end) {
      out.push(p);
      const type = buf[p + 3]!;
      const len = ((buf[p + 4]! << 24) >>> 0) + (buf[p + 5]! << 16) + (buf[p + 6]! << 8) + buf[p + 7]!;
      if (type === ItemType.Structure) walk(p + 8, p + 8 + len);
      p += 8 + len + ((8 - (len % 8)) % 8);
    }
  };
  walk(0, buf.length);
  return out;
}

const LENGTHS = [0, 1, 4, 7, 8, 9, 15, 16, 0x7fff, 0x7fffffff, 0x80000000, 0xfffffff8, 0xffffffff];

type ByteEdit = (b: Buffer, headers: number[]) => Buffer;

const byteEdit: fc.Arbitrary<ByteEdit> = fc.oneof(
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })).map(([at, bit]): ByteEdit => (b) => {
    if (b.length > 0) b[at % b.length]! ^= 1 << bit;
    return b;
  }),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([at, v]): ByteEdit => (b) => {
    if (b.length > 0) b[at % b.length] = v;
    return b;
  }),
  // An item header's length field: small, off by one, huge.
  fc.tuple(fc.nat(), fc.oneof(fc.constantFrom(...LENGTHS), fc.integer({ min: -9, max: 9 }))).map(([i, v]): ByteEdit => (b, h) => {
    const at = h[i % h.length]!;
    const len = LENGTHS.includes(v) ? v : (b.readUInt32BE(at + 4) + v) >>> 0;
    b.writeUInt32BE(len >>> 0, at + 4);
    return b;
  }),
  // An item header's type byte, including the undefined ones.
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 0x10 })).map(([i, t]): ByteEdit => (b, h) => {
    b[h[i % h.length]! + 3] = t;
    return b;
  }),
  // An item header's tag: another KMIP tag, or one outside the ranges.
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 0xffffff })).map(([i, t]): ByteEdit => (b, h) => {
    const tag = t % 3 === 0 ? t : 0x420000 | (t & 0x1ff);
    b.writeUIntBE(tag, h[i % h.length]!, 3);
    return b;
  }),
  // Cut, drop, duplicate or insert a run of bytes.
  fc.nat().map((at): ByteEdit => (b) => b.subarray(0, at % (b.length + 1))),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 24 })).map(([at, n]): ByteEdit => (b) => {
    const p = at % (b.length + 1);
    return Buffer.concat([b.subarray(0, p), b.subarray(Math.min(b.length, p + n))]);
  }),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 48 })).map(([at, n]): ByteEdit => (b) => {
    const p = at % (b.length + 1);
    return Buffer.concat([b.subarray(0, p + n), b.subarray(p)]);
  }),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 24 })).map(([at, ins]): ByteEdit => (b) => {
    const p = at % (b.length + 1);
    return Buffer.concat([b.subarray(0, p), ins, b.subarray(p)]);
  }),
);

/** Seeds with one to four byte-level edits. */
export function mutatedBytes(seeds: readonly Uint8Array[]): fc.Arbitrary<Buffer> {
  return fc.tuple(fc.nat({ max: seeds.length - 1 }), fc.array(byteEdit, { minLength: 1, maxLength: 4 })).map(([s, edits]) => {
    let b = Buffer.from(seeds[s]!);
    const headers = itemOffsets(b);
    for (const e of edits) {
      if (b.length < 8) break;
      const inside = headers.filter((h) => h + 8 <= b.length);
      b = Buffer.from(e(b, inside.length > 0 ? inside : [0]));
    }
    return b;
  });
}

/** Make the top-level length agree with the bytes, so a stream framer cuts the message where it ends. */
export function fixTopLength(input: Buffer): Buffer {
  // Shorter than a header: complete it, or the framer would (rightly) wait for the rest.
  const b = input.length < 8 ? Buffer.concat([input, Buffer.alloc(8 - input.length)]) : input;
  const body = b.length - 8;
  const padded = body + ((8 - (body % 8)) % 8);
  const out = Buffer.concat([b, Buffer.alloc(padded - body)]);
  out.writeUInt32BE(padded, 4);
  return out;
}

// --- tree level: well-formed TTLV, wrong KMIP ----------------------------------------------------

const KMIP_TAGS = [...TAG_INFO.keys()];
const kmipTag = fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...KMIP_TAGS) }, { weight: 1, arbitrary: fc.integer({ min: 0x540000, max: 0x540010 }) });
const int32 = fc.oneof(fc.constantFrom(0, 1, -1, 0x7fffffff, -0x80000000, 128, 256), fc.integer({ min: -0x80000000, max: 0x7fffffff }));
const uint32 = fc.oneof(fc.integer({ min: 0, max: 0x30 }), fc.integer({ min: 0, max: 0xffffffff }));
const int64 = fc.oneof(fc.constantFrom(0n, -1n, (1n << 63n) - 1n, -(1n << 63n)), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }));

function leafFor(tag: number): fc.Arbitrary<TtlvItem> {
  return fc.oneof(
    int32.map((v) => integer(tag, v)),
    uint32.map((v) => enumeration(tag, v)),
    fc.string({ maxLength: 40 }).map((v) => textString(tag, v)),
    fc.uint8Array({ maxLength: 48 }).map((v) => byteString(tag, v)),
    int64.map((v) => longInteger(tag, v)),
    int64.map((v) => dateTime(tag, v)),
    fc.integer({ min: 0, max: 0xffffffff }).map((v) => interval(tag, v)),
    fc.boolean().map((v) => boolean(tag, v)),
  );
}

const { anyItem } = fc.letrec<{ anyItem: TtlvItem; anyStruct: TtlvItem }>((rec) => ({
  anyItem: fc.oneof({ depthSize: 'small', maxDepth: 5 }, kmipTag.chain(leafFor), rec('anyStruct')),
  anyStruct: fc.tuple(kmipTag, fc.array(rec('anyItem'), { maxLength: 5 })).map(([tag, v]) => structure(tag, v)),
}));

const operationCode = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...Object.values(Operation)) }, { weight: 1, arbitrary: uint32 });
const version = fc.oneof(fc.constantFrom(V10, V12, V14, V20, V21), fc.record({ major: int32, minor: int32 }));

/** A well-formed Request Message whose batch items carry random KMIP content. */
export const randomRequest: fc.Arbitrary<StructureItem> = fc
  .tuple(
    version,
    fc.array(fc.tuple(operationCode, fc.option(fc.array(anyItem, { maxLength: 6 }), { nil: undefined }), fc.option(fc.uint8Array({ maxLength: 8 }), { nil: undefined })), {
      minLength: 0,
      maxLength: 4,
    }),
    fc.array(anyItem, { maxLength: 2 }),
  )
  .filter(([, items]) => items.every(([op]) => op !== Operation.Destroy && op !== Operation.Revoke))
  .map(([v, items, headerExtra]) =>
    requestMessage(
      v,
      items.map(([operation, payload, id]) => ({ operation, ...(payload ? { payload } : {}), ...(id ? { id } : {}) })),
      headerExtra,
    ),
  );

type TreeEdit = (root: StructureItem) => StructureItem;

/** Apply `f` to the n-th node (pre-order) of the tree. */
function atNode(root: TtlvItem, n: number, f: (it: TtlvItem) => TtlvItem[]): TtlvItem[] {
  let i = 0;
  const visit = (it: TtlvItem): TtlvItem[] => {
    if (i++ === n) return f(it);
    if (it.type !== ItemType.Structure) return [it];
    return [{ ...it, value: it.value.flatMap(visit) }];
  };
  return visit(root);
}

function countNodes(it: TtlvItem): number {
  return it.type === ItemType.Structure ? 1 + it.value.reduce((s, c) => s + countNodes(c), 0) : 1;
}

const treeEdit: fc.Arbitrary<TreeEdit> = fc.oneof(
  // Same tag, another type and value: a known tag with the wrong item type.
  fc.tuple(fc.nat(), anyItem).map(([n, other]): TreeEdit => (root) => {
    const target = 1 + (n % Math.max(1, countNodes(root) - 1));
    return atNode(root, target, (it) => [{ ...other, tag: it.tag } as TtlvItem])[0] as StructureItem;
  }),
  fc.nat().map((n): TreeEdit => (root) => atNode(root, 1 + (n % Math.max(1, countNodes(root) - 1)), () => [])[0] as StructureItem),
  fc.nat().map((n): TreeEdit => (root) => atNode(root, 1 + (n % Math.max(1, countNodes(root) - 1)), (it) => [it, it])[0] as StructureItem),
  fc.tuple(fc.nat(), anyItem).map(([n, extra]): TreeEdit => (root) =>
    atNode(root, n % countNodes(root), (it) => (it.type === ItemType.Structure ? [{ ...it, value: [...it.value, extra] }] : [it, extra]))[0] as StructureItem,
  ),
  // Numbers at their edges.
  fc.tuple(fc.nat(), int32, uint32).map(([n, i, u]): TreeEdit => (root) =>
    atNode(root, n % countNodes(root), (it) =>
      it.type === ItemType.Integer ? [integer(it.tag, i)] : it.type === ItemType.Enumeration ? [enumeration(it.tag, u)] : [it],
    )[0] as StructureItem,
  ),
);

/** Seeds with one to three tree-level edits, encoded (well-formed TTLV). */
export function mutatedTrees(seeds: readonly StructureItem[]): fc.Arbitrary<Buffer> {
  return fc.tuple(fc.nat({ max: seeds.length - 1 }), fc.array(treeEdit, { minLength: 1, maxLength: 3 })).map(([s, edits]) => {
    let t = seeds[s]!;
    for (const e of edits) t = e(t);
    return Buffer.from(encodeTtlv(t));
  });
}

/** Everything above plus plain random bytes: the input of the dispatcher and wire fuzzers. */
export function hostileRequests(seeds: readonly StructureItem[]): fc.Arbitrary<Buffer> {
  const encoded = seeds.map((s) => Buffer.from(encodeTtlv(s)));
  return fc.oneof(
    { weight: 4, arbitrary: mutatedBytes(encoded) },
    { weight: 3, arbitrary: mutatedTrees(seeds) },
    { weight: 3, arbitrary: randomRequest.map((r) => Buffer.from(encodeTtlv(r))) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }).map((u) => Buffer.from(u)) },
  );
}
