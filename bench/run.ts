// kmipd benchmark: `npm run bench -- [options]` (see --help). Starts the servers under test as
// their own processes on loopback ports, drives them from forked load-generator processes, and
// writes results.json and report.md into bench/out/<time>/. Every run is bounded: each window
// has a duration and an operation cap, and --max-minutes stops the whole run.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { BenchContext } from './context.js';
import type { LoadSettings } from './measure.js';
import { loadAverage, machineDescription } from './proc-stats.js';
import { probeFsync } from './disk-probe.js';
import { checkTargets, markdownReport, type BenchResults } from './report.js';
import { runHandshakes } from './suites/handshakes.js';
import { runIdleConnections } from './suites/idle-connections.js';
import { runKeyScale } from './suites/key-scale.js';
import { runProfiles } from './suites/profile.js';
import { runComponents } from './suites/components.js';
import { runConcurrency } from './suites/concurrency.js';
import { runSlowHsm } from './suites/slow-hsm.js';
import { runComparison } from './suites/compare.js';
import { describeCheckout, prepareOtherBuild } from './other-build.js';
import { runThroughput } from './suites/throughput.js';
import { BENCH_DIR, closeWorkers, REPO_ROOT } from './worker-group.js';
import { killAllServers, type Malloc } from './targets.js';
import { DEFAULT_WORKLOADS, parseWorkload } from './workloads.js';
import { allowedCpus, checkPlacement, parseCpuList, pinThisProcess, type CpuPlacement } from './cpu-placement.js';

const SUITES = ['throughput', 'concurrency', 'handshakes', 'idle', 'keyscale', 'components', 'profile', 'slowhsm', 'compare'] as const;
type Suite = (typeof SUITES)[number];

const HELP = `usage: npm run bench -- [options]

suites (default: throughput,concurrency,handshakes,idle,keyscale,components):
  --suites LIST            comma-separated: ${SUITES.join(', ')}
  --quick                  small, short settings (a smoke run of every suite in about a minute)

before and after a change:
  --compare REF            run the workloads on this checkout and on REF (a git revision of this
                           repository, checked out and built in the scratch folder, or a folder
                           holding a built kmipd) in alternated pairs, --repeat pairs each, and
                           report the ratios; the suite 'compare', which is then the default

load:
  --connections N          persistent connections for the throughput workloads (16)
  --workers N              load-generator processes (2)
  --depth N                requests in flight per connection (1)
  --duration S             measured seconds per kmipd run (10)
  --warmup S               unmeasured seconds before each window (2)
  --repeat N               runs per figure; medians are reported (3)
  --max-ops N              cap on operations per run (2000000)
  --workloads LIST         ${DEFAULT_WORKLOADS.join(',')} (also: NAME=kind:weight+kind:weight,
                           kinds: create, get, get-attributes, locate (by name),
                           locate-length (no index narrows it), dv)
  --seed-keys N            keys created over KMIP for Get/Get Attributes/Locate (1000)

PyKMIP's server (Debian python3-pykmip), same workloads in the same run:
  --no-pykmip              skip it
  --pykmip-duration S      measured seconds per PyKMIP run (5); a workload with fewer than 30
                           answers in it is run once more over a longer window (at most 60 s)
  --pykmip-seed-keys N     (as --seed-keys: Locate's cost depends on the store size)

other suites:
  --concurrency LIST       concurrency suite: connection counts (16,32,64)
  --concurrency-workloads LIST  workloads it runs at each count (create,get)
  --key-scale LIST         store sizes for the keyscale suite (1000,100000)
  --million                add 1000000 to --key-scale (takes about 10 minutes more)
  --key-sample N           keys the keyscale workloads address, spread over the store (2000);
                           more than kmipd keeps in memory (8192) measures reads from the file
  --idle N                 idle connections to hold (10000)
  --handshake-duration S   measured seconds per handshake run (5)
  --profile-dir DIR        where the profile suite writes .cpuprofile files (bench/out/<run>/profiles)
  --profile-workloads LIST workloads the profile suite runs, one server each (get,create)
  --slow-hsm-delay-us N    slowhsm suite: microseconds the slow PKCS#11 shim sleeps per C_Decrypt /
                           C_Encrypt / C_GenerateRandom, like a network HSM (1000)
  --slow-hsm-sessions LIST slowhsm suite: hsm.sessions values to compare (1,8)
  --slow-hsm-keys-ahead LIST slowhsm suite: hsm.makeKeysAhead values to compare (on,off)
  --slow-hsm-workloads LIST slowhsm suite: workloads each server runs (get,create)

  --server-processes N     kmipd serve processes behind the one listener (kmipd.json processes; 1)
  --keys-ahead on|off      kmipd.json hsm.makeKeysAhead for every kmipd under test (kmipd's default,
                           on); the slowhsm suite sets it itself (--slow-hsm-keys-ahead)
  --malloc jemalloc|system kmipd's allocator: jemalloc as bin/kmipd-serve starts it (default), or
                           glibc's malloc (KMIPD_MALLOC=system)
  --label TEXT             what is measured (e.g. a commit); default: the checkout path
  --out DIR                results folder (bench/out/<time>)
  --keep                   keep the scratch data folders
  --max-minutes N          stop everything after this long (120)

where things run (taskset; the targets are set for 2 cores shared with the load generator, and
the report says when a run's CPUs differ from that):
  --server-cpus LIST       CPUs kmipd and PyKMIP run on, as taskset lists them (e.g. 0,1 or 0-1)
  --generator-cpus LIST    CPUs the load generator (and the bench's own process) run on (e.g. 2-3)
`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      help: { type: 'boolean', short: 'h' },
      suites: { type: 'string' },
      quick: { type: 'boolean' },
      connections: { type: 'string' },
      workers: { type: 'string' },
      depth: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      repeat: { type: 'string' },
      'max-ops': { type: 'string' },
      workloads: { type: 'string' },
      'seed-keys': { type: 'string' },
      'no-pykmip': { type: 'boolean' },
      'pykmip-duration': { type: 'string' },
      'pykmip-seed-keys': { type: 'string' },
      'key-scale': { type: 'string' },
      million: { type: 'boolean' },
      'key-sample': { type: 'string' },
      idle: { type: 'string' },
      'handshake-duration': { type: 'string' },
      'profile-dir': { type: 'string' },
      'profile-workloads': { type: 'string' },
      concurrency: { type: 'string' },
      'concurrency-workloads': { type: 'string' },
      'slow-hsm-delay-us': { type: 'string' },
      'slow-hsm-sessions': { type: 'string' },
      'slow-hsm-keys-ahead': { type: 'string' },
      'keys-ahead': { type: 'string' },
      malloc: { type: 'string' },
      'server-cpus': { type: 'string' },
      'generator-cpus': { type: 'string' },
      'slow-hsm-workloads': { type: 'string' },
      'server-processes': { type: 'string' },
      compare: { type: 'string' },
      label: { type: 'string' },
      out: { type: 'string' },
      keep: { type: 'boolean' },
      'max-minutes': { type: 'string' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const quick = values.quick === true;
  /** Seconds may have fractions; everything else counts something and must be a whole number. */
  const fractional = new Set(['duration', 'warmup', 'pykmip-duration', 'handshake-duration', 'max-minutes']);
  const num = (name: string, v: string | undefined, dflt: number, quickValue = dflt): number => {
    if (v === undefined) return quick ? quickValue : dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0 || (!fractional.has(name) && !Number.isInteger(n))) {
      throw new Error(`--${name} must be a positive ${fractional.has(name) ? 'number' : 'whole number'}, got ${JSON.stringify(v)}`);
    }
    return n;
  };
  const onOff = (name: string, v: string): boolean => {
    if (v !== 'on' && v !== 'off') throw new Error(`--${name} takes on and/or off, got ${JSON.stringify(v)}`);
    return v === 'on';
  };
  const defaultSuites = values.compare === undefined ? 'throughput,concurrency,handshakes,idle,keyscale,components' : 'compare';
  const suites = (values.suites ?? defaultSuites).split(',').map((s) => s.trim());
  for (const s of suites) if (!(SUITES as readonly string[]).includes(s)) throw new Error(`unknown suite ${s} (known: ${SUITES.join(', ')})`);
  if (suites.includes('compare') && values.compare === undefined) throw new Error('the compare suite needs --compare REF (what to compare this checkout with)');
  const want = (s: Suite) => suites.includes(s);

  const connections = num('connections', values.connections, 16, 4);
  const workers = num('workers', values.workers, 2);
  const depth = num('depth', values.depth, 1);
  const load: LoadSettings = {
    connections,
    workers,
    depth,
    warmupMs: num('warmup', values.warmup, 2, 0.5) * 1000,
    durationMs: num('duration', values.duration, 10, 1.5) * 1000,
    maxOps: num('max-ops', values['max-ops'], 2_000_000, 200_000),
  };
  const repeat = num('repeat', values.repeat, 3, 1);
  const workloads = (values.workloads ?? DEFAULT_WORKLOADS.join(',')).split(',').map((w) => parseWorkload(w.trim()));
  const seedKeys = num('seed-keys', values['seed-keys'], 1000, 50);
  const pykmip = values['no-pykmip']
    ? undefined
    : { durationMs: num('pykmip-duration', values['pykmip-duration'], 5, 1.5) * 1000, warmupMs: Math.min(load.warmupMs, 1000), repeat: 1, seedKeys: num('pykmip-seed-keys', values['pykmip-seed-keys'], seedKeys) };
  const sizes = (values['key-scale'] ?? (quick ? '200,2000' : '1000,100000')).split(',').map((s) => num('key-scale', s, 1000));
  if (values.million && !sizes.includes(1_000_000)) sizes.push(1_000_000);
  const idle = num('idle', values.idle, 10_000, 200);
  const handshakeMs = num('handshake-duration', values['handshake-duration'], 5, 1.5) * 1000;
  const maxMinutes = num('max-minutes', values['max-minutes'], 120);
  const serverProcesses = num('server-processes', values['server-processes'], 1);
  const keysAhead = values['keys-ahead'] === undefined ? undefined : onOff('keys-ahead', values['keys-ahead']);
  const malloc = values.malloc ?? 'jemalloc';
  if (malloc !== 'jemalloc' && malloc !== 'system') throw new Error(`--malloc is jemalloc or system, not ${malloc}`);
  const availableCpus = allowedCpus('self');
  const placement: CpuPlacement = {
    servers: values['server-cpus'] === undefined ? undefined : parseCpuList(values['server-cpus']),
    generator: values['generator-cpus'] === undefined ? undefined : parseCpuList(values['generator-cpus']),
  };
  checkPlacement(placement, availableCpus);
  // Before the first fork: the load generator's processes inherit the mask.
  if (placement.generator) pinThisProcess(placement.generator);

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outDir = values.out ?? join(BENCH_DIR, 'out', stamp);
  mkdirSync(outDir, { recursive: true });
  const workDir = mkdtempSync(join(tmpdir(), 'kmipd-bench-'));
  const ctx: BenchContext = {
    root: REPO_ROOT,
    workDir,
    profileDir: values['profile-dir'] ?? join(outDir, 'profiles'),
    serverProcesses,
    keysAhead,
    malloc: malloc satisfies Malloc,
    serverCpus: placement.servers,
    log: (msg) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`),
  };
  const settings = {
    load,
    repeat,
    workloads: workloads.map((w) => w.name),
    seedKeys,
    pykmip,
    sizes,
    idle,
    handshakeMs,
    quick,
    serverProcesses,
    malloc,
    ...(keysAhead === undefined ? {} : { keysAhead }),
    ...(values.compare === undefined ? {} : { compare: values.compare }),
  };
  ctx.log(`bench: suites ${suites.join(', ')}; scratch ${workDir}; results ${outDir}`);

  /** Removes the --compare worktree, from the moment it exists (before it is built). */
  let removeWorktree: (() => void) | undefined;
  // The whole run is bounded: past --max-minutes everything this process started is killed.
  const abandon = (why: string, code: number) => {
    ctx.log(`bench: ${why}; stopping the servers and load generators`);
    killAllServers();
    closeWorkers();
    removeWorktree?.();
    if (!values.keep) rmSync(workDir, { recursive: true, force: true });
    process.exit(code);
  };
  const deadline = setTimeout(() => abandon(`still running after ${maxMinutes} minutes`, 2), maxMinutes * 60_000);
  deadline.unref();
  // PyKMIP's server runs in its own process group, out of reach of a terminal's Ctrl-C.
  process.once('SIGINT', () => abandon('interrupted', 130));
  process.once('SIGTERM', () => abandon('terminated', 143));

  const startedAt = new Date().toISOString();
  const partial: { -readonly [K in keyof Omit<BenchResults, 'targets' | 'finishedAt'>]: BenchResults[K] } = {
    label: values.label ?? REPO_ROOT,
    startedAt,
    command: `npm run bench -- ${process.argv.slice(2).filter((a) => a !== '--').join(' ')}`.trim(),
    machine: machineDescription(),
    loadAverage: { start: loadAverage() },
    disk: { start: probeFsync(workDir) },
    generator: { workers, connections, depth },
    cpus: { available: availableCpus, ...placement },
    settings,
  };
  const save = (final: boolean) => {
    const results: BenchResults = {
      ...partial,
      loadAverage: { ...partial.loadAverage, end: loadAverage() },
      disk: final ? { ...partial.disk, end: probeFsync(workDir) } : partial.disk,
      finishedAt: final ? new Date().toISOString() : '(running)',
      targets: checkTargets(partial),
    };
    writeFileSync(join(outDir, 'results.json'), JSON.stringify(results, null, 2));
    writeFileSync(join(outDir, 'report.md'), markdownReport(results));
    return results;
  };

  return (async () => {
    try {
      if (want('compare')) {
        const otherBuild = await prepareOtherBuild(REPO_ROOT, values.compare!, workDir, ctx.log, (remove) => (removeWorktree = remove));
        const otherDir = join(workDir, 'other-build');
        mkdirSync(otherDir, { recursive: true });
        partial.comparison = await runComparison(
          ctx,
          { ...ctx, root: otherBuild.root, workDir: otherDir },
          { checkout: await describeCheckout(REPO_ROOT), other: otherBuild.label },
          { workloads, load, pairs: repeat, seedKeys },
        );
        save(false);
      }
      if (want('throughput')) {
        partial.throughput = await runThroughput(ctx, { workloads, load, repeat, seedKeys, pykmip });
        save(false);
      }
      if (want('concurrency')) {
        partial.concurrency = await runConcurrency(ctx, {
          connections: (values.concurrency ?? (quick ? '2,4' : '16,32,64')).split(',').map((s) => num('concurrency', s.trim(), 16)),
          workloads: (values['concurrency-workloads'] ?? 'create,get').split(',').map((w) => parseWorkload(w.trim())),
          load,
          repeat,
          seedKeys: Math.min(seedKeys, 1000),
        });
        save(false);
      }
      if (want('handshakes')) {
        partial.handshakes = await runHandshakes(ctx, {
          parallel: connections,
          workers,
          warmupMs: load.warmupMs,
          durationMs: handshakeMs,
          maxOps: load.maxOps,
          pykmip: pykmip ? { durationMs: Math.min(handshakeMs, pykmip.durationMs) } : undefined,
        });
        save(false);
      }
      if (want('idle')) {
        partial.idle = await runIdleConnections(ctx, {
          idle,
          holders: workers,
          concurrency: 32,
          active: { ...load, connections: 1, workers: 1 },
          repeat,
          seedKeys: Math.min(seedKeys, 1000),
        });
        save(false);
      }
      if (want('keyscale')) {
        partial.keyScale = await runKeyScale(ctx, { sizes, sample: num('key-sample', values['key-sample'], 2000, 100), load, loadedConnections: connections, repeat, keep: values.keep === true });
        save(false);
      }
      if (want('components')) {
        partial.components = await runComponents(ctx);
        save(false);
      }
      if (want('slowhsm')) {
        partial.slowHsm = await runSlowHsm(ctx, {
          delayUs: num('slow-hsm-delay-us', values['slow-hsm-delay-us'], 1000),
          sessions: (values['slow-hsm-sessions'] ?? '1,8').split(',').map((s) => num('slow-hsm-sessions', s.trim(), 1)),
          keysAhead: (values['slow-hsm-keys-ahead'] ?? 'on,off').split(',').map((s) => onOff('slow-hsm-keys-ahead', s.trim())),
          workloads: (values['slow-hsm-workloads'] ?? 'get,create').split(',').map((w) => parseWorkload(w.trim())),
          load,
          repeat,
          seedKeys: Math.min(seedKeys, 1000),
        });
        save(false);
      }
      if (want('profile')) {
        partial.profiles = await runProfiles(ctx, {
          dir: ctx.profileDir!,
          workloads: (values['profile-workloads'] ?? 'get,create').split(',').map((w) => parseWorkload(w.trim())),
          load: { ...load, warmupMs: 0 },
          seedKeys,
        });
      }
      const results = save(true);
      process.stdout.write(markdownReport(results));
      const failed = results.targets.filter((t) => t.met === false).length;
      ctx.log(`bench: done; ${results.targets.length - failed} of ${results.targets.length} targets met or not measured at full scale; results in ${outDir}`);
    } finally {
      closeWorkers();
      removeWorktree?.();
      clearTimeout(deadline);
      if (!values.keep) rmSync(workDir, { recursive: true, force: true });
    }
  })();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
