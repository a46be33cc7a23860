// A KMS cluster as vCenter uses it: two kmipd nodes (real processes, real TLS on loopback) sharing
// one PostgreSQL database and one HSM token. A key created through one node is served by the
// other at once; trust, revocations and operator holds apply on both at once; killing a node
// (SIGKILL) in the middle of a create/get load loses no acknowledged key and does not stop the
// other; the killed node comes back and rejoins; a database that refuses the nodes lets no
// client in (fail closed) until it is back. PostgreSQL must be installed (scripts/setup.sh
// --test installs it): without it these tests fail, they do not skip.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { enumeration, structure, textString } from '../../src/ttlv/index.js';
import { Operation, ResultReason, ResultStatus, RevocationReasonCode, State, Tag } from '../../src/kmip/registry/generated.js';
import { kmipd, startServe, tempDir, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient } from '../helpers/kmip-client.js';
import { Fields } from '../../src/kmip/fields.js';
import { startPostgres, TEST_PG_PASSWORD, TEST_PG_USER, type TestPostgres } from '../helpers/postgres.js';
import { createKey, createRequest, eventually, getKey, getKeyBytes, kmipdFails, probe, V12, V21 } from '../operator/helpers.js';
import { create, nameAttr } from '../helpers/kmip-requests.js';
import { clusterStatus, initTwoNodes, registerKey, type ClusterFolders } from './helpers.js';

let pg: TestPostgres;
let dir: ReturnType<typeof tempDir>;
let url: string;
let nodes: ClusterFolders;
let a: ServerProcess;
let b: ServerProcess;

beforeAll(async () => {
  pg = await startPostgres();
  dir = tempDir('kmipd-cluster-');
  url = await pg.createDatabase('kmipd_cluster');
  nodes = await initTwoNodes(dir.path, url);
  [a, b] = await Promise.all([startServe(nodes.a), startServe(nodes.b)]);
}, 180_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await pg?.stop();
  dir?.remove();
});

/** The State attribute as node `k` reports it (KMIP 1.2 Get Attributes), or undefined if it fails. */
const stateOf = async (k: KmipTestClient, id: string): Promise<number | undefined> => {
  const r = await k.call(V12, [{ operation: Operation.GetAttributes, payload: [textString(Tag.UniqueIdentifier, id), textString(Tag.AttributeName, 'State')] }]);
  const item = r.items[0]!;
  if (item.status !== ResultStatus.Success) return undefined;
  return Fields.of(item.payload.structs(Tag.Attribute)[0]).enumeration(Tag.AttributeValue);
};

describe('set-up', () => {
  it('records the PostgreSQL store in kmipd.json without any password, and both nodes run on it', async () => {
    for (const data of [nodes.a, nodes.b]) {
      const raw = readFileSync(join(data, 'kmipd.json'), 'utf8');
      expect(JSON.parse(raw).store.url).toBe(url);
      expect(raw).not.toContain(TEST_PG_PASSWORD);
    }
    expect(a.logs.join('\n')).not.toContain(TEST_PG_PASSWORD);
    // The database sees both nodes' connections.
    const apps = await pg.query<{ application_name: string }>('kmipd_cluster', "SELECT DISTINCT application_name FROM pg_stat_activity WHERE application_name LIKE 'kmipd %'");
    expect(apps.length).toBeGreaterThanOrEqual(2);
  });

  it('accepts a password in --store for init, and still records none', async () => {
    const other = join(dir.path, 'node-c');
    const withPassword = url.replace(`${TEST_PG_USER}@`, `${TEST_PG_USER}:${TEST_PG_PASSWORD}@`);
    const saved = process.env['PGPASSWORD'];
    delete process.env['PGPASSWORD'];
    try {
      await kmipd('init', '--data', other, '--store', withPassword);
      expect(readFileSync(join(other, 'kmipd.json'), 'utf8')).not.toContain(TEST_PG_PASSWORD);
      // Without a password source the folder's commands say so instead of connecting.
      expect(await kmipdFails('client', 'list', '--data', other)).toMatch(/password/i);
    } finally {
      process.env['PGPASSWORD'] = saved;
    }
    expect(await kmipdFails('init', '--data', other, '--store', `sqlite:${join(dir.path, 'x.db')}`)).toMatch(/already uses the store/);
  });

  it('cluster status shows the database and both nodes healthy', async () => {
    const st = await clusterStatus(nodes.b);
    expect(st.database.reachable).toBe(true);
    expect(st.database.durability?.['synchronous_commit']).toBe('on');
    expect(st.nodes).toHaveLength(2);
    expect(st.nodes.map((n) => n.health)).toEqual(['healthy', 'healthy']);
    expect(st.nodes.map((n) => n.listen).sort()).toEqual([`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`].sort());
    const { stdout } = await kmipd('cluster', 'status', '--data', nodes.a);
    expect(stdout).toMatch(/reachable, PostgreSQL \d+/);
    expect(stdout).toMatch(/2 of 2 node\(s\) healthy/);
  });
});

describe('one store, two nodes', () => {
  let ka: KmipTestClient;
  let kb: KmipTestClient;
  beforeAll(async () => {
    ka = await KmipTestClient.connect(a.port, nodes.bundle);
    kb = await KmipTestClient.connect(b.port, nodes.bundle);
  });
  afterAll(() => [ka, kb].forEach((k) => k?.close()));

  it('serves a key created on A from B at once, byte for byte, with its attributes and state', async () => {
    for (let i = 0; i < 10; i++) {
      const id = await createKey(ka, `vm-kek-${i}`);
      // No pause: vCenter asks another node ~150 ms later; here it is the very next request.
      const fromB = await getKeyBytes(kb, id);
      expect(fromB.length).toBe(32);
      expect(fromB.equals(await getKeyBytes(ka, id))).toBe(true);
    }
    const id = await createKey(ka, 'moves-state');
    expect(await stateOf(kb, id)).toBe(State.PreActive);
    const act = await ka.call(V12, [{ operation: Operation.Activate, payload: [textString(Tag.UniqueIdentifier, id)] }]);
    expect(act.items[0]!.status).toBe(ResultStatus.Success);
    expect(await stateOf(kb, id)).toBe(State.Active);
    // Names are unique across the cluster, not per node.
    const dup = await kb.call(V21, [create(V21, [nameAttr('moves-state')])]);
    expect(dup.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.NonUniqueNameAttribute });
  });

  it('destroys a key through A, and B stops serving it at once', async () => {
    const id = await createKey(ka, 'short-lived');
    await getKeyBytes(kb, id);
    const revoke = { operation: Operation.Revoke, payload: [textString(Tag.UniqueIdentifier, id), structure(Tag.RevocationReason, [enumeration(Tag.RevocationReasonCode, RevocationReasonCode.CessationOfOperation)])] };
    const r = await ka.call(V12, [revoke, { operation: Operation.Destroy, payload: [textString(Tag.UniqueIdentifier, id)] }]);
    expect(r.items.map((i) => i.status)).toEqual([ResultStatus.Success, ResultStatus.Success]);
    const got = await getKey(kb, id);
    expect(Buffer.isBuffer(got)).toBe(false);
    expect(await stateOf(kb, id)).toBe(State.Destroyed);
  });

  it('an operator revocation through the CLI holds the key on every node at once', async () => {
    const id = await createKey(ka, 'held');
    await getKeyBytes(kb, id);
    await kmipd('keys', 'revoke', id, '--reason', 'key-compromise', '--data', nodes.a);
    expect(await getKey(kb, id)).toMatchObject({ reason: ResultReason.PermissionDenied });
    expect(await getKey(ka, id)).toMatchObject({ reason: ResultReason.PermissionDenied });
  });

  it('shares client trust: enrolled through B, admitted by A; revoked through A, refused by B at once', async () => {
    const out = join(dir.path, 'late-clients');
    await kmipd('client', 'enroll', 'esxi', '--data', nodes.b, '--out', out);
    const esxi = { cert: join(out, 'esxi.crt'), key: join(out, 'esxi.key'), ca: join(out, 'ca.crt') };
    expect(await probe(a.port, esxi)).toBe('served');
    const open = await KmipTestClient.connect(b.port, esxi);
    try {
      expect((await open.call(V12, [{ operation: Operation.DiscoverVersions, payload: [] }])).items[0]!.status).toBe(ResultStatus.Success);
      await kmipd('client', 'revoke', 'esxi', '--data', nodes.a, '--reason', 'host retired');
      // New connections, on either node, from the next handshake on.
      expect(await probe(b.port, esxi)).toBe('refused');
      expect(await probe(a.port, esxi)).toBe('refused');
      // An open connection on B is refused at its very next request (checked against the store).
      await expect(open.call(V12, [{ operation: Operation.DiscoverVersions, payload: [] }])).rejects.toThrow(/closed/);
    } finally {
      open.close();
    }
    expect(await probe(b.port, nodes.bundle)).toBe('served');
  });

  it('rotating the root key through the CLI applies to the next key wrapped by either node', async () => {
    const before = await createKey(kb, 'before-rotation');
    await kmipd('root', 'rotate', '--data', nodes.a);
    const after = await createKey(kb, 'after-rotation');
    const { stdout } = await kmipd('keys', 'show', after, '--data', nodes.b, '--json');
    expect(JSON.parse(stdout).rootKey).toBe('kmipd-crk-v2');
    expect((await getKeyBytes(ka, before)).length).toBe(32);
    expect((await getKeyBytes(ka, after)).equals(await getKeyBytes(kb, after))).toBe(true);
  });
});

interface Ack {
  readonly id: string;
  readonly node: 'A' | 'B';
  /** When the acknowledgement arrived (ms since the epoch). */
  readonly at: number;
  /** The key material: known for Register; for Create, what the node served right after (if it did before dying). */
  bytes: Buffer | undefined;
}

/** One client connection doing Create+Get and Register in turn until `until` says stop; every ack is recorded. */
async function loadWorker(port: number, node: 'A' | 'B', acks: Ack[], failures: string[], until: () => boolean): Promise<void> {
  let k: KmipTestClient;
  try {
    k = await KmipTestClient.connect(port, nodes.bundle);
  } catch (err) {
    failures.push(`${node}: connect: ${(err as Error).message}`);
    return;
  }
  try {
    for (let i = 0; i < 5000 && !until(); i++) {
      if (i % 2 === 0) {
        const r = await k.call(V12, [createRequest()]);
        const item = r.items[0]!;
        if (item.status !== ResultStatus.Success) throw new Error(`Create failed: ${item.message}`);
        const ack: Ack = { id: item.payload.requiredText(Tag.UniqueIdentifier), node, at: Date.now(), bytes: undefined };
        acks.push(ack);
        const got = await getKey(k, ack.id);
        if (!Buffer.isBuffer(got)) throw new Error(`Get failed: ${got.message}`);
        ack.bytes = got;
      } else {
        const { id, material } = await registerKey(k);
        acks.push({ id, node, at: Date.now(), bytes: material });
      }
    }
  } catch (err) {
    failures.push(`${node}: ${(err as Error).message}`);
  } finally {
    k.close();
  }
}

describe('losing a node', () => {
  it('SIGKILL of A during a create/get load: B keeps serving, every acknowledged key is on B byte for byte; A rejoins', async () => {
    const acks: Ack[] = [];
    const failures: string[] = [];
    let killedAt = 0;
    const loadStart = Date.now();
    // Bounded: at most ~4 s of load after the kill, at most 5000 requests per connection.
    const aDone = () => killedAt > 0;
    const bDone = () => killedAt > 0 && Date.now() - killedAt > 4000;
    const workers = [
      ...[1, 2, 3].map(() => loadWorker(a.port, 'A', acks, failures, aDone)),
      ...[1, 2].map(() => loadWorker(b.port, 'B', acks, failures, bDone)),
    ];
    // Kill A in the middle of the load, once it has acknowledged a fair number of keys.
    await eventually('load on A', () => acks.filter((x) => x.node === 'A').length >= 100 || undefined, 30_000);
    a.proc.kill('SIGKILL');
    killedAt = Date.now();
    await Promise.all(workers);
    const onA = acks.filter((x) => x.node === 'A');
    const onB = acks.filter((x) => x.node === 'B');
    const bAfterKill = onB.filter((x) => x.at > killedAt).length;
    const cutOff = failures.filter((f) => f.startsWith('A:')).length;

    // B never failed a request, not even while A died.
    expect(failures.filter((f) => f.startsWith('B:'))).toEqual([]);
    expect(bAfterKill).toBeGreaterThan(0);

    // Every acknowledged key, wherever it was created, is served by B with the same bytes.
    const kb = await KmipTestClient.connect(b.port, nodes.bundle);
    try {
      for (const ack of acks) {
        const got = await getKey(kb, ack.id);
        expect(Buffer.isBuffer(got), `key ${ack.id} acknowledged by ${ack.node}`).toBe(true);
        if (ack.bytes) expect((got as Buffer).equals(ack.bytes), `key ${ack.id} bytes`).toBe(true);
        else expect((got as Buffer).length).toBe(32);
      }
    } finally {
      kb.close();
    }
    console.log(
      `cluster failover: A acknowledged ${onA.length} keys (${onA.filter((x) => !x.bytes).length} without a Get) before SIGKILL ` +
        `${((killedAt - loadStart) / 1000).toFixed(1)} s into the load, ${cutOff} of its 3 connections cut mid-request; ` +
        `B acknowledged ${onB.length} (${bAfterKill} after the kill) without a failure; all ${acks.length} served by B byte for byte`,
    );

    // A is reported as not responding once it has missed its heartbeats; B stays healthy.
    await eventually(
      'A reported as not responding',
      async () => {
        const st = await clusterStatus(nodes.b);
        const byListen = new Map(st.nodes.map((n) => [n.listen, n.health]));
        return byListen.get(`127.0.0.1:${a.port}`) === 'not-responding' && byListen.get(`127.0.0.1:${b.port}`) === 'healthy' ? true : undefined;
      },
      20_000,
    );

    // A restarts on its folder and rejoins: same node id, healthy, and serves what B created meanwhile.
    a = await startServe(nodes.a);
    const st = await clusterStatus(nodes.a);
    expect(st.nodes).toHaveLength(2);
    expect(st.nodes.map((n) => n.health)).toEqual(['healthy', 'healthy']);
    expect(st.nodes.map((n) => n.listen)).toContain(`127.0.0.1:${a.port}`);
    const ka = await KmipTestClient.connect(a.port, nodes.bundle);
    try {
      for (const ack of onB.slice(-5)) expect((await getKeyBytes(ka, ack.id)).equals(ack.bytes!)).toBe(true);
    } finally {
      ka.close();
    }
  }, 120_000);

  it('a node that stops cleanly is reported as stopped, and comes back healthy', async () => {
    expect(await b.stop('SIGTERM')).toBe(0);
    const st = await clusterStatus(nodes.a);
    expect(st.nodes.find((n) => n.listen === `127.0.0.1:${b.port}`)?.health).toBe('stopped');
    // --store names the store for one run (here the same one kmipd.json records).
    b = await startServe(nodes.b, ['--store', url]);
    expect((await clusterStatus(nodes.a)).nodes.map((n) => n.health)).toEqual(['healthy', 'healthy']);
  }, 60_000);
});

describe('losing the database', () => {
  it('while PostgreSQL refuses the nodes, an open connection is closed at its next request and new ones are refused; once it is back, both serve every key again', async () => {
    const open = await KmipTestClient.connect(a.port, nodes.bundle);
    let id: string;
    let bytes: Buffer;
    try {
      id = await createKey(open, 'before-outage');
      bytes = await getKeyBytes(open, id);
      // The database stops taking kmipd's connections and drops the ones it has.
      await pg.query('postgres', 'ALTER DATABASE kmipd_cluster WITH ALLOW_CONNECTIONS false');
      await pg.query('postgres', "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'kmipd_cluster'");
      // A client's credential that cannot be read admits nobody: the next request closes the connection.
      await expect(open.call(V12, [{ operation: Operation.DiscoverVersions, payload: [] }])).rejects.toThrow(/closed/);
      expect(a.logs.some((l) => l.includes('client registry unavailable'))).toBe(true);
      expect(await probe(a.port, nodes.bundle)).toBe('refused');
      expect(await probe(b.port, nodes.bundle)).toBe('refused');
    } finally {
      open.close();
      await pg.query('postgres', 'ALTER DATABASE kmipd_cluster WITH ALLOW_CONNECTIONS true');
    }
    for (const node of [a, b]) {
      await eventually(`node on ${node.port} serving again`, async () => (await probe(node.port, nodes.bundle)) === 'served' || undefined);
      const k = await KmipTestClient.connect(node.port, nodes.bundle);
      try {
        expect(await eventually('the key served again', async () => getKeyBytes(k, id).catch(() => undefined))).toEqual(bytes);
      } finally {
        k.close();
      }
    }
  }, 90_000);
});
