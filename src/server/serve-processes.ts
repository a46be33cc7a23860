// `serve --processes N`: one Node process uses one core, so N serve processes answer on one
// listener (node:cluster: the primary accepts and deals each new connection to the next process).
// The primary holds no key, no HSM session and no store connection. It starts the processes one
// after the other (the first one migrates the store alone), restarts one that dies, forwards
// SIGHUP, stops them all on SIGTERM, and serves the admin listener for all of them: /metrics
// summed over the processes, /readyz ready when every process is. Session tickets work across
// the processes: node:cluster gives every TLS listener the first one's ticket keys.
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { AdminServer, type Readiness } from './admin-http.js';
import type { RunningServer, ServeProcessRole } from './app.js';

/** Primary → serve process. */
type ToServeProcess =
  | { readonly kind: 'kmipd:start'; readonly index: number; readonly processes: number; readonly port: number | undefined }
  | { readonly kind: 'kmipd:ask'; readonly id: number; readonly what: Question };

type Question = 'readiness' | 'metrics';
/** Metrics as prom-client's getMetricsAsJSON gives them, for AggregatorRegistry.aggregate. */
type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
type Answer = { readonly readiness: Readiness } | { readonly metrics: MetricsJson } | { readonly error: string };

/** Serve process → primary. */
type ToPrimary =
  | { readonly kind: 'kmipd:role?' }
  | { readonly kind: 'kmipd:listening'; readonly host: string; readonly port: number }
  | { readonly kind: 'kmipd:answer'; readonly id: number; readonly answer: Answer };

/** Readiness checks take at most 2 s each in a process; its answer, a little more. */
const ASK_TIMEOUT_MS = 3000;
/** A process that dies sooner than this after starting counts as a failed start (restart backoff). */
const QUICK_DEATH_MS = 10_000;
const MAX_RESTART_DELAY_MS = 30_000;

function isMessage<T extends { kind: string }>(m: unknown, kind: T['kind']): m is T {
  return typeof m === 'object' && m !== null && (m as { kind?: unknown }).kind === kind;
}

export const isServeProcess = (): boolean => cluster.isWorker;

// ---------------------------------------------------------------------------------------------
// In a serve process

/** Asks the primary which process this is, and how many there are. */
export function receiveRole(): Promise<ServeProcessRole> {
  return new Promise((resolve) => {
    const onMessage = (m: unknown) => {
      if (!isMessage<Extract<ToServeProcess, { kind: 'kmipd:start' }>>(m, 'kmipd:start')) return;
      process.off('message', onMessage);
      resolve({ index: m.index, processes: m.processes, ...(m.port === undefined ? {} : { port: m.port }) });
    };
    process.on('message', onMessage);
    // Asked, not pushed: a message that arrives before this process listens for it is lost.
    process.send?.({ kind: 'kmipd:role?' } satisfies ToPrimary);
  });
}

/** Tells the primary this process listens, and answers its readiness and metrics questions. */
export function reportToPrimary(running: RunningServer): void {
  const send = (m: ToPrimary) => process.send?.(m);
  const health = running.health;
  if (health) {
    const answer = (what: Question): Promise<Answer> =>
      what === 'readiness' ? health.readiness().then((readiness) => ({ readiness })) : health.registry.getMetricsAsJSON().then((metrics) => ({ metrics }));
    process.on('message', (m: unknown) => {
      if (!isMessage<Extract<ToServeProcess, { kind: 'kmipd:ask' }>>(m, 'kmipd:ask')) return;
      void answer(m.what)
        .catch((err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }))
        .then((a) => send({ kind: 'kmipd:answer', id: m.id, answer: a }));
    });
  }
  send({ kind: 'kmipd:listening', host: running.address.host, port: running.address.port });
}

// ---------------------------------------------------------------------------------------------
// In the primary

interface Slot {
  worker: Worker | undefined;
  listening: boolean;
  startedAt: number;
  quickDeaths: number;
}

export interface PrimaryOptions {
  readonly processes: number;
  readonly log: Logger;
  /** The admin listener, when configured: served here for every process. */
  readonly admin: { readonly host: string; readonly port: number } | undefined;
}

export class ServeProcesses {
  private readonly slots: Slot[];
  private readonly pending = new Map<number, (a: Answer) => void>();
  private nextQuestionId = 0;
  private stopping = false;
  private admin: AdminServer | undefined;
  /** The port the first process bound. */
  private port: number | undefined;
  /**
   * Whether processes listen on `port` by number rather than as configured. With `:0` and every
   * process gone, node:cluster closes the listener and a new `:0` would be another port; so from
   * then on every process asks for the port by number (asking by number while the `:0` listener
   * is still open would bind the port a second time).
   */
  private byNumber = false;

  constructor(private readonly opts: PrimaryOptions) {
    this.slots = Array.from({ length: opts.processes }, () => ({ worker: undefined, listening: false, startedAt: 0, quickDeaths: 0 }));
  }

  /**
   * Starts the processes one by one, each once the previous listens; then the admin listener.
   * Rejects (with every started process stopped) when one exits before it listens or the admin
   * listener cannot bind.
   */
  async start(): Promise<{ host: string; port: number; admin: { host: string; port: number } | undefined }> {
    let address: { host: string; port: number } | undefined;
    let adminAddress: { host: string; port: number } | undefined;
    try {
      for (let i = 0; i < this.slots.length; i++) address = await this.startProcess(i);
      if (this.opts.admin) {
        this.admin = new AdminServer({
          ...this.opts.admin,
          log: this.opts.log,
          metrics: { metrics: () => this.metrics(), contentType: AggregatorRegistry.PROMETHEUS_CONTENT_TYPE },
          readiness: () => this.readiness(),
        });
        const bound = await this.admin.start();
        adminAddress = { host: bound.address, port: bound.port };
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    return { ...address!, admin: adminAddress };
  }

  /** Forks process `index`; resolves when it listens, rejects when it exits first. */
  private startProcess(index: number): Promise<{ host: string; port: number }> {
    const slot = this.slots[index]!;
    if (this.port !== undefined && this.listeningWorkers().length === 0) this.byNumber = true;
    const port = this.byNumber ? this.port : undefined;
    const worker = cluster.fork();
    slot.worker = worker;
    slot.listening = false;
    slot.startedAt = performance.now();
    this.opts.log.info({ process: index, processPid: worker.process.pid }, 'serve process started');
    return new Promise((resolve, reject) => {
      worker.on('message', (m: unknown) => {
        if (isMessage<Extract<ToPrimary, { kind: 'kmipd:role?' }>>(m, 'kmipd:role?')) {
          worker.send({ kind: 'kmipd:start', index, processes: this.slots.length, port } satisfies ToServeProcess);
        } else if (isMessage<Extract<ToPrimary, { kind: 'kmipd:listening' }>>(m, 'kmipd:listening')) {
          slot.listening = true;
          this.port ??= m.port;
          resolve({ host: m.host, port: m.port });
        } else if (isMessage<Extract<ToPrimary, { kind: 'kmipd:answer' }>>(m, 'kmipd:answer')) {
          this.pending.get(m.id)?.(m.answer);
        }
      });
      worker.on('exit', (code, signal) => {
        const wasListening = slot.listening;
        slot.worker = undefined;
        slot.listening = false;
        if (!wasListening) reject(new Error(`serve process ${index} exited (${signal ?? `code ${code}`}) before it listened`));
        if (this.stopping || !wasListening) return;
        this.restartLater(index, code, signal);
      });
    });
  }

  private restartLater(index: number, code: number | null, signal: string | null): void {
    const slot = this.slots[index]!;
    slot.quickDeaths = performance.now() - slot.startedAt < QUICK_DEATH_MS ? slot.quickDeaths + 1 : 0;
    const delay = Math.min(MAX_RESTART_DELAY_MS, 1000 * 2 ** slot.quickDeaths);
    this.opts.log.error({ process: index, code, signal, restartInMs: delay }, 'serve process exited; starting another');
    setTimeout(() => {
      if (this.stopping) return;
      this.startProcess(index).then(
        () => this.opts.log.info({ process: index }, 'serve process back'),
        // It died before listening: its exit handler did not restart it, so try again later.
        (err: unknown) => {
          this.opts.log.error({ process: index, err: (err as Error).message }, 'serve process failed to start');
          if (!this.stopping) this.restartLater(index, null, null);
        },
      );
    }, delay); // not unref'd: with every serve process down, this timer is what keeps the primary waiting
  }

  /** Every process's readiness; ready when all of them are there and ready. */
  private async readiness(): Promise<Readiness> {
    const workers = this.listeningWorkers();
    const answers = await Promise.all(workers.map((w) => this.ask(w, 'readiness')));
    const serving = workers.length;
    const checks: Record<string, string> = { processes: serving === this.slots.length ? 'ok' : `${serving} of ${this.slots.length} serving` };
    // Per check, the first complaint of any process (they share the HSM and the store), else ok.
    for (const a of answers) {
      const theirs = 'readiness' in a ? a.readiness.checks : { process: 'error' in a ? a.error : 'no answer' };
      for (const [name, result] of Object.entries(theirs)) if (checks[name] === undefined || checks[name] === 'ok') checks[name] = result;
    }
    return { ready: Object.values(checks).every((r) => r === 'ok'), checks };
  }

  /** Every listening process's metrics, summed (or as each metric's aggregator says). */
  private async metrics(): Promise<string> {
    const answers = await Promise.all(this.listeningWorkers().map((w) => this.ask(w, 'metrics')));
    const failed = answers.find((a) => !('metrics' in a));
    if (failed) throw new Error(`a serve process gave no metrics: ${'error' in failed ? failed.error : 'unexpected answer'}`);
    return AggregatorRegistry.aggregate(answers.map((a) => ('metrics' in a ? a.metrics : []))).metrics();
  }

  private listeningWorkers(): Worker[] {
    return this.slots.flatMap((s) => (s.worker && s.listening ? [s.worker] : []));
  }

  private ask(worker: Worker, what: Question): Promise<Answer> {
    const id = this.nextQuestionId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ error: `no answer in ${ASK_TIMEOUT_MS} ms` });
      }, ASK_TIMEOUT_MS);
      this.pending.set(id, (a) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(a);
      });
      worker.send({ kind: 'kmipd:ask', id, what } satisfies ToServeProcess);
    });
  }

  /** logrotate's SIGHUP, passed on: each process reopens the audit log. */
  reopenLogs(): void {
    for (const slot of this.slots) slot.worker?.process.kill('SIGHUP');
  }

  /** SIGTERM to every process (each finishes its in-flight requests); resolves when all have exited. */
  async stop(): Promise<number> {
    this.stopping = true;
    await this.admin?.stop();
    const exits = this.slots.flatMap((slot) => {
      const w = slot.worker;
      if (!w) return [];
      const exited = new Promise<number>((resolve) => w.once('exit', (code) => resolve(code ?? 1)));
      w.process.kill('SIGTERM');
      return [exited];
    });
    const codes = await Promise.all(exits);
    return codes.every((c) => c === 0) ? 0 : 1;
  }
}
