// Cluster membership, for `kmipd cluster status`: every serving node records itself in the shared
// database and refreshes a heartbeat every few seconds. Nothing depends on it for correctness (the
// nodes share the database, not state of their own); it tells an operator which nodes are alive.
// Heartbeat ages are measured on the database's clock, so clock skew between nodes does not matter.

/** How often a serving node refreshes its heartbeat. */
export const HEARTBEAT_INTERVAL_MS = 2000;
/** A node whose heartbeat is older than this is reported as not responding (3 missed beats). */
export const HEARTBEAT_STALE_MS = 3 * HEARTBEAT_INTERVAL_MS;

export interface NodeRegistration {
  /** Stable per data folder (DATA/node-id), so that a restarted node takes its own row back. */
  readonly nodeId: string;
  /** OS host name. */
  readonly host: string;
  /** Address the KMIP listener is bound to (HOST:PORT). */
  readonly listen: string;
  readonly version: string;
  readonly pid: number;
}

export interface ClusterNode extends NodeRegistration {
  readonly startedAt: Date;
  readonly heartbeatAt: Date;
  /** Set when the node stopped gracefully (SIGTERM); cleared when it starts again. */
  readonly stoppedAt: Date | undefined;
  /** Age of the last heartbeat on the database's clock, when listed. */
  readonly heartbeatAgeMs: number;
}

/** healthy: heartbeat fresh; not-responding: heartbeats missed (crashed, hung, or cut off from the database); stopped: shut down cleanly. */
export type NodeHealth = 'healthy' | 'not-responding' | 'stopped';

export function nodeHealth(n: ClusterNode): NodeHealth {
  if (n.stoppedAt !== undefined) return 'stopped';
  return n.heartbeatAgeMs <= HEARTBEAT_STALE_MS ? 'healthy' : 'not-responding';
}

export interface ClusterNodes {
  /** (Re)register this node: started now, heartbeat now, not stopped. */
  register(node: NodeRegistration): Promise<void>;
  /** Refresh this node's heartbeat; false if its row is gone (forgotten), to register again. */
  heartbeat(nodeId: string): Promise<boolean>;
  /** Mark this node stopped (graceful shutdown). */
  stopped(nodeId: string): Promise<void>;
  /** Every node ever registered and not forgotten, by node id. */
  list(): Promise<ClusterNode[]>;
  /** Remove a decommissioned node's row; false if there was none. */
  forget(nodeId: string): Promise<boolean>;
}

export interface NodeDbRow {
  node_id: string;
  host: string;
  listen: string;
  version: string;
  pid: number;
  started_at: number;
  heartbeat_at: number;
  stopped_at: number | null;
  age_ms: number;
}

export function toClusterNode(r: NodeDbRow): ClusterNode {
  return {
    nodeId: r.node_id,
    host: r.host,
    listen: r.listen,
    version: r.version,
    pid: r.pid,
    startedAt: new Date(r.started_at),
    heartbeatAt: new Date(r.heartbeat_at),
    stoppedAt: r.stopped_at === null ? undefined : new Date(r.stopped_at),
    heartbeatAgeMs: Math.max(0, r.age_ms),
  };
}
