// Coordinator side of the load generator: forks one process per job, waits until every one has
// its connections open, starts their windows together and merges what they measured.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Histogram } from './histogram.js';
import type { FromWorker, Job, RunWindow, ToWorker, WorkerResult } from './worker-protocol.js';

export const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const VITE_NODE = fileURLToPath(new URL('../node_modules/vite-node/vite-node.mjs', import.meta.url));
const WORKER = fileURLToPath(new URL('./load-worker.ts', import.meta.url));

/** n split as evenly as possible into k positive parts (fewer parts when n < k). */
export function splitEvenly(n: number, k: number): number[] {
  const parts = Math.max(1, Math.min(n, k));
  return Array.from({ length: parts }, (_, i) => Math.floor(n / parts) + (i < n % parts ? 1 : 0));
}

export interface Merged {
  readonly histograms: Map<string, Histogram>;
  readonly all: Histogram;
  /** Sum over workers of ops / window. */
  readonly opsPerSec: number;
  readonly ops: number;
  readonly errors: Record<string, number>;
  readonly errorCount: number;
  /** CPU the generator used, in cores (1.0 = one core busy all window). */
  readonly generatorCores: number;
  readonly windowMs: number;
  readonly resumed: number;
}

export function mergeResults(results: readonly WorkerResult[]): Merged {
  const histograms = new Map<string, Histogram>();
  const all = new Histogram();
  const errors: Record<string, number> = {};
  let opsPerSec = 0;
  let ops = 0;
  let cores = 0;
  let windowMs = 0;
  let resumed = 0;
  for (const r of results) {
    for (const [k, d] of Object.entries(r.histograms)) {
      if (!histograms.has(k)) histograms.set(k, new Histogram());
      histograms.get(k)!.merge(d);
      all.merge(d);
    }
    for (const [k, n] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + n;
    opsPerSec += (r.ops * 1000) / r.windowMs;
    ops += r.ops;
    cores += r.cpuMs / r.windowMs;
    windowMs = Math.max(windowMs, r.windowMs);
    resumed += r.resumed ?? 0;
  }
  const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
  return { histograms, all, opsPerSec, ops, errors, errorCount, generatorCores: cores, windowMs, resumed };
}

interface Member {
  readonly proc: ChildProcess;
  readonly inbox: FromWorker[];
  readonly waiters: ((m: FromWorker) => void)[];
  exited: boolean;
  busy: boolean;
}

/**
 * Load-generator processes, forked on first use and reused from one measurement to the next
 * (starting one costs about a second). closeWorkers() ends them; they also exit on their own
 * when this process goes away.
 */
const pool: Member[] = [];

function forkMember(): Member {
  const proc = fork(VITE_NODE, [WORKER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
  const m: Member = { proc, inbox: [], waiters: [], exited: false, busy: false };
  proc.on('message', (msg: FromWorker) => {
    const w = m.waiters.shift();
    if (w) w(msg);
    else m.inbox.push(msg);
  });
  proc.on('exit', (code) => {
    m.exited = true;
    for (const w of m.waiters.splice(0)) w({ type: 'fatal', message: `load worker exited with ${code}` });
  });
  return m;
}

function acquire(n: number): Member[] {
  for (let i = pool.length - 1; i >= 0; i--) if (pool[i]!.exited) pool.splice(i, 1);
  const free = pool.filter((m) => !m.busy).slice(0, n);
  while (free.length < n) {
    const m = forkMember();
    pool.push(m);
    free.push(m);
  }
  for (const m of free) {
    m.busy = true;
    m.inbox.length = 0;
  }
  return free;
}

export function closeWorkers(): void {
  for (const m of pool.splice(0)) if (!m.exited) m.proc.kill('SIGKILL');
}

export class WorkerGroup {
  private constructor(private readonly members: Member[]) {}

  /** One process per job; resolves once every process has opened its connections. */
  static async start(jobs: readonly Job[]): Promise<{ group: WorkerGroup; opened: number; failed: number; errors: Record<string, number> }> {
    const members = acquire(jobs.length);
    const group = new WorkerGroup(members);
    try {
      members.forEach((m, i) => group.send(m, { type: 'job', job: jobs[i]! }));
      const readies = await Promise.all(members.map((m) => group.expect(m, 'ready')));
      const errors: Record<string, number> = {};
      for (const r of readies) for (const [k, n] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + n;
      return {
        group,
        opened: readies.reduce((a, r) => a + r.opened, 0),
        failed: readies.reduce((a, r) => a + r.failed, 0),
        errors,
      };
    } catch (err) {
      group.kill();
      throw err;
    }
  }

  get size(): number {
    return this.members.length;
  }

  /** Start every member's window at once and collect the results. */
  async go(window: RunWindow): Promise<Merged> {
    try {
      for (const m of this.members) this.send(m, { type: 'go', ...window });
      const results = await Promise.all(this.members.map((m) => this.expect(m, 'result')));
      this.releaseMembers();
      return mergeResults(results.map((r) => r.result));
    } catch (err) {
      this.kill();
      throw err;
    }
  }

  /** For hold jobs: close the held connections; returns how many were still open and the errors. */
  async release(): Promise<{ stillOpen: number; errors: Record<string, number> }> {
    try {
      for (const m of this.members) this.send(m, { type: 'release' });
      const held = await Promise.all(this.members.map((m) => this.expect(m, 'held')));
      this.releaseMembers();
      const errors: Record<string, number> = {};
      for (const h of held) for (const [k, n] of Object.entries(h.errors)) errors[k] = (errors[k] ?? 0) + n;
      return { stillOpen: held.reduce((a, h) => a + h.stillOpen, 0), errors };
    } catch (err) {
      this.kill();
      throw err;
    }
  }

  /** Abandon the job: the processes are killed (their connections die with them). */
  kill(): void {
    for (const m of this.members) {
      if (!m.exited) m.proc.kill('SIGKILL');
      m.busy = false;
    }
  }

  private releaseMembers(): void {
    for (const m of this.members) m.busy = false;
  }

  private send(m: Member, msg: ToWorker): void {
    m.proc.send(msg);
  }

  private async expect<T extends FromWorker['type']>(m: Member, type: T): Promise<Extract<FromWorker, { type: T }>> {
    const msg = m.inbox.shift() ?? (await new Promise<FromWorker>((resolve) => m.waiters.push(resolve)));
    if (msg.type === 'fatal') throw new Error(`load worker failed: ${msg.message}`);
    if (msg.type !== type) throw new Error(`load worker sent ${msg.type}, expected ${type}`);
    return msg as Extract<FromWorker, { type: T }>;
  }
}
