// The SQLite read path of every request: the client registry's per-request admission re-check
// (activeCredential), answered from memory while the database cannot have changed, must still
// see a revocation at once, whoever wrote it; and SqliteStore.get, read in one statement, must
// return attributes exactly as stored (awkward names, bytewise order, empty values, none at all).
import Database from 'better-sqlite3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import type { ClientRegistry, NewCredential } from '../../src/store/client-registry.js';
import { SqliteClientRegistry } from '../../src/store/sqlite-client-registry.js';
import { objectWithAttributesSql, SqliteStore } from '../../src/store/sqlite-store.js';
import { byteString, enumeration, integer, structure, textString } from '../../src/ttlv/index.js';
import { ObjectType, State, Tag } from '../../src/kmip/registry/generated.js';
import type { Attribute } from '../../src/kmip/attributes.js';
import { sqliteKind, type FreshStore } from './backends.js';

const fp = (s: string) => createHash('sha256').update(s).digest('hex');
const leaf = (s: string): NewCredential => ({
  kind: 'issued',
  fingerprint: fp(s),
  certificate: `-----BEGIN CERTIFICATE-----\n${s}\n-----END CERTIFICATE-----\n`,
  serial: '01',
  notAfter: new Date(Date.now() + 86_400_000),
});

const kind = sqliteKind();
beforeAll(() => kind.setup());
afterAll(() => kind.teardown());

let s: FreshStore;
beforeEach(async () => {
  s = await kind.fresh();
});
const connectionOf = (store: FreshStore['backend']) => (store.objects as SqliteStore).db;

describe('activeCredential', () => {
  /** A client with one credential, asked for twice so that the second answer comes from memory. */
  async function admitted(r: ClientRegistry, name = 'vc'): Promise<number> {
    await r.addClient({ name, tenant: 't1', role: 'writer' }, leaf(name));
    const id = (await r.activeLeaf(fp(name)))!.id;
    expect(await r.activeCredential(id)).toMatchObject({ id, clientName: name, tenant: 't1', role: 'writer', certificate: leaf(name).certificate });
    expect(await r.activeCredential(id)).toMatchObject({ id, clientName: name });
    return id;
  }

  it('stops admitting a credential revoked through another connection (the operator CLI) at once', async () => {
    const server = s.backend.clients;
    const cli = (await s.reopen()).clients;
    const id = await admitted(server);
    expect(await cli.revokeCredential('vc', fp('vc'))).toBe(true);
    expect(await server.activeCredential(id)).toBeUndefined();

    const other = await admitted(cli, 'other');
    expect(await server.activeCredential(other)).toMatchObject({ clientName: 'other' }); // added elsewhere: seen too
    expect(await server.activeCredential(other)).toMatchObject({ clientName: 'other' });
    expect(await cli.revokeClient('other', 'leaked')).toBe(true);
    expect(await server.activeCredential(other)).toBeUndefined();
  });

  it('stops admitting a credential revoked through the same registry at once', async () => {
    const r = s.backend.clients;
    const id = await admitted(r);
    expect(await r.revokeClient('vc', 'leaked')).toBe(true);
    expect(await r.activeCredential(id)).toBeUndefined();
  });

  it('sees writes made through the same connection by anything else', async () => {
    const db = connectionOf(s.backend);
    const r = s.backend.clients;
    const id = await admitted(r);
    // A second registry sharing the connection (its writes do not move data_version here).
    expect(await new SqliteClientRegistry(db).revokeCredential('vc', fp('vc'))).toBe(true);
    expect(await r.activeCredential(id)).toBeUndefined();

    const id2 = await admitted(r, 'vc2');
    db.prepare('UPDATE clients SET revoked_at = 1 WHERE name = ?').run('vc2');
    expect(await r.activeCredential(id2)).toBeUndefined();
  });

  it('does not keep what it read inside a transaction that was then rolled back', async () => {
    const db = connectionOf(s.backend);
    const r = s.backend.clients;
    const id = await admitted(r);
    db.exec('BEGIN');
    db.prepare('UPDATE client_credentials SET revoked_at = 1 WHERE id = ?').run(id);
    expect(await r.activeCredential(id)).toBeUndefined();
    db.exec('ROLLBACK');
    expect(await r.activeCredential(id)).toMatchObject({ id, clientName: 'vc' });
  });
});

describe('change checks shared between arrivals (the server)', () => {
  const key = (id: string) => ({
    id,
    tenant: 't1',
    objectType: ObjectType.SymmetricKey,
    state: State.PreActive,
    wrapped: { rootKeyLabel: 'crk', mechanism: 'test', blob: Buffer.alloc(40, 5) },
    attributes: [],
  });
  /** Another process's connection (the operator CLI): its commits move data_version here. */
  const elsewhere = () => {
    if (s.location.kind !== 'sqlite') throw new Error('a SQLite store was expected');
    return new Database(s.location.path);
  };
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

  it("sees another connection's commits from the next arrival on, in every cache of the connection", async () => {
    const arrived = s.backend.shareChangeChecks();
    const cli = elsewhere();
    await s.backend.objects.insert(key('k1'));
    await s.backend.clients.addClient({ name: 'vc', tenant: 't1', role: 'writer' }, leaf('vc'));
    await nextTurn();
    arrived();
    const id = (await s.backend.clients.activeLeaf(fp('vc')))!.id;
    expect(await s.backend.clients.activeCredential(id)).toMatchObject({ clientName: 'vc' });
    expect((await s.backend.objects.get('k1'))!.state).toBe(State.PreActive);

    // Committed while the request that read above is still in progress: it may not see them...
    cli.prepare("UPDATE clients SET revoked_at = 1 WHERE name = 'vc'").run();
    cli.prepare("UPDATE objects SET state = ? WHERE id = 'k1'").run(State.Active);
    expect(await s.backend.clients.activeCredential(id)).toMatchObject({ clientName: 'vc' });
    expect((await s.backend.objects.get('k1'))!.state).toBe(State.PreActive);
    // ...whatever arrives after them does, in both caches.
    arrived();
    expect(await s.backend.clients.activeCredential(id)).toBeUndefined();
    expect((await s.backend.objects.get('k1'))!.state).toBe(State.Active);
    cli.close();
  });

  it('reads again in the next turn of the event loop without an arrival (a timer, a sweep)', async () => {
    s.backend.shareChangeChecks();
    const cli = elsewhere();
    await s.backend.objects.insert(key('k1'));
    await nextTurn();
    expect((await s.backend.objects.get('k1'))!.state).toBe(State.PreActive);
    cli.prepare("UPDATE objects SET state = ? WHERE id = 'k1'").run(State.Active);
    expect((await s.backend.objects.get('k1'))!.state).toBe(State.PreActive); // same turn
    await nextTurn();
    expect((await s.backend.objects.get('k1'))!.state).toBe(State.Active);
    cli.close();
  });

  it('sees writes through its own connection at once, between arrivals', async () => {
    const arrived = s.backend.shareChangeChecks();
    await s.backend.objects.insert(key('k1'));
    arrived();
    expect((await s.backend.objects.get('k1'))!.state).toBe(State.PreActive);
    await s.backend.objects.update('k1', { state: State.Active });
    expect((await s.backend.objects.get('k1'))!.state).toBe(State.Active);
    connectionOf(s.backend).prepare("UPDATE objects SET state = ? WHERE id = 'k1'").run(State.Deactivated);
    expect((await s.backend.objects.get('k1'))!.state).toBe(State.Deactivated);
  });

  it('without sharing (the CLI, the default) every check reads', async () => {
    const cli = elsewhere();
    await s.backend.objects.insert(key('k1'));
    expect((await s.backend.objects.get('k1'))!.state).toBe(State.PreActive);
    cli.prepare("UPDATE objects SET state = ? WHERE id = 'k1'").run(State.Active);
    expect((await s.backend.objects.get('k1'))!.state).toBe(State.Active);
    cli.close();
  });
});

describe('SqliteStore.get', () => {
  const v = Tag.AttributeValue;
  const a = (name: string, index: number, value: Attribute['value']): Attribute => ({ name, index, value });
  const object = (id: string, attributes: Attribute[]) => ({
    id,
    tenant: 't1',
    objectType: ObjectType.SymmetricKey,
    state: State.Active,
    wrapped: { rootKeyLabel: 'crk', mechanism: 'test', blob: Buffer.alloc(40, 5) },
    attributes,
  });

  it('reads back every attribute exactly, in bytewise name order then index, whatever the names', async () => {
    const odd = 'x-"quoted" \\ back\nslash\u0000nul';
    const attributes = [
      a('x-\u{1F600}', 0, integer(v, 1)), // UTF-8 F0..., after U+FFFD (EF BF BD) bytewise, before it in UTF-16
      a('x-\uFFFD', 0, integer(v, 2)),
      a(odd, 10, textString(v, 'ten')),
      a(odd, 2, byteString(v, new Uint8Array(0))),
      a('x-é', 0, textString(v, 'a\u0000b')),
      a('Name', 0, structure(v, [textString(Tag.NameValue, 'k'), enumeration(Tag.NameType, 1)])),
      a('x-bytes', 0, byteString(v, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]))),
    ];
    await s.backend.objects.insert(object('odd "id"\n', attributes));
    await s.backend.objects.insert(object('bare', []));
    const got = await s.backend.objects.get('odd "id"\n');
    expect(got).toMatchObject({ id: 'odd "id"\n', tenant: 't1', objectType: ObjectType.SymmetricKey, state: State.Active, wrapped: { rootKeyLabel: 'crk', mechanism: 'test' } });
    expect(Buffer.from(got!.wrapped!.blob)).toEqual(Buffer.alloc(40, 5));
    const order = ['Name/0', 'x-"quoted" \\ back\nslash\u0000nul/2', 'x-"quoted" \\ back\nslash\u0000nul/10', 'x-bytes/0', 'x-é/0', 'x-\uFFFD/0', 'x-\u{1F600}/0'];
    expect(got!.attributes.map((x) => `${x.name}/${x.index}`)).toEqual(order);
    for (const x of attributes) expect(got!.attributes.find((y) => y.name === x.name && y.index === x.index)!.value).toEqual(x.value);
    expect(await s.backend.objects.get('bare')).toMatchObject({ id: 'bare', attributes: [] });
    await s.backend.objects.update('bare', { eraseKey: true, state: State.Destroyed });
    expect(await s.backend.objects.get('bare')).toMatchObject({ state: State.Destroyed, wrapped: undefined, attributes: [] });
    expect(await s.backend.objects.get('missing')).toBeUndefined();
  });

  it('reads the attributes in stored order without sorting, both lists through the same search', async () => {
    // readObject relies on this plan for the JSON list and the value BLOB to line up without an
    // ORDER BY (it checks the order, and falls back to sorting, but a change of plan belongs here).
    const plan = (connectionOf(s.backend).prepare(`EXPLAIN QUERY PLAN ${objectWithAttributesSql('')}`).all('x') as { detail: string }[]).map((r) => r.detail);
    expect(plan.filter((d) => /^SEARCH a USING PRIMARY KEY \(object_seq=\?\)$/.test(d))).toHaveLength(2);
    expect(plan.join('\n')).not.toMatch(/TEMP B-TREE/);
    // The operator hold that comes with each object: one index lookup, not a scan of key_holds.
    expect(plan).toContain('SEARCH h USING COVERING INDEX sqlite_autoindex_key_holds_1 (object_id=?)');
    // Many attributes of one name and of several names, inserted out of order: read back in (name, index) order.
    const attributes = [5, 1, 3, 0, 2, 4].flatMap((i) => [a('x-b', i, integer(v, 100 + i)), a('x-a', i, textString(v, `a${i}`))]);
    await s.backend.objects.insert(object('many', attributes));
    const got = (await s.backend.objects.get('many'))!.attributes;
    expect(got.map((x) => `${x.name}/${x.index}`)).toEqual([0, 1, 2, 3, 4, 5].map((i) => `x-a/${i}`).concat([0, 1, 2, 3, 4, 5].map((i) => `x-b/${i}`)));
    for (const x of got) expect(x.value).toEqual(x.name === 'x-a' ? textString(v, `a${x.index}`) : integer(v, 100 + x.index));
  });
});
