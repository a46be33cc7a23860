// The admin listener (off unless --admin-listen): /healthz (the process answers), /readyz (HSM
// reachable and store writable), /metrics (Prometheus text). Plain HTTP meant for loopback or a
// management network; it exposes no key material and takes no input but the path.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { ServerMetrics } from './metrics.js';

export interface ReadinessCheck {
  readonly name: string;
  check(): Promise<void>;
}

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: ServerMetrics;
  readonly checks: readonly ReadinessCheck[];
  readonly log: Logger;
  /** Readiness checks that take longer than this count as failed. */
  readonly checkTimeoutMs?: number;
}

const ADMIN_MAX_CONNECTIONS = 64;
const ADMIN_REQUEST_TIMEOUT_MS = 10_000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e instanceof Error ? e : new Error(String(e)))),
    );
  });
}

export class AdminServer {
  private readonly server: Server;

  constructor(private readonly opts: AdminServerOptions) {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const send = (status: number, body: string, type = 'application/json') => {
        res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
        res.end(body);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, '{"error":"method not allowed"}');
      if (path === '/healthz') return send(200, '{"status":"ok"}');
      if (path === '/readyz') {
        void this.readiness().then(({ ready, checks }) => send(ready ? 200 : 503, JSON.stringify({ status: ready ? 'ready' : 'not ready', checks })));
        return;
      }
      if (path === '/metrics') {
        void opts.metrics.registry.metrics().then(
          (text) => send(200, text, opts.metrics.registry.contentType),
          (err: unknown) => {
            opts.log.error({ err }, 'metrics collection failed');
            send(500, '{"error":"metrics collection failed"}');
          },
        );
        return;
      }
      send(404, '{"error":"not found"}');
    });
    // A monitoring endpoint needs few connections, and none that linger half-sent.
    this.server.maxConnections = ADMIN_MAX_CONNECTIONS;
    this.server.headersTimeout = ADMIN_REQUEST_TIMEOUT_MS;
    this.server.requestTimeout = ADMIN_REQUEST_TIMEOUT_MS;
  }

  async readiness(): Promise<{ ready: boolean; checks: Record<string, string> }> {
    const results = await Promise.all(
      this.opts.checks.map(async (c) => {
        try {
          await withTimeout(c.check(), this.opts.checkTimeoutMs ?? 2000);
          return [c.name, 'ok'] as const;
        } catch (err) {
          return [c.name, err instanceof Error ? err.message : String(err)] as const;
        }
      }),
    );
    return { ready: results.every(([, r]) => r === 'ok'), checks: Object.fromEntries(results) };
  }

  async start(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
