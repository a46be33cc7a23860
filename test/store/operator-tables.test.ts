// The operator's tables on both backends, through the same interfaces: client registry (trust,
// revocation, last seen), client passwords, root key versions (rotation, compare-and-swap, the
// retired-root-key guard), operator holds, the key inventory and cluster membership.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { ObjectType, State } from '../../src/kmip/registry/generated.js';
import type { NewCredential } from '../../src/store/client-registry.js';
import { HEARTBEAT_STALE_MS, nodeHealth } from '../../src/store/cluster-nodes.js';
import { postgresKind, sqliteKind, type BackendKind, type FreshStore } from './backends.js';

const fp = (s: string) => createHash('sha256').update(s).digest('hex');
const leaf = (s: string, kind: 'issued' | 'pinned' = 'issued'): NewCredential => ({
  kind,
  fingerprint: fp(s),
  certificate: `-----BEGIN CERTIFICATE-----\n${s}\n-----END CERTIFICATE-----\n`,
  serial: '01',
  notAfter: new Date(Date.now() + 86_400_000),
});
const ca = (s: string, subject?: string): NewCredential => ({ ...leaf(s), kind: 'ca', subject });
const wrappedKey = (id: string, label: string, fill = 1) => ({
  id,
  tenant: 'default',
  objectType: ObjectType.SymmetricKey,
  state: State.Active,
  wrapped: { rootKeyLabel: label, mechanism: 'test', blob: Buffer.alloc(40, fill) },
  attributes: [],
});

function contract(kind: BackendKind): void {
  let s: FreshStore;
  beforeEach(async () => {
    s = await kind.fresh();
  });

  describe('client registry', () => {
    it('adds clients with their first credential, and finds them by certificate', async () => {
      const r = s.backend.clients;
      await r.addClient({ name: 'vc01', tenant: 't1', role: 'writer' }, leaf('vc01'));
      await expect(r.addClient({ name: 'vc01', tenant: 't1', role: 'writer' }, leaf('other'))).rejects.toThrow(/already exists/);
      await expect(r.addClient({ name: 'bad', tenant: '-x', role: 'writer' }, leaf('bad'))).rejects.toThrow(/invalid tenant/);
      const active = await r.activeLeaf(fp('vc01'));
      expect(active).toMatchObject({ clientName: 'vc01', tenant: 't1', role: 'writer', kind: 'issued' });
      expect(await r.activeCredential(active!.id)).toMatchObject({ clientName: 'vc01' });
      expect(await r.get('vc01')).toMatchObject({ name: 'vc01', tenant: 't1', role: 'writer', revokedAt: undefined, credentials: [{ fingerprint: fp('vc01') }] });
      expect(await r.get('nobody')).toBeUndefined();
      await r.addClient({ name: 'a-first', tenant: 'default', role: 'reader' }, leaf('a'));
      expect((await r.list()).map((c) => c.name)).toEqual(['a-first', 'vc01']);
    });

    it('registers a certificate for one client only, forever', async () => {
      const r = s.backend.clients;
      await r.addClient({ name: 'one', tenant: 'default', role: 'manager' }, leaf('cert'));
      await expect(r.addClient({ name: 'two', tenant: 'default', role: 'manager' }, leaf('cert', 'pinned'))).rejects.toThrow(/already registered for client one/);
      await r.revokeClient('one', 'gone');
      await expect(r.addClient({ name: 'three', tenant: 'default', role: 'manager' }, leaf('cert'))).rejects.toThrow(/\(revoked\)/);
      expect(await r.get('two')).toBeUndefined(); // the failed add left nothing behind
    });

    it('refuses CA trusts that would make an identity ambiguous', async () => {
      const r = s.backend.clients;
      await r.addClient({ name: 'east', tenant: 'default', role: 'manager' }, ca('corp-ca', 'CN=east'));
      await r.addClient({ name: 'west', tenant: 'default', role: 'manager' }, ca('corp-ca', 'CN=west'));
      await expect(r.addClient({ name: 'any', tenant: 'default', role: 'manager' }, ca('corp-ca'))).rejects.toThrow(/already trusted for client east/);
      await expect(r.addClient({ name: 'east2', tenant: 'default', role: 'manager' }, ca('corp-ca', 'CN=east'))).rejects.toThrow(/give each client its own --subject/);
      expect((await r.activeCaTrusts()).map((c) => [c.clientName, c.subject])).toEqual([['east', 'CN=east'], ['west', 'CN=west']]);
    });

    it('revokes a client with every credential, or one credential; revocation is seen by another connection at once', async () => {
      const r = s.backend.clients;
      const other = (await s.reopen()).clients;
      await r.addClient({ name: 'vc', tenant: 'default', role: 'manager' }, leaf('old'));
      await r.addCredential('vc', leaf('new'), { revokePrevious: false });
      const oldId = (await other.activeLeaf(fp('old')))!.id;
      expect(await r.revokeCredential('vc', fp('old').toUpperCase())).toBe(true);
      expect(await other.activeCredential(oldId)).toBeUndefined();
      expect(await other.leafOwner(fp('old'))).toEqual({ clientName: 'vc', revoked: true });
      expect(await other.activeLeaf(fp('new'))).toBeDefined();
      await expect(r.revokeCredential('vc', fp('old'))).rejects.toThrow(/no active certificate/);
      expect(await r.revokeClient('vc', 'leaked')).toBe(true);
      expect(await r.revokeClient('vc', 'again')).toBe(false);
      expect(await other.activeLeaf(fp('new'))).toBeUndefined();
      expect(await other.leafOwner(fp('new'))).toEqual({ clientName: 'vc', revoked: true });
      expect(await other.get('vc')).toMatchObject({ revocationReason: 'leaked' });
      await expect(r.addCredential('vc', leaf('newer'), { revokePrevious: false })).rejects.toThrow(/is revoked/);
      await expect(r.revokeClient('nobody', undefined)).rejects.toThrow(/no client named/);
    });

    it('renews with --revoke-previous atomically', async () => {
      const r = s.backend.clients;
      await r.addClient({ name: 'vc', tenant: 'default', role: 'manager' }, leaf('v1'));
      await r.addCredential('vc', leaf('v2'), { revokePrevious: true });
      expect(await r.activeLeaf(fp('v1'))).toBeUndefined();
      expect(await r.activeLeaf(fp('v2'))).toBeDefined();
    });

    it('records when a client was last seen, at most once a minute per certificate', async () => {
      const r = s.backend.clients;
      await r.addClient({ name: 'vc', tenant: 'default', role: 'manager' }, leaf('c'));
      const t0 = new Date('2026-01-01T00:00:00Z');
      await r.touch('vc', fp('c'), t0);
      await r.touch('vc', fp('c'), new Date(t0.getTime() + 30_000));
      expect((await r.get('vc'))!.lastSeenAt).toEqual(t0);
      await r.touch('vc', fp('c'), new Date(t0.getTime() + 61_000));
      expect((await r.get('vc'))!.lastSeenAt).toEqual(new Date(t0.getTime() + 61_000));
      expect((await r.get('vc'))!.lastSeenFingerprint).toBe(fp('c'));
    });
  });

  describe('client passwords', () => {
    it('checks a password set through one connection from another, and forgets it when cleared', async () => {
      await s.backend.clients.addClient({ name: 'vc', tenant: 'default', role: 'manager' }, leaf('c'));
      const other = (await s.reopen()).passwords;
      expect(await other.verify('vc', 'admin', 'whatever')).toBe('not-configured');
      await expect(s.backend.passwords.set('vc', 'admin', 'short')).rejects.toThrow(/at least 12/);
      await s.backend.passwords.set('vc', 'admin', 'correct horse battery');
      expect(await other.verify('vc', 'admin', 'correct horse battery')).toBe('accepted');
      expect(await other.verify('vc', 'admin', 'correct horse battery')).toBe('accepted'); // the fast path
      expect(await other.verify('vc', 'admin', 'wrong horse battery')).toBe('rejected');
      expect(await other.verify('vc', 'root', 'correct horse battery')).toBe('rejected');
      await s.backend.passwords.set('vc', 'admin', 'another long password');
      expect(await other.verify('vc', 'admin', 'correct horse battery')).toBe('rejected');
      expect(await s.backend.passwords.clear('vc')).toBe(true);
      expect(await s.backend.passwords.clear('vc')).toBe(false);
      expect(await other.verify('vc', 'admin', 'another long password')).toBe('not-configured');
    });
  });

  describe('root keys', () => {
    it('starts at the configured label once, rotates, re-wraps by compare-and-swap and retires', async () => {
      const rk = s.backend.rootKeys;
      await rk.ensureInitialized('crk-v1');
      await rk.ensureInitialized('something-else');
      expect(await rk.activeLabel()).toBe('crk-v1');
      await s.backend.objects.insert(wrappedKey('k1', 'crk-v1', 1));
      await s.backend.objects.insert(wrappedKey('k2', 'crk-v1', 2));
      expect(await rk.inProgress()).toBe(false);
      expect(await rk.beginRotation('crk-v2')).toMatchObject({ version: 2, label: 'crk-v2', state: 'active' });
      await expect(rk.beginRotation('crk-v1')).rejects.toThrow(/already used/);
      expect(await rk.inProgress()).toBe(true);
      expect((await rk.versions()).map((v) => [v.label, v.state, v.wrappedKeys])).toEqual([['crk-v1', 'retiring', 2], ['crk-v2', 'active', 0]]);

      const [first, second] = await rk.pending('crk-v2', 10);
      expect([first!.id, second!.id]).toEqual(['k1', 'k2']);
      expect((await rk.pending('crk-v2', 10, 'k1')).map((r) => r.id)).toEqual(['k2']);
      expect(await rk.swap(first!, { rootKeyLabel: 'crk-v2', mechanism: 'test', blob: Buffer.alloc(40, 9) })).toBe(true);
      expect(await rk.swap(first!, { rootKeyLabel: 'crk-v2', mechanism: 'test', blob: Buffer.alloc(40, 8) })).toBe(false); // changed meanwhile
      expect(await rk.tryRetire('crk-v1')).toBe(false); // k2 still depends on it
      await s.backend.objects.update('k2', { state: State.Destroyed, eraseKey: true });
      expect(await rk.swap(second!, { rootKeyLabel: 'crk-v2', mechanism: 'test', blob: Buffer.alloc(40, 7) })).toBe(false); // destroyed meanwhile
      expect(await rk.tryRetire('crk-v1')).toBe(true);
      expect(await rk.inProgress()).toBe(false);
      expect(await rk.wrappedCounts()).toEqual(new Map([['crk-v2', 1]]));
      expect(Buffer.from((await s.backend.objects.get('k1'))!.wrapped!.blob)).toEqual(Buffer.alloc(40, 9));

      // The last line of defence: nothing is (re)wrapped under a retired root key.
      await expect(s.backend.objects.insert(wrappedKey('k3', 'crk-v1'))).rejects.toThrow(/root key is retired/);
      await expect(s.backend.objects.restore({ ...(await s.backend.objects.get('k1'))!, wrapped: { rootKeyLabel: 'crk-v1', mechanism: 'test', blob: Buffer.alloc(40, 1) } })).rejects.toThrow(
        /root key is retired/,
      );
    });

    it('names the new active version as soon as a rotation begins, through this connection or another', async () => {
      const rk = s.backend.rootKeys;
      await rk.ensureInitialized('crk-v1');
      expect(await rk.activeLabel()).toBe('crk-v1');
      await rk.beginRotation('crk-v2');
      expect(await rk.activeLabel()).toBe('crk-v2');
      // Another node (or the CLI) finishes this rotation and begins the next.
      const other = await s.reopen();
      expect(await other.rootKeys.activeLabel()).toBe('crk-v2');
      expect(await other.rootKeys.tryRetire('crk-v1')).toBe(true);
      await other.rootKeys.beginRotation('crk-v3');
      expect(await rk.activeLabel()).toBe('crk-v3');
      expect(await other.rootKeys.activeLabel()).toBe('crk-v3');
    });

    it('initialises once when several nodes start on an empty store together', async () => {
      const others = await Promise.all([s.reopen(), s.reopen(), s.reopen()]);
      await Promise.all([s.backend, ...others].map((b, i) => b.rootKeys.ensureInitialized(`crk-node${i}`)));
      expect((await s.backend.rootKeys.versions()).map((v) => v.version)).toEqual([1]);
    });
  });

  describe('operator holds and the key inventory', () => {
    it('holds a key for every connection, lists it as held, and releases only on undo', async () => {
      await s.backend.rootKeys.ensureInitialized('crk');
      await s.backend.objects.insert({ ...wrappedKey('a', 'crk'), tenant: 't1' });
      await s.backend.objects.insert({ ...wrappedKey('b', 'crk'), state: State.PreActive });
      const other = await s.reopen();
      await expect(s.backend.holds.hold('missing', 'key-compromise', undefined)).rejects.toThrow(/no key with id missing/);
      expect(await s.backend.holds.hold('a', 'key-compromise', 'leaked', new Date('2026-01-31T12:00:00Z'))).toBe(true);
      expect(await s.backend.holds.hold('a', 'superseded', undefined)).toBe(false);
      expect(await other.holds.get('a')).toEqual({ objectId: 'a', heldAt: new Date('2026-01-31T12:00:00Z'), reason: 'key-compromise', message: 'leaked' });
      expect(await other.holds.get('b')).toBeUndefined();

      const rows = await other.inventory.list();
      expect(rows.map((r) => [r.id, r.tenant, r.held, r.hasKeyMaterial, r.rootKeyLabel])).toEqual([
        ['a', 't1', true, true, 'crk'],
        ['b', 'default', false, true, 'crk'],
      ]);
      expect((await other.inventory.list({ states: [State.PreActive] })).map((r) => r.id)).toEqual(['b']);
      expect((await other.inventory.list({ tenant: 't1' })).map((r) => r.id)).toEqual(['a']);
      expect((await other.inventory.list({ states: [] })).map((r) => r.id)).toEqual([]);
      await s.backend.objects.update('b', { state: State.Destroyed, eraseKey: true });
      expect(await other.inventory.get('b')).toMatchObject({ hasKeyMaterial: false, state: State.Destroyed });
      expect(await other.inventory.get('nope')).toBeUndefined();

      await s.backend.holds.release('a');
      expect(await other.holds.get('a')).toBeUndefined();
    });

    it('gives each object with its hold, as another connection just placed or released it', async () => {
      // A Get checks the hold that comes with the object; the serving connection may have read the
      // object (SQLite: kept it in memory) before the operator's command placed the hold.
      await s.backend.rootKeys.ensureInitialized('crk');
      await s.backend.objects.insert(wrappedKey('a', 'crk'));
      await s.backend.objects.insert(wrappedKey('b', 'crk'));
      const operator = await s.reopen();
      const serving = s.backend.objects;
      expect((await serving.get('a'))!.heldByOperator).toBe(false);
      expect((await serving.get('a'))!.heldByOperator).toBe(false);
      await operator.holds.hold('a', 'key-compromise', undefined);
      expect((await serving.get('a'))!.heldByOperator).toBe(true);
      expect((await serving.get('b'))!.heldByOperator).toBe(false);
      await operator.holds.release('a');
      expect((await serving.get('a'))!.heldByOperator).toBe(false);
    });
  });

  describe('cluster membership', () => {
    it('registers nodes, follows their heartbeats, marks a clean stop, and forgets on request', async () => {
      const c = s.backend.cluster;
      await c.register({ nodeId: 'node-a', host: 'h1', listen: '127.0.0.1:5696', version: '1.0.0', pid: 11 });
      await c.register({ nodeId: 'node-b', host: 'h2', listen: '127.0.0.1:5697', version: '1.0.0', pid: 12 });
      expect(await c.heartbeat('node-a')).toBe(true);
      expect(await c.heartbeat('node-x')).toBe(false);
      let nodes = await (await s.reopen()).cluster.list();
      expect(nodes.map((n) => [n.nodeId, n.host, n.listen, nodeHealth(n)])).toEqual([
        ['node-a', 'h1', '127.0.0.1:5696', 'healthy'],
        ['node-b', 'h2', '127.0.0.1:5697', 'healthy'],
      ]);
      expect(nodes.every((n) => n.heartbeatAgeMs >= 0 && n.heartbeatAgeMs < HEARTBEAT_STALE_MS)).toBe(true);
      await c.stopped('node-b');
      nodes = await c.list();
      expect(nodeHealth(nodes[1]!)).toBe('stopped');
      // A node that comes back takes its row back: started again, not stopped.
      await c.register({ nodeId: 'node-b', host: 'h2', listen: '127.0.0.1:5698', version: '1.0.1', pid: 13 });
      nodes = await c.list();
      expect(nodes[1]).toMatchObject({ listen: '127.0.0.1:5698', version: '1.0.1', pid: 13, stoppedAt: undefined });
      expect(nodeHealth({ ...nodes[0]!, heartbeatAgeMs: HEARTBEAT_STALE_MS + 1 })).toBe('not-responding');
      expect(await c.forget('node-a')).toBe(true);
      expect(await c.forget('node-a')).toBe(false);
      expect((await c.list()).map((n) => n.nodeId)).toEqual(['node-b']);
    });
  });

  it('describes its database', async () => {
    const st = await s.backend.status();
    expect(st.kind).toBe(kind.name);
    expect(st.schemaVersion).toBe(8);
    expect(st.server).toMatch(kind.name === 'sqlite' ? /^SQLite \d/ : /^PostgreSQL \d/);
    expect(st.durability[kind.name === 'sqlite' ? 'synchronous' : 'synchronous_commit']).toMatch(/^(full|on|remote_apply)$/);
  });
}

for (const make of [sqliteKind, postgresKind]) {
  const kind = make();
  describe(kind.name, () => {
    beforeAll(() => kind.setup(), 120_000);
    afterAll(() => kind.teardown());
    contract(kind);
  });
}
