// `kmipd serve`: run until SIGTERM/SIGINT, then finish in-flight requests and close the store.
// With `processes` above 1 this process becomes the primary of that many serve processes
// (serve-processes.ts), each of which runs this same function again.
import { pino, type Logger } from 'pino';
import { startServer, type RunningServer } from '../server/app.js';
import { loadConfig, parseListen } from '../server/config.js';
import { failSafeDestination } from '../server/log-destination.js';
import { errorLine } from './format.js';
import { isServeProcess, receiveRole, reportToPrimary, ServeProcesses } from '../server/serve-processes.js';
import type { Limits } from '../server/limits.js';
import { memoryAllocator } from '../server/memory-allocator.js';

export interface ServeOptions {
  data: string;
  listen?: string;
  adminListen?: string;
  compatCiphers: boolean;
  logLevel: string;
  limits?: Partial<Limits>;
  /** --processes: overrides kmipd.json's `processes`. */
  processes?: number | undefined;
  /** --store / --store-password-env. */
  store?: { url?: string | undefined; passwordEnv?: string | undefined };
}

export async function serve(o: ServeOptions): Promise<void> {
  // Synchronous stdout that never throws: see log-destination.ts (a full disk under a redirected stdout).
  const log = pino({ name: 'kmipd', level: o.logLevel }, failSafeDestination({ fd: 1 }, 4 * 1024 * 1024));
  if (isServeProcess()) {
    // One that cannot start exits at once: its channel to the primary would keep it alive.
    return serveOneProcess(o, log).catch((err: unknown) => {
      console.error(errorLine(err));
      process.exit(1);
    });
  }
  const cfg = loadConfig(o.data);
  const processes = o.processes ?? cfg.processes;
  if (processes === 1) return serveOneProcess(o, log);
  const adminListen = o.adminListen ?? cfg.admin.listen;
  const primary = new ServeProcesses({ processes, log, admin: adminListen === undefined ? undefined : parseListen(adminListen) });
  const bound = await primary.start();
  log.info({ host: bound.host, port: bound.port, processes, allocator: memoryAllocator() }, 'kmipd listening');
  if (bound.admin) log.info({ host: bound.admin.host, port: bound.admin.port }, 'kmipd admin listening');
  onStopSignals(log, () => primary.stop().then((code) => process.exit(code)));
  process.on('SIGHUP', () => primary.reopenLogs());
}

async function serveOneProcess(o: ServeOptions, baseLog: Logger): Promise<void> {
  const role = isServeProcess() ? await receiveRole() : undefined;
  const log = role ? baseLog.child({ process: role.index }) : baseLog;
  const running: RunningServer = await startServer(o.data, {
    ...(o.listen ? { listen: o.listen } : {}),
    ...(o.adminListen ? { adminListen: o.adminListen } : {}),
    compatCiphers: o.compatCiphers,
    log,
    limits: o.limits ?? {},
    ...(o.store ? { store: o.store } : {}),
    ...(role ? { process: role } : {}),
  });
  if (role) reportToPrimary(running);
  onStopSignals(log, () => running.stop().then(() => process.exit(0)));
  // logrotate renames audit.log, then sends SIGHUP: the next line goes to a fresh file.
  process.on('SIGHUP', () => running.reopenLogs());
}

/** SIGTERM / SIGINT: stop once (a second signal changes nothing), exit 1 if stopping fails. */
function onStopSignals(log: Logger, stop: () => Promise<unknown>): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    stop().catch((err: unknown) => {
      log.error({ err }, 'error while stopping');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}
