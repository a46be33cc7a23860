// Prometheus metrics (prom-client). One registry per server, so tests and several servers in one
// process do not share counters. Labels are bounded sets (operation names, result reasons, HSM
// calls, states): never object ids or client names, which would grow without limit.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from 'pino';
import type { RequestObserver } from '../operations/dispatch.js';
import type { ConnectionObserver } from './kmip-server.js';

export interface KeyCounts {
  /** Number of managed objects per State name. */
  byState(): Promise<Record<string, number>>;
}

export class ServerMetrics implements RequestObserver, ConnectionObserver {
  readonly registry = new Registry();
  private readonly requests: Counter<'operation' | 'result' | 'reason'>;
  private readonly latency: Histogram<'operation'>;
  private readonly connections: Gauge;
  private readonly handshakeFailures: Counter<'reason'>;
  private readonly hsmLatency: Histogram<'call' | 'outcome'>;

  constructor(keys?: KeyCounts, log?: Logger) {
    collectDefaultMetrics({ register: this.registry, prefix: 'kmipd_' });
    this.requests = new Counter({
      name: 'kmipd_requests_total',
      help: 'KMIP batch items answered, by operation, result status and result reason',
      labelNames: ['operation', 'result', 'reason'],
      registers: [this.registry],
    });
    this.latency = new Histogram({
      name: 'kmipd_request_duration_seconds',
      help: 'Time to answer one KMIP batch item, by operation',
      labelNames: ['operation'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [this.registry],
    });
    this.connections = new Gauge({ name: 'kmipd_connections_active', help: 'Open client connections (TLS established)', registers: [this.registry] });
    this.handshakeFailures = new Counter({
      name: 'kmipd_tls_handshake_failures_total',
      help: 'TLS handshakes refused, by reason',
      labelNames: ['reason'],
      registers: [this.registry],
    });
    this.hsmLatency = new Histogram({
      name: 'kmipd_hsm_call_duration_seconds',
      help: 'Time of one HSM call (generate, wrap, unwrap, ping), by call and outcome',
      labelNames: ['call', 'outcome'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
      registers: [this.registry],
    });
    if (keys) {
      const gauge = new Gauge({
        name: 'kmipd_keys',
        help: 'Managed objects by state',
        labelNames: ['state'],
        // Every serve process counts the same store: /metrics over several shows one count, not their sum.
        aggregator: 'first',
        registers: [this.registry],
        async collect() {
          // A store that cannot be read leaves this gauge empty rather than failing the whole scrape.
          let counts: Record<string, number>;
          try {
            counts = await keys.byState();
          } catch (err) {
            log?.warn({ err }, 'cannot count keys for the metrics');
            gauge.reset();
            return;
          }
          gauge.reset();
          for (const [state, n] of Object.entries(counts)) gauge.set({ state }, n);
        },
      });
    }
  }

  request(operation: string, result: string, reason: string | undefined, seconds: number): void {
    this.requests.inc({ operation, result, reason: reason ?? '' });
    this.latency.observe({ operation }, seconds);
  }

  connectionOpened(): void {
    this.connections.inc();
  }

  connectionClosed(): void {
    this.connections.dec();
  }

  handshakeFailed(reason: string): void {
    this.handshakeFailures.inc({ reason });
  }

  hsmCall(call: string, outcome: 'ok' | 'error', seconds: number): void {
    this.hsmLatency.observe({ call, outcome }, seconds);
  }

  /** Time an async HSM call and record it, whatever its outcome. */
  async timeHsm<T>(call: string, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const v = await fn();
      this.hsmCall(call, 'ok', (performance.now() - started) / 1000);
      return v;
    } catch (err) {
      this.hsmCall(call, 'error', (performance.now() - started) / 1000);
      throw err;
    }
  }
}

/** A short, bounded label for a TLS handshake failure (OpenSSL codes, not free text). */
export function handshakeFailureReason(err: Error & { code?: string }): string {
  const text = `${err.code ?? ''} ${err.message}`;
  if (/no.*cert|PEER_DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED/i.test(text)) return 'no_client_certificate';
  if (/unknown ca|UNABLE_TO_GET_ISSUER|self.signed|unsupported certificate|certificate verify/i.test(text)) return 'untrusted_certificate';
  if (/expired/i.test(text)) return 'expired_certificate';
  if (/revoked/i.test(text)) return 'revoked_certificate';
  if (/version|protocol/i.test(text)) return 'protocol_version';
  if (/cipher|no shared/i.test(text)) return 'no_shared_cipher';
  if (/timeout|ETIMEDOUT/i.test(text)) return 'timeout';
  if (/ECONNRESET|socket hang up|EPIPE/i.test(text)) return 'connection_reset';
  return 'other';
}
