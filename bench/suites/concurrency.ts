// The same workloads against one kmipd at several connection counts. Each connection has --depth
// requests in flight (1: a client that waits for each answer, as vCenter and ESXi do), so at a
// given count the ops/s are the connections divided by the latency. More Creates at once share a
// group commit, so each costs the server less CPU and the rate grows with the count (bench/RESULTS.md,
// thirteenth and fourteenth rounds). This suite shows how far it goes. One server serves every
// count; Creates add to its store as they go.
import { freshKmipdData, type BenchContext } from '../context.js';
import { measureLoad, medianOf, type LoadFigures, type LoadSettings } from '../measure.js';
import { seedKeys } from '../seed.js';
import { startKmipd } from '../targets.js';
import { needsKeys, type Workload } from '../workloads.js';
import type { SeededKey } from '../requests.js';
import type { MedianFigures } from './throughput.js';

export interface ConcurrencyConfig {
  /** Connection counts, in the order run. */
  readonly connections: readonly number[];
  readonly workloads: readonly Workload[];
  /** Everything but the connection count. */
  readonly load: LoadSettings;
  readonly repeat: number;
  readonly seedKeys: number;
}

export interface ConcurrencyResult {
  readonly points: readonly { readonly workload: string; readonly connections: number; readonly figures: MedianFigures }[];
}

export async function runConcurrency(ctx: BenchContext, cfg: ConcurrencyConfig): Promise<ConcurrencyResult> {
  const { dir, client } = await freshKmipdData(ctx, 'concurrency');
  const server = await startKmipd(ctx, dir, client);
  const points: ConcurrencyResult['points'][number][] = [];
  try {
    let keys: SeededKey[] = [];
    if (cfg.workloads.some(needsKeys)) {
      ctx.log(`concurrency: creating ${cfg.seedKeys} named keys over KMIP`);
      keys = await seedKeys(server.endpoint, server.client, cfg.seedKeys);
    }
    for (const w of cfg.workloads) {
      // The counts take turns run by run: a slow minute of the machine, and the store that Creates
      // grow, weigh on every count alike.
      const runs = new Map<number, LoadFigures[]>(cfg.connections.map((c) => [c, []]));
      for (let i = 0; i < cfg.repeat; i++) {
        for (const connections of cfg.connections) {
          const f = await measureLoad(server, w, keys, { ...cfg.load, connections });
          ctx.log(
            `concurrency ${w.name}, ${connections} connections #${i + 1}: ${f.opsPerSec.toFixed(0)} ops/s, p50 ${f.latency.p50Ms} ms, ` +
              `p99 ${f.latency.p99Ms} ms, errors ${f.errorCount}, server ${f.serverCores.toFixed(2)} cores`,
          );
          runs.get(connections)!.push(f);
        }
      }
      for (const connections of cfg.connections) points.push({ workload: w.name, connections, figures: medianOf(runs.get(connections)!) });
    }
  } finally {
    await server.stop();
  }
  return { points };
}
