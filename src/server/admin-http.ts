// The admin listener (off unless --admin-listen): /healthz (the process answers), /readyz (HSM
// reachable and store writable), /metrics (Prometheus text). Plain HTTP meant for loopback or a
// management network; it exposes no key material and takes no input but the path.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';

export interface ReadinessCheck {
  readonly name: string;
  check(): Promise<void>;
}

/** What /readyz answers: ready when every check says `ok`; each check's result by name. */
export interface Readiness {
  readonly ready: boolean;
  readonly checks: Record<string, string>;
}

/** Where /metrics comes from: one process's registry, or all serve processes' together. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: MetricsSource;
  readiness(): Promise<Readiness>;
  readonly log: Logger;
}

/** Every check run at once, each given `timeoutMs`; a check that throws or is late is not ready. */
export async function runReadinessChecks(checks: readonly ReadinessCheck[], timeoutMs = 2000): Promise<Readiness> {
  const results = await Promise.all(
    checks.map(async (c) => {
      try {
        await withTimeout(c.check(), timeoutMs);
        return [c.name, 'ok'] as const;
      } catch (err) {
        return [c.name, err instanceof Error ? err.message : String(err)] as const;
      }
    }),
  );
  return { ready: results.every(([, r]) => r === 'ok'), checks: Object.fromEntries(results) };
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
        void opts.readiness().then(({ ready, checks }) => send(ready ? 200 : 503, JSON.stringify({ status: ready ? 'ready' : 'not ready', checks })));
        return;
      }
      if (path === '/metrics') {
        void opts.metrics.metrics().then(
          (text) => send(200, text, opts.metrics.contentType),
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
