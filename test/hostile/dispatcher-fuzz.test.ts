// Property-based fuzzing of the request dispatcher, in-process, over a real SQLite store and a
// real SoftHSM token: whatever the request, handle() resolves in bounded time with a decodable
// Response Message, never rejects, leaves no unhandled rejection, does not hit an internal error,
// keeps memory flat, and the keys created before the run come back byte for byte.
import fc from 'fast-check';
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeTtlv, encodeTtlv } from '../../src/ttlv/index.js';
import { Hsm, initSoftHsm } from '../../src/hsm/index.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { Dispatcher } from '../../src/operations/dispatch.js';
import type { ClientIdentity } from '../../src/operations/context.js';
import { Operation, ResultStatus, Tag } from '../../src/kmip/registry/generated.js';
import { loggingClassifier } from '../../src/server/error-classifier.js';
import { requestScreen } from '../../src/server/request-limits.js';
import { withOperatorHolds } from '../../src/server/operator-holds.js';
import { DEFAULT_LIMITS } from '../../src/server/limits.js';
import { parseResponse, requestMessage } from '../helpers/kmip-client.js';
import { tempDir } from '../helpers/kmipd.js';
import { Corpus } from './corpus.js';
import { reportFigures } from './figures.js';
import { createItem, getItem, keyMaterial, parseCreateGet, V12, V21, type KeySet } from './helpers.js';
import { malformedCases } from './malformed.js';
import { hostileRequests, seedRequests } from './mutate.js';
import { newTally } from './tally.js';

const HANG_MS = 10_000;
const tally = newTally();
const corpus = new Corpus('dispatcher.jsonl');
const problems: { kind: string; input: string; detail: string }[] = [];
const logged: { level: number; msg: string; err?: { message?: string } }[] = [];
let unhandled = 0;
const onUnhandled = () => {
  unhandled += 1;
};

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let dir: ReturnType<typeof tempDir>;
let hsm: Hsm;
let store: SqliteStore;
let dispatcher: Dispatcher;
const keys: KeySet = new Map();
let targetId = '';
// The identity the dispatcher sees; cast because the client registry may add fields to it.
const client = { name: 'fuzz', tenant: 'default', role: 'manager', commonName: 'fuzz', fingerprintSha256: 'ab'.repeat(32) } as unknown as ClientIdentity;

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  dir = tempDir('kmipd-dispatch-fuzz-');
  const setup = await initSoftHsm(join(dir.path, 'hsm'));
  hsm = await Hsm.open(setup.config);
  await hsm.ensureRootKey();
  store = new SqliteStore(join(dir.path, 'kmipd.db'));
  const log = pino({ level: 'warn' }, new Writable({ write: (chunk, _enc, done) => (logged.push(JSON.parse(String(chunk))), done()) }));
  const audit = pino({ level: 'silent' });
  dispatcher = new Dispatcher(
    { store, keys: withOperatorHolds(hsm), log, audit, server: { vendor: 'kmipd', version: 'fuzz' }, maxDepth: DEFAULT_LIMITS.maxDepth, screen: requestScreen({ maxBatchItems: 16, maxAttributes: 32 }) },
    loggingClassifier(log),
  );
  // Keys whose bytes we know, and one more that the seeds name (Get, Get Attributes, …).
  for (let i = 0; i < 6; i++) {
    const v = i % 2 ? V21 : V12;
    const made = parseCreateGet(await call(encodeTtlv(requestMessage(v, [createItem(v, 256), getItem()]))));
    keys.set(made!.id, made!.material);
  }
  targetId = parseCreateGet(await call(encodeTtlv(requestMessage(V12, [createItem(V12, 128), getItem()]))))!.id;
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  reportFigures('dispatcher-fuzz', tally);
  await store?.close();
  await hsm?.close();
  dir?.remove();
});

async function call(bytes: Uint8Array) {
  const r = await dispatcher.handle(Buffer.from(bytes), client);
  return parseResponse(decodeTtlv(r.response));
}

const KNOWN_OPERATIONS: ReadonlySet<number> = new Set(Object.values(Operation));
const opLabel = (op: number | undefined) => (op === undefined ? '-' : KNOWN_OPERATIONS.has(op) ? String(op) : 'unknown');

/** One hostile request through the dispatcher, with every check; returns false on a problem. */
async function dispatchChecked(bytes: Buffer, offer = true): Promise<boolean> {
  tally.malformedInputs += 1;
  const input = bytes.toString('hex');
  const logBefore = logged.length;
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((resolve) => {
    timer = setTimeout(() => resolve('hang'), HANG_MS);
  });
  let result;
  try {
    result = await Promise.race([dispatcher.handle(Buffer.from(bytes), client), hang]);
  } catch (e) {
    tally.crashes += 1;
    problems.push({ kind: 'rejected', input, detail: String(e) });
    return false;
  } finally {
    clearTimeout(timer);
  }
  if (result === 'hang') {
    tally.hangs += 1;
    problems.push({ kind: 'hang', input, detail: `no answer in ${HANG_MS} ms` });
    return false;
  }
  let signature: string;
  try {
    const r = parseResponse(decodeTtlv(result.response));
    expect(r.items.length).toBe(r.batchCount);
    signature = `${result.close ? 'close:' : ''}${r.items.map((i) => `${opLabel(i.operation)}:${i.status === ResultStatus.Success ? 'ok' : i.reason}`).join(',')}`;
  } catch (e) {
    problems.push({ kind: 'bad response', input, detail: String(e) });
    return false;
  }
  const internal = logged.slice(logBefore).find((l) => l.msg === 'operation failed unexpectedly');
  if (internal) {
    problems.push({ kind: 'internal error', input, detail: internal.err?.message ?? JSON.stringify(internal) });
    return false;
  }
  if (offer) corpus.offer(signature, bytes);
  return true;
}

describe('request dispatcher under fuzzing', () => {
  it('replays the corpus and the hand-made cases', async () => {
    for (const b of corpus.bytes()) await dispatchChecked(b, false);
    for (const c of malformedCases({ maxMessageSize: DEFAULT_LIMITS.maxMessageSize, maxBatchItems: 16, maxAttributes: 32 })) {
      // Stream-level cases (no whole message) never reach the dispatcher; the rest must.
      if (c.expected.kind === 'answer') await dispatchChecked(c.bytes, false);
    }
    expect(problems).toEqual([]);
  });

  it('answers every mutated, random and type-confused request', async () => {
    const seeds = seedRequests(targetId).map((s) => s.item);
    await fc.assert(
      fc.asyncProperty(hostileRequests(seeds), async (bytes) => dispatchChecked(bytes)),
      { numRuns: 3000 },
    );
    expect(problems).toEqual([]);
    expect(unhandled).toBe(0);
  });

  it('keeps memory flat', async () => {
    const batch = fc.sample(hostileRequests(seedRequests(targetId).map((s) => s.item)), 200);
    for (const b of batch) await dispatchChecked(b); // warm-up: caches, prepared statements
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let round = 0; round < 3; round++) for (const b of batch) await dispatchChecked(b);
    gc();
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(16 * 1024 * 1024);
    expect(problems).toEqual([]);
  });

  it('still serves the keys created before, byte for byte', async () => {
    tally.keysAcknowledged += keys.size;
    for (const [id, material] of keys) {
      const r = await call(encodeTtlv(requestMessage(V12, [getItem(id)])));
      const same = r.items[0]?.status === ResultStatus.Success && keyMaterial(r.items[0].payload).equals(material);
      if (!same) tally.keysLost += 1;
    }
    expect(tally.keysLost).toBe(0);
    expect(unhandled).toBe(0);
    // A plain request still works.
    const ok = await call(encodeTtlv(requestMessage(V12, [createItem(V12), getItem()])));
    expect(ok.items[1]!.payload.has(Tag.SymmetricKey)).toBe(true);
  });
});
