// Wires a data folder into a running server: config → HSM session → store → dispatcher → listener.
import { readFileSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import { openHsmConnection, PrewrappedKeys } from '../hsm/index.js';
import { openStoreBackend } from '../store/backend.js';
import { describeStore, resolveStoreLocation } from '../store/store-location.js';
import { Dispatcher } from '../operations/dispatch.js';
import { KmipServer } from './kmip-server.js';
import { loadConfig, parseListen, readPin, resolveIn } from './config.js';
import { resolveLimits, type Limits } from './limits.js';
import { loggingClassifier } from './error-classifier.js';
import { HsmSupervisor } from './hsm-supervisor.js';
import { requestScreen } from './request-limits.js';
import { openAuditLog } from './audit-log.js';
import { openOperatorState, withActiveRootKey, type OperatorState } from './operator-state.js';
import { joinCluster, nodeIdOf, type Membership } from './cluster-membership.js';
import { withOperatorHolds } from './operator-holds.js';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { ENUM_INFO } from '../kmip/registry/generated.js';
import type { StoreHealth } from '../store/types.js';
import { ServerMetrics, type KeyCounts } from './metrics.js';
import { AdminServer, runReadinessChecks, type Readiness } from './admin-http.js';
import type { Registry } from 'prom-client';
import { memoryAllocator } from './memory-allocator.js';

export const SERVER_VENDOR = 'kmipd';
export const SERVER_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface RunningServer {
  readonly server: KmipServer;
  readonly address: { host: string; port: number };
  /** The admin HTTP listener, when one was asked for. */
  readonly admin: { host: string; port: number } | undefined;
  /** This process's metrics and readiness, when the admin listener is configured (served here or by the primary). */
  readonly health: { readonly registry: Registry; readiness(): Promise<Readiness> } | undefined;
  /** Reopen the audit log file (SIGHUP after log rotation): no line is lost between rotate and reopen. */
  reopenLogs(): void;
  stop(): Promise<void>;
}

export async function startServer(
  dataDir: string,
  overrides: {
    listen?: string;
    adminListen?: string;
    compatCiphers?: boolean;
    log?: Logger;
    limits?: Partial<Limits>;
    /** --store / --store-password-env: another store than kmipd.json's. */
    store?: { url?: string | undefined; passwordEnv?: string | undefined };
    /** Set in one of the processes of `serve --processes N` (serve-processes.ts). */
    process?: ServeProcessRole;
  } = {},
): Promise<RunningServer> {
  const cfg = loadConfig(dataDir);
  const adminListen = overrides.adminListen ?? cfg.admin.listen;
  const adminAddress = adminListen === undefined ? undefined : parseListen(adminListen);
  const role = overrides.process;
  const configured = resolveLimits({ ...cfg.limits, ...overrides.limits }, 'serve');
  // New connections are dealt to the processes in turn, so each takes its share of the total.
  const limits = role ? { ...configured, maxConnections: Math.ceil(configured.maxConnections / role.processes) } : configured;
  const log = overrides.log ?? pino({ name: 'kmipd' });
  const auditLog = openAuditLog(join(dataDir, 'audit.log'), log);
  const audit = auditLog.logger;
  const nodeId = nodeIdOf(dataDir);
  const storeLocation = resolveStoreLocation(dataDir, cfg.store, overrides.store);
  const backend = await openStoreBackend(storeLocation, { log, poolSize: 16, applicationName: `kmipd ${nodeId}` }).catch((err: unknown) => {
    auditLog.close();
    throw new Error(`cannot open the store ${describeStore(storeLocation)}: ${(err as Error).message}`);
  });
  log.info({ store: describeStore(storeLocation), node: nodeId }, 'store open');
  let operator: OperatorState;
  try {
    operator = await openOperatorState(backend, { configuredRootKeyLabel: cfg.hsm.rootKeyLabel, log, audit });
  } catch (err) {
    await backend.close();
    auditLog.close();
    throw err;
  }
  // The PIN is read again on every (re)connection, never kept by the server.
  const openHsm = async () => {
    const conn = await openHsmConnection(
      {
        modulePath: cfg.hsm.module,
        tokenLabel: cfg.hsm.tokenLabel,
        pin: readPin(dataDir, cfg.hsm.pin),
        rootKeyLabel: cfg.hsm.rootKeyLabel,
        activeRootKeyLabel: operator.activeRootKeyLabel,
        ...(cfg.hsm.softhsmConf ? { env: { SOFTHSM2_CONF: resolveIn(dataDir, cfg.hsm.softhsmConf) } } : {}),
      },
      cfg.hsm.sessions,
    );
    if (!cfg.hsm.makeKeysAhead) return conn;
    return new PrewrappedKeys(conn, {
      activeRootKeyLabel: operator.activeRootKeyLabel,
      onError: (err) => log.warn({ err }, 'making keys ahead of Creates failed; Creates make their own for a while'),
    });
  };
  // libuv sizes its thread pool once, before this code runs: sessions beyond it wait for a thread.
  const uvThreads = Number(process.env['UV_THREADPOOL_SIZE']) || 4;
  if (cfg.hsm.sessions > uvThreads) {
    log.warn({ sessions: cfg.hsm.sessions, uvThreads }, 'hsm.sessions exceeds the libuv thread pool: set UV_THREADPOOL_SIZE to at least hsm.sessions');
  }
  const hsm = await openHsm().catch(async (err: unknown) => {
    operator.close();
    await backend.close();
    auditLog.close();
    throw err;
  });
  if (!(await hsm.hasRootKey(operator.activeRootKeyLabel()))) {
    await hsm.close();
    operator.close();
    await backend.close();
    auditLog.close();
    throw new Error(`root key ${operator.activeRootKeyLabel()} not found on token ${cfg.hsm.tokenLabel}: run kmipd init`);
  }
  const store = backend.objects;
  // Metrics are collected only when the admin listener is there to expose them.
  const metrics = adminAddress ? new ServerMetrics(keyCountsOf(store), log) : undefined;
  const keys = new HsmSupervisor(hsm, { open: openHsm, log, ...(metrics ? { timeCall: (call, fn) => metrics.timeHsm(call, fn) } : {}) });
  const dispatcher = new Dispatcher(
    {
      store,
      keys: withActiveRootKey(withOperatorHolds(keys), operator.refreshActiveRootKey),
      log,
      audit,
      server: { vendor: SERVER_VENDOR, version: SERVER_VERSION },
      maxDepth: limits.maxDepth,
      screen: requestScreen(limits),
      checkCredential: (client, cred) => operator.passwords.verify(client.name, cred.username, cred.password),
      ...(metrics ? { observe: metrics } : {}),
    },
    loggingClassifier(log),
  );
  const listen = parseListen(overrides.listen ?? cfg.listen);
  const { host } = listen;
  const port = role?.port ?? listen.port;
  // Requests, connections and sweeps mark their arrival; between two, this process's reads share
  // one check for other processes' commits (sqlite-change-watch.ts).
  const arrived = backend.shareChangeChecks();
  const server = new KmipServer({
    arrived,
    host,
    port,
    maxMessageSize: limits.maxMessageSize,
    limits,
    sharedListener: role !== undefined,
    dispatcher,
    log,
    gate: operator.gate,
    ...(metrics ? { observe: metrics } : {}),
    tls: {
      cert: readFileSync(resolveIn(dataDir, cfg.tls.cert), 'utf8'),
      key: readFileSync(resolveIn(dataDir, cfg.tls.key), 'utf8'),
      compatCiphers: overrides.compatCiphers ?? cfg.tls.compatCiphers,
    },
  });
  const checks = [
    { name: 'hsm', check: () => keys.ping(operator.activeRootKeyLabel()) },
    { name: 'store', check: () => store.probeWritable() },
  ];
  const health = metrics ? { registry: metrics.registry, readiness: () => runReadinessChecks(checks) } : undefined;
  // With several processes the primary serves the admin listener for all of them.
  const admin =
    adminAddress && health && !role
      ? new AdminServer({ ...adminAddress, metrics: health.registry, readiness: health.readiness, log })
      : undefined;
  let address;
  let adminBound;
  let membership: Membership;
  try {
    address = await server.start();
    adminBound = await admin?.start();
    // One heartbeat per node: with several serve processes, the first keeps it. Each beat is a
    // commit the other processes see, and a commit from another connection empties their caches.
    membership =
      role && role.index > 0
        ? { leave: () => Promise.resolve() }
        : await joinCluster(
            backend.cluster,
            { nodeId, host: hostname(), listen: `${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`, version: SERVER_VERSION, pid: role ? process.ppid : process.pid },
            log,
          );
  } catch (err) {
    await admin?.stop().catch(() => undefined);
    await server.stop().catch(() => undefined);
    await keys.close();
    operator.close();
    await backend.close();
    auditLog.close();
    throw err;
  }
  operator.attach(server, { cert: resolveIn(dataDir, cfg.tls.cert), key: resolveIn(dataDir, cfg.tls.key) }, arrived);
  // The primary says `kmipd listening` once every process is: clients wait for that line.
  log.info({ host: address.address, port: address.port, allocator: memoryAllocator() }, role ? 'serve process listening' : 'kmipd listening');
  if (adminBound) log.info({ host: adminBound.address, port: adminBound.port }, 'kmipd admin listening');
  return {
    server,
    address: { host: address.address, port: address.port },
    admin: adminBound ? { host: adminBound.address, port: adminBound.port } : undefined,
    health,
    reopenLogs() {
      auditLog.reopen();
      log.info('audit log reopened');
    },
    async stop() {
      // The admin listener goes first: a load balancer polling /readyz stops sending new clients
      // while the KMIP listener lets in-flight requests finish.
      await admin?.stop();
      await server.stop();
      operator.close();
      await membership.leave();
      await backend.close();
      await keys.close();
      auditLog.close();
      log.info('kmipd stopped');
    },
  };
}

/** One of the N processes of `serve --processes N`. */
export interface ServeProcessRole {
  readonly index: number;
  readonly processes: number;
  /** The port the first serve process bound (for a `:0` listen), once there is one. */
  readonly port?: number;
}

/** Objects per State, every State named (from the registry) so that a zero is a series too. */
function keyCountsOf(store: StoreHealth): KeyCounts {
  const states = [...(ENUM_INFO.get('State')?.values ?? new Map<number, { xml: string }>())];
  return {
    async byState() {
      const counts = await store.countByState();
      return Object.fromEntries(states.map(([value, info]) => [info.xml, counts.get(value) ?? 0]));
    },
  };
}
