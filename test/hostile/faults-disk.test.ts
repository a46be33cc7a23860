// Storage faults under a running kmipd: the disk holding the database fills up, and another
// process holds the database locked. Create fails with a clear KMIP error, nothing stored is
// touched, and Create works again once the fault is gone, without a restart.
//
// Disk full is real, not simulated: the server runs in a private mount namespace (`unshare -rm`,
// which needs no root where unprivileged user namespaces are enabled) with its whole data folder
// (database, audit log, SoftHSM token) on a small tmpfs of its own; the test fills that tmpfs
// through /proc/PID/root and frees it again. Nothing outside the namespace sees the tmpfs, and it
// vanishes with the server.
import Database from 'better-sqlite3';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResultReason, ResultStatus } from '../../src/kmip/registry/generated.js';
import { initAndEnroll, ROOT, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient, parseResponse } from '../helpers/kmip-client.js';
import { decodeTtlv } from '../../src/ttlv/index.js';
import { reportFigures } from './figures.js';
import { createItem, discoverItem, encodeRequest, expectServedAndIntact, getItem, keyMaterial, parseCreateGet, seedKeys, V12, type KeySet } from './helpers.js';
import { newTally } from './tally.js';

const tally = newTally();
afterAll(() => reportFigures('faults-disk', tally));

/** Create+Get on a new connection; generous timeout, since a locked database stalls the server. */
async function createOnce(port: number, bundle: ClientBundle) {
  const k = await KmipTestClient.connect(port, bundle);
  try {
    k.sendRaw(encodeRequest(V12, [createItem(V12), getItem()]));
    const raw = await k.next(60_000);
    if (!raw) throw new Error('server closed the connection');
    return parseResponse(decodeTtlv(raw));
  } finally {
    k.close();
  }
}

describe('disk full', () => {
  let dir: ReturnType<typeof tempDir>;
  let data: string;
  let bundle: ClientBundle;
  let server: ServerProcess;
  let keys: KeySet;
  let volume: string; // the data folder on its tmpfs, as the test process sees it
  let filler: string;

  beforeAll(async () => {
    const probe = spawnSync('unshare', ['-rm', 'true']);
    if (probe.status !== 0) {
      throw new Error(`this test needs \`unshare -rm\` (util-linux, user namespaces): ${probe.stderr?.toString() ?? probe.error?.message}`);
    }
    dir = tempDir();
    data = join(dir.path, 'data');
    bundle = await initAndEnroll(data, 'good');
    const staged = join(dir.path, 'staged');
    cpSync(data, staged, { recursive: true });
    // Inside the namespace: a 16 MiB tmpfs over the data folder (paths in kmipd.json and the
    // SoftHSM configuration stay valid), the folder's content copied onto it, then serve.
    const inNamespace = 'mount -t tmpfs -o size=16m,mode=0700 kmipd-test "$1" && cp -a "$2/." "$1/" && shift 2 && exec "$@"';
    server = await startServe(data, [], ['unshare', '-rm', 'sh', '-c', inNamespace, 'sh', data, staged]);
    volume = `/proc/${server.proc.pid}/root${data}`;
    filler = join(volume, 'filler');
    keys = await seedKeys(server.port, bundle, 6);
  });

  afterAll(async () => {
    const code = await server?.stop();
    dir?.remove();
    expect(code).toBe(0);
  });

  /** Fill the tmpfs to the last byte. */
  function fill(): number {
    const fd = openSync(filler, 'w');
    let written = 0;
    try {
      for (const size of [64 * 1024, 512, 1]) {
        const chunk = Buffer.alloc(size, 0xee);
        try {
          for (;;) written += writeSync(fd, chunk);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
        }
      }
    } finally {
      closeSync(fd);
    }
    return written;
  }

  it('fails Create with "key store is full", keeps serving and every stored key, and recovers once space is back', async () => {
    expect(fill()).toBeGreaterThan(1024 * 1024);
    let failed = 0;
    for (let i = 0; i < 8; i++) {
      // Each on a new connection: admission, the request and its audit line all meet the full disk.
      const r = await createOnce(server.port, bundle);
      tally.malformedInputs += 1;
      if (r.items[0]!.status !== ResultStatus.Success) {
        failed += 1;
        expect(r.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.GeneralFailure });
        expect(r.items[0]!.message).toMatch(/key store is full/);
      } else {
        // SQLite may still fit a row into pages it already has; an acknowledged key must then be real.
        const made = parseCreateGet(r)!;
        keys.set(made.id, made.material);
      }
    }
    expect(failed).toBeGreaterThan(0);
    expect(server.proc.exitCode).toBeNull();
    await expectServedAndIntact(server.port, bundle, keys, tally); // reads work on a full disk
    expect(server.logs.some((l) => l.includes('cannot write the audit log'))).toBe(true);

    rmSync(filler);
    const again = parseCreateGet(await createOnce(server.port, bundle));
    expect(again).toBeDefined();
    keys.set(again!.id, again!.material);
    await expectServedAndIntact(server.port, bundle, keys, tally);
    // The audit lines held back while the disk was full reached the file once it had room.
    const audit = readFileSync(join(volume, 'audit.log'), 'utf8');
    expect(audit).toContain(again!.id);
    expect(audit.split('\n').filter((l) => l.includes('"result":"OperationFailed"')).length).toBeGreaterThanOrEqual(failed);
    // SQLite resolves /proc/PID/root to our own root, so check a copy of the files instead.
    const copy = join(dir.path, 'db-copy');
    mkdirSync(copy);
    for (const f of ['kmipd.db', 'kmipd.db-wal']) if (existsSync(join(volume, f))) copyFileSync(join(volume, f), join(copy, f));
    const db = new Database(join(copy, 'kmipd.db'), { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  });
});

describe('database locked by another process', () => {
  let dir: ReturnType<typeof tempDir>;
  let bundle: ClientBundle;
  let server: ServerProcess;
  let keys: KeySet;
  let locker: ChildProcess | undefined;

  beforeAll(async () => {
    dir = tempDir();
    bundle = await initAndEnroll(dir.path, 'good');
    server = await startServe(dir.path);
    keys = await seedKeys(server.port, bundle, 6);
  });

  afterAll(async () => {
    locker?.kill('SIGKILL');
    const code = await server?.stop();
    dir?.remove();
    expect(code).toBe(0);
  });

  /** Another process takes the write lock (BEGIN EXCLUSIVE) and holds it until told to commit. */
  async function lockDatabase(): Promise<ChildProcess> {
    const script = `
      const Database = require('better-sqlite3');
      const db = new Database(process.argv[1]);
      db.exec('BEGIN EXCLUSIVE');
      process.stdout.write('locked\\n');
      process.stdin.once('data', () => { db.exec('COMMIT'); db.close(); process.stdout.write('released\\n'); process.exit(0); });
    `;
    const p = spawn(process.execPath, ['-e', script, join(dir.path, 'kmipd.db')], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      p.stdout!.once('data', (d: Buffer) => (String(d).includes('locked') ? resolve() : reject(new Error(String(d)))));
      p.once('exit', (code) => reject(new Error(`locker exited with ${code}`)));
    });
    return p;
  }

  it('fails Create with "locked", serves reads meanwhile, and recovers once the lock is released', async () => {
    const k = await KmipTestClient.connect(server.port, bundle); // admitted before the lock
    const [someId, someKey] = [...keys.entries()][0]!;
    try {
      locker = await lockDatabase();
      let started = performance.now();
      k.sendRaw(encodeRequest(V12, [createItem(V12)]));
      const r = parseResponse(decodeTtlv((await k.next(60_000))!));
      const refusedAfter = performance.now() - started;
      tally.malformedInputs += 1;
      expect(r.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.GeneralFailure });
      expect(r.items[0]!.message).toMatch(/locked/);
      // WAL readers are not blocked by the writer's lock.
      k.sendRaw(encodeRequest(V12, [getItem(someId)]));
      const g = parseResponse(decodeTtlv((await k.next(60_000))!));
      expect(g.items[0]!.status).toBe(ResultStatus.Success);
      expect(keyMaterial(g.items[0]!.payload).equals(someKey)).toBe(true);
      // A new connection meanwhile: admitted and answered (its last-seen update waits for the lock).
      started = performance.now();
      const other = await KmipTestClient.connect(server.port, bundle);
      other.sendRaw(encodeRequest(V12, [discoverItem()]));
      expect(await other.next(60_000)).toBeDefined();
      const newConnection = performance.now() - started;
      other.close();
      console.log(`database locked: Create refused after ${Math.round(refusedAfter)} ms; a new connection answered after ${Math.round(newConnection)} ms`);
      expect(server.proc.exitCode).toBeNull();
    } finally {
      k.close();
    }

    locker.stdin!.write('go\n');
    await new Promise((resolve) => locker!.once('exit', resolve));
    locker = undefined;
    const again = parseCreateGet(await createOnce(server.port, bundle));
    expect(again).toBeDefined();
    keys.set(again!.id, again!.material);
    await expectServedAndIntact(server.port, bundle, keys, tally);
  });

  it('while a Create waits for the lock, every other connection is answered (the wait does not pause the server)', async () => {
    const waiting = await KmipTestClient.connect(server.port, bundle);
    const reader = await KmipTestClient.connect(server.port, bundle);
    const [someId, someKey] = [...keys.entries()][0]!;
    try {
      locker = await lockDatabase();
      waiting.sendRaw(encodeRequest(V12, [createItem(V12)]));
      let createAnswered = false;
      const create = waiting.next(60_000).then((raw) => {
        createAnswered = true;
        return parseResponse(decodeTtlv(raw!));
      });
      // Answered while the Create still waits: a Get on an open connection, a new connection's
      // admission (its last-seen update waits too) and its first request.
      reader.sendRaw(encodeRequest(V12, [getItem(someId)]));
      const g = parseResponse(decodeTtlv((await reader.next(60_000))!));
      expect(keyMaterial(g.items[0]!.payload).equals(someKey)).toBe(true);
      const fresh = await KmipTestClient.connect(server.port, bundle);
      fresh.sendRaw(encodeRequest(V12, [discoverItem()]));
      expect(await fresh.next(60_000)).toBeDefined();
      fresh.close();
      expect(createAnswered).toBe(false);
      // Released before the wait runs out: the waiting Create goes through.
      locker.stdin!.write('go\n');
      await new Promise((resolve) => locker!.once('exit', resolve));
      locker = undefined;
      const r = await create;
      expect(r.items[0]!.status).toBe(ResultStatus.Success);
    } finally {
      waiting.close();
      reader.close();
    }
    await expectServedAndIntact(server.port, bundle, keys, tally);
  });
});
