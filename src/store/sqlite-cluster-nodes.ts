// Cluster membership in SQLite (see cluster-nodes.ts): the nodes are processes on this machine
// sharing the database file, so the local clock is the database's clock.
import type Database from 'better-sqlite3';
import { LockWait } from './sqlite-lock-wait.js';
import { SqliteChangeWatch } from './sqlite-change-watch.js';
import { toClusterNode, type ClusterNode, type ClusterNodes, type NodeDbRow, type NodeRegistration } from './cluster-nodes.js';

export class SqliteClusterNodes implements ClusterNodes {
  private readonly stmts;

  /** A beat waits for another process's lock from the event loop, never inside SQLite. */
  private readonly lockWait: LockWait;

  constructor(private readonly db: Database.Database) {
    this.lockWait = new LockWait(db);
    this.stmts = {
      register: db.prepare(
        `INSERT INTO cluster_nodes (node_id, host, listen, version, pid, started_at, heartbeat_at, stopped_at)
         VALUES (@nodeId, @host, @listen, @version, @pid, @now, @now, NULL)
         ON CONFLICT (node_id) DO UPDATE SET host = excluded.host, listen = excluded.listen, version = excluded.version,
           pid = excluded.pid, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, stopped_at = NULL`,
      ),
      heartbeat: db.prepare('UPDATE cluster_nodes SET heartbeat_at = ? WHERE node_id = ?'),
      stopped: db.prepare('UPDATE cluster_nodes SET stopped_at = ? WHERE node_id = ?'),
      list: db.prepare('SELECT *, ? - heartbeat_at AS age_ms FROM cluster_nodes ORDER BY node_id'),
      forget: db.prepare('DELETE FROM cluster_nodes WHERE node_id = ?'),
    };
  }

  async register(node: NodeRegistration): Promise<void> {
    this.stmts.register.run({ ...node, now: Date.now() });
  }

  async heartbeat(nodeId: string): Promise<boolean> {
    // Only cluster_nodes changes: the caches on this connection keep what they hold.
    const beat = await this.lockWait.write(() => SqliteChangeWatch.writeUnwatched(this.db, () => this.stmts.heartbeat.run(Date.now(), nodeId)));
    return beat.changes === 1;
  }

  async stopped(nodeId: string): Promise<void> {
    this.stmts.stopped.run(Date.now(), nodeId);
  }

  async list(): Promise<ClusterNode[]> {
    return (this.stmts.list.all(Date.now()) as NodeDbRow[]).map(toClusterNode);
  }

  async forget(nodeId: string): Promise<boolean> {
    return this.stmts.forget.run(nodeId).changes === 1;
  }
}
