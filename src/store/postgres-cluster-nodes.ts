// Cluster membership on PostgreSQL (see cluster-nodes.ts). Times come from the database's clock.
import type { PgDatabase } from './postgres-database.js';
import { toClusterNode, type ClusterNode, type ClusterNodes, type NodeDbRow, type NodeRegistration } from './cluster-nodes.js';

const NOW_MS = '(extract(epoch FROM clock_timestamp()) * 1000)::bigint';

export class PostgresClusterNodes implements ClusterNodes {
  constructor(private readonly db: PgDatabase) {}

  async register(n: NodeRegistration): Promise<void> {
    await this.db.run(
      `INSERT INTO cluster_nodes (node_id, host, listen, version, pid, started_at, heartbeat_at, stopped_at)
       VALUES ($1, $2, $3, $4, $5, ${NOW_MS}, ${NOW_MS}, NULL)
       ON CONFLICT (node_id) DO UPDATE SET host = excluded.host, listen = excluded.listen, version = excluded.version,
         pid = excluded.pid, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, stopped_at = NULL`,
      [n.nodeId, n.host, n.listen, n.version, n.pid],
    );
  }

  async heartbeat(nodeId: string): Promise<boolean> {
    return (await this.db.run(`UPDATE cluster_nodes SET heartbeat_at = ${NOW_MS} WHERE node_id = $1`, [nodeId])) === 1;
  }

  async stopped(nodeId: string): Promise<void> {
    await this.db.run(`UPDATE cluster_nodes SET stopped_at = ${NOW_MS} WHERE node_id = $1`, [nodeId]);
  }

  async list(): Promise<ClusterNode[]> {
    return (await this.db.rows<NodeDbRow>(`SELECT *, ${NOW_MS} - heartbeat_at AS age_ms FROM cluster_nodes ORDER BY node_id`)).map(toClusterNode);
  }

  async forget(nodeId: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM cluster_nodes WHERE node_id = $1', [nodeId])) === 1;
  }
}
