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

/** A workload whose runs saw fewer answers than this is run once more over a longer window (PyKMIP only). */
export const MIN_ANSWERS = 30;
/** The longest window a workload is given again. */
export const MAX_LONGER_WINDOW_MS = 60_000;

/**
 * The window to run a workload again in, when its run saw fewer than `minAnswers` answers: an
 * answer counts only if its request was sent and answered inside the window, so a server whose
 * answers take longer than the window (PyKMIP's Locate: ~5 s each at 1,000 keys) shows 0 ops/s
 * and no ratio at all. Each request in flight is answered about once per latency after the first,
 * so a window W gives about inFlight × (W − p50) ÷ p50 answers; this asks for 20 % more than
 * enough, at least twice the window, at most `maxMs`. Undefined: enough answers, or no longer
 * window within `maxMs`.
 */
export function longerWindowMs(
  run: { readonly ops: number; readonly connections: number; readonly depth: number; readonly latency: { readonly p50Ms: number } },
  durationMs: number,
  minAnswers = MIN_ANSWERS,
  maxMs = MAX_LONGER_WINDOW_MS,
): number | undefined {
  if (run.ops >= minAnswers || maxMs <= durationMs) return undefined;
  const p50 = run.latency.p50Ms;
  const inFlight = run.connections * run.depth;
  const enough = Number.isFinite(p50) && p50 > 0 ? p50 * (1 + minAnswers / inFlight) * 1.2 : maxMs;
  return Math.min(maxMs, Math.ceil(Math.max(enough, 2 * durationMs) / 1000) * 1000);
}

export interface ServerThroughput {
  readonly server: string;
  readonly seeded: number;
  readonly seedSeconds: number;
  readonly workloads: Record<string, MedianFigures>;
  readonly skipped: Record<string, string>;
  /** Workloads measured again over a longer window (longerWindowMs): the first window and what its run saw. */
  readonly lengthened: Record<string, { readonly fromMs: number; readonly toMs: number; readonly answers: number; readonly p50Ms: number }>;
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
  cfg: { workloads: readonly Workload[]; load: LoadSettings; repeat: number; seedKeys: number; lengthenSlow?: boolean },
  storeTable: string,
): Promise<ServerThroughput> {
  const t0 = Date.now();
  let keys: SeededKey[] = [];
  const skipped: Record<string, string> = {};
  const lengthened: ServerThroughput['lengthened'] = {};
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
      const figures = medianOf(runs);
      const longer = cfg.lengthenSlow ? longerWindowMs({ ...figures, ops: figures.ops / runs.length }, cfg.load.durationMs) : undefined;
      if (longer === undefined) {
        workloads[w.name] = figures;
        continue;
      }
      ctx.log(`${server.name} ${w.name}: ${figures.ops} answers in ${runs.length} window(s) of ${cfg.load.durationMs / 1000} s (p50 ${figures.latency.p50Ms} ms); again over ${longer / 1000} s`);
      const f = await measureLoad(server, w, keys, { ...cfg.load, durationMs: longer });
      ctx.log(`${server.name} ${w.name} over ${longer / 1000} s: ${f.opsPerSec.toFixed(2)} ops/s (${f.ops} answers), p50 ${f.latency.p50Ms} ms, p99 ${f.latency.p99Ms} ms, errors ${f.errorCount}`);
      lengthened[w.name] = { fromMs: cfg.load.durationMs, toMs: longer, answers: figures.ops, p50Ms: figures.latency.p50Ms };
      workloads[w.name] = medianOf([f]);
    }
    await server.stop();
    store = storeSize(server.storeFiles, storeTable);
    return { server: server.name, seeded: keys.length, seedSeconds, workloads, skipped, lengthened, store };
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
    const py = await startPykmip(pyDir, dir, client, ctx.serverCpus);
    pykmip = await runAgainst(
      ctx,
      py,
      {
        workloads: cfg.workloads,
        load: { ...cfg.load, durationMs: cfg.pykmip.durationMs, warmupMs: cfg.pykmip.warmupMs },
        repeat: cfg.pykmip.repeat,
        seedKeys: cfg.pykmip.seedKeys,
        lengthenSlow: true,
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
