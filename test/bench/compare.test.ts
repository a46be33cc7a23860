// `npm run bench -- --compare REF`: this checkout against another build in alternated pairs.
// The pairing and its ratios on made-up figures; the other build prepared from a real git
// revision (a throwaway repository holding this checkout's sources, built with tsc); and a
// short run of the suite against real servers. No timing is asserted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, tempDir } from '../helpers/kmipd.js';
import { benchRunBeforeAll, reportOf } from '../helpers/bench.js';
import { comparePairs, firstOfPair, type Pair } from '../../bench/suites/compare.js';
import { installedTreeSatisfies, isBuiltCheckout, prepareOtherBuild } from '../../bench/other-build.js';
import type { LoadFigures } from '../../bench/measure.js';

const run = promisify(execFile);

function figures(opsPerSec: number, serverCores: number, p99Ms = 1): LoadFigures {
  const latency = { count: opsPerSec, meanMs: p99Ms / 2, p50Ms: p99Ms / 2, p99Ms, p999Ms: p99Ms, maxMs: p99Ms };
  return {
    server: 'kmipd',
    workload: 'get',
    connections: 16,
    workers: 2,
    depth: 1,
    opsPerSec,
    ops: opsPerSec,
    windowMs: 1000,
    latency,
    byOperation: {},
    errors: {},
    errorCount: 0,
    serverCores,
    generatorCores: 0.3,
    serverRssMiB: 100,
  };
}

describe('pairs', () => {
  it('swap the side that runs first from pair to pair', () => {
    // Runs C O, O C, C O, O C: a drift of the machine over the run favours neither side.
    expect([0, 1, 2, 3].map(firstOfPair)).toEqual(['checkout', 'other', 'checkout', 'other']);
  });

  it('give a ratio per pair and their median, for ops/s and for server CPU per operation', () => {
    const pairs: Pair[] = [
      { first: 'checkout', checkout: figures(1100, 1.0), other: figures(1000, 1.0) },
      { first: 'other', checkout: figures(900, 0.9), other: figures(1000, 1.2) },
      { first: 'checkout', checkout: figures(1300, 1.0), other: figures(1000, 1.0) },
    ];
    const c = comparePairs(pairs);
    expect(c.ratios).toEqual([1.1, 0.9, 1.3]);
    expect(c.medianRatio).toBeCloseTo(1.1, 12);
    expect(c.checkoutAhead).toBe(2);
    // CPU per op: (1.0/1100)/(1.0/1000), (0.9/900)/(1.2/1000), (1.0/1300)/(1.0/1000)
    expect(c.cpuRatios[0]).toBeCloseTo(1000 / 1100, 12);
    expect(c.cpuRatios[1]).toBeCloseTo(1 / 1.2, 12);
    expect(c.cpuRatios[2]).toBeCloseTo(1000 / 1300, 12);
    expect(c.medianCpuRatio).toBeCloseTo(1 / 1.2, 12);
    expect(c.checkout.opsPerSec).toBe(1100);
    expect(c.other.opsPerSec).toBe(1000);
    expect(c.checkout.opsPerSecRange).toEqual([900, 1300]);
  });

  it('leave out of the median a pair whose other side answered nothing', () => {
    const c = comparePairs([
      { first: 'checkout', checkout: figures(1200, 1.0), other: figures(1000, 1.0) },
      { first: 'other', checkout: figures(1000, 1.0), other: figures(0, 0) },
    ]);
    expect(c.ratios[1]).toBeNaN();
    expect(c.medianRatio).toBeCloseTo(1.2, 12);
    expect(() => comparePairs([])).toThrow(/no pairs/);
  });

  it('are reported with each pair, the median ratio and both builds named', () => {
    const c = comparePairs([
      { first: 'checkout', checkout: figures(8123, 1.1, 4.5), other: figures(7000, 1.1, 5) },
      { first: 'other', checkout: figures(8000, 1.1, 4.4), other: figures(8000, 1.1, 4.6) },
    ]);
    const md = reportOf({
      machine: { cpus: 2, model: 'test', memoryGiB: 1, node: 'v20', kernel: '6', scheduler: 'kernel.sched_vcpu_pack 15 (a setting of this kernel that upstream Linux lacks)' },
      comparison: { checkout: 'abc123+changes', other: 'HEAD~1 (def456)', workloads: { create: c } },
    });
    expect(md).toContain('- this checkout: abc123+changes');
    expect(md).toContain('- the other build: HEAD~1 (def456)');
    expect(md).toContain('| create | 8,123 / 8,000 | 7,000 / 8,000 | x1.160 / x1.000 | **x1.080** | 1 of 2 |');
    expect(md).toContain('None: no suite of this run measures one.');
    expect(md).toContain('- scheduler: kernel.sched_vcpu_pack 15 (a setting of this kernel that upstream Linux lacks)');
  });
});

describe('the other build', () => {
  let repo: ReturnType<typeof tempDir>;
  let scratch: ReturnType<typeof tempDir>;
  let commit: string;

  beforeAll(async () => {
    // A repository of its own, so that the test does not depend on how this checkout was made
    // (CI may not hand out a git clone). Its node_modules is this checkout's, as for a worktree.
    repo = tempDir('kmipd-compare-repo-');
    scratch = tempDir('kmipd-compare-scratch-');
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) cpSync(join(ROOT, f), join(repo.path, f));
    for (const d of ['src', 'bin']) cpSync(join(ROOT, d), join(repo.path, d), { recursive: true });
    writeFileSync(join(repo.path, '.gitignore'), 'node_modules\ndist\n');
    symlinkSync(join(ROOT, 'node_modules'), join(repo.path, 'node_modules'), 'dir');
    const git = (...args: string[]) => run('git', ['-c', 'user.name=kmipd test', '-c', 'user.email=test@kmipd.invalid', ...args], { cwd: repo.path, maxBuffer: 16 << 20 });
    await git('init', '--quiet');
    await git('add', '-A');
    await git('commit', '--quiet', '-m', 'sources');
    commit = (await git('rev-parse', 'HEAD')).stdout.trim();
  });
  afterAll(() => {
    repo?.remove();
    scratch?.remove();
  });

  it('is a git revision checked out into the scratch folder, built, and removed afterwards', async () => {
    const logs: string[] = [];
    const other = await prepareOtherBuild(repo.path, 'HEAD', scratch.path, (m) => logs.push(m));
    try {
      expect(other.root.startsWith(scratch.path)).toBe(true);
      expect(other.label).toBe(`HEAD (${commit.slice(0, 12)})`);
      expect(isBuiltCheckout(other.root)).toBe(true);
      // The same lockfile: this checkout's dependencies, linked, not installed again.
      expect(logs.some((l) => l.includes('npm ci'))).toBe(false);
      const { stdout } = await run(process.execPath, [join(other.root, 'bin/kmipd.js'), '--help'], { cwd: other.root });
      expect(stdout).toContain('serve');
    } finally {
      other.remove();
    }
    expect(existsSync(other.root)).toBe(false);
    const { stdout } = await run('git', ['worktree', 'list'], { cwd: repo.path });
    expect(stdout).not.toContain(other.root);
  }, 120_000);

  it("uses this checkout's node_modules only when it holds what the revision's lockfile asks for", () => {
    const pino = (JSON.parse(readFileSync(join(ROOT, 'node_modules/pino/package.json'), 'utf8')) as { version: string }).version;
    const lockfile = (packages: Record<string, unknown>) => {
      const dir = join(scratch.path, `lock-${Math.random().toString(36).slice(2)}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'package-lock.json'), JSON.stringify({ lockfileVersion: 3, packages: { '': { name: 'kmipd' }, ...packages } }));
      return dir;
    };
    expect(installedTreeSatisfies(ROOT, ROOT)).toBe(true);
    expect(installedTreeSatisfies(ROOT, lockfile({ 'node_modules/pino': { version: pino } }))).toBe(true);
    // Another platform's optional build, not installed here: what npm ci would skip too.
    expect(installedTreeSatisfies(ROOT, lockfile({ 'node_modules/pino': { version: pino }, 'node_modules/@rollup/rollup-win32-x64-msvc': { version: '4.0.0', optional: true } }))).toBe(true);
    expect(installedTreeSatisfies(ROOT, lockfile({ 'node_modules/pino': { version: `${pino}-other` } }))).toBe(false);
    expect(installedTreeSatisfies(ROOT, lockfile({ 'node_modules/no-such-package-here': { version: '1.0.0' } }))).toBe(false);
    expect(installedTreeSatisfies(ROOT, scratch.path)).toBe(false); // no lockfile
  });

  it('is a folder holding a built kmipd, used as it is and left in place', async () => {
    const other = await prepareOtherBuild(repo.path, ROOT, scratch.path, () => undefined);
    expect(other.root).toBe(resolve(ROOT));
    expect(other.label.startsWith(resolve(ROOT))).toBe(true);
    other.remove();
    expect(isBuiltCheckout(ROOT)).toBe(true);
  });

  it('is refused with a reason when it is neither', async () => {
    await expect(prepareOtherBuild(repo.path, 'no-such-revision', scratch.path, () => undefined)).rejects.toThrow(/neither a folder nor a git revision/);
    const empty = join(scratch.path, 'not-built');
    mkdirSync(empty);
    await expect(prepareOtherBuild(repo.path, empty, scratch.path, () => undefined)).rejects.toThrow(/no built kmipd there/);
  });
});

describe('the compare suite (smoke run against two servers)', () => {
  // The other build is this checkout's own folder: the pairing, both servers and the report run
  // for real; the git path is tested above.
  // prettier-ignore
  const bench = benchRunBeforeAll(
    'kmipd-bench-compare-',
    [
      '--quick', '--compare', ROOT, '--workloads', 'get,create', '--connections', '4', '--duration', '0.5',
      '--warmup', '0.1', '--repeat', '2', '--seed-keys', '20', '--max-minutes', '3', '--label', 'smoke-compare',
    ],
    200_000,
  );

  it('runs each workload in pairs on both builds, with zero errors, and reports the ratios', () => {
    const c = bench.results.comparison!;
    expect(bench.results.throughput).toBeUndefined();
    // The folder, with its commit where it is a git checkout.
    expect(c.other.startsWith(resolve(ROOT))).toBe(true);
    expect(c.other.slice(resolve(ROOT).length)).toMatch(/^( \([0-9a-f]{12}\))?$/);
    expect(Object.keys(c.workloads)).toEqual(['get', 'create']);
    for (const [name, w] of Object.entries(c.workloads)) {
      expect(w.pairs.map((p) => p.first)).toEqual(['checkout', 'other']);
      for (const p of w.pairs) {
        for (const f of [p.checkout, p.other]) {
          expect(f.errorCount, `${name}: ${JSON.stringify(f.errors)}`).toBe(0);
          expect(f.ops).toBeGreaterThan(0);
        }
      }
      expect(w.ratios).toHaveLength(2);
      expect(Number.isFinite(w.medianRatio)).toBe(true);
    }
    const report = readFileSync(join(bench.outDir, 'report.md'), 'utf8');
    expect(report).toContain('## This checkout against another build (alternated pairs)');
    expect(report).toMatch(/\| get \| [\d,]+ \/ [\d,]+ \| [\d,]+ \/ [\d,]+ \| x[\d.]+ \/ x[\d.]+ \| \*\*x[\d.]+\*\* \|/);
    expect(bench.results.settings['compare']).toBe(ROOT);
  });
});
