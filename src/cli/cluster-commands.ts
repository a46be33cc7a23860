// `kmipd cluster …`: the nodes sharing this store, as they report themselves (cluster_nodes: a row
// per node, a heartbeat every few seconds), and whether the database itself answers.
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import { loadConfig } from '../server/config.js';
import { openStoreBackend, type DatabaseStatus } from '../store/backend.js';
import { describeStore } from '../store/store-location.js';
import { nodeHealth, HEARTBEAT_STALE_MS, type ClusterNode, type NodeHealth } from '../store/cluster-nodes.js';
import { addStoreOptions, storeLocationOf, storeTarget, type StoreOpts } from './data-folder.js';
import { audited } from './operator-audit.js';
import { printJson, table, when } from './format.js';

const dataOption = () => new Option('-d, --data <dir>', 'kmipd data folder').default('./data');

interface NodeView {
  node: string;
  host: string;
  listen: string;
  version: string;
  pid: number;
  startedAt: Date;
  lastHeartbeat: Date;
  heartbeatAgeMs: number;
  health: NodeHealth;
}

function view(n: ClusterNode): NodeView {
  return {
    node: n.nodeId,
    host: n.host,
    listen: n.listen,
    version: n.version,
    pid: n.pid,
    startedAt: n.startedAt,
    lastHeartbeat: n.heartbeatAt,
    heartbeatAgeMs: n.heartbeatAgeMs,
    health: nodeHealth(n),
  };
}

const age = (ms: number) => (ms < 10_000 ? `${(ms / 1000).toFixed(1)}s ago` : ms < 120_000 ? `${Math.round(ms / 1000)}s ago` : `${Math.round(ms / 60_000)}m ago`);

async function status(o: { data: string; json: boolean } & StoreOpts): Promise<void> {
  const location = storeLocationOf(storeTarget(o.data, o), loadConfig(o.data));
  let db: DatabaseStatus;
  let nodes: NodeView[];
  try {
    const backend = await openStoreBackend(location, { poolSize: 1, applicationName: 'kmipd cluster status' });
    try {
      db = await backend.status();
      nodes = (await backend.cluster.list()).map(view);
    } finally {
      await backend.close();
    }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (o.json) printJson({ database: { where: describeStore(location), reachable: false, error: reason }, nodes: [] });
    else console.log(`database: ${describeStore(location)}: unreachable (${reason})`);
    process.exitCode = 1;
    return;
  }
  if (o.json) return printJson({ database: { ...db, reachable: true }, nodes });
  console.log(`database: ${db.where}: reachable, ${db.server}, schema ${db.schemaVersion}`);
  console.log(`durability: ${Object.entries(db.durability).map(([k, v]) => `${k}=${v}`).join(', ')}`);
  if (nodes.length === 0) {
    console.log('no node has registered yet (a node registers when `kmipd serve` starts)');
    return;
  }
  console.log(
    table(
      ['NODE', 'HOST', 'LISTEN', 'VERSION', 'STARTED', 'LAST HEARTBEAT', 'HEALTH'],
      nodes.map((n) => [n.node, n.host, n.listen, n.version, when(n.startedAt), age(n.heartbeatAgeMs), n.health]),
    ),
  );
  const healthy = nodes.filter((n) => n.health === 'healthy').length;
  console.log(`${healthy} of ${nodes.length} node(s) healthy (heartbeat within ${HEARTBEAT_STALE_MS / 1000}s)`);
}

async function forget(o: { data: string; node: string } & StoreOpts): Promise<void> {
  const location = storeLocationOf(storeTarget(o.data, o), loadConfig(o.data));
  await audited(o.data, { operation: 'cluster forget', detail: { node: o.node } }, async () => {
    const backend = await openStoreBackend(location, { poolSize: 1, applicationName: 'kmipd cluster forget' });
    try {
      if (!(await backend.cluster.forget(o.node))) throw new Error(`no node ${o.node} in ${describeStore(location)}`);
    } finally {
      await backend.close();
    }
    console.log(`node ${o.node} removed from the list (a node still running puts itself back at its next heartbeat)`);
  });
}

export function registerClusterCommands(program: Command): void {
  const cluster = program.command('cluster').description('the kmipd nodes sharing this store (PostgreSQL cluster), and their health');
  cluster
    .command('status')
    .description('database reachability and durability settings, and every node with its last heartbeat')
    .addOption(dataOption())
    .option('--json', 'JSON instead of a table', false)
    .action((o) => status({ ...storeTarget(resolve(o.data), o), json: o.json }));
  cluster
    .command('forget <node>')
    .description('remove a decommissioned node from the list')
    .addOption(dataOption())
    .action((node: string, o) => forget({ ...storeTarget(resolve(o.data), o), node }));
  for (const sub of cluster.commands) addStoreOptions(sub);
}
