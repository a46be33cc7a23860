// Get and Locate-by-name latency as the store grows (1 k, 100 k, 1 M keys). Stores are filled by
// bench/bulk-load.ts (real HSM-wrapped keys, rows written by the real store, attributes copied
// from a key the server created) and the workloads address keys spread evenly over the whole
// store, a sample of them verified first (Get returns the key, Locate finds exactly it).
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freshKmipdData, storeSize, type BenchContext, type StoreSize } from '../context.js';
import { measureLoad, medianOf, type LoadFigures, type LoadSettings } from '../measure.js';
import { seedKeys, verifyKeys } from '../seed.js';
import { startKmipd, type ServerUnderTest } from '../targets.js';
import type { ClientFiles } from '../connection.js';
import { BENCH_DIR, VITE_NODE } from '../worker-group.js';
import { WORKLOADS } from '../workloads.js';
import type { BulkLoadReport } from '../bulk-load.js';
import type { MedianFigures } from './throughput.js';

const run = promisify(execFile);

export interface KeyScaleConfig {
  readonly sizes: readonly number[];
  /** Keys the workloads address (spread over the store). */
  readonly sample: number;
  /** Load settings per measurement; each is run with 1 connection (service latency) and with `loaded` connections. */
  readonly load: LoadSettings;
  readonly loadedConnections: number;
  readonly repeat: number;
  readonly keep: boolean;
}

export interface KeyScalePoint {
  readonly keys: number;
  readonly loadSeconds: number;
  readonly loadDurability: string;
  readonly store: StoreSize;
  /** Figures by "<workload>@<connections>", e.g. "get@1", "locate@16". */
  readonly figures: Record<string, MedianFigures>;
}

export interface KeyScaleResult {
  readonly points: KeyScalePoint[];
  /** p99 at the largest size ÷ p99 at the smallest, per figure (of the medians). */
  readonly p99Growth: Record<string, number>;
  /** The same ratio for each run, the two sizes measured one after the other. */
  readonly p99GrowthByRun: Record<string, number[]>;
}

export async function runKeyScale(ctx: BenchContext, cfg: KeyScaleConfig): Promise<KeyScaleResult> {
  const stores: LoadedStore[] = [];
  const servers: ServerUnderTest[] = [];
  const points: KeyScalePoint[] = [];
  const runsByFigure = new Map<string, LoadFigures[][]>(); // figure -> size -> runs
  const figuresBySize: Record<string, MedianFigures>[] = cfg.sizes.map(() => ({}));
  try {
    for (const n of cfg.sizes) stores.push(await loadStore(ctx, n, cfg.sample));
    for (const st of stores) {
      const server = await startKmipd(ctx, st.dir, st.client);
      servers.push(server);
      await verifyKeys(server.endpoint, server.client, st.loaded.sample, 50);
    }
    // The sizes take turns, run by run: a machine that slows down for a minute (this one does)
    // then weighs on every size alike instead of on whichever size was measured in that minute.
    for (const w of [WORKLOADS.get!, WORKLOADS.locate!]) {
      for (const connections of [1, cfg.loadedConnections]) {
        const figure = `${w.name}@${connections}`;
        const bySize: LoadFigures[][] = stores.map(() => []);
        runsByFigure.set(figure, bySize);
        for (let i = 0; i < cfg.repeat; i++) {
          for (const [s, st] of stores.entries()) {
            bySize[s]!.push(await measureLoad(servers[s]!, w, st.loaded.sample, { ...cfg.load, connections }));
          }
        }
        for (const [s, st] of stores.entries()) {
          const m = (figuresBySize[s]![figure] = medianOf(bySize[s]!));
          ctx.log(`kmipd ${st.keys} keys ${figure}: ${m.opsPerSec.toFixed(0)} ops/s, p50 ${m.latency.p50Ms} ms, p99 ${m.latency.p99Ms} ms, errors ${m.errorCount}`);
        }
      }
    }
  } finally {
    for (const server of servers) await server.stop();
  }
  for (const [s, st] of stores.entries()) {
    const figures = figuresBySize[s]!;
    points.push({ keys: st.keys, loadSeconds: st.loaded.seconds, loadDurability: st.loaded.durability, store: storeSize(servers[s]!.storeFiles, 'objects'), figures });
    if (!cfg.keep) rmSync(st.dir, { recursive: true, force: true });
  }
  const p99Growth: Record<string, number> = {};
  const p99GrowthByRun: Record<string, number[]> = {};
  const first = points[0];
  const last = points[points.length - 1];
  if (first && last && first !== last) {
    for (const k of Object.keys(first.figures)) p99Growth[k] = last.figures[k]!.latency.p99Ms / first.figures[k]!.latency.p99Ms;
    // Each run's pair, measured back to back: how far the ratio moves between runs.
    for (const [figure, bySize] of runsByFigure) {
      const small = bySize[0]!;
      const large = bySize[bySize.length - 1]!;
      p99GrowthByRun[figure] = small.map((r, i) => large[i]!.latency.p99Ms / r.latency.p99Ms);
    }
  }
  return { points, p99Growth, p99GrowthByRun };
}

interface LoadedStore {
  readonly keys: number;
  readonly dir: string;
  readonly client: ClientFiles;
  readonly loaded: BulkLoadReport;
}

/** A data folder holding `n` keys: a template key created over KMIP, copied by bulk-load.ts. */
async function loadStore(ctx: BenchContext, n: number, sample: number): Promise<LoadedStore> {
  const { dir, client } = await freshKmipdData(ctx, `keys-${n}`);
  // The server creates the template key itself; the loader copies its attributes.
  const seeder = await startKmipd(ctx, dir, client);
  let template: string;
  try {
    const [key] = await seedKeys(seeder.endpoint, seeder.client, 1, 1);
    // Served once, so its copies are no longer Fresh: a boot storm fetches keys that hosts have
    // fetched before. (A first Get writes Fresh = false, a durable write per key.)
    await verifyKeys(seeder.endpoint, seeder.client, [key!], 1);
    template = key!.id;
  } finally {
    await seeder.stop();
  }
  ctx.log(`kmipd: loading ${n} keys`);
  const out = join(dir, 'bulk-load.json');
  const args = ['--data', dir, '--template', template, '--count', String(n), '--sample', String(sample), '--out', out];
  await run(process.execPath, [VITE_NODE, join(BENCH_DIR, 'bulk-load.ts'), '--', ...args], {
    cwd: ctx.root,
    maxBuffer: 16 << 20,
    timeout: 4 * 3600_000,
  });
  const loaded = JSON.parse(readFileSync(out, 'utf8')) as BulkLoadReport;
  ctx.log(`kmipd: ${n} keys loaded in ${loaded.seconds.toFixed(0)} s`);
  return { keys: n, dir, client, loaded };
}
