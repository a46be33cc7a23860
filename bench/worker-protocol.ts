// Messages between the benchmark coordinator and its load-generator processes.
import type { HistogramData } from './histogram.js';
import type { ClientFiles, Endpoint } from './connection.js';
import type { OpKind, SeededKey } from './requests.js';

/** Run a closed loop: each connection sends its next request when the previous answer arrives. */
export interface LoadJob {
  readonly mode: 'load';
  readonly endpoint: Endpoint;
  readonly client: ClientFiles;
  readonly connections: number;
  /** Operations each connection cycles through, e.g. ['dv', 'get'] for the vCenter mix. */
  readonly sequence: readonly OpKind[];
  /** Keys the key-addressing operations pick from, uniformly at random. */
  readonly keys: readonly SeededKey[];
  /** Requests in flight per connection (1 = strictly request/answer, like vCenter). */
  readonly depth: number;
  readonly seed: number;
}

/** Open connections, send one Discover Versions on each, then keep them silent until released. */
export interface HoldJob {
  readonly mode: 'hold';
  readonly endpoint: Endpoint;
  readonly client: ClientFiles;
  readonly connections: number;
  /** Handshakes in progress at once. */
  readonly concurrency: number;
}

/** New connection, handshake, one Discover Versions, close; again, on `connections` parallel loops. */
export interface ConnectJob {
  readonly mode: 'connect';
  readonly endpoint: Endpoint;
  readonly client: ClientFiles;
  readonly connections: number;
  /** Offer the previous connection's TLS session (ticket) on each new one. */
  readonly resume: boolean;
}

export type Job = LoadJob | HoldJob | ConnectJob;

export interface RunWindow {
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Operations this worker completes at most in the measured window. */
  readonly maxOps: number;
}

export type ToWorker = { readonly type: 'job'; readonly job: Job } | ({ readonly type: 'go' } & RunWindow) | { readonly type: 'release' };

export interface WorkerResult {
  /** Latency per operation kind (for `connect`: the kind is 'connect'). */
  readonly histograms: Record<string, HistogramData>;
  /** Operations completed in the measured window. */
  readonly ops: number;
  readonly windowMs: number;
  /** Failures by description (non-success answers, closed connections, timeouts). */
  readonly errors: Record<string, number>;
  /** CPU time this worker used during the window, ms (user + system). */
  readonly cpuMs: number;
  /** Only for `connect`: connections whose TLS session was resumed. */
  readonly resumed?: number;
}

export type FromWorker =
  | { readonly type: 'ready'; readonly opened: number; readonly failed: number; readonly errors: Record<string, number> }
  | { readonly type: 'result'; readonly result: WorkerResult }
  | { readonly type: 'held'; readonly stillOpen: number; readonly errors: Record<string, number> }
  | { readonly type: 'fatal'; readonly message: string };
