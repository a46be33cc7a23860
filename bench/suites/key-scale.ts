// Get and Locate-by-name latency as the store grows (1 k, 100 k, 1 M keys). Stores are filled by
// bench/bulk-load.ts (real HSM-wrapped keys, rows written by the real store, attributes copied
// from a key the server created) and the workloads address keys spread evenly over the whole
// store, a sample of them verified first (Get returns the key, Locate finds exactly it).
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freshKmipdData, storeSize, type BenchContext, type StoreSize } from '../context.js';
import { measureLoad, medianOf, type LoadSettings } from '../measure.js';
import { seedKeys, verifyKeys } from '../seed.js';
import { startKmipd } from '../targets.js';
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
  /** p99 at the largest size ÷ p99 at the smallest, per figure. */
  readonly p99Growth: Record<string, number>;
}

export async function runKeyScale(ctx: BenchContext, cfg: KeyScaleConfig): Promise<KeyScaleResult> {
  const points: KeyScalePoint[] = [];
  for (const n of cfg.sizes) {
    const { dir, client } = await freshKmipdData(ctx, `keys-${n}`);
    // The server creates the template key itself; the loader copies its attributes.
    const seeder = await startKmipd(ctx.root, dir, client);
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
    const args = ['--data', dir, '--template', template, '--count', String(n), '--sample', String(cfg.sample), '--out', out];
    await run(process.execPath, [VITE_NODE, join(BENCH_DIR, 'bulk-load.ts'), '--', ...args], {
      cwd: ctx.root,
      maxBuffer: 16 << 20,
      timeout: 4 * 3600_000,
    });
    const loaded = JSON.parse(readFileSync(out, 'utf8')) as BulkLoadReport;
    ctx.log(`kmipd: ${n} keys loaded in ${loaded.seconds.toFixed(0)} s`);
    const server = await startKmipd(ctx.root, dir, client);
    const figures: Record<string, MedianFigures> = {};
    try {
      await verifyKeys(server.endpoint, server.client, loaded.sample, 50);
      for (const w of [WORKLOADS.get!, WORKLOADS.locate!]) {
        for (const connections of [1, cfg.loadedConnections]) {
          const runs = [];
          for (let i = 0; i < cfg.repeat; i++) runs.push(await measureLoad(server, w, loaded.sample, { ...cfg.load, connections }));
          const m = medianOf(runs);
          figures[`${w.name}@${connections}`] = m;
          ctx.log(`kmipd ${n} keys ${w.name}@${connections}: ${m.opsPerSec.toFixed(0)} ops/s, p50 ${m.latency.p50Ms} ms, p99 ${m.latency.p99Ms} ms, errors ${m.errorCount}`);
        }
      }
    } finally {
      await server.stop();
    }
    const store = storeSize(server.storeFiles, 'objects');
    points.push({ keys: n, loadSeconds: loaded.seconds, loadDurability: loaded.durability, store, figures });
    if (!cfg.keep) rmSync(dir, { recursive: true, force: true });
  }
  const p99Growth: Record<string, number> = {};
  const first = points[0];
  const last = points[points.length - 1];
  if (first && last && first !== last) {
    for (const k of Object.keys(first.figures)) p99Growth[k] = last.figures[k]!.latency.p99Ms / first.figures[k]!.latency.p99Ms;
  }
  return { points, p99Growth };
}
