// The SQLite store's bag of the attributes outside the value index (src/store/attribute-bag.ts):
// what goes in it, that it reads back what was written, and that Locate's test on it agrees with
// SQLite's comparison of the same encoded values as rows.
import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { attributeBagMatches, decodeAttributeBag, encodeAttributeBag, replaceInBag, splitForStorage } from '../../src/store/attribute-bag.js';
import { UNINDEXED_ATTRIBUTE_NAMES } from '../../src/store/value-index.js';
import { boolean, byteString, encodeTtlv, enumeration, integer, structure, textString } from '../../src/ttlv/index.js';
import { HashingAlgorithm, Tag } from '../../src/kmip/registry/generated.js';
import type { Attribute } from '../../src/kmip/attributes.js';

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
    const { rows, bagged } = splitForStorage([name('n'), len(128), flag('Fresh', true), digest(1), { name: 'x-custom', index: 0, value: textString(Tag.AttributeValue, 'c') }]);
    expect(rows.map((a) => a.name)).toEqual(['Name', 'x-custom']);
    expect(bagged.map((a) => a.name)).toEqual(['Cryptographic Length', 'Fresh', 'Digest']);
    expect(bagged.every((a) => UNINDEXED_ATTRIBUTE_NAMES.includes(a.name))).toBe(true);
  });

  it('reads back what it was given, in (name, index) order, in no more bytes than its rows hold', () => {
    const attrs = [flag('Fresh', true), len(256, 1), digest(7), len(128, 0)];
    const bag = encodeAttributeBag(attrs);
    expect(decodeAttributeBag(bag)).toEqual([len(128, 0), len(256, 1), digest(7), flag('Fresh', true)]);
    expect(decodeAttributeBag(encodeAttributeBag([]))).toEqual([]);
    // Each attribute: its name, its index and its encoded value (what a row holds), and 5 bytes.
    const rowBytes = attrs.reduce((n, a) => n + Buffer.byteLength(a.name) + 4 + enc(a).length, 0);
    expect(bag.length).toBe(1 + rowBytes + attrs.length);
  });

  it('refuses a repeated (name, index) as SQLite refuses a repeated row', () => {
    expect(() => encodeAttributeBag([len(128), flag('Fresh', true), len(256)])).toThrow(Database.SqliteError);
    expect(() => encodeAttributeBag([len(128), len(256, 1)])).not.toThrow();
  });

  it('replaces every instance of a name, and deletes it with an empty list', () => {
    const attrs = decodeAttributeBag(encodeAttributeBag([len(128, 0), len(256, 1), flag('Fresh', true)]));
    expect(replaceInBag(attrs, new Map([['Cryptographic Length', [len(512)]]]))).toEqual([len(512), flag('Fresh', true)]);
    expect(replaceInBag(attrs, new Map([['Fresh', []], ['Digest', [digest(2)]]]))).toEqual([len(128, 0), len(256, 1), digest(2)]);
  });

  it('matches a name and an encoded value as SQLite compares the same values in rows', () => {
    const bag = encodeAttributeBag([len(128), len(4096, 1), digest(3), flag('Fresh', false)]);
    const db = new Database(':memory:');
    try {
      db.exec('CREATE TABLE a (name TEXT, value BLOB)');
      const insert = db.prepare('INSERT INTO a VALUES (?, ?)');
      for (const a of decodeAttributeBag(bag)) insert.run(a.name, enc(a));
      const rowsEqual = db.prepare('SELECT count(*) FROM a WHERE name = ? AND value = ?').pluck();
      const rowsBetween = db.prepare('SELECT count(*) FROM a WHERE name = ? AND value BETWEEN ? AND ?').pluck();
      const probes: [string, Buffer, Buffer | null][] = [
        ['Cryptographic Length', enc(len(128)), null],
        ['Cryptographic Length', enc(len(4096)), null],
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
        expect(attributeBagMatches(bag, n, low, high), `${n} ${low.toString('hex')} ${high?.toString('hex')}`).toBe(inRows);
      }
      // Sanity: the probes cover both answers.
      expect(probes.filter(([n, low, high]) => attributeBagMatches(bag, n, low, high)).length).toBe(6);
    } finally {
      db.close();
    }
    expect(attributeBagMatches(null, 'Fresh', enc(flag('Fresh', false)), null)).toBe(false);
  });

  it('refuses a bag that is not one it wrote', () => {
    const bag = encodeAttributeBag([len(128), flag('Fresh', true)]);
    for (const cut of [1, 8, 20]) {
      expect(() => decodeAttributeBag(bag.subarray(0, bag.length - cut))).toThrow(/malformed/);
      expect(() => attributeBagMatches(bag.subarray(0, bag.length - cut), 'Fresh', enc(flag('Fresh', true)), null)).toThrow(/malformed/);
    }
    expect(() => decodeAttributeBag(Buffer.concat([Buffer.from([2]), bag.subarray(1)]))).toThrow(/unknown format/);
    expect(() => decodeAttributeBag(Buffer.alloc(0))).toThrow(/unknown format/);
    // An entry whose value is not tagged Attribute Value.
    const wrongTag = Buffer.from(bag);
    wrongTag.writeUIntBE(Tag.AttributeName, 1 + 1 + 'Cryptographic Length'.length + 4, 3);
    expect(() => decodeAttributeBag(wrongTag)).toThrow(/malformed/);
  });
});
