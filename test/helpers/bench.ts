// The benchmark as `npm run bench` runs it (bench/run.ts under vite-node), for the harness's smoke tests.
import { afterAll, beforeAll } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, tempDir } from './kmipd.js';
import { markdownReport, type BenchResults } from '../../bench/report.js';

const run = promisify(execFile);

/**
 * Runs the benchmark with `args`, its results written into `outDir`; resolves with its results.json.
 * A run that fails rejects with execFile's error (its exit `code` and `stderr`).
 */
export async function runBench(args: readonly string[], outDir: string, timeoutMs: number): Promise<BenchResults> {
  await run(process.execPath, [join(ROOT, 'node_modules/vite-node/vite-node.mjs'), join(ROOT, 'bench/run.ts'), '--', ...args, '--out', outDir], {
    cwd: ROOT,
    maxBuffer: 16 << 20,
    timeout: timeoutMs,
  });
  return JSON.parse(readFileSync(join(outDir, 'results.json'), 'utf8')) as BenchResults;
}

export interface BenchRun {
  /** The run's results.json; set once the run before the tests has finished. */
  results: BenchResults;
  /** Its results folder (report.md, results.json), removed after the tests. */
  outDir: string;
}

/**
 * Runs the benchmark once before the tests of the enclosing describe, into a fresh folder named
 * from `prefix` and removed after them; the tests read what it gave from the returned object.
 */
export function benchRunBeforeAll(prefix: string, args: readonly string[], timeoutMs: number): BenchRun {
  const bench = {} as BenchRun;
  let dir: ReturnType<typeof tempDir> | undefined;
  beforeAll(async () => {
    dir = tempDir(prefix);
    bench.outDir = dir.path;
    bench.results = await runBench(args, dir.path, timeoutMs);
  }, timeoutMs + 20_000);
  afterAll(() => dir?.remove());
  return bench;
}

/** The report of made-up results: a run's header filled in, `parts` laid over it. */
export function reportOf(parts: Partial<BenchResults>): string {
  return markdownReport({
    label: 'unit',
    startedAt: '',
    finishedAt: '',
    command: '',
    machine: { cpus: 2, model: 'test', memoryGiB: 1, node: 'v20', kernel: '6' },
    loadAverage: { start: [0, 0, 0] },
    disk: { start: { syncsPerSec: 1, count: 1, meanMs: 1, p50Ms: 1, p99Ms: 1, p999Ms: 1, maxMs: 1 } },
    generator: { workers: 1, connections: 1, depth: 1 },
    settings: {},
    targets: [],
    ...parts,
  });
}
