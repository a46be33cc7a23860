// Wires a data folder into a running server: config → HSM session → store → dispatcher → listener.
import { readFileSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import { Hsm } from '../hsm/index.js';
import { SqliteStore } from '../store/sqlite-store.js';
import { Dispatcher } from '../operations/dispatch.js';
import { KmipServer } from './kmip-server.js';
import { loadConfig, parseListen, readPin, resolveIn } from './config.js';
import { resolveLimits, type Limits } from './limits.js';
import { loggingClassifier } from './error-classifier.js';
import { HsmSupervisor } from './hsm-supervisor.js';
import { requestScreen } from './request-limits.js';
import { openAuditLog } from './audit-log.js';
import { openOperatorState } from './operator-state.js';
import { withOperatorHolds } from './operator-holds.js';
import { join } from 'node:path';

export const SERVER_VENDOR = 'kmipd';
export const SERVER_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export interface RunningServer {
  readonly server: KmipServer;
  readonly address: { host: string; port: number };
  stop(): Promise<void>;
}

export async function startServer(
  dataDir: string,
  overrides: { listen?: string; compatCiphers?: boolean; log?: Logger; limits?: Partial<Limits> } = {},
): Promise<RunningServer> {
  const cfg = loadConfig(dataDir);
  const limits = resolveLimits({ ...cfg.limits, ...overrides.limits }, 'serve');
  const log = overrides.log ?? pino({ name: 'kmipd' });
  const auditLog = openAuditLog(join(dataDir, 'audit.log'), log);
  const audit = auditLog.logger;
  const storePath = resolveIn(dataDir, cfg.store.sqlite);
  const operator = openOperatorState(storePath, { configuredRootKeyLabel: cfg.hsm.rootKeyLabel, log, audit });
  // The PIN is read again on every (re)connection, never kept by the server.
  const openHsm = () =>
    Hsm.open({
      modulePath: cfg.hsm.module,
      tokenLabel: cfg.hsm.tokenLabel,
      pin: readPin(dataDir, cfg.hsm.pin),
      rootKeyLabel: cfg.hsm.rootKeyLabel,
      activeRootKeyLabel: operator.activeRootKeyLabel,
      ...(cfg.hsm.softhsmConf ? { env: { SOFTHSM2_CONF: resolveIn(dataDir, cfg.hsm.softhsmConf) } } : {}),
    });
  const hsm = await openHsm();
  if (!(await hsm.hasRootKey(operator.activeRootKeyLabel()))) {
    await hsm.close();
    operator.close();
    throw new Error(`root key ${operator.activeRootKeyLabel()} not found on token ${cfg.hsm.tokenLabel}: run kmipd init`);
  }
  const store = new SqliteStore(storePath);
  const keys = new HsmSupervisor(hsm, { open: openHsm, log });
  const dispatcher = new Dispatcher(
    {
      store,
      keys: withOperatorHolds(keys, operator.holds),
      log,
      audit,
      server: { vendor: SERVER_VENDOR, version: SERVER_VERSION },
      maxDepth: limits.maxDepth,
      screen: requestScreen(limits),
      checkCredential: (client, cred) => operator.passwords.verify(client.name, cred.username, cred.password),
    },
    loggingClassifier(log),
  );
  const { host, port } = parseListen(overrides.listen ?? cfg.listen);
  const server = new KmipServer({
    host,
    port,
    maxMessageSize: limits.maxMessageSize,
    limits,
    dispatcher,
    log,
    gate: operator.gate,
    tls: {
      cert: readFileSync(resolveIn(dataDir, cfg.tls.cert), 'utf8'),
      key: readFileSync(resolveIn(dataDir, cfg.tls.key), 'utf8'),
      compatCiphers: overrides.compatCiphers ?? cfg.tls.compatCiphers,
    },
  });
  let address;
  try {
    address = await server.start();
  } catch (err) {
    await store.close();
    await keys.close();
    operator.close();
    throw err;
  }
  operator.attach(server, { cert: resolveIn(dataDir, cfg.tls.cert), key: resolveIn(dataDir, cfg.tls.key) });
  log.info({ host: address.address, port: address.port }, 'kmipd listening');
  return {
    server,
    address: { host: address.address, port: address.port },
    async stop() {
      await server.stop();
      operator.close();
      await store.close();
      await keys.close();
      auditLog.close();
      log.info('kmipd stopped');
    },
  };
}
