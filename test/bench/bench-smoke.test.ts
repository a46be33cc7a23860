// The benchmark harness, run for a few seconds with small counts against the real servers
// (kmipd from dist/, PyKMIP's server from Debian's python3-pykmip): it must finish by itself,
// report figures for every suite, and see no errors. No timing is asserted.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/kmipd.js';
import { benchRunBeforeAll, reportOf } from '../helpers/bench.js';
import { Histogram } from '../../bench/histogram.js';
import { checkAnswer } from '../../bench/response.js';
import { getRequest } from '../../bench/requests.js';
import type { BenchResults } from '../../bench/report.js';
import { nodeWith } from '../../bench/targets.js';
import { cpuIdleDescription, schedulerDescription } from '../../bench/proc-stats.js';
import { longerWindowMs } from '../../bench/suites/throughput.js';
import { encodeTtlv, enumeration, integer, structure } from '../../src/ttlv/index.js';
import { Operation, ResultReason, ResultStatus, Tag } from '../../src/kmip/registry/generated.js';

const run = promisify(execFile);

describe('latency histogram', () => {
  it('reports quantiles within its resolution and merges exactly', () => {
    const a = new Histogram();
    const b = new Histogram();
    for (let us = 1; us <= 10_000; us++) (us % 2 ? a : b).record(us);
    a.merge(b.toData());
    expect(a.count).toBe(10_000);
    expect(a.quantile(0.5)).toBeGreaterThan(5_000 * 0.98);
    expect(a.quantile(0.5)).toBeLessThan(5_000 * 1.02);
    expect(a.quantile(0.99)).toBeGreaterThan(9_900 * 0.98);
    expect(a.quantile(0.99)).toBeLessThan(9_900 * 1.02);
    expect(a.quantile(1)).toBe(10_000);
  });
});

describe('node options for the server (bin/kmipd-serve takes the binary from NODE)', () => {
  it('is node itself without options, else a script in the scratch folder, one per set of options', async () => {
    const scratch = tempDir('kmipd-bench-node-');
    try {
      expect(nodeWith(scratch.path, [])).toBe(process.execPath);
      const a = nodeWith(scratch.path, ['--max-old-space-size=64']);
      const b = nodeWith(scratch.path, ["--title=it's"]);
      expect(a.startsWith(scratch.path)).toBe(true);
      expect(b).not.toBe(a);
      expect(nodeWith(scratch.path, ['--max-old-space-size=64'])).toBe(a);
      expect(readdirSync(scratch.path).sort()).toEqual([basename(a), basename(b)].sort()); // no half-written leftovers
      const argv = async (script: string) => (await run(script, ['-e', 'console.log(JSON.stringify(process.execArgv.slice(0, -2)))'])).stdout.trim();
      expect(await argv(a)).toBe('["--max-old-space-size=64"]');
      expect(await argv(b)).toBe(`["--title=it's"]`);
    } finally {
      scratch.remove();
    }
  });
});

describe('answer check', () => {
  const answer = (status: number, reason?: number) =>
    Buffer.from(
      encodeTtlv(
        structure(Tag.ResponseMessage, [
          structure(Tag.ResponseHeader, [integer(Tag.BatchCount, 1)]),
          structure(Tag.BatchItem, [
            enumeration(Tag.Operation, Operation.Get),
            enumeration(Tag.ResultStatus, status),
            ...(reason === undefined ? [] : [enumeration(Tag.ResultReason, reason)]),
          ]),
        ]),
      ),
    );

  it('accepts Success and reports a failure with its reason', () => {
    expect(checkAnswer(answer(ResultStatus.Success))).toEqual({ ok: true });
    expect(checkAnswer(answer(ResultStatus.OperationFailed, ResultReason.ItemNotFound))).toEqual({
      ok: false,
      failure: `status ${ResultStatus.OperationFailed}, reason ${ResultReason.ItemNotFound}`,
    });
    // A request is not an answer.
    expect(checkAnswer(getRequest('x')).ok).toBe(false);
  });
});

describe('report', () => {
  it('gives no ratio where PyKMIP answered nothing, rather than "n/ax"', () => {
    const store = { objects: 0, bytes: 0, bytesPerObject: 0 };
    const server = (name: string, lengthened = {}) => ({ server: name, seeded: 0, seedSeconds: 0, workloads: {}, skipped: {}, lengthened, store });
    const md = reportOf({
      machine: { cpus: 2, model: 'test', memoryGiB: 1, node: 'v20', kernel: '6', idle: 'cpuidle driver haltpoll, guest_halt_poll_ns 0 (an idle vCPU halts at once)' },
      settings: { malloc: 'jemalloc' },
      throughput: { kmipd: server('kmipd'), pykmip: server('pykmip', { locate: { fromMs: 5000, toMs: 19000, answers: 0, p50Ms: 5341.2 } }), pykmipSkipped: undefined, ratios: { locate: { throughput: Infinity, p99: 1932.9 }, get: { throughput: 41.2, p99: 23.6 } } },
    } as Partial<BenchResults>);
    expect(md).toContain('| locate | n/a | 1,932.9x |');
    expect(md).toContain('| get | 41.2x | 23.6x |');
    expect(md).toContain('PyKMIP locate: 0 answers in the 5 s window (p50 5341.2 ms; an answer counts when its request was sent and answered in the window), so the row above is one run over 19 s.');
    expect(md).toContain('- kmipd: started by bin/kmipd-serve, allocator jemalloc');
    expect(md).toContain('- idle CPUs: cpuidle driver haltpoll, guest_halt_poll_ns 0 (an idle vCPU halts at once)');
    expect(md).not.toContain('- scheduler:');
  });
});

describe('a longer window for a server too slow for its window', () => {
  const run = (ops: number, p50Ms: number) => ({ ops, connections: 16, depth: 1, latency: { p50Ms } });
  it('is not asked for when the run saw enough answers, or when no longer window is allowed', () => {
    expect(longerWindowMs(run(30, 5000), 5000)).toBeUndefined();
    expect(longerWindowMs(run(0, 5000), 5000, 30, 5000)).toBeUndefined();
  });
  it('gives time for the answers wanted at the latency seen, at least twice the window, at most the cap', () => {
    // PyKMIP's Locate at 1,000 keys: ~5.3 s an answer, none counted in 5 s. 16 lanes answer
    // ~16 × (W − 5.3) ÷ 5.3 times in W: 30 answers need W ≈ 15.3 s; with 20 % more, 18.4 s.
    expect(longerWindowMs(run(0, 5341), 5000)).toBe(19_000);
    expect(longerWindowMs(run(18, 1827), 5000)).toBe(10_000); // twice the window is enough there
    expect(longerWindowMs(run(0, 40_000), 5000)).toBe(60_000);
    expect(longerWindowMs(run(0, Number.NaN), 5000)).toBe(60_000); // no latency seen at all
  });
});

describe('what an idle CPU does (the machine description)', () => {
  function sysfs(files: Record<string, string>): ReturnType<typeof tempDir> {
    const dir = tempDir('kmipd-bench-sys-');
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir.path, path)), { recursive: true });
      writeFileSync(join(dir.path, path), `${text}\n`);
    }
    return dir;
  }
  const DRIVER = 'devices/system/cpu/cpuidle/current_driver';
  const POLL = 'module/haltpoll/parameters/guest_halt_poll_ns';

  it('names the driver, and for haltpoll how long an idle vCPU polls before it halts', () => {
    const cases: [Record<string, string>, string | undefined][] = [
      [{}, undefined],
      [{ [DRIVER]: 'intel_idle' }, 'cpuidle driver intel_idle'],
      [{ [DRIVER]: 'haltpoll', [POLL]: '0' }, 'cpuidle driver haltpoll, guest_halt_poll_ns 0 (an idle vCPU halts at once)'],
      [{ [DRIVER]: 'haltpoll', [POLL]: '200000' }, 'cpuidle driver haltpoll, guest_halt_poll_ns 200000 (an idle vCPU polls up to 200 µs before it halts)'],
      [{ [DRIVER]: 'haltpoll' }, 'cpuidle driver haltpoll'],
    ];
    for (const [files, expected] of cases) {
      const dir = sysfs(files);
      try {
        expect(cpuIdleDescription(dir.path), JSON.stringify(files)).toBe(expected);
      } finally {
        dir.remove();
      }
    }
  });

  it('names a scheduler setting upstream Linux lacks, where the kernel has one', () => {
    const none = sysfs({ 'sys/kernel/sched_autogroup_enabled': '1' });
    const packing = sysfs({ 'sys/kernel/sched_vcpu_pack': '15' });
    try {
      expect(schedulerDescription(none.path)).toBeUndefined();
      expect(schedulerDescription(packing.path)).toBe('kernel.sched_vcpu_pack 15 (a setting of this kernel that upstream Linux lacks)');
    } finally {
      none.remove();
      packing.remove();
    }
  });
});

describe('benchmark harness (smoke run)', () => {
  const bench = benchRunBeforeAll(
    'kmipd-bench-smoke-',
    [
      '--quick',
      '--suites', 'throughput,concurrency,handshakes,idle,keyscale,components,profile',
      '--profile-workloads', 'get',
      '--concurrency', '2,4',
      '--workloads', 'get,create,get-attributes,locate,vcenter',
      '--connections', '4',
      '--workers', '2',
      '--duration', '0.5',
      '--warmup', '0.1',
      '--repeat', '1',
      '--seed-keys', '20',
      '--pykmip-duration', '0.5',
      '--pykmip-seed-keys', '8',
      '--handshake-duration', '0.5',
      '--idle', '40',
      '--key-scale', '50,200',
      '--max-minutes', '4',
      '--label', 'smoke',
    ],
    300_000,
  );

  it('measures every workload against kmipd and PyKMIP with zero errors, and compares them', () => {
    const t = bench.results.throughput!;
    expect(t.pykmip, t.pykmipSkipped).toBeDefined();
    for (const server of [t.kmipd, t.pykmip!]) {
      expect(Object.keys(server.workloads).sort()).toEqual(['create', 'get', 'get-attributes', 'locate', 'vcenter']);
      for (const [name, f] of Object.entries(server.workloads)) {
        expect(f.errorCount, `${server.server} ${name}: ${JSON.stringify(f.errors)}`).toBe(0);
        expect(f.ops, `${server.server} ${name}`).toBeGreaterThan(0);
        expect(f.opsPerSec).toBeGreaterThan(0);
        expect(f.latency.p50Ms).toBeGreaterThan(0);
        expect(f.latency.p99Ms).toBeGreaterThanOrEqual(f.latency.p50Ms);
        expect(f.latency.p999Ms).toBeGreaterThanOrEqual(f.latency.p99Ms);
      }
      expect(Object.keys(server.workloads.vcenter!.byOperation).sort()).toEqual(['dv', 'get']);
      expect(server.store.objects).toBeGreaterThanOrEqual(server.seeded);
      expect(server.store.bytesPerObject).toBeGreaterThan(0);
    }
    expect(Object.keys(t.ratios).sort()).toEqual(['create', 'get', 'get-attributes', 'locate', 'vcenter']);
    for (const r of Object.values(t.ratios)) expect(r.throughput).toBeGreaterThan(0);
  });

  it('runs Create and Get at each connection count against one kmipd, with zero errors', () => {
    const points = bench.results.concurrency!.points;
    expect(points.map((p) => `${p.workload}@${p.connections}`)).toEqual(['create@2', 'create@4', 'get@2', 'get@4']);
    for (const p of points) {
      expect(p.figures.errorCount, `${p.workload}@${p.connections}: ${JSON.stringify(p.figures.errors)}`).toBe(0);
      expect(p.figures.connections).toBe(p.connections);
      expect(p.figures.ops).toBeGreaterThan(0);
    }
    expect(readFileSync(join(bench.outDir, 'report.md'), 'utf8')).toContain('## Scale with connections');
    // The Create target's line names the rate at the other counts (the throughput suite ran at 4).
    const create = bench.results.targets.find((t) => t.target.startsWith('Create'))!;
    expect(create.measured).toMatch(/ with 4 connections, p99 .*; [\d,]+ with 2$/);
  });

  it('opens new connections with full and resumed TLS sessions', () => {
    const hs = bench.results.handshakes!;
    expect(hs.kmipd.map((f) => `${f.tls} ${f.resume}`)).toEqual(['TLSv1.3 false', 'TLSv1.3 true', 'TLSv1.2 false', 'TLSv1.2 true']);
    for (const f of [...hs.kmipd, ...hs.pykmip]) {
      expect(f.errorCount, JSON.stringify(f.errors)).toBe(0);
      expect(f.connections).toBeGreaterThan(0);
      if (f.resume) expect(f.resumedShare).toBeGreaterThan(0.5);
      else expect(f.resumedShare).toBe(0);
    }
  });

  it('holds idle connections and measures the server memory meanwhile', () => {
    const idle = bench.results.idle!;
    expect(idle.idleOpened).toBe(40);
    expect(idle.idleStillOpenAtEnd).toBe(40);
    expect(idle.memoryWithIdle.rssMiB).toBeGreaterThan(0);
    expect(idle.activeBefore.errorCount + idle.activeWithIdle.errorCount + idle.activeAfter.errorCount).toBe(0);
    expect(idle.activeWithIdle.ops).toBeGreaterThan(0);
  });

  it('loads stores of several sizes and measures Get and Locate on each', () => {
    const ks = bench.results.keyScale!;
    expect(ks.points.map((p) => p.keys)).toEqual([50, 200]);
    for (const p of ks.points) {
      // The loaded keys plus the template key the server created.
      expect(p.store.objects).toBe(p.keys + 1);
      expect(Object.keys(p.figures).sort()).toEqual(['get@1', 'get@4', 'locate@1', 'locate@4']);
      for (const f of Object.values(p.figures)) {
        expect(f.errorCount, JSON.stringify(f.errors)).toBe(0);
        expect(f.ops).toBeGreaterThan(0);
      }
    }
    expect(Object.keys(ks.p99Growth).length).toBe(4);
    // One run per figure here (--repeat 1): each run's ratio is the ratio of the medians.
    for (const [figure, growth] of Object.entries(ks.p99Growth)) expect(ks.p99GrowthByRun[figure]).toEqual([growth]);
  });

  it('measures each building block in-process, the store Locate included', () => {
    const c = bench.results.components!;
    expect(c.map((x) => x.what)).toEqual([
      'HSM generateWrappedKey (Create)',
      'store insert, durable (Create)',
      'store get (Get, Get Attributes)',
      'store locate by name (Locate)',
      'HSM unwrapKey (Get)',
      'decode a Get request (TTLV)',
      'encode a Get response (TTLV)',
    ]);
    for (const x of c) {
      expect(x.calls, x.what).toBeGreaterThan(0);
      expect(x.wallUs, x.what).toBeGreaterThan(0);
    }
  });

  it('profiles the server under --cpu-prof, through bin/kmipd-serve (node options in a wrapper, not NODE_OPTIONS)', () => {
    const runs = bench.results.profiles!;
    expect(runs.map((r) => r.workload)).toEqual(['get']);
    expect(runs[0]!.figures.errorCount).toBe(0);
    expect(runs[0]!.profile.byFunction.length).toBeGreaterThan(0);
  });

  it('writes a report with the targets', () => {
    expect(bench.results.targets.length).toBeGreaterThanOrEqual(5);
    const md = readFileSync(join(bench.outDir, 'report.md'), 'utf8');
    expect(md).toContain('## Targets');
    expect(md).toContain('## Throughput and latency');
    expect(md).toContain('- kmipd: started by bin/kmipd-serve, allocator jemalloc');
    expect(existsSync(join(bench.outDir, 'results.json'))).toBe(true);
  });
});

describe('benchmark harness with --server-processes 2 (smoke run)', () => {
  // prettier-ignore
  const bench = benchRunBeforeAll(
    'kmipd-bench-smoke-p2-',
    [
      '--quick', '--no-pykmip',
      '--suites', 'throughput,idle', '--workloads', 'get,create', '--connections', '4',
      '--duration', '0.5', '--warmup', '0.1', '--repeat', '1', '--seed-keys', '20', '--idle', '40',
      '--server-processes', '2', '--keys-ahead', 'off', '--malloc', 'system', '--max-minutes', '3', '--label', 'smoke-p2',
    ],
    200_000,
  );

  it('runs kmipd as a primary and two serve processes, and counts the whole tree', () => {
    expect(bench.results.settings['serverProcesses']).toBe(2);
    expect(bench.results.settings['keysAhead']).toBe(false);
    const report = readFileSync(join(bench.outDir, 'report.md'), 'utf8');
    expect(report).toContain('2 serve processes behind one listener');
    expect(report).toContain('`hsm.makeKeysAhead` off');
    expect(report).toContain('- kmipd: started by bin/kmipd-serve, allocator system');
    const t = bench.results.throughput!;
    for (const [name, f] of Object.entries(t.kmipd.workloads)) {
      expect(f.errorCount, `${name}: ${JSON.stringify(f.errors)}`).toBe(0);
      expect(f.ops).toBeGreaterThan(0);
    }
    const idle = bench.results.idle!;
    expect(idle.idleStillOpenAtEnd).toBe(40);
    // Three Node processes: far more than one process's resident memory (~100 MiB) before any connection.
    expect(idle.memoryBefore.rssMiB).toBeGreaterThan(180);
  });
});

describe('benchmark harness, slow HSM suite (smoke run)', () => {
  // prettier-ignore
  const bench = benchRunBeforeAll(
    'kmipd-bench-smoke-slowhsm-',
    [
      '--quick', '--no-pykmip',
      '--suites', 'slowhsm', '--slow-hsm-sessions', '1,2', '--slow-hsm-keys-ahead', 'on,off',
      '--slow-hsm-workloads', 'get,create', '--slow-hsm-delay-us', '200', '--connections', '4',
      '--duration', '0.5', '--warmup', '0.1', '--repeat', '1', '--seed-keys', '20',
      '--max-minutes', '3', '--label', 'smoke-slowhsm',
    ],
    200_000,
  );

  it('runs each workload on each sessions and keys-ahead setting, with zero errors, and reports them', () => {
    const slow = bench.results.slowHsm!;
    expect(slow.delayUs).toBe(200);
    const seen = slow.points.map((p) => `${p.workload} ${p.sessions} ${p.keysAhead ? 'on' : 'off'}`).sort();
    expect(seen).toEqual(['create 1 off', 'create 1 on', 'create 2 off', 'create 2 on', 'get 1 off', 'get 1 on', 'get 2 off', 'get 2 on']);
    for (const p of slow.points) {
      expect(p.figures.errorCount, `${p.workload} ${p.sessions} ${String(p.keysAhead)}: ${JSON.stringify(p.figures.errors)}`).toBe(0);
      expect(p.figures.ops).toBeGreaterThan(0);
    }
    const report = readFileSync(join(bench.outDir, 'report.md'), 'utf8');
    expect(report).toContain('## On a slow HSM (200 µs per C_Decrypt, C_Encrypt and C_GenerateRandom');
    expect(report).toMatch(/^\| create \| 2 \| on \| 6 \| [\d,]+ \|/m);
  });
});
