// Many idle mutual-TLS connections held open (vCenter and ESXi hosts keep theirs), measured by
// the server's resident memory and by what happens meanwhile to an active client's latency.
import { freshKmipdData, type BenchContext } from '../context.js';
import { measureLoad, medianOf, type LoadSettings } from '../measure.js';
import { treeMemoryOf, type MemoryUsage } from '../proc-stats.js';
import { seedKeys } from '../seed.js';
import { connectionLimitArgs, startKmipd } from '../targets.js';
import { splitEvenly, WorkerGroup } from '../worker-group.js';
import { WORKLOADS } from '../workloads.js';
import type { MedianFigures } from './throughput.js';

export interface IdleConfig {
  readonly idle: number;
  /** Processes holding the idle connections. */
  readonly holders: number;
  /** Handshakes in progress at once per holder while opening. */
  readonly concurrency: number;
  /** The active client: Get on this many connections. */
  readonly active: LoadSettings;
  readonly repeat: number;
  readonly seedKeys: number;
}

export interface IdleResult {
  readonly idleRequested: number;
  readonly idleOpened: number;
  readonly idleStillOpenAtEnd: number;
  readonly openSeconds: number;
  readonly openErrors: Record<string, number>;
  readonly serveArgs: string[];
  readonly memoryBefore: MemoryUsage;
  readonly memoryWithIdle: MemoryUsage;
  readonly memoryAfterActive: MemoryUsage;
  /** (RSS with idle connections − RSS before) ÷ connections, KiB. */
  readonly kibPerConnection: number;
  /** The active client before the idle connections were opened and after they were closed (median of both sets of runs). */
  readonly activeAlone: MedianFigures;
  readonly activeWithIdle: MedianFigures;
  readonly activeBefore: MedianFigures;
  readonly activeAfter: MedianFigures;
}

export async function runIdleConnections(ctx: BenchContext, cfg: IdleConfig): Promise<IdleResult> {
  const { dir, client } = await freshKmipdData(ctx, 'idle-kmipd');
  // Room for the idle connections, the active client and the seeding connections.
  const serveArgs = await connectionLimitArgs(ctx.root, cfg.idle + cfg.active.connections + 64);
  const server = await startKmipd(ctx, dir, client, { serveArgs });
  try {
    const keys = await seedKeys(server.endpoint, server.client, cfg.seedKeys);
    const get = WORKLOADS.get!;
    const alone = [];
    for (let i = 0; i < cfg.repeat; i++) alone.push(await measureLoad(server, get, keys, cfg.active));
    const activeAlone = medianOf(alone);
    ctx.log(`kmipd active client alone: ${activeAlone.opsPerSec.toFixed(0)} ops/s, p99 ${activeAlone.latency.p99Ms} ms`);
    const memoryBefore = treeMemoryOf(server.pid);

    ctx.log(`kmipd: opening ${cfg.idle} idle connections from ${cfg.holders} processes`);
    const t0 = Date.now();
    const held = await WorkerGroup.start(
      splitEvenly(cfg.idle, cfg.holders).map((connections) => ({
        mode: 'hold' as const,
        endpoint: server.endpoint,
        client: server.client,
        connections,
        concurrency: cfg.concurrency,
      })),
    );
    const openSeconds = (Date.now() - t0) / 1000;
    let releasedAll = false;
    try {
      // Let the server settle (garbage collection after the handshake burst) before reading memory.
      await new Promise((r) => setTimeout(r, 2_000));
      const memoryWithIdle = treeMemoryOf(server.pid);
      ctx.log(`kmipd: ${held.opened} idle connections open in ${openSeconds.toFixed(1)} s (failed ${held.failed}), RSS ${memoryWithIdle.rssMiB.toFixed(0)} MiB`);
      const withIdle = [];
      for (let i = 0; i < cfg.repeat; i++) withIdle.push(await measureLoad(server, get, keys, cfg.active));
      const activeWithIdle = medianOf(withIdle);
      const memoryAfterActive = treeMemoryOf(server.pid);
      ctx.log(`kmipd active client with idle connections: ${activeWithIdle.opsPerSec.toFixed(0)} ops/s, p99 ${activeWithIdle.latency.p99Ms} ms`);
      const released = await held.group.release();
      releasedAll = true;
      // Alone again: bracketing the idle measurement separates its effect from drift in other load on the machine.
      const after = [];
      for (let i = 0; i < cfg.repeat; i++) after.push(await measureLoad(server, get, keys, cfg.active));
      const activeAfter = medianOf(after);
      ctx.log(`kmipd active client after the idle connections closed: ${activeAfter.opsPerSec.toFixed(0)} ops/s, p99 ${activeAfter.latency.p99Ms} ms`);
      return {
        idleRequested: cfg.idle,
        idleOpened: held.opened,
        idleStillOpenAtEnd: released.stillOpen,
        openSeconds,
        openErrors: { ...held.errors, ...released.errors },
        serveArgs,
        memoryBefore,
        memoryWithIdle,
        memoryAfterActive,
        kibPerConnection: held.opened ? ((memoryWithIdle.rssMiB - memoryBefore.rssMiB) * 1024) / held.opened : NaN,
        activeAlone: medianOf([...alone, ...after]),
        activeWithIdle,
        activeBefore: activeAlone,
        activeAfter,
      };
    } finally {
      if (!releasedAll) held.group.kill();
    }
  } finally {
    await server.stop();
  }
}
