// `hsm.makeKeysAhead` end to end: a server (in this process, so it shares the slow shim's counters
// and gate) makes Create's keys on its own thread. Once a batch is made, a Create is answered
// while slow HSM calls are held (it makes none), and the key it answered with opens on a Get
// (AES-GCM under its own object id). With the setting off, every Create makes its own key and
// none is made ahead.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Operation, ResultStatus, Tag } from '../../src/kmip/registry/generated.js';
import { textString } from '../../src/ttlv/build.js';
import { ItemType, type TtlvItem } from '../../src/ttlv/types.js';
import { PREWRAP_FIRST_BATCH } from '../../src/hsm/index.js';
import { startServer, type RunningServer } from '../../src/server/app.js';
import { configPath } from '../../src/server/config.js';
import { KmipTestClient } from '../helpers/kmip-client.js';
import { initAndEnroll, tempDir, type ClientBundle } from '../helpers/kmipd.js';
import { createItem, getItem, keyMaterial, V12 } from '../hostile/helpers.js';
import { until } from './helpers.js';
import { buildSlowModule, readSlowStats, slowEnv } from './slow-module.js';

/** The first Digest Value anywhere under `items`. */
function digestValue(items: readonly TtlvItem[]): Buffer | undefined {
  for (const item of items) {
    if (item.tag === Tag.DigestValue && item.type === ItemType.ByteString) return Buffer.from(item.value);
    if (item.type === ItemType.Structure) {
      const found = digestValue(item.value);
      if (found) return found;
    }
  }
  return undefined;
}

/** How long the shim holds a slow call at most while the gate file exists (fixtures/slow-pkcs11.c). */
const GATE_MAX_MS = 5000;

/** Slow calls per key made ahead: C_GenerateRandom and C_Encrypt. */
const SLOW_CALLS_PER_KEY = 2;

describe('kmipd serve with hsm.makeKeysAhead on a slow HSM', () => {
  let dir: ReturnType<typeof tempDir>;
  let bundle: ClientBundle;
  let statsFile: string;
  let gateFile: string;
  let running: RunningServer | undefined;
  let modulePath: string;

  beforeAll(async () => {
    dir = tempDir();
    bundle = await initAndEnroll(dir.path, 'good');
    statsFile = path.join(dir.path, 'slow-stats.json');
    gateFile = path.join(dir.path, 'slow-gate');
    modulePath = buildSlowModule(dir.path); // once: the process keeps it loaded
    // The shim reads these at C_Initialize, which the server runs in this process.
    Object.assign(process.env, slowEnv({ delayUs: 200, statsFile, gateFile }));
  });
  afterEach(async () => {
    rmSync(gateFile, { force: true });
    await running?.stop();
    running = undefined;
    rmSync(statsFile, { force: true }); // the next server's module starts counting from 0 again
  });
  afterAll(() => dir?.remove());

  async function serve(makeKeysAhead: boolean | undefined): Promise<RunningServer> {
    const cfg = JSON.parse(readFileSync(configPath(dir.path), 'utf8')) as { hsm: Record<string, unknown> };
    cfg.hsm['module'] = modulePath;
    if (makeKeysAhead === undefined) delete cfg.hsm['makeKeysAhead'];
    else cfg.hsm['makeKeysAhead'] = makeKeysAhead;
    writeFileSync(configPath(dir.path), JSON.stringify(cfg));
    running = await startServer(dir.path, { listen: '127.0.0.1:0', log: pino({ level: 'silent' }) });
    return running;
  }

  const stats = () => (existsSync(statsFile) ? readSlowStats(statsFile) : undefined);

  it('(the default) answers a Create while the HSM holds every call, with a key that opens under its id', async () => {
    const server = await serve(undefined);
    const client = await KmipTestClient.connect(server.address.port, bundle);
    try {
      const first = await client.call(V12, [createItem(V12, 256)]); // none ready: made on the spot; a batch is asked for
      expect(first.items[0]!.status).toBe(ResultStatus.Success);
      const batchDone = SLOW_CALLS_PER_KEY + SLOW_CALLS_PER_KEY * PREWRAP_FIRST_BATCH;
      await until('the batch to be made', () => (stats()?.calls ?? 0) >= batchDone && stats()!.inFlight === 0, { detail: () => JSON.stringify(stats()) });
      await new Promise((r) => setTimeout(r, 200)); // its reply reaches the event loop (keys stay fresh for 1 s)

      // From here on a slow call waits inside the module until the gate goes, or GATE_MAX_MS: one
      // made by the Create would hold the event loop (hsm.sessions 1) that long. The thread's next
      // batch (asked for as the ready keys run low) waits there too, on its own session.
      writeFileSync(gateFile, '');
      const asked = performance.now();
      const created = await client.call(V12, [createItem(V12, 256)]);
      expect(performance.now() - asked, 'the Create waited for a slow HSM call').toBeLessThan(GATE_MAX_MS / 2);
      expect(existsSync(gateFile)).toBe(true);
      expect(created.items[0]!.status).toBe(ResultStatus.Success);
      const id = created.items[0]!.payload.requiredText(Tag.UniqueIdentifier);
      rmSync(gateFile);

      const answer = await client.call(V12, [getItem(id)]);
      expect(answer.items[0]!.status).toBe(ResultStatus.Success);
      const material = keyMaterial(answer.items[0]!.payload);
      expect(material.length).toBe(32);
      // The Digest attribute, computed on the thread from the key's bytes, is theirs.
      const attrs = await client.call(V12, [
        { operation: Operation.GetAttributes, payload: [textString(Tag.UniqueIdentifier, id), textString(Tag.AttributeName, 'Digest')] },
      ]);
      expect(attrs.items[0]!.status).toBe(ResultStatus.Success);
      expect(digestValue(attrs.items[0]!.payload.items)?.equals(createHash('sha256').update(material).digest())).toBe(true);
      expect(stats()!.failed).toBe(0);
    } finally {
      client.close();
    }
  });

  it('with makeKeysAhead false, each Create makes its own key and none is made ahead', async () => {
    const server = await serve(false);
    const client = await KmipTestClient.connect(server.address.port, bundle);
    try {
      const baseline = stats()?.calls ?? 0;
      for (let i = 0; i < 3; i++) expect((await client.call(V12, [createItem(V12, 256)])).items[0]!.status).toBe(ResultStatus.Success);
      await new Promise((r) => setTimeout(r, 100)); // a batch, had one been asked for, would be under way
      expect(stats()!.calls).toBe(baseline + 3 * SLOW_CALLS_PER_KEY);
    } finally {
      client.close();
    }
  });
});
