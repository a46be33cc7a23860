// A Locate that no index narrows goes through the objects in steps of about a millisecond and lets
// the event loop serve others between them (SqliteStore.locateInSteps). Whatever the step, it finds
// what one pass finds: the same ids, newest first, the same total, with Offset Items and Maximum
// Items across steps.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { nextLocateStep, SqliteStore } from '../../src/store/sqlite-store.js';
import { enumeration, integer, structure, textString } from '../../src/ttlv/index.js';
import { ObjectType, State, Tag } from '../../src/kmip/registry/generated.js';
import type { Attribute } from '../../src/kmip/attributes.js';
import type { LocateQuery, NewObject } from '../../src/store/types.js';

const len = (bits: number): Attribute => ({ name: 'Cryptographic Length', index: 0, value: integer(Tag.AttributeValue, bits) });
const name = (n: string): Attribute => ({
  name: 'Name',
  index: 0,
  value: structure(Tag.AttributeValue, [textString(Tag.NameValue, n), enumeration(Tag.NameType, 1)]),
});
const query = (o: Partial<LocateQuery>): LocateQuery => ({
  tenant: 'default',
  objectType: undefined,
  states: undefined,
  matches: [],
  includeDestroyed: false,
  maxItems: undefined,
  offset: 0,
  ...o,
});

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kmipd-locate-steps-'));
  path = join(dir, 'kmipd.db');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** 60 keys: every third 128 bits (the rest 256), every fifth Active, every seventh destroyed, one in another tenant. */
async function fill(store: SqliteStore): Promise<void> {
  const keys = Array.from({ length: 60 }, (_, i): NewObject => ({
    id: `k${String(i).padStart(2, '0')}`,
    tenant: i === 30 ? 'other' : 'default',
    objectType: ObjectType.SymmetricKey,
    state: i % 7 === 0 ? State.Destroyed : i % 5 === 0 ? State.Active : State.PreActive,
    wrapped: { rootKeyLabel: 'crk', mechanism: 'test', blob: Buffer.alloc(40, i) },
    attributes: [len(i % 3 === 0 ? 128 : 256), name(`n${i}`)],
  }));
  // One at a time: seq follows the ids, so "newest first" is a known order.
  for (const k of keys) await store.insert(k);
}

it('finds what one pass finds, across steps, with every offset and maximum', async () => {
  const onePass = new SqliteStore(path);
  await fill(onePass);
  const stepped = new SqliteStore(path, 7);
  try {
    const shapes: Partial<LocateQuery>[] = [
      { matches: [len(128)] },
      { matches: [len(256)], states: [State.PreActive] },
      { matches: [] },
      { matches: [], includeDestroyed: true },
      { matches: [len(512)] },
      { tenant: 'other', matches: [len(128)] },
    ];
    for (const shape of shapes) {
      const whole = await onePass.locate(query(shape));
      for (const offset of [0, 1, 6, 7, 8, 20, 59, 60]) {
        for (const maxItems of [undefined, 0, 1, 3, 7, 15, 100]) {
          const q = query({ ...shape, offset, maxItems });
          const expected = { ids: whole.ids.slice(offset, maxItems === undefined ? undefined : offset + maxItems), total: whole.total };
          expect(await stepped.locate(q), JSON.stringify({ ...shape, offset, maxItems })).toEqual(expected);
        }
      }
    }
    // Newest first, and what the filters say: 128-bit keys are every third id, less the destroyed.
    const ids128 = Array.from({ length: 60 }, (_, i) => i)
      .filter((i) => i % 3 === 0 && i % 7 !== 0 && i !== 30)
      .reverse()
      .map((i) => `k${String(i).padStart(2, '0')}`);
    expect(await stepped.locate(query({ matches: [len(128)] }))).toEqual({ ids: ids128, total: ids128.length });
  } finally {
    await stepped.close();
    await onePass.close();
  }
});

it('serves a Get while a Locate that no index narrows is between steps', async () => {
  const setup = new SqliteStore(path);
  await fill(setup);
  await setup.close();
  const store = new SqliteStore(path, 1); // a step per object: 60 steps
  try {
    const order: string[] = [];
    const located = store.locate(query({ matches: [len(256)] })).then((r) => {
      order.push('locate');
      return r;
    });
    const got = store.get('k01').then((o) => {
      order.push('get');
      return o;
    });
    const [result, obj] = await Promise.all([located, got]);
    expect(order).toEqual(['get', 'locate']);
    expect(obj?.id).toBe('k01');
    expect(result.ids).toContain('k01');
    // A Locate by Name (indexed) is answered in one go, as before.
    expect(await store.locate(query({ matches: [name('n1')] }))).toEqual({ ids: ['k01'], total: 1 });
  } finally {
    await store.close();
  }
});

it('sizes each step to take about a millisecond, growing at most fourfold, within bounds', () => {
  expect(nextLocateStep(1024, 5)).toBe(205); // a slow step (5 ms): the next covers a fifth
  expect(nextLocateStep(1024, 0.5)).toBe(2048);
  expect(nextLocateStep(1024, 0.01)).toBe(4096); // fast, but no more than fourfold at once
  expect(nextLocateStep(64, 50)).toBe(64); // never fewer than 64 objects a step
  expect(nextLocateStep(60_000, 0.5)).toBe(65_536);
  expect(nextLocateStep(1024, 0)).toBe(4096);
});
