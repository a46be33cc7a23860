// `hsm.sessions` in kmipd.json, end to end: a server (in this process, so it shares the shim's
// counters) on the slow PKCS#11 module keeps answering while its HSM calls are held inside the
// module, with several of them in flight at once, and Gets return the bytes Create gave.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResultStatus } from '../../src/kmip/registry/generated.js';
import { startServer, type RunningServer } from '../../src/server/app.js';
import { configPath } from '../../src/server/config.js';
import { KmipTestClient } from '../helpers/kmip-client.js';
import { initAndEnroll, tempDir, type ClientBundle } from '../helpers/kmipd.js';
import { discoverItem, getItem, keyMaterial, seedKeys, V12, type KeySet } from '../hostile/helpers.js';
import { buildSlowModule, readSlowStats, slowEnv } from './slow-module.js';

const SESSIONS = 3;

describe(`kmipd serve with hsm.sessions = ${SESSIONS} on a slow HSM`, () => {
  let dir: ReturnType<typeof tempDir>;
  let bundle: ClientBundle;
  let running: RunningServer;
  let keys: KeySet;
  let statsFile: string;
  let gateFile: string;

  beforeAll(async () => {
    dir = tempDir();
    bundle = await initAndEnroll(dir.path, 'good');
    const cfg = JSON.parse(readFileSync(configPath(dir.path), 'utf8')) as { hsm: Record<string, unknown> };
    cfg.hsm['module'] = buildSlowModule(dir.path);
    cfg.hsm['sessions'] = SESSIONS;
    // Only the sessions' calls are counted here: keys made ahead would be slow calls in flight too.
    cfg.hsm['makeKeysAhead'] = false;
    writeFileSync(configPath(dir.path), JSON.stringify(cfg));
    statsFile = path.join(dir.path, 'slow-stats.json');
    gateFile = path.join(dir.path, 'slow-gate');
    // The shim reads these at C_Initialize, which the server runs in this process.
    Object.assign(process.env, slowEnv({ delayUs: 1000, statsFile, gateFile }));
    running = await startServer(dir.path, { listen: '127.0.0.1:0', log: pino({ level: 'silent' }) });
    keys = await seedKeys(running.address.port, bundle, 6);
  });

  afterAll(async () => {
    rmSync(gateFile, { force: true });
    await running?.stop();
    dir?.remove();
  });

  it('answers other requests while Gets wait on the HSM, and the Gets return the right bytes', async () => {
    const clients = await Promise.all([...keys.keys()].map(() => KmipTestClient.connect(running.address.port, bundle)));
    const other = await KmipTestClient.connect(running.address.port, bundle);
    writeFileSync(gateFile, '');
    try {
      const ids = [...keys.keys()];
      const gets = ids.map((id, i) => clients[i]!.call(V12, [getItem(id)]));
      for (let i = 0; !(existsSync(statsFile) && readSlowStats(statsFile).inFlight === SESSIONS); i++) {
        if (i > 2000) throw new Error(`the server never had ${SESSIONS} HSM calls in flight`);
        await new Promise((r) => setTimeout(r, 5));
      }
      // Every session is busy inside the HSM: the event loop still serves.
      expect((await other.call(V12, [discoverItem()])).items[0]!.status).toBe(ResultStatus.Success);
      rmSync(gateFile);
      const answers = await Promise.all(gets);
      answers.forEach((r, i) => {
        expect(r.items[0]!.status).toBe(ResultStatus.Success);
        expect(keyMaterial(r.items[0]!.payload).equals(keys.get(ids[i]!)!)).toBe(true);
      });
      expect(readSlowStats(statsFile)).toMatchObject({ maxInFlight: SESSIONS, maxPerSession: 1, failed: 0 });
    } finally {
      rmSync(gateFile, { force: true });
      for (const c of [...clients, other]) c.close();
    }
  });
});
