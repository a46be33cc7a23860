// SqliteStore.get answers recently read objects from memory while the database cannot have
// changed. Whoever changes an object — this store, another module on the same connection, another
// process — the very next get sees it; and nothing can alter what the cache holds.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { SqliteClusterNodes } from '../../src/store/sqlite-cluster-nodes.js';
import { ObjectType, State, Tag } from '../../src/kmip/registry/generated.js';
import { integer, textString } from '../../src/ttlv/index.js';

let dir: string;
let store: SqliteStore;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kmipd-objcache-'));
  store = new SqliteStore(join(dir, 'kmipd.db'));
  await store.insert({
    id: 'k1',
    tenant: 't',
    objectType: ObjectType.SymmetricKey,
    state: State.PreActive,
    wrapped: { rootKeyLabel: 'crk', mechanism: 'aes-gcm-v2', blob: new Uint8Array(60).fill(7) },
    attributes: [{ name: 'Name', index: 0, value: textString(Tag.AttributeValue, 'first') }],
  });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const nameOf = async () => (await store.get('k1'))!.attributes.find((a) => a.name === 'Name')!.value.value;

/** Other code on the store's connection renames k1 to "second" (its encoded Text String value). */
const renameBehindTheStore = () =>
  store.db.prepare("UPDATE attributes SET value = ? WHERE name = 'Name'").run(Buffer.from([0x42, 0x00, 0x0b, 0x07, 0x00, 0x00, 0x00, 0x06, 0x73, 0x65, 0x63, 0x6f, 0x6e, 0x64, 0, 0]));

const insertK2 = () =>
  store.insert({ id: 'k2', tenant: 't', objectType: ObjectType.SymmetricKey, state: State.PreActive, wrapped: { rootKeyLabel: 'crk', mechanism: 'aes-gcm-v2', blob: new Uint8Array(60) }, attributes: [] });

it('sees a change made through the store itself', async () => {
  expect((await store.get('k1'))!.state).toBe(State.PreActive);
  expect((await store.get('k1'))!.state).toBe(State.PreActive); // from memory
  await store.update('k1', { state: State.Active });
  expect((await store.get('k1'))!.state).toBe(State.Active);
});

it('sees a change committed by another process (another connection)', async () => {
  expect(await nameOf()).toBe('first');
  const other = new Database(join(dir, 'kmipd.db'));
  other.prepare("UPDATE objects SET state = ?, wrapped_key = NULL, wrap_mechanism = NULL WHERE id = 'k1'").run(State.Destroyed);
  other.close();
  const after = await store.get('k1');
  expect(after!.state).toBe(State.Destroyed);
  expect(after!.wrapped).toBeUndefined();
});

it('sees a change written by other code on the same connection', async () => {
  expect(await nameOf()).toBe('first');
  renameBehindTheStore();
  expect(await nameOf()).toBe('second');
});

it('hands out objects that cannot be altered', async () => {
  const a = await store.get('k1');
  const b = await store.get('k1');
  expect(b).toBe(a); // the same cached object
  expect(() => (a!.attributes as unknown as unknown[]).push(integer(Tag.AttributeValue, 1))).toThrow(TypeError);
  expect(() => Object.assign(a!, { state: State.Active })).toThrow(TypeError);
  expect(() => Object.assign(a!.attributes[0]!, { name: 'x' })).toThrow(TypeError);
  expect((await store.get('k1'))!.state).toBe(State.PreActive);
});

it('a missing object is not remembered as missing', async () => {
  expect(await store.get('k2')).toBeUndefined();
  await insertK2();
  expect((await store.get('k2'))!.id).toBe('k2');
});

// The cluster heartbeat commits on the same connection every 2 s; it changes no object.
const beat = async () => {
  const nodes = new SqliteClusterNodes(store.db);
  await nodes.register({ nodeId: 'n1', host: 'h', listen: '127.0.0.1:5696', version: 'test', pid: 1 });
  return () => nodes.heartbeat('n1');
};

it('keeps what it holds across a cluster heartbeat', async () => {
  const heartbeat = await beat();
  const a = await store.get('k1');
  expect(await heartbeat()).toBe(true);
  expect(await store.get('k1')).toBe(a); // still the cached object, not read again
});

it('after a heartbeat still sees a change made on the same connection before it', async () => {
  const heartbeat = await beat();
  expect(await nameOf()).toBe('first');
  renameBehindTheStore();
  await heartbeat();
  expect(await nameOf()).toBe('second');
});

it('after a heartbeat still sees a change another process committed before it', async () => {
  const heartbeat = await beat();
  expect((await store.get('k1'))!.state).toBe(State.PreActive);
  const other = new Database(join(dir, 'kmipd.db'));
  other.prepare("UPDATE objects SET state = ? WHERE id = 'k1'").run(State.Active);
  other.close();
  await heartbeat();
  expect((await store.get('k1'))!.state).toBe(State.Active);
});

// Create and the first Get of a key (its Fresh flag) write one object each: only that object is
// read again; the rest stay in memory.

it('keeps the other objects across a Create', async () => {
  const a = await store.get('k1');
  await insertK2();
  expect(await store.get('k1')).toBe(a);
  expect((await store.get('k2'))!.id).toBe('k2');
});

it('keeps the other objects across a change to one, and sees that change', async () => {
  await insertK2();
  const a = await store.get('k1');
  expect((await store.get('k2'))!.state).toBe(State.PreActive);
  await store.update('k2', { state: State.Active });
  expect((await store.get('k2'))!.state).toBe(State.Active);
  expect(await store.get('k1')).toBe(a);
  await store.remove('k2');
  expect(await store.get('k2')).toBeUndefined();
  expect(await store.get('k1')).toBe(a);
});

it('after a change to one object still sees a change to another made on the same connection before it', async () => {
  await insertK2();
  expect(await nameOf()).toBe('first');
  renameBehindTheStore();
  await store.update('k2', { state: State.Active });
  expect(await nameOf()).toBe('second');
});

// Other connections' commits that only add objects (the store's own insert thread, another serve
// process's Creates) leave the cache as it is (change_epoch); every other change still empties it.

/** Another process (its own connection) adds object `id` with plain SQL, as another kmipd would. */
const insertElsewhere = (id: string) => {
  const other = new Database(join(dir, 'kmipd.db'));
  const seq = other
    .prepare("INSERT INTO objects (id, tenant, object_type, state, root_key_label, wrap_mechanism, wrapped_key, created_at) VALUES (?, 't', ?, ?, 'crk', 'aes-gcm-v2', zeroblob(60), 0)")
    .run(id, ObjectType.SymmetricKey, State.PreActive).lastInsertRowid;
  other.prepare("INSERT INTO attributes (object_seq, name, idx, value) VALUES (?, 'x-tag', 0, ?)").run(seq, Buffer.from([0x42, 0x00, 0x0b, 0x07, 0, 0, 0, 1, 0x61, 0, 0, 0, 0, 0, 0, 0]));
  other.close();
};

it('keeps what it holds across objects another process adds, and finds those', async () => {
  const a = await store.get('k1');
  expect(await store.get('k3')).toBeUndefined(); // asked before it exists: not remembered as missing
  insertElsewhere('k3');
  expect(await store.get('k1')).toBe(a);
  expect((await store.get('k3'))!.attributes.map((x) => x.name)).toEqual(['x-tag']);
});

it('sees an attribute another process adds to an object it holds', async () => {
  expect(await nameOf()).toBe('first');
  const other = new SqliteStore(join(dir, 'kmipd.db'));
  try {
    // Only an attribute row is inserted for the existing object; its objects row is updated too.
    await other.update('k1', { replace: new Map([['x-added', [{ name: 'x-added', index: 0, value: textString(Tag.AttributeValue, 'v') }]]]) });
  } finally {
    await other.close();
  }
  expect((await store.get('k1'))!.attributes.map((x) => x.name)).toEqual(['Name', 'x-added']);
});

it('sees an operator hold another process places on an object it holds', async () => {
  expect((await store.get('k1'))!.heldByOperator).toBe(false);
  const other = new Database(join(dir, 'kmipd.db'));
  other.prepare("INSERT INTO key_holds (object_id, held_at, reason) VALUES ('k1', 0, 'test')").run();
  other.close();
  expect((await store.get('k1'))!.heldByOperator).toBe(true);
});

it('sees a change another process commits after objects were added', async () => {
  const a = await store.get('k1');
  insertElsewhere('k3');
  expect(await store.get('k1')).toBe(a);
  const other = new Database(join(dir, 'kmipd.db'));
  other.prepare("DELETE FROM objects WHERE id = 'k1'").run();
  other.close();
  expect(await store.get('k1')).toBeUndefined();
});
