// A serving node's entry in the shared database (`kmipd cluster status`): registered once it
// listens, a heartbeat every HEARTBEAT_INTERVAL_MS, marked stopped on a graceful stop. A node that
// dies (SIGKILL, power loss) simply stops beating and shows as not responding; it takes its own
// row back when it starts again, because its id is kept in its data folder (DATA/node-id).
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { HEARTBEAT_INTERVAL_MS, type ClusterNodes, type NodeRegistration } from '../store/cluster-nodes.js';

export const NODE_ID_FILE = 'node-id';
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** This data folder's node id: read from DATA/node-id, created (host name + random suffix) the first time. */
export function nodeIdOf(dataDir: string): string {
  const path = join(dataDir, NODE_ID_FILE);
  try {
    const id = readFileSync(path, 'utf8').trim();
    if (!NODE_ID.test(id)) throw new Error(`${path} does not hold a node id (1-128 characters from A-Z a-z 0-9 . _ -)`);
    return id;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const host = hostname().split('.')[0]!.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 63) || 'node';
  const id = `${host}-${randomBytes(3).toString('hex')}`;
  try {
    writeFileSync(path, `${id}\n`, { mode: 0o644, flag: 'wx' });
  } catch (err) {
    // Another process (a second `serve` started at once) wrote it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return nodeIdOf(dataDir);
    throw err;
  }
  return id;
}

export interface Membership {
  /** Stop the heartbeat and mark the node stopped. Never rejects. */
  leave(): Promise<void>;
}

/** Registers the node and keeps its heartbeat going. A database that is down only delays the beats. */
export async function joinCluster(nodes: ClusterNodes, node: NodeRegistration, log: Logger): Promise<Membership> {
  await nodes.register(node);
  log.info({ node: node.nodeId }, 'registered in the cluster');
  let beating: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (beating) return;
    beating = nodes
      .heartbeat(node.nodeId)
      .then(async (known) => {
        // Forgotten by an operator while running: put ourselves back.
        if (!known) await nodes.register(node);
      })
      .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'cluster heartbeat failed'))
      .finally(() => {
        beating = undefined;
      });
  }, HEARTBEAT_INTERVAL_MS);
  timer.unref();
  return {
    async leave() {
      clearInterval(timer);
      await beating;
      await nodes.stopped(node.nodeId).catch((err: unknown) => log.warn({ err: (err as Error).message }, 'could not mark the node stopped'));
    },
  };
}
