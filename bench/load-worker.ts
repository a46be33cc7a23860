// A load-generator process. The coordinator (run.ts) forks several of these so that generating
// load does not compete with itself on one event loop; each gets a job, opens its connections,
// reports ready, and runs its measured window when told to go, then waits for the next job. Every
// job is bounded in time and operations, and the process exits by itself if the coordinator goes away.
import { performance } from 'node:perf_hooks';
import { BenchConnection, readClientMaterial, type ClientMaterial, type Endpoint } from './connection.js';
import { Histogram } from './histogram.js';
import { buildRequestTable, discoverVersionsRequest, getRequest, RUNTIME_KINDS, type OpKind, type RequestTable } from './requests.js';
import { checkAnswer, createdId } from './response.js';
import type { ConnectJob, FromWorker, HoldJob, LoadJob, RunWindow, ToWorker, WorkerResult } from './worker-protocol.js';

const REQUEST_TIMEOUT_MS = 30_000;
/** Handshakes started at once while a load job opens its connections (PyKMIP listens with a backlog of 5). */
const OPEN_CONCURRENCY = 4;

function send(m: FromWorker): void {
  process.send?.(m);
}

class ErrorTally {
  readonly counts: Record<string, number> = {};
  add(what: string): void {
    this.counts[what] = (this.counts[what] ?? 0) + 1;
  }
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.code ?? e.message ?? String(err);
}

/** xorshift32: cheap, seeded, good enough to spread requests over keys. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out`)), ms);
    }),
  ]);
}

async function openMany(endpoint: Endpoint, material: ClientMaterial, n: number, concurrency: number, errors: ErrorTally, onOpen?: (c: BenchConnection) => Promise<void>): Promise<BenchConnection[]> {
  const out: BenchConnection[] = [];
  let next = 0;
  const lane = async () => {
    while (next < n) {
      next += 1;
      try {
        const c = await BenchConnection.open(endpoint, material);
        if (onOpen) await onOpen(c);
        out.push(c);
      } catch (err) {
        errors.add(`connect: ${describe(err)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, lane));
  return out;
}

interface Window {
  start: number;
  end: number;
  maxOps: number;
}

function windowFrom(w: RunWindow): Window {
  const start = performance.now() + w.warmupMs;
  return { start, end: start + w.durationMs, maxOps: w.maxOps };
}

function finish(histograms: Map<string, Histogram>, ops: number, win: Window, stoppedAt: number, errors: ErrorTally, cpu0: NodeJS.CpuUsage, extra: Partial<WorkerResult> = {}): WorkerResult {
  const cpu = process.cpuUsage(cpu0);
  return {
    histograms: Object.fromEntries([...histograms].map(([k, h]) => [k, h.toData()])),
    ops,
    windowMs: Math.max(1, Math.min(stoppedAt, win.end) - win.start),
    errors: errors.counts,
    cpuMs: (cpu.user + cpu.system) / 1000,
    ...extra,
  };
}

// ------------------------------------------------------------------ load

class LoadRunner {
  private conns: BenchConnection[] = [];
  private readonly table: RequestTable;
  private readonly errors = new ErrorTally();

  constructor(private readonly job: LoadJob) {
    this.table = buildRequestTable(job.keys);
    for (const kind of new Set(job.sequence)) {
      if (this.table[kind].length === 0 && !RUNTIME_KINDS.has(kind)) throw new Error(`operation ${kind} needs stored keys, none given`);
    }
  }

  async prepare(): Promise<void> {
    const material = readClientMaterial(this.job.client);
    this.conns = await openMany(this.job.endpoint, material, this.job.connections, OPEN_CONCURRENCY, this.errors);
    send({ type: 'ready', opened: this.conns.length, failed: this.job.connections - this.conns.length, errors: this.errors.counts });
  }

  async run(w: RunWindow): Promise<WorkerResult> {
    const win = windowFrom(w);
    const histograms = new Map<OpKind, Histogram>();
    // get-new is a Create until its connection has created a key.
    for (const k of this.job.sequence.includes('get-new') ? [...this.job.sequence, 'create' as const] : this.job.sequence) histograms.set(k, new Histogram());
    let ops = 0;
    let stopping = false;
    let stoppedAt = Infinity;
    let cpu0 = process.cpuUsage();
    const cpuTimer = setTimeout(() => (cpu0 = process.cpuUsage()), Math.max(0, win.start - performance.now()));
    const stopTimer = setTimeout(() => (stopping = true), win.end - performance.now());
    const seq = this.job.sequence;
    const lane = async (c: BenchConnection, laneNo: number) => {
      const random = rng(this.job.seed * 7919 + laneNo + 1);
      let step = random() % seq.length;
      /** The key this connection created last and has not fetched yet (get-new). */
      let created: string | undefined;
      while (!stopping && c.open) {
        let kind = seq[step % seq.length]!;
        step += 1;
        if (kind === 'get-new' && created === undefined) kind = 'create';
        const reqs = this.table[kind];
        const req = kind === 'get-new' ? getRequest(created!) : reqs.length === 1 ? reqs[0]! : reqs[random() % reqs.length]!;
        if (kind === 'get-new') created = undefined;
        const t0 = performance.now();
        let answer: Buffer;
        try {
          answer = await withTimeout(c.request(req), REQUEST_TIMEOUT_MS, 'request');
        } catch (err) {
          this.errors.add(`${kind}: ${describe(err)}`);
          c.close();
          return;
        }
        const t1 = performance.now();
        const check = checkAnswer(answer);
        if (!check.ok) this.errors.add(`${kind}: ${check.failure}`);
        else if (kind === 'create' && seq.includes('get-new')) created = createdId(answer);
        // Latency: every request sent in the window, even one answered after it (dropping those
        // would flatter the tail). Throughput: answers received in the window.
        if (t0 >= win.start && t0 < Math.min(win.end, stoppedAt)) histograms.get(kind)!.record((t1 - t0) * 1000);
        if (t0 >= win.start && t1 <= Math.min(win.end, stoppedAt)) {
          ops += 1;
          if (ops >= win.maxOps) {
            stopping = true;
            stoppedAt = t1;
          }
        }
      }
    };
    await Promise.all(this.conns.flatMap((c, i) => Array.from({ length: this.job.depth }, (_, d) => lane(c, i * this.job.depth + d))));
    clearTimeout(stopTimer);
    clearTimeout(cpuTimer);
    for (const c of this.conns) c.close();
    return finish(histograms, ops, win, stoppedAt, this.errors, cpu0);
  }
}

// ------------------------------------------------------------------ hold

class HoldRunner {
  private conns: BenchConnection[] = [];
  private readonly errors = new ErrorTally();
  constructor(private readonly job: HoldJob) {}

  async prepare(): Promise<void> {
    const dv = discoverVersionsRequest();
    const material = readClientMaterial(this.job.client);
    // One request on each: the server has accepted the client and set the connection up.
    this.conns = await openMany(this.job.endpoint, material, this.job.connections, this.job.concurrency, this.errors, async (c) => {
      const check = checkAnswer(await withTimeout(c.request(dv), REQUEST_TIMEOUT_MS, 'request'));
      if (!check.ok) throw new Error(`dv: ${check.failure}`);
    });
    send({ type: 'ready', opened: this.conns.length, failed: this.job.connections - this.conns.length, errors: this.errors.counts });
  }

  release(): void {
    const stillOpen = this.conns.filter((c) => c.open).length;
    for (const c of this.conns) c.close();
    send({ type: 'held', stillOpen, errors: this.errors.counts });
  }
}

// ------------------------------------------------------------------ connect

class ConnectRunner {
  private readonly errors = new ErrorTally();
  private material: ClientMaterial | undefined;
  constructor(private readonly job: ConnectJob) {}

  async prepare(): Promise<void> {
    this.material = readClientMaterial(this.job.client);
    send({ type: 'ready', opened: 0, failed: 0, errors: {} });
  }

  async run(w: RunWindow): Promise<WorkerResult> {
    const win = windowFrom(w);
    const h = new Histogram();
    const dv = discoverVersionsRequest();
    let ops = 0;
    let resumed = 0;
    let stopping = false;
    let stoppedAt = Infinity;
    let cpu0 = process.cpuUsage();
    const cpuTimer = setTimeout(() => (cpu0 = process.cpuUsage()), Math.max(0, win.start - performance.now()));
    const stopTimer = setTimeout(() => (stopping = true), win.end - performance.now());
    const lane = async () => {
      let session: Buffer | undefined;
      while (!stopping) {
        const t0 = performance.now();
        let c: BenchConnection | undefined;
        try {
          c = await BenchConnection.open(this.job.endpoint, this.material!, this.job.resume ? session : undefined);
          const check = checkAnswer(await withTimeout(c.request(dv), REQUEST_TIMEOUT_MS, 'request'));
          if (!check.ok) throw new Error(`dv: ${check.failure}`);
        } catch (err) {
          this.errors.add(`connect: ${describe(err)}`);
          c?.close();
          await new Promise((r) => setTimeout(r, 50)); // a refusing server is not hammered in a tight loop
          continue;
        }
        const t1 = performance.now();
        const reused = c.reused;
        session = c.session ?? session;
        c.close();
        if (t0 >= win.start && t0 < Math.min(win.end, stoppedAt)) h.record((t1 - t0) * 1000);
        if (t0 >= win.start && t1 <= Math.min(win.end, stoppedAt)) {
          ops += 1;
          if (reused) resumed += 1;
          if (ops >= win.maxOps) {
            stopping = true;
            stoppedAt = t1;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: this.job.connections }, lane));
    clearTimeout(stopTimer);
    clearTimeout(cpuTimer);
    return finish(new Map([['connect', h]]), ops, win, stoppedAt, this.errors, cpu0, { resumed });
  }
}

// ------------------------------------------------------------------ process

type Runner = LoadRunner | HoldRunner | ConnectRunner;
let runner: Runner | undefined;

function fatal(err: unknown): void {
  send({ type: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  setTimeout(() => process.exit(1), 100);
}

process.on('message', (m: ToWorker) => {
  void (async () => {
    if (m.type === 'job') {
      const job = m.job;
      runner = job.mode === 'load' ? new LoadRunner(job) : job.mode === 'hold' ? new HoldRunner(job) : new ConnectRunner(job);
      await runner.prepare();
    } else if (m.type === 'go') {
      if (!(runner instanceof LoadRunner || runner instanceof ConnectRunner)) throw new Error('go without a load or connect job');
      // Hard bound: whatever happens, a window does not overrun by more than a minute.
      const overrun = setTimeout(() => fatal(new Error('worker overran its window')), m.warmupMs + m.durationMs + 60_000);
      const result = await runner.run(m);
      clearTimeout(overrun);
      runner = undefined;
      send({ type: 'result', result });
    } else if (m.type === 'release') {
      if (!(runner instanceof HoldRunner)) throw new Error('release without a hold job');
      runner.release();
      runner = undefined;
    }
  })().catch(fatal);
});
// The coordinator went away: nothing left to report to.
process.on('disconnect', () => process.exit(0));
