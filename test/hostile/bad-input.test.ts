// Bad input against a running kmipd over real mutual TLS: every kind of malformed request the
// issue lists gets the answer the spec names (or the connection is closed), and after each one a
// new client is served and every stored key comes back byte for byte.
import fc from 'fast-check';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResultStatus } from '../../src/kmip/registry/generated.js';
import { DEFAULT_LIMITS } from '../../src/server/limits.js';
import { initAndEnroll, startServe, tempDir, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { Corpus } from './corpus.js';
import { reportFigures } from './figures.js';
import { discoverItem, encodeRequest, expectServedAndIntact, RawConnection, rssBytes, seedKeys, V12, type KeySet, type Reply } from './helpers.js';
import { bigIntegerRequest, malformedCases, type MalformedCase } from './malformed.js';
import { fixTopLength, hostileRequests, seedRequests } from './mutate.js';
import { newTally } from './tally.js';

const LIMITS = { maxMessageSize: DEFAULT_LIMITS.maxMessageSize, maxBatchItems: 16, maxAttributes: 32 };
const tally = newTally();

let dir: ReturnType<typeof tempDir>;
let bundle: ClientBundle;
let server: ServerProcess;
let keys: KeySet;

beforeAll(async () => {
  dir = tempDir();
  bundle = await initAndEnroll(dir.path, 'good');
  server = await startServe(dir.path, ['--max-batch-items', String(LIMITS.maxBatchItems), '--max-attributes', String(LIMITS.maxAttributes)]);
  keys = await seedKeys(server.port, bundle, 6);
});

afterAll(async () => {
  if (server && server.proc.exitCode !== null) tally.crashes += 1;
  const code = await server?.stop();
  reportFigures('bad-input', tally);
  dir?.remove();
  expect(code).toBe(0);
});

/** Send one hostile message on a fresh connection and check the server did what `c` expects. */
async function expectHandled(c: MalformedCase): Promise<void> {
  tally.malformedInputs += 1;
  const conn = await RawConnection.open(server.port, bundle);
  try {
    conn.write(c.bytes);
    const reply = await conn.next();
    if (reply === 'hung') tally.hangs += 1;
    if (c.expected.kind === 'close') {
      expect(reply).toBe('closed');
      return;
    }
    expect(reply, 'expected an answer').not.toBeTypeOf('string');
    const r = reply as Exclude<Reply, string>;
    expect(r.items).toHaveLength(1);
    expect(r.items[0]!.status).toBe(ResultStatus.OperationFailed);
    expect(c.expected.reasons).toContain(r.items[0]!.reason);
    if (c.expected.thenClose) expect(await conn.waitClosed(5000)).toBe(true);
    else expect(await conn.stillServes()).toBe(true);
  } finally {
    conn.close();
  }
}

async function checkIntact(): Promise<void> {
  expect(server.proc.exitCode, 'the server process exited').toBeNull();
  await expectServedAndIntact(server.port, bundle, keys, tally);
}

describe('malformed requests over TLS', () => {
  it.each(malformedCases(LIMITS).map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await expectHandled(c);
    await checkIntact();
  });

  it('stores nothing from a Create refused for too many attributes', async () => {
    const db = new Database(join(dir.path, 'kmipd.db'), { readonly: true });
    const count = () => (db.prepare('SELECT count(*) AS n FROM objects').get() as { n: number }).n;
    const before = count();
    for (const c of malformedCases(LIMITS).filter((m) => m.name.startsWith('Create with'))) await expectHandled(c);
    expect(count()).toBe(before);
    db.close();
    await checkIntact();
  });
});

describe('floods', () => {
  it('refuses 200 connections announcing 4 GiB messages before buffering them', async () => {
    const before = rssBytes(server.proc.pid!);
    const huge = Buffer.from('42007801fffffff8', 'hex');
    for (let round = 0; round < 25; round++) {
      const conns = await Promise.all(Array.from({ length: 8 }, () => RawConnection.open(server.port, bundle)));
      for (const c of conns) c.write(huge);
      const replies = await Promise.all(conns.map((c) => c.next(10_000)));
      tally.malformedInputs += conns.length;
      tally.hangs += replies.filter((r) => r === 'hung').length;
      expect(replies.every((r) => r === 'closed')).toBe(true);
      for (const c of conns) c.close();
    }
    // Buffering even one announced message would take 4 GiB.
    expect(rssBytes(server.proc.pid!) - before).toBeLessThan(64 * 1024 * 1024);
    await checkIntact();
  });

  it('keeps answering others while clients send 256 KiB Big Integers', async () => {
    const big = bigIntegerRequest(LIMITS.maxMessageSize - 128);
    const conns = await Promise.all(Array.from({ length: 4 }, () => RawConnection.open(server.port, bundle)));
    for (const c of conns) for (let i = 0; i < 2; i++) c.write(big);
    tally.malformedInputs += 8;
    // Decoding one took 3.8 s of event-loop time when Big Integers were parsed word by word.
    const other = await RawConnection.open(server.port, bundle);
    const started = performance.now();
    expect(await other.stillServes(20_000)).toBe(true);
    expect(performance.now() - started).toBeLessThan(5000);
    for (const c of conns) {
      const r = await c.next();
      expect(typeof r === 'string' ? r : r.items[0]!.status).toBe(ResultStatus.OperationFailed);
      c.close();
    }
    other.close();
    await checkIntact();
  });

  it('stops reading from a client that pipelines 16 MiB of requests without reading answers', async () => {
    const before = rssBytes(server.proc.pid!);
    const flood = await RawConnection.open(server.port, bundle);
    const one = encodeRequest(V12, [discoverItem()]);
    const burst = Buffer.concat(Array.from({ length: 2048 }, () => one));
    // Written without waiting: what the server does not read stays in TCP and client buffers.
    for (let i = 0; i < 100; i++) flood.write(burst);
    tally.malformedInputs += 1;
    await new Promise((r) => setTimeout(r, 1500));
    expect(rssBytes(server.proc.pid!) - before).toBeLessThan(64 * 1024 * 1024);
    await checkIntact();
    // The flooding client is answered in order once it reads.
    for (let i = 0; i < 20; i++) {
      const r = await flood.next();
      expect(typeof r === 'string' ? r : r.items[0]!.status).toBe(ResultStatus.Success);
    }
    flood.close();
  });
});

describe('fuzzing over TLS', () => {
  it('answers or closes on every corpus case and 400 new mutated, random and type-confused requests', async () => {
    const seeds = seedRequests([...keys.keys()][0]).map((s) => s.item);
    const corpus = [...new Corpus('decoder.jsonl').bytes(), ...new Corpus('dispatcher.jsonl').bytes()].map(fixTopLength);
    const inputs = [...fc.sample(hostileRequests(seeds).map(fixTopLength), 400), ...corpus];
    const total = inputs.length;
    const counts = { answered: 0, closed: 0 };
    const worker = async () => {
      for (let b = inputs.pop(); b !== undefined; b = inputs.pop()) {
        tally.malformedInputs += 1;
        const conn = await RawConnection.open(server.port, bundle);
        conn.write(b);
        const reply = await conn.next(10_000);
        conn.close();
        if (reply === 'hung') {
          // A message cut short waits for the read timeout; anything else must be answered at once.
          tally.hangs += 1;
          throw new Error(`no reply to ${b.toString('hex')}`);
        }
        counts[reply === 'closed' ? 'closed' : 'answered'] += 1;
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    console.log(`wire fuzz: ${counts.answered} answered, ${counts.closed} closed`);
    expect(counts.answered + counts.closed).toBe(total);
    await checkIntact();
  });
});
