// Results of a benchmark run: the targets of issue 6 checked, and a Markdown report.
import type { LatencySummary } from './histogram.js';
import type { ThroughputResult, MedianFigures } from './suites/throughput.js';
import type { HandshakeResult } from './suites/handshakes.js';
import type { IdleResult } from './suites/idle-connections.js';
import type { KeyScaleResult } from './suites/key-scale.js';
import type { ProfiledRun } from './suites/profile.js';
import type { SlowHsmResult } from './suites/slow-hsm.js';
import type { ConcurrencyResult } from './suites/concurrency.js';
import type { ComparisonResult } from './suites/compare.js';
import { formatProfile } from './profile-summary.js';
import type { DiskProbe } from './disk-probe.js';
import type { ComponentCost } from './components.js';
import type { MachineDescription } from './proc-stats.js';
import { placementDescription, type CpuPlacement, type CpuSet } from './cpu-placement.js';

export interface BenchResults {
  readonly label: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly command: string;
  readonly machine: MachineDescription;
  /** Load averages when the run started and when it finished (other work on the machine). */
  readonly loadAverage: { readonly start: number[]; readonly end?: number[] };
  /** 4 KiB write + fdatasync on the scratch disk, at the start and at the end of the run. */
  readonly disk: { readonly start: DiskProbe; readonly end?: DiskProbe };
  readonly generator: { workers: number; connections: number; depth: number };
  /** Where servers and load generator ran: the CPUs the bench could use, and what it pinned. */
  readonly cpus?: CpuPlacement & { readonly available: CpuSet };
  readonly settings: Record<string, unknown>;
  readonly throughput?: ThroughputResult;
  readonly concurrency?: ConcurrencyResult;
  readonly handshakes?: HandshakeResult;
  readonly idle?: IdleResult;
  readonly keyScale?: KeyScaleResult;
  readonly profiles?: ProfiledRun[];
  readonly components?: ComponentCost[];
  readonly slowHsm?: SlowHsmResult;
  readonly comparison?: ComparisonResult;
  readonly targets: TargetCheck[];
}

export interface TargetCheck {
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a');
/** Rates: whole numbers, except below 10 where the fraction matters (a Locate per second). */
const rate = (n: number) => fmt(n, Number.isFinite(n) && n < 10 ? 2 : 0);
const ms = (n: number) => (Number.isFinite(n) ? `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms` : 'n/a');

/** Server CPU time per operation: less disturbed by other work on the machine than ops/s. */
const perOp = (cores: number, perSec: number) => (perSec > 0 && Number.isFinite(cores) ? `${fmt((cores * 1e6) / perSec)} µs` : 'n/a');

export function checkTargets(r: Omit<BenchResults, 'targets' | 'finishedAt'>): TargetCheck[] {
  const out: TargetCheck[] = [];
  const w = r.throughput?.kmipd.workloads;
  if (w?.get) {
    const g = w.get;
    out.push({
      target: `Get >= 20,000 ops/s with 16 connections, p99 <= 5 ms`,
      measured: `${fmt(g.opsPerSec)} ops/s with ${g.connections} connections, p99 ${ms(g.latency.p99Ms)}`,
      met: g.connections === 16 ? g.opsPerSec >= 20_000 && g.latency.p99Ms <= 5 : undefined,
    });
  }
  if (w?.create) {
    const c = w.create;
    out.push({
      target: 'Create (durable) >= 10,000 ops/s with 16 connections',
      measured:
        `${fmt(c.opsPerSec)} ops/s with ${c.connections} connections, p99 ${ms(c.latency.p99Ms)}` +
        // The rate grows with clients creating at once (they share commits): the concurrency suite says how far.
        (r.concurrency?.points
          .filter((p) => p.workload === 'create' && p.connections !== c.connections)
          .map((p) => `; ${fmt(p.figures.opsPerSec)} with ${p.connections}`)
          .join('') ?? ''),
      met: c.connections === 16 ? c.opsPerSec >= 10_000 : undefined,
    });
  }
  const ks = r.keyScale;
  if (ks && ks.points.length > 1) {
    const first = ks.points[0]!;
    const last = ks.points[ks.points.length - 1]!;
    const full = first.keys <= 1_000 && last.keys >= 1_000_000;
    for (const [name, label] of [
      ['get', 'Get'],
      ['locate', 'Locate by name'],
    ] as const) {
      const keys = Object.keys(ks.p99Growth).filter((k) => k.startsWith(`${name}@`));
      const byRun = (k: string) => (ks.p99GrowthByRun[k] ?? []).map((g) => `x${fmt(g, 2)}`).join(', ');
      const growth = keys.map((k) => `${k}: ${ms(first.figures[k]!.latency.p99Ms)} -> ${ms(last.figures[k]!.latency.p99Ms)} (x${fmt(ks.p99Growth[k]!, 2)}; each run: ${byRun(k)})`);
      out.push({
        target: `${label} p99 at 1 M keys within 1.5x of 1 k keys`,
        measured: `${fmt(first.keys)} -> ${fmt(last.keys)} keys; ${growth.join('; ')}`,
        met: full ? keys.every((k) => ks.p99Growth[k]! <= 1.5) : undefined,
      });
    }
  }
  const idle = r.idle;
  if (idle) {
    const kept = idle.activeWithIdle.latency.p99Ms <= 1.5 * idle.activeAlone.latency.p99Ms;
    out.push({
      target: '10,000 idle connections in < 1 GiB RSS while an active client keeps its p99 (within 1.5x)',
      measured:
        `${fmt(idle.idleOpened)} held, RSS ${fmt(idle.memoryWithIdle.rssMiB)} MiB (peak ${fmt(idle.memoryAfterActive.hwmMiB)} MiB); ` +
        `active p99 ${ms(idle.activeAlone.latency.p99Ms)} alone, ${ms(idle.activeWithIdle.latency.p99Ms)} with them`,
      met: idle.idleOpened >= 10_000 ? idle.memoryAfterActive.hwmMiB < 1024 && kept && idle.idleStillOpenAtEnd === idle.idleOpened : undefined,
    });
  }
  const hs = r.handshakes?.kmipd.filter((f) => f.resume);
  if (hs?.length) {
    out.push({
      target: '>= 1,000 new mTLS connections/s with session resumption',
      measured: hs.map((f) => `${f.tls}: ${fmt(f.connectionsPerSec)}/s (${fmt(f.resumedShare * 100)} % resumed)`).join('; '),
      met: hs.every((f) => f.connectionsPerSec >= 1_000 && f.resumedShare > 0.9),
    });
  }
  return out;
}

function latencyCells(l: LatencySummary): string {
  return `${ms(l.p50Ms)} | ${ms(l.p99Ms)} | ${ms(l.p999Ms)}`;
}

function errorsCell(f: { errorCount: number; errors: Record<string, number> }): string {
  return f.errorCount === 0 ? '0' : `${f.errorCount} (${Object.entries(f.errors).map(([k, n]) => `${k}: ${n}`).join(', ')})`;
}

/** ops/s (median), its range over the runs, p50 | p99 | p99.9, errors, server cores: the cells every load table shares. */
function loadCells(f: MedianFigures): string {
  return `${rate(f.opsPerSec)} | ${rate(f.opsPerSecRange[0])}–${rate(f.opsPerSecRange[1])} (${f.runs} run${f.runs === 1 ? '' : 's'}) | ${latencyCells(f.latency)} | ${errorsCell(f)} | ${fmt(f.serverCores, 2)}`;
}

function throughputTable(t: ThroughputResult): string[] {
  const out = [
    '| server | workload | ops/s (median) | range | p50 | p99 | p99.9 | errors | server cores | server CPU per op | generator cores |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const rows = (name: string, ws: Record<string, MedianFigures>) => {
    for (const [w, f] of Object.entries(ws)) {
      out.push(
        `| ${name} | ${w} | ${loadCells(f)} | ${perOp(f.serverCores, f.opsPerSec)} | ${fmt(f.generatorCores, 2)} |`,
      );
    }
  };
  rows('kmipd', t.kmipd.workloads);
  if (t.pykmip) rows('PyKMIP', t.pykmip.workloads);
  return out;
}

function comparisonSection(c: ComparisonResult): string[] {
  const out = ['', '## This checkout against another build (alternated pairs)', ''];
  out.push(`- this checkout: ${c.checkout}`, `- the other build: ${c.other}`);
  out.push(
    '- each pair is one run of each build, back to back; the build that runs first swaps from pair to pair',
    '- two builds of the same code give ratios on both sides of 1: read a change from the median and from how many pairs agree, and give it more pairs where they disagree',
    '',
  );
  out.push(
    '| workload | this checkout, ops/s by pair | the other, ops/s by pair | ratio by pair | **median ratio** | this checkout ahead | server CPU per op, this ÷ other (median) | p99, this / other (medians) | errors, this / other |',
    '|---|---|---|---|---:|---:|---:|---|---|',
  );
  const list = (xs: readonly number[], f: (n: number) => string) => xs.map(f).join(' / ');
  const ratio = (n: number) => (Number.isFinite(n) ? `x${fmt(n, 3)}` : 'n/a');
  for (const [w, x] of Object.entries(c.workloads)) {
    out.push(
      `| ${w} | ${list(x.pairs.map((p) => p.checkout.opsPerSec), rate)} | ${list(x.pairs.map((p) => p.other.opsPerSec), rate)} | ${list(x.ratios, ratio)} | **${ratio(x.medianRatio)}** | ${x.checkoutAhead} of ${x.pairs.length} | ` +
        `${ratio(x.medianCpuRatio)} | ${ms(x.checkout.latency.p99Ms)} / ${ms(x.other.latency.p99Ms)} | ${errorsCell(x.checkout)} / ${errorsCell(x.other)} |`,
    );
  }
  return out;
}

export function markdownReport(r: BenchResults): string {
  const out: string[] = [];
  out.push(`# kmipd benchmark: ${r.label}`, '');
  out.push(`- started ${r.startedAt}, finished ${r.finishedAt}`);
  out.push(`- machine: ${r.machine.cpus} CPUs (${r.machine.model}), ${r.machine.memoryGiB} GiB, Node ${r.machine.node}, Linux ${r.machine.kernel}`);
  if (r.machine.idle) out.push(`- idle CPUs: ${r.machine.idle}`);
  if (r.machine.scheduler) out.push(`- scheduler: ${r.machine.scheduler}`);
  out.push(`- load average (1/5/15 min) at start ${r.loadAverage.start.join(' / ')}, at end ${r.loadAverage.end?.join(' / ') ?? 'n/a'}`);
  const disk = (d: DiskProbe | undefined) => (d ? `${fmt(d.syncsPerSec)}/s (p50 ${ms(d.p50Ms)}, p99 ${ms(d.p99Ms)})` : 'n/a');
  out.push(`- disk (4 KiB write + fdatasync, one writer): ${disk(r.disk.start)} at start, ${disk(r.disk.end)} at end`);
  out.push(`- command: \`${r.command}\``);
  if (Number(r.settings['serverProcesses'] ?? 1) > 1) out.push(`- kmipd: ${String(r.settings['serverProcesses'])} serve processes behind one listener (\`processes\`)`);
  out.push(`- kmipd: started by bin/kmipd-serve, allocator ${String(r.settings['malloc'] ?? 'system (before --malloc)')}`);
  if (typeof r.settings['keysAhead'] === 'boolean') out.push(`- kmipd: \`hsm.makeKeysAhead\` ${r.settings['keysAhead'] ? 'on' : 'off'}`);
  out.push(`- load generator: ${r.generator.workers} worker processes, ${r.generator.connections} connections, ${r.generator.depth} request(s) in flight per connection, on the same machine`);
  // Reports from before --server-cpus have no `cpus`: nothing is said rather than guessed.
  const placement = r.cpus ? placementDescription(r.cpus, r.cpus.available) : undefined;
  if (placement) out.push(`- CPUs: ${placement.line}`);
  out.push('', '## Targets', '');
  if (r.targets.length === 0) out.push('None: no suite of this run measures one.');
  else out.push('| target | measured | met |', '|---|---|---|');
  for (const t of r.targets) out.push(`| ${t.target} | ${t.measured} | ${t.met === undefined ? 'not measured at full scale' : t.met ? 'yes' : '**no**'} |`);
  if (r.targets.length > 0 && placement?.departs) out.push('', placement.departs);

  if (r.comparison) out.push(...comparisonSection(r.comparison));
  const t = r.throughput;
  if (t) {
    out.push('', '## Throughput and latency (same workloads, same run)', '');
    out.push(...throughputTable(t));
    for (const s of [t.kmipd, t.pykmip]) {
      for (const [w, l] of Object.entries(s?.lengthened ?? {})) {
        out.push(
          '',
          `${s!.server === 'pykmip' ? 'PyKMIP' : s!.server} ${w}: ${l.answers} answer${l.answers === 1 ? '' : 's'} in the ${fmt(l.fromMs / 1000)} s window (p50 ${ms(l.p50Ms)}; ` +
            `an answer counts when its request was sent and answered in the window), so the row above is one run over ${fmt(l.toMs / 1000)} s.`,
        );
      }
    }
    if (t.pykmipSkipped) out.push('', `PyKMIP: ${t.pykmipSkipped}`);
    if (Object.keys(t.ratios).length) {
      out.push('', '| workload | kmipd ÷ PyKMIP ops/s | PyKMIP p99 ÷ kmipd p99 |', '|---|---:|---:|');
      // PyKMIP can answer nothing in a window (its Locate at 100,000 keys): no ratio, not 'n/ax'.
      const times = (n: number) => (Number.isFinite(n) ? `${fmt(n, 1)}x` : 'n/a');
      for (const [w, x] of Object.entries(t.ratios)) out.push(`| ${w} | ${times(x.throughput)} | ${times(x.p99)} |`);
    }
    out.push('', '| server | objects | store bytes | bytes per object | seeding |', '|---|---:|---:|---:|---:|');
    for (const s of [t.kmipd, t.pykmip]) {
      if (s) out.push(`| ${s.server} | ${fmt(s.store.objects)} | ${fmt(s.store.bytes)} | ${fmt(s.store.bytesPerObject)} | ${s.seeded} keys in ${fmt(s.seedSeconds, 1)} s |`);
    }
  }
  const cc = r.concurrency;
  if (cc) {
    out.push('', `## Scale with connections (kmipd; ${r.generator.depth} request${r.generator.depth === 1 ? '' : 's'} in flight per connection)`, '');
    out.push('| workload | connections | ops/s (median) | range | p50 | p99 | p99.9 | errors | server cores | server CPU per op |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const { workload, connections, figures: f } of cc.points) {
      out.push(
        `| ${workload} | ${connections} | ${loadCells(f)} | ${perOp(f.serverCores, f.opsPerSec)} |`,
      );
    }
  }
  const ks = r.keyScale;
  if (ks) {
    out.push('', '## Scale with stored keys (kmipd)', '');
    out.push('| keys | figure | ops/s | p50 | p99 | p99.9 | errors |', '|---:|---|---:|---:|---:|---:|---:|');
    for (const p of ks.points) {
      for (const [k, f] of Object.entries(p.figures)) out.push(`| ${fmt(p.keys)} | ${k} | ${rate(f.opsPerSec)} | ${latencyCells(f.latency)} | ${errorsCell(f)} |`);
    }
    out.push('', '| keys | load time | store bytes | bytes per key |', '|---:|---:|---:|---:|');
    for (const p of ks.points) out.push(`| ${fmt(p.keys)} | ${fmt(p.loadSeconds)} s (${p.loadDurability}) | ${fmt(p.store.bytes)} | ${fmt(p.store.bytesPerObject)} |`);
  }
  const idle = r.idle;
  if (idle) {
    out.push('', '## Idle connections (kmipd)', '');
    out.push(`- ${fmt(idle.idleOpened)} of ${fmt(idle.idleRequested)} opened in ${fmt(idle.openSeconds, 1)} s; ${fmt(idle.idleStillOpenAtEnd)} still open at the end; errors ${JSON.stringify(idle.openErrors)}`);
    out.push(`- server flags: \`${idle.serveArgs.join(' ') || '(none needed)'}\``);
    out.push(`- RSS: ${fmt(idle.memoryBefore.rssMiB)} MiB before, ${fmt(idle.memoryWithIdle.rssMiB)} MiB holding them (${fmt(idle.kibPerConnection, 1)} KiB per connection), peak ${fmt(idle.memoryAfterActive.hwmMiB)} MiB`);
    out.push('', '| active client | ops/s | p50 | p99 | p99.9 | errors |', '|---|---:|---:|---:|---:|---:|');
    const row = (label: string, f: MedianFigures) => out.push(`| ${label} | ${fmt(f.opsPerSec)} | ${latencyCells(f.latency)} | ${errorsCell(f)} |`);
    row('alone, before', idle.activeBefore);
    row(`with ${fmt(idle.idleOpened)} idle`, idle.activeWithIdle);
    row('alone, after they closed', idle.activeAfter);
    row('alone (before and after)', idle.activeAlone);
  }
  const hs = r.handshakes;
  if (hs) {
    out.push('', '## New connections per second (handshake + one Discover Versions + close)', '');
    out.push(
      '| server | TLS | session | conn/s | resumed | p50 | p99 | p99.9 | errors | server cores | server CPU per connection | generator cores |',
      '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const f of [...hs.kmipd, ...hs.pykmip]) {
      out.push(`| ${f.server} | ${f.tls} | ${f.resume ? 'resumed' : 'full'} | ${fmt(f.connectionsPerSec)} | ${fmt(f.resumedShare * 100)} % | ${latencyCells(f.latency)} | ${errorsCell(f)} | ${fmt(f.serverCores, 2)} | ${perOp(f.serverCores, f.connectionsPerSec)} | ${fmt(f.generatorCores, 2)} |`);
    }
  }
  if (r.components?.length) {
    out.push('', '## Building blocks, one call at a time (kmipd code in-process, no TLS)', '');
    out.push('| call | calls | wall per call | CPU per call |', '|---|---:|---:|---:|');
    for (const c of r.components) out.push(`| ${c.what} | ${fmt(c.calls)} | ${fmt(c.wallUs, 1)} µs | ${fmt(c.cpuUs, 1)} µs |`);
  }
  const slow = r.slowHsm;
  if (slow) {
    out.push('', `## On a slow HSM (${fmt(slow.delayUs)} µs per C_Decrypt, C_Encrypt and C_GenerateRandom, like a network HSM)`, '');
    out.push(
      '| workload | hsm.sessions | keys ahead | libuv threads | ops/s (median) | range | p50 | p99 | p99.9 | errors | server cores |',
      '|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    const inOrder = [...slow.points].sort((a, b) => (a.workload < b.workload ? -1 : a.workload > b.workload ? 1 : 0));
    for (const p of inOrder) out.push(`| ${p.workload} | ${p.sessions} | ${p.keysAhead ? 'on' : 'off'} | ${p.uvThreads} | ${loadCells(p.figures)} |`);
  }
  if (r.profiles?.length) {
    out.push('', '## CPU profiles (kmipd server, node --cpu-prof)', '');
    for (const p of r.profiles) out.push(formatProfile(p.profile, `${p.workload}: ${fmt(p.figures.opsPerSec)} ops/s while profiled`), '');
  }
  return out.join('\n') + '\n';
}
