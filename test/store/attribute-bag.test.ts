// The SQLite store's bag of the attributes outside the value index (src/store/attribute-bag.ts):
// what goes in it, that it reads back what was written, and that Locate's tests on it (a byte
// search in SQLite for equality, a function for a range) agree with SQLite's comparison of the same
// encoded values as rows, whatever bytes a value holds.
import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { attributeBagHoldsBetween, bagEntryPrefix, byNameAndIndex, decodeAttributeBag, encodeAttributeBag, replaceInBag, storedForm } from '../../src/store/attribute-bag.js';
import { UNINDEXED_ATTRIBUTE_NAMES } from '../../src/store/value-index.js';
import { boolean, byteString, encodeTtlv, enumeration, integer, structure, textString } from '../../src/ttlv/index.js';
import { HashingAlgorithm, Tag } from '../../src/kmip/registry/generated.js';
import { constantAttribute, isConstantAttribute, type Attribute } from '../../src/kmip/attributes.js';

const len = (bits: number, index = 0): Attribute => ({ name: 'Cryptographic Length', index, value: integer(Tag.AttributeValue, bits) });
const flag = (name: string, b: boolean): Attribute => ({ name, index: 0, value: boolean(Tag.AttributeValue, b) });
const digest = (fill: number): Attribute => ({
  name: 'Digest',
  index: 0,
  value: structure(Tag.AttributeValue, [enumeration(Tag.HashingAlgorithm, HashingAlgorithm.SHA_256), byteString(Tag.DigestValue, new Uint8Array(32).fill(fill))]),
});
const name = (n: string): Attribute => ({ name: 'Name', index: 0, value: structure(Tag.AttributeValue, [textString(Tag.NameValue, n), enumeration(Tag.NameType, 1)]) });
const enc = (a: Attribute) => encodeTtlv(a.value);

describe('attribute bag', () => {
  it('takes exactly the attributes the value index leaves out', () => {
    const { rows, bag } = storedForm([name('n'), len(128), flag('Fresh', true), digest(1), { name: 'x-custom', index: 0, value: textString(Tag.AttributeValue, 'c') }]);
    expect(rows.map((a) => a.name)).toEqual(['Name', 'x-custom']);
    const bagged = decodeAttributeBag(bag);
    expect(bagged).toEqual([len(128), digest(1), flag('Fresh', true)]); // in (name, index) order
    expect(bagged.every((a) => UNINDEXED_ATTRIBUTE_NAMES.includes(a.name))).toBe(true);
  });

  it('reads back what it was given, in (name, index) order, in no more bytes than its rows hold', () => {
    const attrs = [flag('Fresh', true), len(256, 1), digest(7), len(128, 0)];
    const bag = encodeAttributeBag(attrs);
    expect(decodeAttributeBag(bag)).toEqual([len(128, 0), len(256, 1), digest(7), flag('Fresh', true)]);
    expect(decodeAttributeBag(encodeAttributeBag([]))).toEqual([]);
    // Each attribute: its name, its index and its encoded value (what a row holds), and 3 bytes
    // (marker and name length). These values hold no FF byte, so nothing is escaped.
    const rowBytes = attrs.reduce((n, a) => n + Buffer.byteLength(a.name) + 4 + enc(a).length, 0);
    expect(attrs.some((a) => enc(a).includes(0xff))).toBe(false);
    expect(bag.length).toBe(1 + rowBytes + 3 * attrs.length);
  });

  it('refuses a repeated (name, index) as SQLite refuses a repeated row', () => {
    expect(() => encodeAttributeBag([len(128), flag('Fresh', true), len(256)])).toThrow(Database.SqliteError);
    expect(() => encodeAttributeBag([len(128), len(256, 1)])).not.toThrow();
  });

  it('replaces every instance of a name, and deletes it with an empty list, writing what encoding the result writes', () => {
    const bag = encodeAttributeBag([len(128, 0), len(256, 1), flag('Fresh', true), digest(0xff)]);
    const cases: [Map<string, Attribute[]>, Attribute[]][] = [
      [new Map([['Cryptographic Length', [len(512)]]]), [len(512), digest(0xff), flag('Fresh', true)]],
      [new Map([['Fresh', []], ['Digest', [digest(2)]]]), [len(128, 0), len(256, 1), digest(2)]],
      [new Map([['Fresh', [flag('Fresh', false)]], ['Always Sensitive', [flag('Always Sensitive', true)]]]), [flag('Always Sensitive', true), len(128, 0), len(256, 1), digest(0xff), flag('Fresh', false)]],
      [new Map([['Cryptographic Length', []], ['Digest', []], ['Fresh', []]]), []],
    ];
    for (const [replace, expected] of cases) {
      const replaced = replaceInBag(bag, replace);
      expect(decodeAttributeBag(replaced)).toEqual(expected);
      expect(replaced.equals(encodeAttributeBag(expected))).toBe(true);
    }
    expect(() => replaceInBag(bag, new Map([['Fresh', [flag('Fresh', true), flag('Fresh', false)]]]))).toThrow(Database.SqliteError);
  });

  it('splices one name in place of its run of entries, as encoding the result afresh writes it', () => {
    // Names that begin like another (Fresh, Fresher), a name of 255 bytes beside one of 1 byte, FF bytes
    // in values and indexes: the run of a name is found by its entries' heads, not by decoding.
    const long = 'L'.repeat(255);
    const attr = (name: string, index: number, v: number): Attribute => ({ name, index, value: integer(Tag.AttributeValue, v) });
    const attrs = [attr('Fresh', 0, 1), attr('Fresh', 0xff, -1), attr('Fresher', 0, 2), attr('F', 0, 3), attr(long, 0, 4), attr('x', 0, 5), digest(0xff)];
    const bag = encodeAttributeBag(attrs);
    const cases: [string, Attribute[]][] = [
      ['Fresh', [attr('Fresh', 0, 9)]], // two entries become one
      ['Fresh', []], // deleted
      ['Fresh', [attr('Fresh', 0, 7), attr('Fresh', 1, 8), attr('Fresh', 0xffff, -1)]], // one becomes three
      ['Fresher', [attr('Fresher', 0, 6)]],
      ['F', [attr('F', 3, 3)]],
      [long, [attr(long, 0, 40)]], // the next entry, 'x', is shorter than the long name's head
      ['x', []], // the last entry
      ['Absent', [attr('Absent', 0, 1)]], // not in the bag: placed by sorting
      ['Fresh', [attr('Zed', 0, 1)]], // another name in Fresh's place would break the order: sorted too
    ];
    for (const [name, now] of cases) {
      const expected = [...attrs.filter((a) => a.name !== name), ...now].sort(byNameAndIndex);
      const replaced = replaceInBag(bag, new Map([[name, now]]));
      expect(replaced.equals(encodeAttributeBag(expected)), name.slice(0, 10)).toBe(true);
      expect(decodeAttributeBag(replaced)).toEqual(expected);
    }
  });

  it('matches a name and an encoded value as SQLite compares the same values in rows', () => {
    const bag = encodeAttributeBag([len(128), len(4096, 1), digest(3), flag('Fresh', false), len(0xff, 0xff)]);
    const db = new Database(':memory:');
    try {
      db.exec('CREATE TABLE a (name TEXT, value BLOB)');
      const insert = db.prepare('INSERT INTO a VALUES (?, ?)');
      for (const a of decodeAttributeBag(bag)) insert.run(a.name, enc(a));
      const rowsEqual = db.prepare('SELECT count(*) FROM a WHERE name = ? AND value = ?').pluck();
      const rowsBetween = db.prepare('SELECT count(*) FROM a WHERE name = ? AND value BETWEEN ? AND ?').pluck();
      const inBag = db.prepare('SELECT instr(?, ?) > 0').pluck();
      const probes: [string, Buffer, Buffer | null][] = [
        ['Cryptographic Length', enc(len(128)), null],
        ['Cryptographic Length', enc(len(4096)), null],
        ['Cryptographic Length', enc(len(255)), null],
        ['Cryptographic Length', enc(len(256)), null],
        ['Cryptographic Length', enc(len(100)), enc(len(200))],
        ['Cryptographic Length', enc(len(129)), enc(len(4095))],
        ['Cryptographic Length', enc(len(0)), enc(len(1 << 30))],
        ['Digest', enc(digest(3)), null],
        ['Digest', enc(digest(4)), null],
        ['Fresh', enc(flag('Fresh', false)), null],
        ['Fresh', enc(flag('Fresh', true)), null],
        // A name that is a prefix of a stored one, and a stored value under another name.
        ['Fres', enc(flag('Fresh', false)), null],
        ['Extractable', enc(flag('Fresh', false)), null],
      ];
      for (const [n, low, high] of probes) {
        const inRows = ((high === null ? rowsEqual.get(n, low) : rowsBetween.get(n, low, high)) as number) > 0;
        const found = high === null ? inBag.get(bag, bagEntryPrefix(n, low)) === 1 : attributeBagHoldsBetween(bag, n, low, high);
        expect(found, `${n} ${low.toString('hex')} ${high?.toString('hex')}`).toBe(inRows);
      }
      // Sanity: the probes cover both answers.
      expect(probes.filter(([n, low]) => ((rowsEqual.get(n, low) as number) > 0)).length).toBe(5);
    } finally {
      db.close();
    }
    expect(attributeBagHoldsBetween(null, 'Cryptographic Length', enc(len(0)), enc(len(1 << 30)))).toBe(false);
  });

  it('cannot be fooled by a value that holds the bytes of another entry', () => {
    // A client may choose the bytes of some values (a Name in a Register, say, if it were bagged).
    // A value holding exactly what a Fresh=true entry looks like must not make the bag hold one.
    const fake = bagEntryPrefix('Fresh', enc(flag('Fresh', true)));
    const holder: Attribute = { name: 'Digest', index: 0, value: structure(Tag.AttributeValue, [enumeration(Tag.HashingAlgorithm, HashingAlgorithm.SHA_256), byteString(Tag.DigestValue, new Uint8Array(Buffer.concat([fake, Buffer.from([0xff, 0x01, 0xff, 0xfe, 0xff])])))]) };
    const bag = encodeAttributeBag([holder, flag('Fresh', false)]);
    const db = new Database(':memory:');
    try {
      const inBag = db.prepare('SELECT instr(?, ?) > 0').pluck();
      expect(inBag.get(bag, fake)).toBe(0);
      expect(inBag.get(bag, bagEntryPrefix('Fresh', enc(flag('Fresh', false))))).toBe(1);
      expect(inBag.get(bag, bagEntryPrefix('Digest', enc(holder)))).toBe(1);
    } finally {
      db.close();
    }
    expect(decodeAttributeBag(bag)).toEqual([holder, flag('Fresh', false)]);
  });

  it('reads back values and indexes full of FF bytes, and a name of 255 bytes', () => {
    const ffs: Attribute = { name: 'Digest', index: 0xffffffff, value: byteString(Tag.AttributeValue, new Uint8Array(255).fill(0xff)) };
    const long: Attribute = { name: 'x'.repeat(255), index: 0xff, value: integer(Tag.AttributeValue, -1) };
    const bag = encodeAttributeBag([ffs, long]);
    expect(decodeAttributeBag(bag)).toEqual([ffs, long]);
    // Every FF in the bag is a marker or escaped: FF is followed by 01 or FE, nothing else.
    for (let i = 0; i < bag.length; i++) if (bag[i] === 0xff) expect([0x01, 0xfe]).toContain(bag[i + 1]);
    expect(() => encodeAttributeBag([{ ...long, name: 'x'.repeat(256) }])).toThrow(/256 bytes/);
  });

  it('writes a constant attribute (encoded once, then kept) exactly as the same attribute made afresh', () => {
    // Values and indexes with FF bytes, so the kept entry must carry its escaping.
    const made = (index: number): Attribute[] => [
      { name: 'Cryptographic Usage Mask', index, value: integer(Tag.AttributeValue, -1) },
      { name: 'Random Number Generator', index: 0, value: structure(Tag.AttributeValue, [enumeration(Tag.RNGAlgorithm, 0xffff)]) },
      flag('Fresh', true),
    ];
    const constants = made(0x1ff).map((a) => constantAttribute(a.name, a.value, a.index));
    expect(constants.every(isConstantAttribute)).toBe(true);
    expect(made(0x1ff).some(isConstantAttribute)).toBe(false);
    const afresh = encodeAttributeBag([...made(0x1ff), digest(0xff), len(256)]);
    // Twice: the first encoding of a constant keeps its entry, the second uses it.
    for (let i = 0; i < 2; i++) {
      const kept = encodeAttributeBag([constants[2]!, digest(0xff), constants[0]!, len(256), constants[1]!]);
      expect(kept.equals(afresh)).toBe(true);
      expect(decodeAttributeBag(kept)).toEqual([len(256), ...made(0x1ff).slice(0, 1), digest(0xff), flag('Fresh', true), made(0x1ff)[1]]);
    }
    // A constant beside an equal attribute is still a repeated attribute.
    expect(() => encodeAttributeBag([constants[2]!, flag('Fresh', false)])).toThrow(/UNIQUE constraint failed/);
    // What is kept cannot change: a constant is frozen all the way down, and bytes (which cannot be frozen) are refused.
    expect(Object.isFrozen(constants[1]!.value) && Object.isFrozen((constants[1]!.value as { value: unknown }).value)).toBe(true);
    expect(() => constantAttribute('Digest', byteString(Tag.AttributeValue, new Uint8Array(4)))).toThrow(/cannot hold bytes/);
  });

  it('refuses a bag that is not one it wrote', () => {
    const bag = encodeAttributeBag([len(128), flag('Fresh', true)]);
    for (const cut of [1, 8, 20]) {
      expect(() => decodeAttributeBag(bag.subarray(0, bag.length - cut))).toThrow(/malformed/);
      expect(() => attributeBagHoldsBetween(bag.subarray(0, bag.length - cut), 'Fresh', enc(flag('Fresh', true)), enc(flag('Fresh', true)))).toThrow(/malformed/);
    }
    expect(() => decodeAttributeBag(Buffer.concat([Buffer.from([1]), bag.subarray(1)]))).toThrow(/unknown format/);
    expect(() => decodeAttributeBag(Buffer.alloc(0))).toThrow(/unknown format/);
    // Bytes before the first entry's marker, and an FF that is neither a marker nor escaped.
    expect(() => decodeAttributeBag(Buffer.concat([bag.subarray(0, 1), Buffer.from([0]), bag.subarray(1)]))).toThrow(/malformed/);
    const stray = Buffer.from(bag);
    stray[stray.length - 2] = 0xff;
    expect(() => decodeAttributeBag(stray)).toThrow(/malformed/);
    // Splicing in a new Fresh reads Fresh's entry to its end, and refuses it too.
    expect(() => replaceInBag(stray, new Map([['Fresh', [flag('Fresh', false)]]]))).toThrow(/stray escape/);
    // An entry whose value is not tagged Attribute Value.
    const wrongTag = Buffer.from(bag);
    wrongTag.writeUIntBE(Tag.AttributeName, 1 + 2 + 1 + 'Cryptographic Length'.length, 3);
    expect(() => decodeAttributeBag(wrongTag)).toThrow(/malformed/);
  });
});
