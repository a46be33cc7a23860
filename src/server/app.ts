// Wires a data folder into a running server: config → HSM session → store → dispatcher → listener.
import { readFileSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import { Hsm, HsmError } from '../hsm/index.js';
import { SqliteStore } from '../store/sqlite-store.js';
import { Dispatcher } from '../operations/dispatch.js';
import { KmipError } from '../kmip/errors.js';
import { ResultReason } from '../kmip/registry/generated.js';
import { KmipServer } from './kmip-server.js';
import { loadConfig, parseListen, readPin, resolveIn } from './config.js';
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

/** HSM trouble becomes a KMIP answer, never a crash; the details stay in our log. */
function classifyError(err: unknown): KmipError | undefined {
  if (err instanceof HsmError) {
    return err.code === 'UNWRAP_FAILED'
      ? new KmipError(ResultReason.CryptographicFailure, 'the stored key could not be unwrapped')
      : new KmipError(ResultReason.GeneralFailure, 'the HSM is unavailable');
  }
  return undefined;
}

export async function startServer(dataDir: string, overrides: { listen?: string; compatCiphers?: boolean; log?: Logger } = {}): Promise<RunningServer> {
  const cfg = loadConfig(dataDir);
  const log = overrides.log ?? pino({ name: 'kmipd' });
  const audit = pino({ name: 'kmipd-audit' }, pino.destination({ dest: join(dataDir, 'audit.log'), mkdir: true, sync: false }));
  const hsm = await Hsm.open({
    modulePath: cfg.hsm.module,
    tokenLabel: cfg.hsm.tokenLabel,
    pin: readPin(dataDir, cfg.hsm.pin),
    rootKeyLabel: cfg.hsm.rootKeyLabel,
    ...(cfg.hsm.softhsmConf ? { env: { SOFTHSM2_CONF: resolveIn(dataDir, cfg.hsm.softhsmConf) } } : {}),
  });
  if (!(await hsm.hasRootKey())) {
    await hsm.close();
    throw new Error(`root key ${cfg.hsm.rootKeyLabel} not found on token ${cfg.hsm.tokenLabel}: run kmipd init`);
  }
  const store = new SqliteStore(resolveIn(dataDir, cfg.store.sqlite));
  const dispatcher = new Dispatcher(
    { store, keys: hsm, log, audit, server: { vendor: SERVER_VENDOR, version: SERVER_VERSION }, maxDepth: cfg.limits.maxDepth },
    classifyError,
  );
  const { host, port } = parseListen(overrides.listen ?? cfg.listen);
  const server = new KmipServer({
    host,
    port,
    maxMessageSize: cfg.limits.maxMessageSize,
    dispatcher,
    log,
    tls: {
      cert: readFileSync(resolveIn(dataDir, cfg.tls.cert), 'utf8'),
      key: readFileSync(resolveIn(dataDir, cfg.tls.key), 'utf8'),
      ca: readFileSync(resolveIn(dataDir, cfg.tls.clientCa), 'utf8'),
      compatCiphers: overrides.compatCiphers ?? cfg.tls.compatCiphers,
    },
  });
  let address;
  try {
    address = await server.start();
  } catch (err) {
    await store.close();
    await hsm.close();
    throw err;
  }
  log.info({ host: address.address, port: address.port }, 'kmipd listening');
  return {
    server,
    address: { host: address.address, port: address.port },
    async stop() {
      await server.stop();
      await store.close();
      await hsm.close();
      log.info('kmipd stopped');
    },
  };
}
