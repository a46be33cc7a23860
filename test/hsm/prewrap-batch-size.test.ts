// Keys made ahead on a slow HSM (SoftHSM behind the delaying shim, slow-module.ts): batches shrink
// to what the thread makes in a quarter of the time a key may be handed out, so that a slow HSM
// does not make keys that are stale when they arrive; those that are, are never handed out.
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Hsm, PREWRAP_FIRST_BATCH, PrewrappedKeys, initSoftHsm, type HsmConfig } from '../../src/hsm/index.js';
import { makeTempDir, removeDir, until } from './helpers.js';
import { buildSlowModule, slowEnv } from './slow-module.js';

/** Microseconds per C_GenerateRandom and C_Encrypt: two per key, so 200 ms per key. */
const DELAY_US = 100_000;

let dir: string;
let config: HsmConfig;
let hsm: Hsm;

beforeAll(async () => {
  dir = await makeTempDir('kmipd-prewrap-slow-');
  const setup = await initSoftHsm(path.join(dir, 'hsm'));
  config = {
    ...setup.config,
    modulePath: buildSlowModule(dir),
    env: { ...setup.config.env, ...slowEnv({ delayUs: DELAY_US, statsFile: path.join(dir, 'stats.json') }) },
  };
  hsm = await Hsm.open(config);
  await hsm.ensureRootKey();
});
afterAll(async () => {
  await hsm?.close();
  await removeDir(dir);
});

it('shrinks its batches on a slow HSM and never hands out a key made under a data key older than a second', async () => {
  const errors: Error[] = [];
  const pool = new PrewrappedKeys(hsm, { activeRootKeyLabel: () => config.rootKeyLabel, onError: (e) => errors.push(e) });
  try {
    expect(pool.nextBatchSize()).toBe(PREWRAP_FIRST_BATCH);
    await pool.newWrappedKey(256); // made on the spot (0.4 s); asks for a first batch: 8 keys, 1.6 s
    await until('the first batch', () => pool.nextBatchSize() !== PREWRAP_FIRST_BATCH, { everyMs: 20, tries: 500 });
    // Its keys were older than a second when they arrived: none is ready.
    expect(pool.readyCount(256)).toBe(0);
    expect(pool.nextBatchSize()).toBe(1); // 250 ms at ~200 ms per key
    await pool.newWrappedKey(256); // none ready: made on the spot; asks for a batch of one
    await until('a fresh key', () => pool.readyCount(256) > 0, { everyMs: 20, tries: 500 });
    expect(pool.readyCount(256)).toBe(1);
    const taken = await pool.newWrappedKey(256);
    const value = await hsm.unwrapKey(taken.objectId, taken.key);
    expect(value.length).toBe(32);
    value.fill(0);
    expect(errors).toEqual([]);
  } finally {
    await pool.close();
  }
});
