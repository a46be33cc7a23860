// The SQLite store against a real database file: migrations, durability settings, locate, erase.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { MIGRATIONS } from '../../src/store/sqlite-migrations.js';
import { enumeration, integer, structure, textString } from '../../src/ttlv/index.js';
import { ObjectType, State, Tag } from '../../src/kmip/registry/generated.js';
import type { Attribute } from '../../src/kmip/attributes.js';
import { tempDir } from '../helpers/kmipd.js';

const name = (n: string): Attribute => ({
  name: 'Name',
  index: 0,
  value: structure(Tag.AttributeValue, [textString(Tag.NameValue, n), enumeration(Tag.NameType, 1)]),
});
const len = (bits: number): Attribute => ({ name: 'Cryptographic Length', index: 0, value: integer(Tag.AttributeValue, bits) });
const wrapped = (fill: number) => ({ rootKeyLabel: 'crk', mechanism: 'test', blob: Buffer.alloc(40, fill) });

let dir: ReturnType<typeof tempDir>;
let store: SqliteStore;
let path: string;

beforeEach(() => {
  dir = tempDir();
  path = join(dir.path, 'k.db');
  store = new SqliteStore(path);
});
afterEach(async () => {
  await store.close();
  dir.remove();
});

describe('SqliteStore', () => {
  it('applies every migration and uses WAL (persistent in the file)', () => {
    const db = new Database(path, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('refuses a database from a newer kmipd', async () => {
    await store.close();
    const db = new Database(path);
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    expect(() => new SqliteStore(path)).toThrow(/newer/);
    store = new SqliteStore(join(dir.path, 'other.db'));
  });

  it('stores and reads back an object with its attributes', async () => {
    await store.insert({ id: 'a', tenant: 'default', objectType: ObjectType.SymmetricKey, state: State.PreActive, wrapped: wrapped(1), attributes: [name('one'), len(256)] });
    const obj = await store.get('a');
    expect(obj).toMatchObject({ id: 'a', objectType: ObjectType.SymmetricKey, state: State.PreActive });
    expect(Buffer.from(obj!.wrapped!.blob)).toEqual(Buffer.alloc(40, 1));
    expect(obj!.attributes.map((a) => a.name)).toEqual(['Cryptographic Length', 'Name']);
    expect(await store.get('missing')).toBeUndefined();
  });

  it('locates by attribute value, type, state and tenant, newest first, with paging', async () => {
    for (let i = 0; i < 5; i++) {
      await store.insert({ id: `k${i}`, tenant: i === 4 ? 'other' : 'default', objectType: ObjectType.SymmetricKey, state: i % 2 ? State.Active : State.PreActive, wrapped: wrapped(i), attributes: [name(i < 3 ? 'shared' : `own${i}`), len(128)] });
    }
    const base = { tenant: 'default', objectType: undefined, states: undefined, includeDestroyed: false, maxItems: undefined, offset: 0 };
    expect(await store.locate({ ...base, matches: [{ name: 'Name', value: name('shared').value }] })).toEqual({ ids: ['k2', 'k1', 'k0'], total: 3 });
    expect(await store.locate({ ...base, matches: [], states: [State.Active] })).toEqual({ ids: ['k3', 'k1'], total: 2 });
    expect(await store.locate({ ...base, matches: [len(128)], maxItems: 2, offset: 1 })).toEqual({ ids: ['k2', 'k1'], total: 4 });
    // Tenants see only their own objects; operator tools (tenant undefined) see all.
    expect(await store.locate({ ...base, tenant: 'other', matches: [len(128)] })).toEqual({ ids: ['k4'], total: 1 });
    expect((await store.locate({ ...base, tenant: undefined, matches: [len(128)] })).total).toBe(5);
    expect((await store.get('k4'))?.tenant).toBe('other');
    expect((await store.locate({ ...base, matches: [len(256)] })).total).toBe(0);
  });

  it('serves Locate by value from the index, not a table scan', () => {
    const db = new Database(path, { readonly: true });
    const plan = db
      .prepare('EXPLAIN QUERY PLAN SELECT o.id FROM objects o WHERE EXISTS (SELECT 1 FROM attributes a WHERE a.object_seq = o.seq AND a.name = ? AND a.value = ?)')
      .all('Name', Buffer.from('x')) as { detail: string }[];
    db.close();
    expect(plan.map((p) => p.detail).join('\n')).toMatch(/attributes_by_value|PRIMARY KEY/);
  });

  it('updates state and attributes atomically, and erases the wrapped key', async () => {
    await store.insert({ id: 'x', tenant: 'default', objectType: ObjectType.SymmetricKey, state: State.Active, wrapped: wrapped(7), attributes: [name('n')] });
    expect(await store.update('x', { state: State.Destroyed, eraseKey: true, replace: new Map([['Name', []]]) })).toBe(true);
    const obj = await store.get('x');
    expect(obj).toMatchObject({ state: State.Destroyed, wrapped: undefined, attributes: [] });
    expect(await store.update('nope', { state: State.Active })).toBe(false);
    const base = { tenant: undefined, objectType: undefined, states: undefined, matches: [], maxItems: undefined, offset: 0 };
    expect((await store.locate({ ...base, includeDestroyed: false })).ids).toEqual([]);
    expect((await store.locate({ ...base, includeDestroyed: true })).ids).toEqual(['x']);
    await store.close();
    const blob = Buffer.alloc(40, 7);
    for (const f of [path, `${path}-wal`]) {
      try {
        expect(readFileSync(f).includes(blob)).toBe(false);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    store = new SqliteStore(path);
  });
});
