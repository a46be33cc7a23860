// The same workloads, in the same run, against kmipd and against PyKMIP's server: ops/s and
// latency per workload, and how many times faster kmipd is.
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { freshKmipdData, storeSize, type BenchContext, type StoreSize } from '../context.js';
import { measureLoad, medianOf, type LoadFigures, type LoadSettings } from '../measure.js';
import { seedKeys, verifyKeys } from '../seed.js';
import { pykmipAvailable, startKmipd, startPykmip, type ServerUnderTest } from '../targets.js';
import { needsKeys, type Workload } from '../workloads.js';
import type { SeededKey } from '../requests.js';

export type MedianFigures = ReturnType<typeof medianOf>;

export interface ThroughputConfig {
  readonly workloads: readonly Workload[];
  readonly load: LoadSettings;
  readonly repeat: number;
  readonly seedKeys: number;
  /** PyKMIP's server runs the same workloads with these (shorter) settings; undefined skips it. */
  readonly pykmip: { readonly durationMs: number; readonly warmupMs: number; readonly repeat: number; readonly seedKeys: number } | undefined;
}

export interface ServerThroughput {
  readonly server: string;
  readonly seeded: number;
  readonly seedSeconds: number;
  readonly workloads: Record<string, MedianFigures>;
  readonly skipped: Record<string, string>;
  readonly store: StoreSize;
}

export interface ThroughputResult {
  readonly kmipd: ServerThroughput;
  readonly pykmip: ServerThroughput | undefined;
  readonly pykmipSkipped: string | undefined;
  /** Per workload: kmipd ops/s ÷ PyKMIP ops/s, and PyKMIP p99 ÷ kmipd p99. */
  readonly ratios: Record<string, { readonly throughput: number; readonly p99: number }>;
}

async function runAgainst(
  ctx: BenchContext,
  server: ServerUnderTest,
  cfg: { workloads: readonly Workload[]; load: LoadSettings; repeat: number; seedKeys: number },
  storeTable: string,
): Promise<ServerThroughput> {
  const t0 = Date.now();
  let keys: SeededKey[] = [];
  const skipped: Record<string, string> = {};
  const workloads: Record<string, MedianFigures> = {};
  let store: StoreSize;
  try {
    if (cfg.workloads.some(needsKeys)) {
      ctx.log(`${server.name}: creating ${cfg.seedKeys} named keys over KMIP`);
      keys = await seedKeys(server.endpoint, server.client, cfg.seedKeys);
      await verifyKeys(server.endpoint, server.client, keys);
    }
    const seedSeconds = (Date.now() - t0) / 1000;
    for (const w of cfg.workloads) {
      const runs: LoadFigures[] = [];
      for (let i = 0; i < cfg.repeat; i++) {
        const f = await measureLoad(server, w, keys, cfg.load);
        ctx.log(
          `${server.name} ${w.name} #${i + 1}: ${f.opsPerSec.toFixed(0)} ops/s, p50 ${f.latency.p50Ms} ms, p99 ${f.latency.p99Ms} ms, ` +
            `p999 ${f.latency.p999Ms} ms, errors ${f.errorCount}, server ${f.serverCores.toFixed(2)} cores, generator ${f.generatorCores.toFixed(2)} cores` +
            byOperationLine(f),
        );
        runs.push(f);
      }
      workloads[w.name] = medianOf(runs);
    }
    await server.stop();
    store = storeSize(server.storeFiles, storeTable);
    return { server: server.name, seeded: keys.length, seedSeconds, workloads, skipped, store };
  } finally {
    await server.stop();
  }
}

export async function runThroughput(ctx: BenchContext, cfg: ThroughputConfig): Promise<ThroughputResult> {
  const { dir, client } = await freshKmipdData(ctx, 'throughput-kmipd');
  const kmipdServer = await startKmipd(ctx, dir, client);
  const kmipd = await runAgainst(ctx, kmipdServer, cfg, 'objects');

  let pykmip: ServerThroughput | undefined;
  let pykmipSkipped: string | undefined;
  if (!cfg.pykmip) pykmipSkipped = 'not requested (--no-pykmip)';
  else if (!pykmipAvailable()) pykmipSkipped = 'pykmip-server not installed (apt-get install python3-pykmip)';
  else {
    const pyDir = join(ctx.workDir, 'throughput-pykmip');
    mkdirSync(pyDir, { recursive: true });
    const py = await startPykmip(pyDir, dir, client);
    pykmip = await runAgainst(
      ctx,
      py,
      {
        workloads: cfg.workloads,
        load: { ...cfg.load, durationMs: cfg.pykmip.durationMs, warmupMs: cfg.pykmip.warmupMs },
        repeat: cfg.pykmip.repeat,
        seedKeys: cfg.pykmip.seedKeys,
      },
      'managed_objects',
    );
  }
  const ratios: ThroughputResult['ratios'] = {};
  if (pykmip) {
    for (const [name, k] of Object.entries(kmipd.workloads)) {
      const p = pykmip.workloads[name];
      if (p) ratios[name] = { throughput: k.opsPerSec / p.opsPerSec, p99: p.latency.p99Ms / k.latency.p99Ms };
    }
  }
  return { kmipd, pykmip, pykmipSkipped, ratios };
}

/** For a mix of operations, each one's own latency (the overall p99 hides whose it is). */
function byOperationLine(f: LoadFigures): string {
  const ops = Object.entries(f.byOperation);
  if (ops.length < 2) return '';
  return `; ${ops.map(([op, l]) => `${op} p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, p999 ${l.p999Ms} ms`).join('; ')}`;
}
