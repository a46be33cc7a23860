// Keys made ahead on their own thread (PrewrappedKeys), against a real SoftHSM token: what a Create
// takes opens under its object id with the Hsm that serves Gets, its digest is the value's, stale
// keys (too old, another root key version) are never handed out, and a failing thread only makes
// Creates generate their own keys.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hsm, PREWRAP_BATCH, PREWRAP_FIRST_BATCH, PrewrappedKeys, V2_AES_FORMAT, initSoftHsm, type HsmConnection, type NewWrappedKey, type SoftHsmSetup } from '../../src/hsm/index.js';
import { makeTempDir, removeDir, until } from './helpers.js';

describe('PrewrappedKeys', () => {
  let dir: string;
  let setup: SoftHsmSetup;
  let hsm: Hsm;
  let active = 'crk-a';

  beforeAll(async () => {
    dir = await makeTempDir('kmipd-prewrap-');
    setup = await initSoftHsm(dir);
    hsm = await Hsm.open({ ...setup.config, rootKeyLabel: 'crk-a', activeRootKeyLabel: () => active });
    await hsm.ensureRootKey();
    const second = await Hsm.open({ ...setup.config, rootKeyLabel: 'crk-b' });
    await second.ensureRootKey();
    await second.close();
  });
  afterAll(async () => {
    await hsm?.close();
    await removeDir(dir);
  });

  /** `hsm`, except that close() only calls `onClose`: each test's pool leaves it open for the next. */
  function sharedHsm(onClose: () => void = () => undefined): HsmConnection {
    return new Proxy(hsm, {
      get(target, prop) {
        if (prop === 'close') return () => (onClose(), Promise.resolve());
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  function poolOver(opts: { errors?: Error[] } = {}): PrewrappedKeys {
    return new PrewrappedKeys(sharedHsm(), { activeRootKeyLabel: () => active, onError: (e) => opts.errors?.push(e) });
  }

  async function expectOpens(made: NewWrappedKey, bits: number): Promise<void> {
    const value = await hsm.unwrapKey(made.objectId, made.key);
    try {
      expect(value.length).toBe(bits / 8);
      expect(Buffer.from(made.key.digest).equals(createHash('sha256').update(value).digest())).toBe(true);
    } finally {
      value.fill(0);
    }
  }

  it('hands out keys made on its thread that open under their own object id only', async () => {
    const pool = poolOver();
    try {
      const first = await pool.newWrappedKey(256); // none ready: made on the spot, and a batch is asked for
      await expectOpens(first, 256);
      await until('a batch of ready keys', () => pool.readyCount(256) > 0);
      expect(pool.readyCount(256)).toBe(PREWRAP_FIRST_BATCH);
      // SoftHSM makes a key in far less than the 3.9 ms that would cut the next batch below the most.
      expect(pool.nextBatchSize()).toBe(PREWRAP_BATCH);
      const ids = new Set<string>();
      for (let i = 0; i < 40; i++) {
        const made = await pool.newWrappedKey(256);
        expect(made.key.mechanism).toBe(V2_AES_FORMAT.mechanism);
        expect(made.key.rootKeyLabel).toBe('crk-a');
        expect(made.objectId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        ids.add(made.objectId);
        if (i % 8 === 0) await expectOpens(made, 256);
      }
      expect(ids.size).toBe(40);
      // Picked on the main side in the order they are handed out (unique-identifier.ts).
      expect([...ids]).toEqual([...ids].sort());
      const taken = await pool.newWrappedKey(256);
      await expect(hsm.unwrapKey('another-id', taken.key)).rejects.toMatchObject({ code: 'UNWRAP_FAILED' });
    } finally {
      await pool.close();
    }
  });

  it('makes each key size on its own', async () => {
    const pool = poolOver();
    try {
      for (const bits of [128, 192] as const) {
        await pool.newWrappedKey(bits);
        await until(`ready ${bits}-bit keys`, () => pool.readyCount(bits) > 0);
        await expectOpens(await pool.newWrappedKey(bits), bits);
      }
      expect(pool.readyCount(256)).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('never hands out a key of a root key version that is no longer active', async () => {
    const pool = poolOver();
    try {
      await pool.newWrappedKey(256);
      await until('ready keys', () => pool.readyCount(256) > 0);
      active = 'crk-b';
      expect(pool.readyCount(256)).toBe(0);
      const made = await pool.newWrappedKey(256);
      expect(made.key.rootKeyLabel).toBe('crk-b');
      await expectOpens(made, 256);
      await until('keys under the new version', () => pool.readyCount(256) > 0);
      expect((await pool.newWrappedKey(256)).key.rootKeyLabel).toBe('crk-b');
    } finally {
      active = 'crk-a';
      await pool.close();
    }
  });

  it('drops keys older than a data key may be used', async () => {
    const pool = poolOver();
    try {
      await pool.newWrappedKey(256);
      await until('ready keys', () => pool.readyCount(256) > 0);
      await new Promise((r) => setTimeout(r, V2_AES_FORMAT.maxAgeMs + 50));
      expect(pool.readyCount(256)).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('a failing batch leaves Creates making their own keys', async () => {
    const errors: Error[] = [];
    const pool = poolOver({ errors });
    active = 'no-such-root-key';
    try {
      await expect(pool.newWrappedKey(256)).rejects.toMatchObject({ code: 'ROOT_KEY_NOT_FOUND' });
      await until('the batch to fail', () => errors.length > 0);
      expect(errors[0]!.message).toMatch(/no-such-root-key/);
      active = 'crk-a';
      await expectOpens(await pool.newWrappedKey(256), 256); // made on the spot; the thread waits out its retry time
      expect(pool.readyCount(256)).toBe(0);
    } finally {
      active = 'crk-a';
      await pool.close();
    }
  });

  it('close() waits for the batch being made, then closes the connection', async () => {
    let closed = 0;
    const pool = new PrewrappedKeys(
      sharedHsm(() => (closed += 1)),
      { activeRootKeyLabel: () => active },
    );
    await pool.newWrappedKey(256); // asks for a batch
    await pool.close();
    expect(closed).toBe(1);
    expect(pool.readyCount(256)).toBe(0);
  });
});
