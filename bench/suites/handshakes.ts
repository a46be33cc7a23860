// New mutual-TLS connections per second, with full handshakes and with resumed sessions, at
// TLS 1.3 and 1.2 (vCenter), each connection carrying one Discover Versions like a health check.
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { freshKmipdData, type BenchContext } from '../context.js';
import { measureConnect, type ConnectFigures } from '../measure.js';
import { pykmipAvailable, startKmipd, startPykmip, type ServerUnderTest } from '../targets.js';

export interface HandshakeConfig {
  readonly parallel: number;
  readonly workers: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly maxOps: number;
  readonly pykmip: { readonly durationMs: number } | undefined;
}

export interface HandshakeResult {
  readonly kmipd: ConnectFigures[];
  readonly pykmip: ConnectFigures[];
}

async function runAgainst(ctx: BenchContext, server: ServerUnderTest, tlsVersions: readonly ('TLSv1.2' | 'TLSv1.3')[], cfg: HandshakeConfig, durationMs: number): Promise<ConnectFigures[]> {
  const out: ConnectFigures[] = [];
  try {
    for (const tls of tlsVersions) {
      for (const resume of [false, true]) {
        const f = await measureConnect(server, { ...cfg, durationMs, tls, resume });
        ctx.log(
          `${server.name} connections ${tls} ${resume ? 'resumed' : 'full'}: ${f.connectionsPerSec.toFixed(0)}/s, resumed ${(f.resumedShare * 100).toFixed(0)} %, ` +
            `p50 ${f.latency.p50Ms} ms, p99 ${f.latency.p99Ms} ms, errors ${f.errorCount}, server ${f.serverCores.toFixed(2)} cores, generator ${f.generatorCores.toFixed(2)} cores`,
        );
        out.push(f);
      }
    }
  } finally {
    await server.stop();
  }
  return out;
}

export async function runHandshakes(ctx: BenchContext, cfg: HandshakeConfig): Promise<HandshakeResult> {
  const { dir, client } = await freshKmipdData(ctx, 'handshakes-kmipd');
  const kmipd = await runAgainst(ctx, await startKmipd(ctx, dir, client), ['TLSv1.3', 'TLSv1.2'], cfg, cfg.durationMs);
  let pykmip: ConnectFigures[] = [];
  if (cfg.pykmip && pykmipAvailable()) {
    const pyDir = join(ctx.workDir, 'handshakes-pykmip');
    mkdirSync(pyDir, { recursive: true });
    // PyKMIP's TLS1.2 suite speaks TLS 1.2 only.
    pykmip = await runAgainst(ctx, await startPykmip(pyDir, dir, client, ctx.serverCpus), ['TLSv1.2'], cfg, cfg.pykmip.durationMs);
  }
  return { kmipd, pykmip };
}
