// The SQLite store keeps an object's attributes that the value index leaves out (value-index.ts:
// flags, algorithm and length, digest...) in one column of its objects row, not one attributes row
// each. Those are 14 of the ~17 attributes of a new key; as rows they were most of the b-tree work
// of a Create (bench/RESULTS.md, sixteenth round). Locate still finds keys by them, through
// attributeBagMatches (a SQL function on every connection, see sqlite-store.ts).
//
// objects.unindexed_attributes is NULL for objects stored before that column existed: theirs are
// all rows. Otherwise it holds exactly the object's unindexed attributes, and none of them is a
// row. The format is as compact as rows (a TTLV Template-Attribute took a third more space than
// the rows it replaced): a format byte (1), then per attribute, in (name, index) order, the name's
// UTF-8 length (1 byte) and bytes, the index (4 bytes, big-endian), and the encoded Attribute Value
// item, exactly as a row's value column holds it (TTLV: its header gives its length).
import { decodeTtlv, encodeTtlv } from '../ttlv/index.js';
import { Tag } from '../kmip/registry/generated.js';
import type { Attribute } from '../kmip/attributes.js';
import Database from 'better-sqlite3';
import { isValueIndexed } from './value-index.js';

/** (name, index) order, as the attributes table's primary key sorts them (names are ASCII). */
export function byNameAndIndex(a: Attribute, b: Attribute): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : a.index - b.index;
}

/** An object's attributes as the SQLite store keeps them: rows, and the rest in one bag. */
export function splitForStorage(attrs: readonly Attribute[]): { rows: Attribute[]; bagged: Attribute[] } {
  const rows: Attribute[] = [];
  const bagged: Attribute[] = [];
  for (const a of attrs) (isValueIndexed(a.name) ? rows : bagged).push(a);
  return { rows, bagged };
}

const FORMAT = 1;
const HEADER = 8;
const padded = (n: number): number => (n + 7) & ~7;

function malformed(why: string): Error {
  return new Error(`stored attribute bag is malformed: ${why}`);
}

/** An attribute's place in a bag: where its name and its value item are. */
interface Entry {
  readonly nameAt: number;
  readonly nameLength: number;
  readonly index: number;
  readonly valueAt: number;
  readonly valueEnd: number;
}

/** The bag's entries, checked against its length as they are read. */
function* entries(bytes: Buffer): Generator<Entry> {
  if (bytes.length < 1 || bytes[0] !== FORMAT) throw malformed('unknown format');
  for (let at = 1; at < bytes.length; ) {
    const nameLength = bytes[at]!;
    const nameAt = at + 1;
    const valueAt = nameAt + nameLength + 4;
    if (valueAt + HEADER > bytes.length) throw malformed('truncated');
    const valueEnd = valueAt + HEADER + padded(bytes.readUInt32BE(valueAt + 4));
    if (valueEnd > bytes.length) throw malformed('truncated');
    yield { nameAt, nameLength, index: bytes.readUInt32BE(nameAt + nameLength), valueAt, valueEnd };
    at = valueEnd;
  }
}

const asBuffer = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/**
 * The bag of `attrs`. A repeated (name, index) throws the error SQLite gives for a repeated
 * attribute row, so the store refuses it whichever way it keeps the attribute.
 */
export function encodeAttributeBag(attrs: readonly Attribute[]): Buffer {
  const sorted = [...attrs].sort(byNameAndIndex);
  const parts: [name: Buffer, index: number, value: Buffer][] = [];
  let total = 1;
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i]!;
    if (i > 0 && byNameAndIndex(sorted[i - 1]!, a) === 0) {
      throw new Database.SqliteError('UNIQUE constraint failed: attributes.object_seq, attributes.name, attributes.idx', 'SQLITE_CONSTRAINT_PRIMARYKEY');
    }
    const name = Buffer.from(a.name, 'utf8');
    if (name.length > 255) throw new Error(`attribute name of ${name.length} bytes in an attribute bag`);
    const value = encodeTtlv(a.value);
    parts.push([name, a.index, value]);
    total += 1 + name.length + 4 + value.length;
  }
  const out = Buffer.alloc(total);
  out[0] = FORMAT;
  let at = 1;
  for (const [name, index, value] of parts) {
    out[at] = name.length;
    at += 1 + name.copy(out, at + 1);
    at = out.writeUInt32BE(index, at);
    at += value.copy(out, at);
  }
  return out;
}

/** The bag's attributes, in (name, index) order. Throws on anything encodeAttributeBag would not write. */
export function decodeAttributeBag(bag: Uint8Array): Attribute[] {
  const bytes = asBuffer(bag);
  const out: Attribute[] = [];
  for (const e of entries(bytes)) {
    const value = decodeTtlv(bytes.subarray(e.valueAt, e.valueEnd));
    if (value.tag !== Tag.AttributeValue) throw malformed('not an Attribute Value');
    out.push({ name: bytes.toString('utf8', e.nameAt, e.nameAt + e.nameLength), index: e.index, value });
  }
  return out;
}

/** `attrs` with every instance of the names in `replace` replaced, in (name, index) order. */
export function replaceInBag(attrs: readonly Attribute[], replace: ReadonlyMap<string, readonly Attribute[]>): Attribute[] {
  return [...attrs.filter((a) => !replace.has(a.name)), ...[...replace.values()].flat()].sort(byNameAndIndex);
}

/**
 * Whether the bag holds an attribute named `name` whose encoded value is `low` (`high` null), or
 * between `low` and `high` as SQLite compares BLOBs (bytes, then length): Locate's conditions on
 * attribute rows, applied to the bag. Reads the bytes in place; a Locate may test every object.
 */
export function attributeBagMatches(bag: Uint8Array | null, name: string, low: Uint8Array, high: Uint8Array | null): boolean {
  if (bag === null) return false;
  const bytes = asBuffer(bag);
  const wanted = Buffer.from(name, 'utf8');
  for (const e of entries(bytes)) {
    if (e.nameLength !== wanted.length || bytes.compare(wanted, 0, wanted.length, e.nameAt, e.nameAt + e.nameLength) !== 0) continue;
    const value = bytes.subarray(e.valueAt, e.valueEnd);
    if (high === null ? Buffer.compare(value, low) === 0 : Buffer.compare(value, low) >= 0 && Buffer.compare(value, high) <= 0) return true;
  }
  return false;
}
