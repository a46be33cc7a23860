// Get against kmipd on an HSM that is slow on purpose, as a network HSM is: SoftHSM behind the
// shim of test/hsm/fixtures/slow-pkcs11.c, which sleeps in each C_Decrypt, C_Encrypt and
// C_GenerateRandom. With hsm.sessions 1 every call holds the event loop; with more, that many
// calls wait in the HSM at once on libuv threads while the server goes on serving.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSlowModule } from '../../test/hsm/slow-module.js';
import { freshKmipdData, type BenchContext } from '../context.js';
import { measureLoad, medianOf, type LoadFigures, type LoadSettings } from '../measure.js';
import { seedKeys } from '../seed.js';
import { startKmipd } from '../targets.js';
import { WORKLOADS } from '../workloads.js';
import type { MedianFigures } from './throughput.js';

export interface SlowHsmConfig {
  /** Microseconds each slow call sleeps. */
  readonly delayUs: number;
  /** hsm.sessions values to compare. */
  readonly sessions: readonly number[];
  readonly load: LoadSettings;
  readonly repeat: number;
  readonly seedKeys: number;
}

export interface SlowHsmResult {
  readonly delayUs: number;
  readonly points: readonly { readonly sessions: number; readonly uvThreads: number; readonly get: MedianFigures }[];
}

export async function runSlowHsm(ctx: BenchContext, cfg: SlowHsmConfig): Promise<SlowHsmResult> {
  const { dir, client } = await freshKmipdData(ctx, 'slow-hsm');
  const configFile = join(dir, 'kmipd.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as { hsm: Record<string, unknown> };
  config.hsm['module'] = buildSlowModule(ctx.workDir);
  const writeSessions = (n: number) => writeFileSync(configFile, JSON.stringify({ ...config, hsm: { ...config.hsm, sessions: n } }, null, 2));

  // Keys are made at full speed: only the measured Gets wait on the "network".
  writeSessions(1);
  const seeder = await startKmipd(ctx.root, dir, client, { env: { SLOW_PKCS11_DELAY_US: '0' } });
  let keys: Awaited<ReturnType<typeof seedKeys>>;
  try {
    ctx.log(`slow HSM: creating ${cfg.seedKeys} keys`);
    keys = await seedKeys(seeder.endpoint, seeder.client, cfg.seedKeys);
  } finally {
    await seeder.stop();
  }

  const points: SlowHsmResult['points'][number][] = [];
  for (const sessions of cfg.sessions) {
    writeSessions(sessions);
    // Sessions beyond 1 need a libuv thread each (4 by default), and some to spare for the rest.
    const uvThreads = sessions > 1 ? sessions + 4 : 4;
    const server = await startKmipd(ctx.root, dir, client, {
      env: { SLOW_PKCS11_DELAY_US: String(cfg.delayUs), ...(sessions > 1 ? { UV_THREADPOOL_SIZE: String(uvThreads) } : {}) },
    });
    const runs: LoadFigures[] = [];
    try {
      for (let i = 0; i < cfg.repeat; i++) {
        const f = await measureLoad(server, WORKLOADS['get']!, keys, cfg.load);
        ctx.log(
          `slow HSM (${cfg.delayUs} µs per call), hsm.sessions ${sessions}, get #${i + 1}: ${f.opsPerSec.toFixed(0)} ops/s, ` +
            `p50 ${f.latency.p50Ms} ms, p99 ${f.latency.p99Ms} ms, errors ${f.errorCount}, server ${f.serverCores.toFixed(2)} cores`,
        );
        runs.push(f);
      }
    } finally {
      await server.stop();
    }
    points.push({ sessions, uvThreads, get: medianOf(runs) });
  }
  return { delayUs: cfg.delayUs, points };
}
