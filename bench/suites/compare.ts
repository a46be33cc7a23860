// This checkout against another build of kmipd (`--compare`), workload by workload, in
// alternated pairs: the machine's speed drifts by more than most changes are worth (RESULTS.md),
// so each run of one build is set beside a run of the other taken within seconds, the side that
// goes first swapping from pair to pair, and the change is read from the ratios of the pairs.
import { freshKmipdData, type BenchContext } from '../context.js';
import { measureLoad, median, medianOf, type LoadFigures, type LoadSettings } from '../measure.js';
import { seedKeys, verifyKeys } from '../seed.js';
import { startKmipd, type ServerUnderTest } from '../targets.js';
import { needsKeys, type Workload } from '../workloads.js';
import type { SeededKey } from '../requests.js';
import type { MedianFigures } from './throughput.js';

export type Side = 'checkout' | 'other';

/** The longest unmeasured window each build runs a workload in before its pairs. */
const WARM_UP_WINDOW_MS = 3000;

export interface CompareConfig {
  readonly workloads: readonly Workload[];
  readonly load: LoadSettings;
  /** Pairs per workload. */
  readonly pairs: number;
  readonly seedKeys: number;
}

export interface Pair {
  readonly first: Side;
  readonly checkout: LoadFigures;
  readonly other: LoadFigures;
}

export interface ComparedWorkload {
  readonly pairs: readonly Pair[];
  readonly checkout: MedianFigures;
  readonly other: MedianFigures;
  /** Per pair: this checkout's ops/s ÷ the other build's. */
  readonly ratios: readonly number[];
  readonly medianRatio: number;
  /** Pairs in which this checkout answered more operations per second than the other build. */
  readonly checkoutAhead: number;
  /** Per pair: this checkout's server CPU per operation ÷ the other build's (below 1: cheaper). */
  readonly cpuRatios: readonly number[];
  readonly medianCpuRatio: number;
}

export interface ComparisonResult {
  readonly checkout: string;
  readonly other: string;
  readonly workloads: Record<string, ComparedWorkload>;
}

/** The side measured first in pair i: this checkout in even pairs, the other build in odd ones (runs C O, O C, C O…). */
export function firstOfPair(i: number): Side {
  return i % 2 === 0 ? 'checkout' : 'other';
}

const cpuPerOp = (f: LoadFigures): number => (f.opsPerSec > 0 ? f.serverCores / f.opsPerSec : NaN);

/** The pairs' ratios and medians (a pair whose other side answered nothing has no ratio). */
export function comparePairs(pairs: readonly Pair[]): ComparedWorkload {
  if (pairs.length === 0) throw new Error('no pairs to compare');
  // median() leaves NaN out; a server that used no measurable CPU gives no ratio either.
  const finite = (xs: number[]) => xs.filter(Number.isFinite);
  const ratios = pairs.map((p) => (p.other.opsPerSec > 0 ? p.checkout.opsPerSec / p.other.opsPerSec : NaN));
  const cpuRatios = pairs.map((p) => cpuPerOp(p.checkout) / cpuPerOp(p.other));
  return {
    pairs,
    checkout: medianOf(pairs.map((p) => p.checkout)),
    other: medianOf(pairs.map((p) => p.other)),
    ratios,
    medianRatio: median(finite(ratios)),
    checkoutAhead: ratios.filter((r) => r > 1).length,
    cpuRatios,
    medianCpuRatio: median(finite(cpuRatios)),
  };
}

interface Running {
  readonly server: ServerUnderTest;
  readonly keys: SeededKey[];
}

async function startSeeded(ctx: BenchContext, name: string, seed: number): Promise<Running> {
  const { dir, client } = await freshKmipdData(ctx, name);
  const server = await startKmipd(ctx, dir, client);
  try {
    if (seed === 0) return { server, keys: [] };
    ctx.log(`${name}: creating ${seed} named keys over KMIP`);
    const keys = await seedKeys(server.endpoint, client, seed);
    await verifyKeys(server.endpoint, client, keys);
    return { server, keys };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

/**
 * Both builds run side by side, each its own server on its own data folder (`other` is the
 * context whose root is the other build); each workload then runs once on each, not counted,
 * and pair after pair.
 */
export async function runComparison(
  ctx: BenchContext,
  other: BenchContext,
  labels: { readonly checkout: string; readonly other: string },
  cfg: CompareConfig,
): Promise<ComparisonResult> {
  const seed = cfg.workloads.some(needsKeys) ? cfg.seedKeys : 0;
  const sides: Partial<Record<Side, Running>> = {};
  try {
    sides.checkout = await startSeeded(ctx, 'compare-checkout', seed);
    sides.other = await startSeeded(other, 'compare-other', seed);
    const workloads: Record<string, ComparedWorkload> = {};
    for (const w of cfg.workloads) {
      // A server's first window of a workload runs its code paths cold (JIT): in 2 s windows the
      // first pair of two identical builds came out x0.80 against the side that went first.
      const warmup = { ...cfg.load, durationMs: Math.min(cfg.load.durationMs, WARM_UP_WINDOW_MS) };
      for (const side of ['checkout', 'other'] as const) await measureLoad(sides[side]!.server, w, sides[side]!.keys, warmup);
      const pairs: Pair[] = [];
      for (let i = 0; i < cfg.pairs; i++) {
        const first = firstOfPair(i);
        const figures: Partial<Record<Side, LoadFigures>> = {};
        for (const side of first === 'checkout' ? (['checkout', 'other'] as const) : (['other', 'checkout'] as const)) {
          const { server, keys } = sides[side]!;
          const f = await measureLoad(server, w, keys, cfg.load);
          figures[side] = f;
          ctx.log(
            `compare ${w.name} #${i + 1} ${side === 'checkout' ? labels.checkout : labels.other}: ${f.opsPerSec.toFixed(0)} ops/s, p99 ${f.latency.p99Ms} ms, ` +
              `errors ${f.errorCount}, server ${f.serverCores.toFixed(2)} cores`,
          );
        }
        pairs.push({ first, checkout: figures.checkout!, other: figures.other! });
      }
      workloads[w.name] = comparePairs(pairs);
      ctx.log(`compare ${w.name}: this checkout ÷ ${labels.other}, ops/s x${workloads[w.name]!.medianRatio.toFixed(3)} (median of ${pairs.length} pairs)`);
    }
    return { checkout: labels.checkout, other: labels.other, workloads };
  } finally {
    await Promise.all(Object.values(sides).map((s) => s.server.stop()));
  }
}
