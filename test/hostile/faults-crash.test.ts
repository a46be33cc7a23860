// Process faults: `kill -9` in the middle of a burst of Creates, and SIGTERM under load. Every
// Create a client saw acknowledged is retrievable byte for byte afterwards, no stored object is
// half-written, and SIGTERM lets requests already read finish before exiting 0.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResultStatus, Tag } from '../../src/kmip/registry/generated.js';
import { initAndEnroll, startServe, tempDir, type ClientBundle } from '../helpers/kmipd.js';
import { KmipTestClient, parseResponse } from '../helpers/kmip-client.js';
import { decodeTtlv } from '../../src/ttlv/index.js';
import { reportFigures } from './figures.js';
import { createItem, encodeRequest, expectServedAndIntact, getItem, lostKeys, parseCreateGet, V12, V21, type KeySet } from './helpers.js';
import { newTally } from './tally.js';

const tally = newTally();
let dir: ReturnType<typeof tempDir>;
let bundle: ClientBundle;
const acknowledged: KeySet = new Map();

beforeAll(async () => {
  dir = tempDir();
  bundle = await initAndEnroll(dir.path, 'good');
});

afterAll(() => {
  reportFigures('faults-crash', tally);
  dir?.remove();
});

/** Clients creating keys as fast as they are answered until their connection drops; returns when all stopped. */
function burst(port: number, clients: number, into: KeySet): { stopped: Promise<void>; count: () => number } {
  let n = 0;
  const one = async (i: number) => {
    const k = await KmipTestClient.connect(port, bundle);
    const v = i % 2 ? V21 : V12;
    try {
      for (;;) {
        // Create and Get in one batch: the answer acknowledges the key and shows its bytes.
        const made = parseCreateGet(await k.call(v, [createItem(v, 256), getItem()]));
        expect(made, 'a Create failed while the server was up').toBeDefined();
        into.set(made!.id, made!.material);
        n += 1;
      }
    } catch (e) {
      if (!/closed the connection|ECONNRESET|socket hang up/.test(String(e))) throw e;
    } finally {
      k.close();
    }
  };
  return { stopped: Promise.all(Array.from({ length: clients }, (_, i) => one(i))).then(() => undefined), count: () => n };
}

async function until(cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every stored object must be whole: Get answers its key for each row, and SQLite finds no damage. */
async function halfWritten(port: number): Promise<string[]> {
  const db = new Database(join(dir.path, 'kmipd.db'), { readonly: true });
  expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  const ids = (db.prepare('SELECT id FROM objects').all() as { id: string }[]).map((r) => r.id);
  db.close();
  const k = await KmipTestClient.connect(port, bundle);
  const broken: string[] = [];
  try {
    for (let i = 0; i < ids.length; i += 8) {
      const chunk = ids.slice(i, i + 8);
      const r = await k.call(V12, chunk.map((id) => getItem(id)), []);
      chunk.forEach((id, j) => {
        const item = r.items[j];
        if (item?.status !== ResultStatus.Success || !item.payload.has(Tag.SymmetricKey)) broken.push(id);
      });
    }
  } finally {
    k.close();
  }
  return broken;
}

describe('kill -9 during a burst of Creates', () => {
  it.each([1, 2])('round %i: every acknowledged key survives, none is half-written', async (round) => {
    const server = await startServe(dir.path);
    const before = acknowledged.size;
    const b = burst(server.port, 4, acknowledged);
    await until(() => b.count() >= 15 * round);
    server.proc.kill('SIGKILL');
    await b.stopped;
    expect(await server.stop()).toBeNull(); // killed, not exited
    expect(acknowledged.size).toBeGreaterThan(before);

    const restarted = await startServe(dir.path);
    try {
      const lost = await lostKeys(restarted.port, bundle, acknowledged);
      tally.keysLost += lost.length;
      tally.keysAcknowledged = acknowledged.size;
      expect(lost).toEqual([]);
      expect(await halfWritten(restarted.port)).toEqual([]);
    } finally {
      expect(await restarted.stop()).toBe(0);
    }
  });
});

describe('SIGTERM under load', () => {
  it('answers every request already read, then exits 0; all acknowledged keys survive', async () => {
    const server = await startServe(dir.path);
    const load = burst(server.port, 4, acknowledged);
    // Two more clients with four requests each in flight at the moment of the signal.
    const pipelined = await Promise.all([0, 1].map(() => KmipTestClient.connect(server.port, bundle)));
    await until(() => load.count() >= 20);
    for (const k of pipelined) for (let i = 0; i < 4; i++) k.sendRaw(encodeRequest(V12, [createItem(V12, 128), getItem()]));
    const first = await Promise.all(pipelined.map((k) => k.next()));
    const exit = server.stop('SIGTERM');
    const rest = await Promise.all(pipelined.map(async (k) => [await k.next(), await k.next(), await k.next()]));
    for (const raw of [...first, ...rest.flat()]) {
      expect(raw, 'a request read before the signal was not answered').toBeDefined();
      const made = parseCreateGet(parseResponse(decodeTtlv(raw!)));
      expect(made).toBeDefined();
      acknowledged.set(made!.id, made!.material);
    }
    await load.stopped; // the load clients see their connections end after their last answer
    expect(await exit).toBe(0);
    for (const k of pipelined) k.close();

    const restarted = await startServe(dir.path);
    try {
      tally.keysAcknowledged = acknowledged.size;
      await expectServedAndIntact(restarted.port, bundle, acknowledged, tally);
      expect(await halfWritten(restarted.port)).toEqual([]);
    } finally {
      expect(await restarted.stop()).toBe(0);
    }
  });
});
