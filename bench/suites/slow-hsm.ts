// HSM-bound workloads against kmipd on an HSM that is slow on purpose, as a network HSM is:
// SoftHSM behind the shim of test/hsm/fixtures/slow-pkcs11.c, which sleeps in each C_Decrypt,
// C_Encrypt and C_GenerateRandom. With hsm.sessions 1 every call holds the event loop; with more,
// that many encrypts and decrypts wait in the HSM at once on libuv threads while the server goes
// on serving. Create's calls leave the event loop with hsm.makeKeysAhead (its own thread), which
// the suite runs on and off.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSlowModule } from '../../test/hsm/slow-module.js';
import { freshKmipdData, type BenchContext } from '../context.js';
import { measureLoad, medianOf, type LoadFigures, type LoadSettings } from '../measure.js';
import { seedKeys } from '../seed.js';
import { startKmipd } from '../targets.js';
import type { Workload } from '../workloads.js';
import type { MedianFigures } from './throughput.js';

export interface SlowHsmConfig {
  /** Microseconds each slow call sleeps. */
  readonly delayUs: number;
  /** hsm.sessions values to compare. */
  readonly sessions: readonly number[];
  /** hsm.makeKeysAhead values to compare. */
  readonly keysAhead: readonly boolean[];
  readonly workloads: readonly Workload[];
  readonly load: LoadSettings;
  readonly repeat: number;
  readonly seedKeys: number;
}

export interface SlowHsmPoint {
  readonly sessions: number;
  readonly keysAhead: boolean;
  readonly uvThreads: number;
  readonly workload: string;
  readonly figures: MedianFigures;
}

export interface SlowHsmResult {
  readonly delayUs: number;
  readonly points: readonly SlowHsmPoint[];
}

export async function runSlowHsm(ctx: BenchContext, cfg: SlowHsmConfig): Promise<SlowHsmResult> {
  const { dir, client } = await freshKmipdData(ctx, 'slow-hsm');
  const configFile = join(dir, 'kmipd.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as { hsm: Record<string, unknown> };
  config.hsm['module'] = buildSlowModule(ctx.workDir);
  const writeHsm = (sessions: number, makeKeysAhead: boolean) =>
    writeFileSync(configFile, JSON.stringify({ ...config, hsm: { ...config.hsm, sessions, makeKeysAhead } }, null, 2));

  // Keys are made at full speed: only the measured requests wait on the "network".
  writeHsm(1, true);
  const seeder = await startKmipd(ctx, dir, client, { env: { SLOW_PKCS11_DELAY_US: '0' } });
  let keys: Awaited<ReturnType<typeof seedKeys>>;
  try {
    ctx.log(`slow HSM: creating ${cfg.seedKeys} keys`);
    keys = await seedKeys(seeder.endpoint, seeder.client, cfg.seedKeys);
  } finally {
    await seeder.stop();
  }

  const points: SlowHsmPoint[] = [];
  for (const sessions of cfg.sessions) {
    for (const keysAhead of cfg.keysAhead) {
      writeHsm(sessions, keysAhead);
      // Sessions beyond 1 need a libuv thread each (4 by default), and some to spare for the rest.
      const uvThreads = sessions > 1 ? sessions + 4 : 4;
      const server = await startKmipd(ctx, dir, client, {
        env: { SLOW_PKCS11_DELAY_US: String(cfg.delayUs), ...(sessions > 1 ? { UV_THREADPOOL_SIZE: String(uvThreads) } : {}) },
      });
      try {
        for (const workload of cfg.workloads) {
          const runs: LoadFigures[] = [];
          for (let i = 0; i < cfg.repeat; i++) {
            const f = await measureLoad(server, workload, keys, cfg.load);
            ctx.log(
              `slow HSM (${cfg.delayUs} µs per call), hsm.sessions ${sessions}, keys ahead ${keysAhead ? 'on' : 'off'}, ${workload.name} #${i + 1}: ` +
                `${f.opsPerSec.toFixed(0)} ops/s, p50 ${f.latency.p50Ms} ms, p99 ${f.latency.p99Ms} ms, errors ${f.errorCount}, server ${f.serverCores.toFixed(2)} cores`,
            );
            runs.push(f);
          }
          points.push({ sessions, keysAhead, uvThreads, workload: workload.name, figures: medianOf(runs) });
        }
      } finally {
        await server.stop();
      }
    }
  }
  return { delayUs: cfg.delayUs, points };
}
