// The SQLite store keeps an object's attributes that the value index leaves out (value-index.ts:
// flags, algorithm and length, digest...) in one column of its objects row, not one attributes row
// each. Those are 14 of the ~17 attributes of a new key; as rows they were most of the b-tree work
// of a Create (bench/RESULTS.md, sixteenth and twentieth rounds).
//
// objects.unindexed_attributes is NULL for objects stored before that column existed: theirs are
// all rows. Otherwise it holds exactly the object's unindexed attributes, and none of them is a
// row.
//
// Format: a format byte (2), then per attribute, in (name, index) order, an entry:
//   FF 01, then escaped: the name's UTF-8 length (1 byte) and bytes, the encoded Attribute Value
//   item exactly as a row's value column holds it (TTLV: its header gives its length), and the
//   index (4 bytes, big-endian).
// Escaped means every FF byte is written FF FE, so FF 01 occurs in a bag only where an entry
// starts. That makes Locate's equality test a plain byte search that SQLite runs in C:
// instr(bag, bagEntryPrefix(name, value)) finds an entry whose name and whole value are those
// (the value is self-delimiting and the prefix cannot start inside another entry). A test through
// a JavaScript function instead cost ~1 µs per object on the event loop, six times a row scan's
// time for a broad Locate (sixteenth round); client-chosen bytes in a value cannot fake an entry.
import { decodeTtlv, encodeTtlv, structure } from '../ttlv/index.js';
import { Tag } from '../kmip/registry/generated.js';
import { isConstantAttribute, type Attribute } from '../kmip/attributes.js';
import Database from 'better-sqlite3';
import { isValueIndexed, UNINDEXED_ATTRIBUTE_NAMES } from './value-index.js';

/** (name, index) order, as the attributes table's primary key sorts them (names are ASCII). */
export function byNameAndIndex(a: { readonly name: string; readonly index: number }, b: { readonly name: string; readonly index: number }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : a.index - b.index;
}

/**
 * An object's attributes as the SQLite store keeps them: those the value index holds as rows, the
 * rest in one bag (encodeAttributeBag, which throws for a repeated attribute).
 */
export function storedForm(attrs: readonly Attribute[]): { rows: Attribute[]; bag: Buffer } {
  const rows: Attribute[] = [];
  const bagged: Attribute[] = [];
  for (const a of attrs) (isValueIndexed(a.name) ? rows : bagged).push(a);
  return { rows, bag: encodeAttributeBag(bagged) };
}

const FORMAT = 2;
const ESC = 0xff;
const ENTRY = 0x01;
const ESCAPED_FF = 0xfe;
const HEADER = 8;
const padded = (n: number): number => (n + 7) & ~7;

function malformed(why: string): Error {
  return new Error(`stored attribute bag is malformed: ${why}`);
}

/** Bytes [from, to) of `src` escaped into `out` at `at`; returns where it stopped. */
function putEscaped(out: Buffer, at: number, src: Uint8Array, from: number, to: number): number {
  for (let i = from; i < to; i++) {
    const b = src[i]!;
    out[at++] = b;
    if (b === ESC) out[at++] = ESCAPED_FF;
  }
  return at;
}

function countFF(src: Uint8Array, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) if (src[i] === ESC) n++;
  return n;
}

/**
 * How an entry for `name` starts: the marker, then escaped, the name's length and bytes. The list's
 * names are encoded once (a Create bags 14 of them).
 */
function entryHead(name: string): Buffer {
  const cached = HEADS.get(name);
  if (cached) return cached;
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length > 255) throw new Error(`attribute name of ${bytes.length} bytes in an attribute bag`);
  const raw = Buffer.concat([Buffer.from([bytes.length]), bytes]);
  const head = Buffer.alloc(2 + raw.length + countFF(raw, 0, raw.length));
  head[0] = ESC;
  head[1] = ENTRY;
  putEscaped(head, 2, raw, 0, raw.length);
  return head;
}
const HEADS = new Map<string, Buffer>();
for (const n of UNINDEXED_ATTRIBUTE_NAMES) HEADS.set(n, entryHead(n));

function inKeyOrder(attrs: readonly Attribute[]): boolean {
  for (let i = 1; i < attrs.length; i++) if (byNameAndIndex(attrs[i - 1]!, attrs[i]!) > 0) return false;
  return true;
}

/**
 * The bag of `attrs`. A repeated (name, index) throws the error SQLite gives for a repeated
 * attribute row, so the store refuses it whichever way it keeps the attribute.
 */
export function encodeAttributeBag(attrs: readonly Attribute[]): Buffer {
  const sorted = inKeyOrder(attrs) ? attrs : [...attrs].sort(byNameAndIndex);
  for (let i = 1; i < sorted.length; i++) {
    if (byNameAndIndex(sorted[i - 1]!, sorted[i]!) === 0) {
      throw new Database.SqliteError('UNIQUE constraint failed: attributes.object_seq, attributes.name, attributes.idx', 'SQLITE_CONSTRAINT_PRIMARYKEY');
    }
  }
  // A constant attribute's entry is the same bytes in every bag (most of a new key's are constants).
  const kept = sorted.map((a) => (isConstantAttribute(a) ? constantEntry(a) : undefined));
  const fresh = sorted.filter((_, i) => kept[i] === undefined);
  // The other values in one encoding (one pass and one buffer, not one per value): the children of
  // a structure, each found after the one before by its own header.
  const values = encodeTtlv(structure(Tag.TemplateAttribute, fresh.map((a) => a.value)));
  const index = Buffer.allocUnsafe(4);
  const heads: Buffer[] = []; // of the entries not kept
  let total = 1 + countFF(values, HEADER, values.length) + values.length - HEADER;
  for (let i = 0; i < sorted.length; i++) {
    const entry = kept[i];
    if (entry) {
      total += entry.length;
      continue;
    }
    index.writeUInt32BE(sorted[i]!.index);
    heads[i] = entryHead(sorted[i]!.name);
    total += heads[i]!.length + 4 + countFF(index, 0, 4);
  }
  const out = Buffer.allocUnsafe(total); // every byte is written below
  out[0] = FORMAT;
  let at = 1;
  let valueAt = HEADER;
  for (let i = 0; i < sorted.length; i++) {
    const entry = kept[i];
    if (entry) {
      at += entry.copy(out, at);
      continue;
    }
    at += heads[i]!.copy(out, at);
    const valueEnd = valueAt + HEADER + padded(values.readUInt32BE(valueAt + 4));
    at = putEscaped(out, at, values, valueAt, valueEnd);
    valueAt = valueEnd;
    index.writeUInt32BE(sorted[i]!.index);
    at = putEscaped(out, at, index, 0, 4);
  }
  if (at !== total) throw new Error(`attribute bag encoded to ${at} of ${total} bytes`);
  return out;
}

const CONSTANT_ENTRIES = new WeakMap<Attribute, Buffer>();

/** The entry of a constant attribute (isConstantAttribute), encoded once: a one-entry bag without its format byte. */
function constantEntry(a: Attribute): Buffer {
  let entry = CONSTANT_ENTRIES.get(a);
  if (!entry) {
    // A copy, which is not a constant: encoded, not looked up here again.
    const bag = encodeAttributeBag([{ name: a.name, index: a.index, value: a.value }]);
    CONSTANT_ENTRIES.set(a, (entry = bag.subarray(1)));
  }
  return entry;
}

/**
 * What an entry for `name` holding exactly the encoded Attribute Value `value` starts with, in any
 * bag: `instr(bag, prefix) > 0` is true exactly when the bag holds such an attribute (at any index).
 */
export function bagEntryPrefix(name: string, value: Uint8Array): Buffer {
  const head = entryHead(name);
  const out = Buffer.allocUnsafe(head.length + value.length + countFF(value, 0, value.length));
  putEscaped(out, head.copy(out, 0), value, 0, value.length);
  return out;
}

const asBuffer = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/**
 * One attribute of a bag: where its entry is in the bag; where its unescaped bytes are (in the bag
 * itself unless the entry holds an escape): the name's length byte at `nameAt - 1`, the name, the
 * value item from `valueAt` to `valueEnd`, then the index.
 */
interface Entry {
  readonly start: number;
  readonly end: number;
  readonly bytes: Buffer;
  readonly nameAt: number;
  readonly valueAt: number;
  readonly valueEnd: number;
  readonly index: number;
}

/**
 * The bag's entries, each checked against its own length as it is read. An array, not a generator,
 * and no copy of an entry that holds no escape: a cold Get reads a bag (bench/RESULTS.md).
 */
function entries(bytes: Buffer): Entry[] {
  if (bytes.length < 1 || bytes[0] !== FORMAT) throw malformed('unknown format');
  const out: Entry[] = [];
  let at = 1;
  while (at < bytes.length) {
    if (bytes[at] !== ESC || bytes[at + 1] !== ENTRY) throw malformed('no entry where one should start');
    const start = at;
    at += 2;
    const { end, escapes } = entryEnd(bytes, at);
    const body = escapes === 0 ? bytes : unescape(bytes, at, end, escapes);
    const bodyAt = escapes === 0 ? at : 0;
    const bodyEnd = bodyAt + end - at - escapes;
    at = end;
    const valueAt = bodyAt + 1 + body[bodyAt]!;
    if (valueAt + HEADER + 4 > bodyEnd) throw malformed('truncated');
    const valueEnd = valueAt + HEADER + padded(body.readUInt32BE(valueAt + 4));
    if (valueEnd + 4 !== bodyEnd) throw malformed('an entry of the wrong length');
    out.push({ start, end: at, bytes: body, nameAt: bodyAt + 1, valueAt, valueEnd, index: body.readUInt32BE(valueEnd) });
  }
  return out;
}

/**
 * Where the entry whose escaped bytes run from `from` ends (the next FF 01, or the bag's end), and
 * how many escapes it holds: every FF before that end must be an escape's (FF FE).
 */
function entryEnd(bytes: Buffer, from: number): { end: number; escapes: number } {
  let escapes = 0;
  for (let at = from; ; at += 2, escapes++) {
    at = bytes.indexOf(ESC, at);
    if (at === -1) return { end: bytes.length, escapes };
    if (bytes[at + 1] === ENTRY) return { end: at, escapes };
    if (bytes[at + 1] !== ESCAPED_FF) throw malformed('a stray escape byte');
  }
}

function unescape(bytes: Buffer, from: number, to: number, escapes: number): Buffer {
  const out = Buffer.allocUnsafe(to - from - escapes);
  let at = 0;
  for (let i = from; i < to; i++) {
    out[at++] = bytes[i]!;
    if (bytes[i] === ESC) i++; // FF FE: the FE is the escape's
  }
  return out;
}

/** The bag's attributes, in (name, index) order. Throws on anything encodeAttributeBag would not write. */
export function decodeAttributeBag(bag: Uint8Array): Attribute[] {
  const out: Attribute[] = [];
  for (const e of entries(asBuffer(bag))) {
    const value = decodeTtlv(e.bytes.subarray(e.valueAt, e.valueEnd));
    if (value.tag !== Tag.AttributeValue) throw malformed('not an Attribute Value');
    out.push({ name: nameOf(e), index: e.index, value });
  }
  return out;
}

/** The names of the list, by byte length, to find an entry's name without decoding it. */
const NAMES_BY_LENGTH = new Map<number, [bytes: Buffer, name: string][]>();
for (const name of UNINDEXED_ATTRIBUTE_NAMES) {
  const bytes = Buffer.from(name, 'utf8');
  NAMES_BY_LENGTH.set(bytes.length, [...(NAMES_BY_LENGTH.get(bytes.length) ?? []), [bytes, name]]);
}

/** The entry's name: the list's own string where it is one (an internalized string compares by identity). */
function nameOf(e: Entry): string {
  for (const [bytes, name] of NAMES_BY_LENGTH.get(e.valueAt - e.nameAt) ?? []) if (e.bytes.compare(bytes, 0, bytes.length, e.nameAt, e.valueAt) === 0) return name;
  return e.bytes.toString('utf8', e.nameAt, e.valueAt);
}

/**
 * `bag` with every instance of the names in `replace` replaced (an empty list deletes them): the
 * bytes encodeAttributeBag would write for the result. The other entries are copied as they are,
 * not decoded and encoded again: a key's first Get replaces its Fresh flag this way.
 */
export function replaceInBag(bag: Uint8Array, replace: ReadonlyMap<string, readonly Attribute[]>): Buffer {
  const old = asBuffer(bag);
  const added = encodeAttributeBag([...replace.values()].flat());
  if (replace.size === 1) {
    const [name, attrs] = replace.entries().next().value!;
    // Only attributes of that name can take its place in the order.
    const spliced = attrs.every((a) => a.name === name) ? spliceRun(old, entryHead(name), added) : undefined;
    if (spliced) return spliced;
  }
  const slices: { readonly name: string; readonly index: number; readonly from: Buffer; readonly start: number; readonly end: number }[] = [];
  for (const e of entries(old)) {
    const name = nameOf(e);
    if (!replace.has(name)) slices.push({ name, index: e.index, from: old, start: e.start, end: e.end });
  }
  for (const e of entries(added)) slices.push({ name: nameOf(e), index: e.index, from: added, start: e.start, end: e.end });
  slices.sort(byNameAndIndex); // two sorted runs; no (name, index) in both, as no name is
  const out = Buffer.allocUnsafe(slices.reduce((n, s) => n + s.end - s.start, 1));
  out[0] = FORMAT;
  let at = 1;
  for (const s of slices) at += s.from.copy(out, at, s.start, s.end);
  return out;
}

/**
 * replaceInBag for one name that the bag holds (a key's first Get flips Fresh): its entries are one
 * run, from the first that starts with `head` to the next that does not, and the new entries
 * (`added`, a bag of that name only) go in their place, since every entry before sorts before the
 * name and every entry after, after it. No entry is decoded; decoding all of them and sorting was
 * most of a flip's 6.2 µs here. Undefined when the bag does not hold the name.
 */
function spliceRun(old: Buffer, head: Buffer, added: Buffer): Buffer | undefined {
  if (old.length < 1 || old[0] !== FORMAT) throw malformed('unknown format');
  const start = old.indexOf(head, 1); // exact: FF 01 occurs only where an entry starts
  if (start === -1) return undefined;
  let end = start;
  do end = entryEnd(old, end + head.length).end;
  while (end + head.length <= old.length && old.compare(head, 0, head.length, end, end + head.length) === 0);
  const out = Buffer.allocUnsafe(old.length - (end - start) + added.length - 1);
  let at = old.copy(out, 0, 0, start);
  at += added.copy(out, at, 1);
  old.copy(out, at, end);
  return out;
}

/**
 * Whether the bag holds an attribute named `name` whose encoded value is between `low` and `high`
 * as SQLite compares BLOBs (bytes, then length): Locate's range condition on attribute rows, applied
 * to the bag. Equality needs no function: see bagEntryPrefix.
 */
export function attributeBagHoldsBetween(bag: Uint8Array | null, name: string, low: Uint8Array, high: Uint8Array): boolean {
  if (bag === null) return false;
  for (const e of entries(asBuffer(bag))) {
    if (nameOf(e) !== name) continue;
    const value = e.bytes.subarray(e.valueAt, e.valueEnd);
    if (Buffer.compare(value, low) >= 0 && Buffer.compare(value, high) <= 0) return true;
  }
  return false;
}
