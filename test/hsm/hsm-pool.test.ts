// HsmPool against an HSM that is slow on purpose: real SoftHSM behind a shim that sleeps in
// C_Decrypt, C_Encrypt and C_GenerateRandom and counts those calls in flight (see slow-module.ts).
// What is checked is ordering and concurrency as the module saw it, never elapsed time.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hsm, HsmError, HsmPool, initSoftHsm, openHsmConnection, type HsmConfig, type WrappedKey } from '../../src/hsm/index.js';
import { makeTempDir, openProbe, removeDir, until } from './helpers.js';
import { buildSlowModule, readSlowStats, slowEnv, type SlowStats } from './slow-module.js';

const SLOW_US = 100_000;
// Fewer sessions than libuv's 4 threads, so "at most `SESSIONS` in flight" is the pool's doing.
const SESSIONS = 3;

interface StoredKey {
  readonly id: string;
  readonly value: Buffer;
  readonly wrapped: WrappedKey;
}

describe('HsmPool on a slow HSM (SoftHSM behind a delaying shim)', () => {
  let dir: string;
  let statsFile: string;
  let gateFile: string;
  let configWith: (delayUs: number) => HsmConfig;
  const keys: StoredKey[] = [];
  const stats = (): SlowStats => readSlowStats(statsFile);

  /** Starts an unwrap of every stored key; records the order in which each one and a setImmediate end. */
  function unwrapAll(hsm: { unwrapKey(id: string, w: WrappedKey): Promise<Buffer> }): { order: string[]; done: Promise<Buffer[]> } {
    const order: string[] = [];
    const done = Promise.all(keys.map((k) => hsm.unwrapKey(k.id, k.wrapped).then((v) => (order.push(k.id), v))));
    setImmediate(() => order.push('setImmediate'));
    return { order, done };
  }

  function expectRightBytes(values: Buffer[]): void {
    expect(values).toHaveLength(keys.length);
    values.forEach((v, i) => expect(v.equals(keys[i]!.value)).toBe(true));
  }

  beforeAll(async () => {
    dir = await makeTempDir('kmipd-slow-hsm-');
    const setup = await initSoftHsm(path.join(dir, 'hsm'));
    const modulePath = buildSlowModule(dir);
    statsFile = path.join(dir, 'stats.json');
    gateFile = path.join(dir, 'gate');
    configWith = (delayUs) => ({
      ...setup.config,
      modulePath,
      env: { ...setup.config.env, ...slowEnv({ delayUs, statsFile, gateFile }) },
    });
    const hsm = await Hsm.open(configWith(0));
    try {
      await hsm.ensureRootKey();
      for (let i = 0; i < 8; i++) {
        const id = `slow-${i}`;
        const value = randomBytes(32);
        keys.push({ id, value, wrapped: await hsm.wrapPlaintextKey(id, value) });
      }
    } finally {
      await hsm.close(); // the last user finalises: the next open re-reads the shim's env
    }
  });

  afterAll(async () => {
    await removeDir(dir);
  });

  it(`with ${SESSIONS} sessions, several calls are in flight at once, one per session, and the event loop runs meanwhile`, async () => {
    const pool = await HsmPool.open(configWith(SLOW_US), SESSIONS);
    try {
      const { order, done } = unwrapAll(pool);
      expectRightBytes(await done);
      expect(order[0]).toBe('setImmediate');
      const s = stats();
      expect(s.calls).toBe(keys.length);
      expect(s.failed).toBe(0);
      expect(s.maxInFlight).toBeGreaterThanOrEqual(2);
      expect(s.maxInFlight).toBeLessThanOrEqual(SESSIONS);
      expect(s.maxPerSession).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('with 1 session (the default), calls run one at a time on the event loop, as before', async () => {
    const hsm = await openHsmConnection(configWith(SLOW_US / 4));
    try {
      expect(hsm).toBeInstanceOf(Hsm);
      const { order, done } = unwrapAll(hsm);
      expectRightBytes(await done);
      // All eight ended before the event loop could turn once.
      expect(order).toEqual(keys.map((k) => k.id));
      expect(stats()).toMatchObject({ calls: keys.length, maxInFlight: 1 });
    } finally {
      await hsm.close();
    }
  });

  it('every operation works through the pool; a blob moved or altered still fails as UNWRAP_FAILED', async () => {
    const pool = await HsmPool.open(configWith(1000), SESSIONS);
    try {
      const made = await pool.generateWrappedKey('made', 256);
      const madeValue = await pool.unwrapKey('made', made);
      expect(createHash('sha256').update(madeValue).digest().equals(Buffer.from(made.digest))).toBe(true);
      const secret = randomBytes(100);
      expect((await pool.unwrapKey('secret', await pool.wrapSecretBytes('secret', secret))).equals(secret)).toBe(true);
      const legacy = await pool.wrapPlaintextKey('legacy', keys[0]!.value, { format: 'v1' });
      const rewrapped = await pool.rewrapKey('legacy', legacy, legacy.rootKeyLabel);
      expect(rewrapped.mechanism).not.toBe(legacy.mechanism);
      expect((await pool.unwrapKey('legacy', rewrapped)).equals(keys[0]!.value)).toBe(true);

      const k = keys[1]!;
      const tampered = Buffer.from(k.wrapped.blob);
      tampered[tampered.length - 1]! ^= 1;
      for (const attempt of [() => pool.unwrapKey('another-id', k.wrapped), () => pool.unwrapKey(k.id, { ...k.wrapped, blob: tampered })]) {
        await expect(attempt()).rejects.toSatisfy((e) => e instanceof HsmError && e.code === 'UNWRAP_FAILED');
      }
      expect(await pool.hasRootKey()).toBe(true);
      await expect(pool.ping()).resolves.toBeUndefined();
    } finally {
      await pool.close();
    }
    await expect(pool.unwrapKey(keys[0]!.id, keys[0]!.wrapped)).rejects.toSatisfy((e) => e instanceof HsmError && e.code === 'CLOSED');
  });

  it('recovers when every session is closed underneath it (C_CloseAllSessions)', async () => {
    const config = configWith(1000);
    const pool = await HsmPool.open(config, SESSIONS);
    const probe = openProbe(config);
    try {
      expectRightBytes(await unwrapAll(pool).done); // every session has its data key now
      probe.p11.C_CloseAllSessions(probe.slot);
      expectRightBytes(await unwrapAll(pool).done);
      probe.p11.C_CloseAllSessions(probe.slot);
      await expect(pool.ping()).resolves.toBeUndefined();
      expect(stats().failed).toBe(0); // lost sessions were noticed before C_Decrypt, at C_DecryptInit
    } finally {
      probe.close();
      await pool.close();
    }
  });

  it('recovers when the sessions are closed while C_Decrypt calls are in flight on the thread pool', async () => {
    const config = configWith(0);
    const pool = await HsmPool.open(config, SESSIONS);
    const probe = openProbe(config);
    writeFileSync(gateFile, '');
    try {
      const { done } = unwrapAll(pool);
      // The shim holds each call, counted in flight, before it reaches SoftHSM.
      await until(`${SESSIONS} calls held`, () => existsSync(statsFile) && stats().inFlight === SESSIONS);
      probe.p11.C_CloseAllSessions(probe.slot);
      rmSync(gateFile);
      expectRightBytes(await done);
      // The held calls met the closed sessions; each was retried once on a fresh session.
      expect(stats()).toMatchObject({ failed: SESSIONS, calls: keys.length + SESSIONS, maxPerSession: 1 });
    } finally {
      rmSync(gateFile, { force: true });
      probe.close();
      await pool.close();
    }
  });

  it('refuses a pool of fewer than 2 or more than 64 sessions', async () => {
    for (const n of [0, 1, 65, 2.5]) {
      await expect(HsmPool.open(configWith(0), n)).rejects.toSatisfy((e) => e instanceof HsmError && e.code === 'INVALID_ARGUMENT');
    }
  });
});
