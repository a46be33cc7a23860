// The object store (KeyStore) on both backends, SQLite and PostgreSQL, through the same interface:
// migrations, store and read back, Locate (order, paging, tenants, ranges, index use), atomic
// updates and crypto-erase, date-driven transitions, undo (remove / restore), readiness figures.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { readFileSync, rmSync } from 'node:fs';
import { dueObjectsCondition, locateCondition, SqliteStore } from '../../src/store/sqlite-store.js';
import { UNINDEXED_ATTRIBUTE_NAMES, sqliteValueIndexCondition } from '../../src/store/value-index.js';
import { MIGRATIONS } from '../../src/store/sqlite-migrations.js';
import { POSTGRES_MIGRATIONS } from '../../src/store/postgres-migrations.js';
import { locateStatement } from '../../src/store/postgres-store.js';
import { openStoreBackend } from '../../src/store/backend.js';
import { byteString, dateTime, encodeTtlv, enumeration, integer, ItemType, structure, textString } from '../../src/ttlv/index.js';
import { decodeAttributeBag } from '../../src/store/attribute-bag.js';
import { HashingAlgorithm, ObjectType, State, Tag } from '../../src/kmip/registry/generated.js';
import type { Attribute } from '../../src/kmip/attributes.js';
import type { LocateQuery } from '../../src/store/types.js';
import pg from 'pg';
import { TEST_PG_PASSWORD } from '../helpers/postgres.js';
import { postgresKind, sqliteKind, type BackendKind, type FreshStore } from './backends.js';

const name = (n: string): Attribute => ({
  name: 'Name',
  index: 0,
  value: structure(Tag.AttributeValue, [textString(Tag.NameValue, n), enumeration(Tag.NameType, 1)]),
});
const len = (bits: number): Attribute => ({ name: 'Cryptographic Length', index: 0, value: integer(Tag.AttributeValue, bits) });
const date = (attr: string, s: bigint): Attribute => ({ name: attr, index: 0, value: dateTime(Tag.AttributeValue, s) });
const text = (attr: string, v: string, index = 0): Attribute => ({ name: attr, index, value: textString(Tag.AttributeValue, v) });
const wrapped = (fill: number) => ({ rootKeyLabel: 'crk', mechanism: 'test', blob: Buffer.alloc(40, fill) });
const key = (id: string, o: { tenant?: string; state?: number; fill?: number; attributes?: Attribute[] } = {}) => ({
  id,
  tenant: o.tenant ?? 'default',
  objectType: ObjectType.SymmetricKey,
  state: o.state ?? State.PreActive,
  wrapped: wrapped(o.fill ?? 1),
  attributes: o.attributes ?? [],
});
const everything: LocateQuery = { tenant: undefined, objectType: undefined, states: undefined, matches: [], includeDestroyed: true, maxItems: undefined, offset: 0 };

function contract(kind: BackendKind): void {
  let s: FreshStore;
  beforeEach(async () => {
    s = await kind.fresh();
  });
  const store = () => s.backend.objects;

  it('stores and reads back an object with its attributes, ordered by name (bytewise) then index', async () => {
    const attrs = [text('x-b', 'second', 1), name('one'), len(256), text('x-b', 'first', 0), text('Alternative Name', 'alt')];
    await store().insert(key('a', { attributes: attrs }));
    const obj = await store().get('a');
    expect(obj).toMatchObject({ id: 'a', tenant: 'default', objectType: ObjectType.SymmetricKey, state: State.PreActive });
    expect(Buffer.from(obj!.wrapped!.blob)).toEqual(Buffer.alloc(40, 1));
    expect(obj!.wrapped).toMatchObject({ rootKeyLabel: 'crk', mechanism: 'test' });
    expect(obj!.attributes.map((a) => `${a.name}/${a.index}`)).toEqual(['Alternative Name/0', 'Cryptographic Length/0', 'Name/0', 'x-b/0', 'x-b/1']);
    expect(obj!.attributes.find((a) => a.name === 'Name')!.value).toEqual(name('one').value);
    expect(await store().get('missing')).toBeUndefined();
  });

  it('refuses a second object with the same id, leaving the first intact', async () => {
    await store().insert(key('dup', { fill: 1, attributes: [len(128)] }));
    await expect(store().insert(key('dup', { fill: 2, attributes: [len(256)] }))).rejects.toThrow();
    const obj = await store().get('dup');
    expect(Buffer.from(obj!.wrapped!.blob)).toEqual(Buffer.alloc(40, 1));
    expect(obj!.attributes).toEqual([len(128)]);
  });

  it('stores more attributes than one INSERT holds, and refuses a repeated (name, index) with nothing stored', async () => {
    // 70 rows: two full statements of 32 rows and one of 6 on SQLite (sqlite-attribute-rows.ts).
    const many = Array.from({ length: 70 }, (_, i) => text(`x-${String(i).padStart(2, '0')}`, `v${i}`, i % 3));
    await store().insert(key('many', { attributes: [...many].reverse() }));
    expect((await store().get('many'))!.attributes).toEqual(many);
    await store().insert(key('neighbour', { attributes: [len(128)] }));
    // Inserted together (one batch, one transaction on SQLite): the bad one alone is refused.
    const bad = store().insert(key('repeated', { attributes: [...many.slice(0, 40), text('x-00', 'again', 0)] }));
    const good = store().insert(key('fine', { attributes: many.slice(0, 40) }));
    await expect(bad).rejects.toThrow();
    await good;
    expect(await store().get('repeated')).toBeUndefined();
    expect((await store().get('fine'))!.attributes).toEqual(many.slice(0, 40));
    expect((await store().get('neighbour'))!.attributes).toEqual([len(128)]);
    expect((await store().locate({ ...everything, matches: [text('x-00', 'v0', 0)] })).ids.sort()).toEqual(['fine', 'many']);
  });

  it('locates by attribute value, type, state and tenant, newest first, with paging', async () => {
    for (let i = 0; i < 5; i++) {
      await store().insert(key(`k${i}`, { tenant: i === 4 ? 'other' : 'default', state: i % 2 ? State.Active : State.PreActive, fill: i, attributes: [name(i < 3 ? 'shared' : `own${i}`), len(128)] }));
    }
    const base = { tenant: 'default', objectType: undefined, states: undefined, includeDestroyed: false, maxItems: undefined, offset: 0 };
    expect(await store().locate({ ...base, matches: [{ name: 'Name', value: name('shared').value }] })).toEqual({ ids: ['k2', 'k1', 'k0'], total: 3 });
    expect(await store().locate({ ...base, matches: [], states: [State.Active] })).toEqual({ ids: ['k3', 'k1'], total: 2 });
    expect(await store().locate({ ...base, matches: [], states: [] })).toEqual({ ids: [], total: 0 });
    expect(await store().locate({ ...base, matches: [len(128)], maxItems: 2, offset: 1 })).toEqual({ ids: ['k2', 'k1'], total: 4 });
    expect(await store().locate({ ...base, matches: [len(128)], maxItems: 2, offset: 10 })).toEqual({ ids: [], total: 4 });
    expect(await store().locate({ ...base, matches: [], objectType: ObjectType.SecretData })).toEqual({ ids: [], total: 0 });
    // Tenants see only their own objects; operator tools (tenant undefined) see all.
    expect(await store().locate({ ...base, tenant: 'other', matches: [len(128)] })).toEqual({ ids: ['k4'], total: 1 });
    expect((await store().locate({ ...base, tenant: undefined, matches: [len(128)] })).total).toBe(5);
    expect((await store().get('k4'))?.tenant).toBe('other');
    expect((await store().locate({ ...base, matches: [len(256)] })).total).toBe(0);
  });

  it('locates a date range, both ends included', async () => {
    for (const [id, t] of [['d1', 1000n], ['d2', 2000n], ['d3', 3000n]] as const) await store().insert(key(id, { attributes: [date('Initial Date', t)] }));
    const range = (lo: bigint, hi: bigint) =>
      store().locate({ ...everything, matches: [{ name: 'Initial Date', value: date('Initial Date', lo).value, upTo: date('Initial Date', hi).value }] });
    expect(await range(1000n, 2000n)).toEqual({ ids: ['d2', 'd1'], total: 2 });
    expect(await range(1001n, 2999n)).toEqual({ ids: ['d2'], total: 1 });
    expect(await range(4000n, 5000n)).toEqual({ ids: [], total: 0 });
  });

  it('locates by attributes the value index leaves out, alone and together with indexed ones', async () => {
    const digest = (b: number): Attribute => ({
      name: 'Digest',
      index: 0,
      value: structure(Tag.AttributeValue, [enumeration(Tag.HashingAlgorithm, HashingAlgorithm.SHA_256), byteString(Tag.DigestValue, Buffer.alloc(32, b))]),
    });
    await store().insert(key('u1', { attributes: [name('u'), len(128), digest(1)] }));
    await store().insert(key('u2', { attributes: [name('u'), len(256), digest(2)] }));
    await store().insert(key('u3', { attributes: [name('v'), len(128), digest(3)] }));
    const found = async (...matches: Attribute[]) => (await store().locate({ ...everything, matches })).ids;
    expect(UNINDEXED_ATTRIBUTE_NAMES).toEqual(expect.arrayContaining(['Digest', 'Cryptographic Length']));
    expect(await found(digest(2))).toEqual(['u2']);
    expect(await found(len(128))).toEqual(['u3', 'u1']);
    // The left-out attribute first: the indexed one still drives, and both conditions hold.
    expect(await found(len(128), name('u'))).toEqual(['u1']);
    expect(await found(name('u'), len(256))).toEqual(['u2']);
    expect(await found(len(128), digest(3))).toEqual(['u3']);
    expect(await found(len(256), digest(3))).toEqual([]);
  });

  it('updates, deletes and locates by range an attribute the value index leaves out, and refuses a repeated one alone', async () => {
    await store().insert(key('b', { attributes: [name('b'), len(128), text('x-a', 'a')] }));
    const found = async (m: LocateQuery['matches'][number]) => (await store().locate({ ...everything, matches: [m] })).ids;
    const lengths = (lo: number, hi: number) => ({ name: 'Cryptographic Length', value: integer(Tag.AttributeValue, lo), upTo: integer(Tag.AttributeValue, hi) });
    expect(await found(lengths(100, 128))).toEqual(['b']);
    expect(await found(lengths(129, 200))).toEqual([]);
    expect(await store().update('b', { replace: new Map([['Cryptographic Length', [len(256)]]]) })).toBe(true);
    expect((await store().get('b'))!.attributes).toEqual([len(256), name('b'), text('x-a', 'a')]);
    expect(await found(len(256))).toEqual(['b']);
    expect(await found(len(128))).toEqual([]);
    expect(await found(lengths(129, 256))).toEqual(['b']);
    expect(await store().update('b', { replace: new Map([['Cryptographic Length', []]]) })).toBe(true);
    expect((await store().get('b'))!.attributes).toEqual([name('b'), text('x-a', 'a')]);
    expect(await found(lengths(0, 1 << 30))).toEqual([]);
    // Two instances at one index: refused, with nothing stored, and its neighbour stored.
    const bad = store().insert(key('twice', { attributes: [len(128), len(256)] }));
    const good = store().insert(key('once', { attributes: [len(128)] }));
    await expect(bad).rejects.toThrow(/UNIQUE|duplicate key/);
    await good;
    expect(await store().get('twice')).toBeUndefined();
    expect((await store().get('once'))!.attributes).toEqual([len(128)]);
    await expect(store().update('once', { replace: new Map([['Cryptographic Length', [len(1), len(2)]]]) })).rejects.toThrow(/UNIQUE|duplicate key/);
    expect((await store().get('once'))!.attributes).toEqual([len(128)]);
  });

  it('stores and locates an attribute value far longer than an index entry may be', async () => {
    const long = 'v'.repeat(5000);
    await store().insert(key('long', { attributes: [text('x-description', long), text('x-description', `${long}w`, 1)] }));
    await store().insert(key('short', { attributes: [text('x-description', 'v')] }));
    expect(await store().locate({ ...everything, matches: [{ name: 'x-description', value: textString(Tag.AttributeValue, long) }] })).toEqual({ ids: ['long'], total: 1 });
    expect((await store().locate({ ...everything, matches: [{ name: 'x-description', value: textString(Tag.AttributeValue, `${long}x`) }] })).total).toBe(0);
    expect((await store().get('long'))!.attributes[1]!.value).toEqual(textString(Tag.AttributeValue, `${long}w`));
  });

  it('updates state and attributes atomically, and erases the wrapped key', async () => {
    await store().insert(key('x', { state: State.Active, fill: 7, attributes: [name('n'), len(128), text('x-a', 'a0'), text('x-a', 'a1', 1)] }));
    expect(await store().update('x', { replace: new Map([['x-a', [text('x-a', 'only')]], ['x-new', [text('x-new', 'n')]]]) })).toBe(true);
    expect((await store().get('x'))!.attributes.map((a) => a.name)).toEqual(['Cryptographic Length', 'Name', 'x-a', 'x-new']);
    expect(await store().update('x', { state: State.Destroyed, eraseKey: true, replace: new Map([['Name', []]]) })).toBe(true);
    const obj = await store().get('x');
    expect(obj).toMatchObject({ state: State.Destroyed, wrapped: undefined });
    expect(obj!.attributes.map((a) => a.name)).toEqual(['Cryptographic Length', 'x-a', 'x-new']);
    expect(await store().update('nope', { state: State.Active })).toBe(false);
    expect((await store().locate({ ...everything, includeDestroyed: false })).ids).toEqual([]);
    expect((await store().locate({ ...everything, includeDestroyed: true })).ids).toEqual(['x']);
  });

  it('applies due Activation and Deactivation Dates, and only those', async () => {
    await store().insert(key('due-on', { attributes: [date('Activation Date', 100n)] }));
    await store().insert(key('later-on', { attributes: [date('Activation Date', 10_000n)] }));
    await store().insert(key('due-off', { state: State.Active, attributes: [date('Deactivation Date', 100n)] }));
    await store().insert(key('both', { attributes: [date('Activation Date', 50n), date('Deactivation Date', 100n)] }));
    await store().applyDueTransitions(1000n);
    const state = async (id: string) => (await store().get(id))!.state;
    expect(await state('due-on')).toBe(State.Active);
    expect(await state('later-on')).toBe(State.PreActive);
    expect(await state('due-off')).toBe(State.Deactivated);
    expect(await state('both')).toBe(State.Deactivated);
  });

  it('removes an object with its attributes, and restores one exactly as it was read (undo)', async () => {
    await store().insert(key('gone', { attributes: [name('g')] }));
    await store().remove('gone');
    expect(await store().get('gone')).toBeUndefined();
    expect((await store().locate({ ...everything, matches: [{ name: 'Name', value: name('g').value }] })).total).toBe(0);

    await store().insert(key('back', { state: State.Active, fill: 9, attributes: [name('b'), len(256)] }));
    const before = (await store().get('back'))!;
    await store().update('back', { state: State.Destroyed, eraseKey: true, replace: new Map([['Name', [name('c')]]]) });
    await store().restore(before);
    expect(await store().get('back')).toEqual(before);
  });

  it('counts objects by state and answers the write probe', async () => {
    await store().insert(key('p1'));
    await store().insert(key('p2'));
    await store().insert(key('a1', { state: State.Active }));
    expect(await store().countByState()).toEqual(new Map([[State.PreActive, 2], [State.Active, 1]]));
    await expect(store().probeWritable()).resolves.toBeUndefined();
  });

  it('shows a change made through one connection at once through another (two nodes)', async () => {
    const other = await s.reopen();
    await store().insert(key('shared', { fill: 3, attributes: [name('s')] }));
    expect(Buffer.from((await other.objects.get('shared'))!.wrapped!.blob)).toEqual(Buffer.alloc(40, 3));
    await other.objects.update('shared', { state: State.Active });
    expect((await store().get('shared'))!.state).toBe(State.Active);
  });
}

describe('sqlite', () => {
  const kind = sqliteKind();
  beforeAll(() => kind.setup());
  afterAll(() => kind.teardown());
  contract(kind);

  /**
   * A store file at schema `version` (migrations 1 to `version` only), holding key 'old' wrapped
   * under 'crk' with a Name 'kept' and a length of 256; the connection stays open for more rows.
   */
  async function databaseAtVersion(version: number): Promise<{ path: string; old: Database.Database }> {
    const { backend, location } = await kind.fresh();
    await backend.close();
    const path = location.kind === 'sqlite' ? location.path : '';
    for (const f of [path, `${path}-wal`, `${path}-shm`]) rmSync(f, { force: true });
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    old.exec(MIGRATIONS.slice(0, version).join(';\n'));
    old.pragma(`user_version = ${version}`);
    const seq = old
      .prepare("INSERT INTO objects (id, object_type, state, root_key_label, wrap_mechanism, wrapped_key, created_at) VALUES ('old', ?, ?, 'crk', 'test', ?, 0)")
      .run(ObjectType.SymmetricKey, State.Active, Buffer.alloc(40, 9)).lastInsertRowid;
    for (const a of [name('kept'), len(256)]) old.prepare('INSERT INTO attributes VALUES (?, ?, ?, ?)').run(seq, a.name, a.index, encodeTtlv(a.value));
    return { path, old };
  }
  const sqlOf = (db: Database.Database, n: string) => db.prepare('SELECT sql FROM sqlite_master WHERE name = ?').pluck().get(n) as string;

  it('applies every migration and uses WAL (persistent in the file)', async () => {
    const { location } = await kind.fresh();
    const db = new Database(location.kind === 'sqlite' ? location.path : '', { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('refuses a database from a newer kmipd', async () => {
    const { backend, location } = await kind.fresh();
    await backend.close();
    const path = location.kind === 'sqlite' ? location.path : '';
    const db = new Database(path);
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    expect(() => new SqliteStore(path)).toThrow(/newer/);
  });

  it('serves Locate by an indexed value and due dates from the partial value index', async () => {
    const { location } = await kind.fresh();
    const db = new Database(location.kind === 'sqlite' ? location.path : '', { readonly: true });
    try {
      const index = sqlOf(db, 'attributes_by_value');
      expect(index).toContain(`WHERE ${sqliteValueIndexCondition('name')}`);
      const plan = (sql: string, ...params: unknown[]) =>
        (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((p) => p.detail).join('\n');
      // Name alone, and after an attribute the index leaves out.
      for (const matches of [[name('x')], [len(128), name('x')]]) {
        const { cond, params } = locateCondition({ ...everything, tenant: 'default', includeDestroyed: false, matches });
        expect(plan(`SELECT o.id FROM objects o ${cond} ORDER BY o.seq DESC LIMIT ? OFFSET ?`, ...params, 10, 0)).toMatch(/USING (COVERING )?INDEX attributes_by_value/);
      }
      expect(plan(`SELECT seq FROM objects WHERE ${dueObjectsCondition('Deactivation Date')}`, Buffer.alloc(16))).toMatch(/USING (COVERING )?INDEX attributes_by_value/);
    } finally {
      db.close();
    }
  });

  it('rebuilds the value index of a database from before migration 5, keeping what Locate finds', async () => {
    const { path, old } = await databaseAtVersion(4);
    expect(sqlOf(old, 'attributes_by_value')).not.toContain('WHERE');
    old.close();

    const store = new SqliteStore(path);
    try {
      expect(store.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
      expect(sqlOf(store.db, 'attributes_by_value')).toContain(`WHERE ${sqliteValueIndexCondition('name')}`);
      expect(await store.locate({ ...everything, matches: [name('kept')] })).toEqual({ ids: ['old'], total: 1 });
      expect(await store.locate({ ...everything, matches: [len(256), name('kept')] })).toEqual({ ids: ['old'], total: 1 });
      expect((await store.get('old'))!.attributes).toEqual([len(256), name('kept')]);
    } finally {
      await store.close();
    }
  });

  it('rewrites the value index and the retired-root-key guard of a version 5 database (migration 6)', async () => {
    const { path, old } = await databaseAtVersion(5);
    old.prepare("INSERT INTO root_keys (version, label, state, created_at) VALUES (1, 'crk-old', 'retired', 0), (2, 'crk', 'active', 0)").run();
    expect(sqlOf(old, 'attributes_by_value')).toContain('NOT IN');
    expect(sqlOf(old, 'objects_insert_not_retired')).toContain('IN (SELECT label');
    old.close();

    const store = new SqliteStore(path);
    try {
      expect(store.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
      expect(sqlOf(store.db, 'attributes_by_value')).toContain(`WHERE ${sqliteValueIndexCondition('name')}`);
      expect(sqlOf(store.db, 'attributes_by_value')).not.toContain('NOT IN');
      for (const t of ['objects_insert_not_retired', 'objects_update_not_retired']) expect(sqlOf(store.db, t)).toContain('EXISTS (SELECT 1 FROM root_keys WHERE label = NEW.root_key_label');
      expect(await store.locate({ ...everything, matches: [name('kept')] })).toEqual({ ids: ['old'], total: 1 });
      expect(await store.locate({ ...everything, matches: [len(256), name('kept')] })).toEqual({ ids: ['old'], total: 1 });
      // The guard still refuses a key wrapped under the retired root key, and only that.
      const under = (label: string) => ({ rootKeyLabel: label, mechanism: 'test', blob: Buffer.alloc(40, 5) });
      await expect(store.insert({ ...key('new-old'), wrapped: under('crk-old') })).rejects.toThrow(/root key is retired/);
      await expect(store.restore({ ...(await store.get('old'))!, wrapped: under('crk-old') })).rejects.toThrow(/root key is retired/);
      await store.insert({ ...key('new'), wrapped: under('crk') });
      expect((await store.get('new'))!.wrapped!.rootKeyLabel).toBe('crk');
    } finally {
      await store.close();
    }
  });

  it("keeps a new key's attributes outside the value index in one column, beside the rows of a key stored before migration 8", async () => {
    const { path, old } = await databaseAtVersion(7);
    old.close();
    const store = new SqliteStore(path);
    try {
      const flag = (attr: string, b: boolean): Attribute => ({ name: attr, index: 0, value: { tag: Tag.AttributeValue, type: ItemType.Boolean, value: b } });
      const attrs = [name('fresh'), len(256), flag('Fresh', true), flag('Extractable', true), date('Initial Date', 1000n)];
      await store.insert(key('new', { attributes: attrs }));
      const rowNames = (id: string) => store.db.prepare('SELECT a.name FROM attributes a JOIN objects o ON a.object_seq = o.seq WHERE o.id = ? ORDER BY 1').pluck().all(id);
      const bagOf = (id: string) => store.db.prepare('SELECT unindexed_attributes FROM objects WHERE id = ?').pluck().get(id) as Buffer | null;
      expect(rowNames('new')).toEqual(['Initial Date', 'Name']);
      expect(decodeAttributeBag(bagOf('new')!)).toEqual([len(256), flag('Extractable', true), flag('Fresh', true)]);
      expect(rowNames('old')).toEqual(['Cryptographic Length', 'Name']);
      expect(bagOf('old')).toBeNull();
      expect((await store.get('new'))!.attributes).toEqual([len(256), flag('Extractable', true), flag('Fresh', true), date('Initial Date', 1000n), name('fresh')]);
      // Locate finds both layouts, by value and by range, alone and with an indexed attribute.
      const found = async (...matches: LocateQuery['matches']) => (await store.locate({ ...everything, matches })).ids;
      const lengths = { name: 'Cryptographic Length', value: integer(Tag.AttributeValue, 200), upTo: integer(Tag.AttributeValue, 300) };
      expect(await found(len(256))).toEqual(['new', 'old']);
      expect(await found(lengths)).toEqual(['new', 'old']);
      expect(await found(len(256), name('kept'))).toEqual(['old']);
      expect(await found(flag('Fresh', true), name('fresh'))).toEqual(['new']);
      // An update keeps each key's layout: the old key's length stays a row, the new key's in its bag.
      await store.update('old', { replace: new Map([['Cryptographic Length', [len(128)]]]) });
      await store.update('new', { replace: new Map([['Fresh', [flag('Fresh', false)]], ['Name', [name('renamed')]]]) });
      expect(rowNames('old')).toEqual(['Cryptographic Length', 'Name']);
      expect(rowNames('new')).toEqual(['Initial Date', 'Name']);
      expect((await store.get('old'))!.attributes).toEqual([len(128), name('kept')]);
      expect((await store.get('new'))!.attributes).toEqual([len(256), flag('Extractable', true), flag('Fresh', false), date('Initial Date', 1000n), name('renamed')]);
      expect(await found(len(256))).toEqual(['new']);
      expect(await found(flag('Fresh', true))).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('leaves no trace of an erased wrapped key in the database files', async () => {
    const { backend, location } = await kind.fresh();
    await backend.objects.insert(key('x', { state: State.Active, fill: 7 }));
    await backend.objects.update('x', { state: State.Destroyed, eraseKey: true });
    await backend.close();
    const path = location.kind === 'sqlite' ? location.path : '';
    const blob = Buffer.alloc(40, 7);
    for (const f of [path, `${path}-wal`]) {
      try {
        expect(readFileSync(f).includes(blob)).toBe(false);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
  });
});

describe('postgres', () => {
  const kind = postgresKind();
  beforeAll(() => kind.setup(), 120_000);
  afterAll(() => kind.teardown());
  contract(kind);

  it('applies every migration, recorded in kmipd_schema', async () => {
    const { location } = await kind.fresh();
    const db = new URL(location.kind === 'postgres' ? location.url : '').pathname.slice(1);
    expect(await kind.server().query(db, 'SELECT version FROM kmipd_schema')).toEqual([{ version: POSTGRES_MIGRATIONS.length }]);
    expect(POSTGRES_MIGRATIONS.length).toBe(MIGRATIONS.length);
    const tables = await kind.server().query<{ table_name: string }>(db, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1");
    expect(tables.map((t) => t.table_name)).toEqual(['attributes', 'client_credentials', 'client_passwords', 'clients', 'cluster_nodes', 'key_holds', 'kmipd_schema', 'objects', 'root_keys']);
  });

  it('refuses a database from a newer kmipd', async () => {
    const { backend, location } = await kind.fresh();
    await backend.close();
    const db = new URL(location.kind === 'postgres' ? location.url : '').pathname.slice(1);
    await kind.server().query(db, 'UPDATE kmipd_schema SET version = version + 1');
    await expect(openStoreBackend(location)).rejects.toThrow(/newer/);
  });

  it('migrates once when several nodes open a new database at the same time', async () => {
    const url = await kind.server().createDatabase('kmipd_race');
    const loc = { kind: 'postgres' as const, url, password: undefined };
    const opened = await Promise.all([1, 2, 3, 4].map(() => openStoreBackend(loc)));
    try {
      expect(await kind.server().query('kmipd_race', 'SELECT version FROM kmipd_schema')).toEqual([{ version: POSTGRES_MIGRATIONS.length }]);
      await Promise.all(opened.map((b) => b.rootKeys.ensureInitialized('crk-v1')));
      expect((await opened[0]!.rootKeys.versions()).map((v) => v.label)).toEqual(['crk-v1']);
    } finally {
      await Promise.all(opened.map((b) => b.close()));
    }
  });

  it('serves Locate by value and by date range from the value index', async () => {
    const { location } = await kind.fresh();
    const db = new URL(location.kind === 'postgres' ? location.url : '').pathname.slice(1);
    const [index] = await kind.server().query<{ indexdef: string }>(db, "SELECT indexdef FROM pg_indexes WHERE indexname = 'attributes_by_value'");
    expect(index!.indexdef).toMatch(/WHERE \(name <> ALL \(ARRAY\['Always Sensitive'/);
    for (const matches of [
      [{ name: 'Name', value: name('x').value }],
      [{ name: 'Initial Date', value: date('Initial Date', 1n).value, upTo: date('Initial Date', 2n).value }],
      [len(128), { name: 'Name', value: name('x').value }],
    ]) {
      const { sql, params } = locateStatement({ ...everything, tenant: 'default', includeDestroyed: false, matches });
      // An empty table is scanned whatever the indexes; with scans priced out, the plan shows
      // whether the statement can use the index at all (a large table then picks it by itself).
      const u = new URL(location.kind === 'postgres' ? location.url : '');
      const c = new pg.Client({ host: u.hostname, port: Number(u.port), user: u.username, database: u.pathname.slice(1), password: TEST_PG_PASSWORD });
      await c.connect();
      let plan: { 'QUERY PLAN': string }[];
      try {
        await c.query('SET enable_seqscan = off');
        plan = (await c.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params)).rows;
      } finally {
        await c.end();
      }
      expect(plan.map((p) => p['QUERY PLAN']).join('\n')).toMatch(/attributes_by_value/);
    }
  });

  it('does not acknowledge a commit whose wait for the synchronous standby was cancelled', async () => {
    // Makes the whole test server wait for a standby that never comes, until the finally below.
    const { backend } = await kind.fresh();
    const server = kind.server();
    await server.query('postgres', "ALTER SYSTEM SET synchronous_standby_names = 'zone_b'");
    await server.query('postgres', 'SELECT pg_reload_conf()');
    try {
      await eventually(async () => (await backend.status()).durability['synchronous_standby_names'] === 'zone_b');
      let settled = false;
      const insert = backend.objects.insert(key('one-zone-only')).finally(() => {
        settled = true;
      });
      insert.catch(() => undefined);
      // The commit waits for zone_b: no answer, neither success nor failure.
      const [waiting] = await eventually(async () => {
        const rows = await server.query<{ pid: number }>('postgres', "SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
        return rows.length > 0 ? rows : undefined;
      });
      expect(settled).toBe(false);
      // PostgreSQL turns a cancelled wait into a success with a warning; kmipd must not.
      await server.query('postgres', 'SELECT pg_cancel_backend($1)', [waiting!.pid]);
      await expect(insert).rejects.toThrow(/synchronous standby/);
    } finally {
      await server.query('postgres', 'ALTER SYSTEM RESET synchronous_standby_names');
      await server.query('postgres', 'SELECT pg_reload_conf()');
    }
  });

  it('raises synchronous_commit to on for its connections when the database says off, and keeps remote_apply', async () => {
    for (const [setting, expected] of [['off', 'on'], ['local', 'on'], ['remote_apply', 'remote_apply']] as const) {
      const dbName = `kmipd_sync_${setting}`;
      const url = await kind.server().createDatabase(dbName);
      await kind.server().query(dbName, `ALTER DATABASE ${dbName} SET synchronous_commit = ${setting}`);
      const b = await openStoreBackend({ kind: 'postgres', url, password: undefined });
      try {
        expect((await b.status()).durability['synchronous_commit']).toBe(expected);
      } finally {
        await b.close();
      }
    }
  });
});

/** Polls `f` until it returns something other than undefined or false (10 s at most). */
async function eventually<T>(f: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
