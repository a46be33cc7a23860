// One measured load run against a running server: fork the generator processes, open the
// connections, run the window, and collect the client-side figures with the server's CPU and memory.
import { treeMemoryOf, treeCpuTimeMs } from './proc-stats.js';
import { summarize, type LatencySummary } from './histogram.js';
import { splitEvenly, WorkerGroup } from './worker-group.js';
import type { ServerUnderTest } from './targets.js';
import type { SeededKey } from './requests.js';
import type { Workload } from './workloads.js';

export interface LoadSettings {
  readonly connections: number;
  readonly workers: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Bound on operations per run (split over the workers). */
  readonly maxOps: number;
  /** Requests in flight per connection. */
  readonly depth: number;
}

export interface LoadFigures {
  readonly server: string;
  readonly workload: string;
  readonly connections: number;
  readonly workers: number;
  readonly depth: number;
  readonly opsPerSec: number;
  readonly ops: number;
  readonly windowMs: number;
  readonly latency: LatencySummary;
  readonly byOperation: Record<string, LatencySummary>;
  readonly errors: Record<string, number>;
  readonly errorCount: number;
  /** Cores the server (with its helper processes) used during the window (1.0 = one core fully busy). */
  readonly serverCores: number;
  readonly generatorCores: number;
  readonly serverRssMiB: number;
}

let seedCounter = 1;

export async function measureLoad(server: ServerUnderTest, workload: Workload, keys: readonly SeededKey[], s: LoadSettings): Promise<LoadFigures> {
  const parts = splitEvenly(s.connections, s.workers);
  const opsParts = splitEvenly(s.maxOps, parts.length);
  const { group, failed, errors: openErrors } = await WorkerGroup.start(
    parts.map((connections) => ({
      mode: 'load' as const,
      endpoint: server.endpoint,
      client: server.client,
      connections,
      sequence: workload.sequence,
      keys,
      depth: s.depth,
      seed: seedCounter++,
    })),
  );
  if (failed > 0) {
    group.kill();
    throw new Error(`${server.name}: ${failed} of ${s.connections} connections failed to open: ${JSON.stringify(openErrors)}`);
  }
  // Server CPU is sampled over the measured window only (after the warm-up).
  let cpuStart = 0;
  let cpuStartAt = 0;
  const sampler = setTimeout(() => {
    cpuStart = treeCpuTimeMs(server.pid);
    cpuStartAt = performance.now();
  }, s.warmupMs);
  const merged = await group.go({ warmupMs: s.warmupMs, durationMs: s.durationMs, maxOps: opsParts[0]! });
  clearTimeout(sampler);
  const cpuEnd = treeCpuTimeMs(server.pid);
  const serverCores = cpuStartAt > 0 ? (cpuEnd - cpuStart) / Math.max(1, performance.now() - cpuStartAt) : NaN;
  const byOperation: Record<string, LatencySummary> = {};
  for (const [k, h] of merged.histograms) byOperation[k] = summarize(h);
  return {
    server: server.name,
    workload: workload.name,
    connections: s.connections,
    workers: parts.length,
    depth: s.depth,
    opsPerSec: merged.opsPerSec,
    ops: merged.ops,
    windowMs: merged.windowMs,
    latency: summarize(merged.all),
    byOperation,
    errors: merged.errors,
    errorCount: merged.errorCount,
    serverCores,
    generatorCores: merged.generatorCores,
    serverRssMiB: treeMemoryOf(server.pid).rssMiB,
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Median of repeated runs, figure by figure (ops/s and each latency quantile separately). */
export function medianOf(runs: readonly LoadFigures[]): LoadFigures & { runs: number; opsPerSecRange: [number, number] } {
  const first = runs[0]!;
  const lat = (pick: (f: LoadFigures) => LatencySummary): LatencySummary => ({
    count: runs.reduce((a, r) => a + pick(r).count, 0),
    meanMs: median(runs.map((r) => pick(r).meanMs)),
    p50Ms: median(runs.map((r) => pick(r).p50Ms)),
    p99Ms: median(runs.map((r) => pick(r).p99Ms)),
    p999Ms: median(runs.map((r) => pick(r).p999Ms)),
    maxMs: Math.max(...runs.map((r) => pick(r).maxMs)),
  });
  const errors: Record<string, number> = {};
  for (const r of runs) for (const [k, n] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + n;
  const ops = runs.map((r) => r.opsPerSec);
  return {
    ...first,
    opsPerSec: median(ops),
    opsPerSecRange: [Math.min(...ops), Math.max(...ops)],
    ops: runs.reduce((a, r) => a + r.ops, 0),
    latency: lat((r) => r.latency),
    byOperation: Object.fromEntries(Object.keys(first.byOperation).map((k) => [k, lat((r) => r.byOperation[k]!)])),
    errors,
    errorCount: runs.reduce((a, r) => a + r.errorCount, 0),
    serverCores: median(runs.map((r) => r.serverCores)),
    generatorCores: median(runs.map((r) => r.generatorCores)),
    serverRssMiB: Math.max(...runs.map((r) => r.serverRssMiB)),
    runs: runs.length,
  };
}

export interface ConnectFigures {
  readonly server: string;
  readonly tls: string;
  readonly resume: boolean;
  readonly parallel: number;
  readonly connectionsPerSec: number;
  readonly connections: number;
  /** Share of connections whose TLS session was resumed. */
  readonly resumedShare: number;
  readonly latency: LatencySummary;
  readonly errors: Record<string, number>;
  readonly errorCount: number;
  readonly serverCores: number;
  readonly generatorCores: number;
}

/** New connections per second: handshake, one Discover Versions, close; `parallel` loops at once. */
export async function measureConnect(
  server: ServerUnderTest,
  s: { parallel: number; workers: number; warmupMs: number; durationMs: number; maxOps: number; tls: 'TLSv1.2' | 'TLSv1.3'; resume: boolean },
): Promise<ConnectFigures> {
  const endpoint = { ...server.endpoint, tls: { ...server.endpoint.tls, maxVersion: s.tls } };
  const parts = splitEvenly(s.parallel, s.workers);
  const { group } = await WorkerGroup.start(parts.map((connections) => ({ mode: 'connect' as const, endpoint, client: server.client, connections, resume: s.resume })));
  let cpuStart = 0;
  let cpuStartAt = 0;
  const sampler = setTimeout(() => {
    cpuStart = treeCpuTimeMs(server.pid);
    cpuStartAt = performance.now();
  }, s.warmupMs);
  const merged = await group.go({ warmupMs: s.warmupMs, durationMs: s.durationMs, maxOps: splitEvenly(s.maxOps, parts.length)[0]! });
  clearTimeout(sampler);
  const serverCores = cpuStartAt > 0 ? (treeCpuTimeMs(server.pid) - cpuStart) / Math.max(1, performance.now() - cpuStartAt) : NaN;
  return {
    server: server.name,
    tls: s.tls,
    resume: s.resume,
    parallel: s.parallel,
    connectionsPerSec: merged.opsPerSec,
    connections: merged.ops,
    resumedShare: merged.ops ? merged.resumed / merged.ops : 0,
    latency: summarize(merged.all),
    errors: merged.errors,
    errorCount: merged.errorCount,
    serverCores,
    generatorCores: merged.generatorCores,
  };
}
