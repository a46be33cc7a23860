// `kmipd serve`: run until SIGTERM/SIGINT, then finish in-flight requests and close the store.
import { pino } from 'pino';
import { startServer } from '../server/app.js';
import { failSafeDestination } from '../server/log-destination.js';
import type { Limits } from '../server/limits.js';

export async function serve(o: {
  data: string;
  listen?: string;
  adminListen?: string;
  compatCiphers: boolean;
  logLevel: string;
  limits?: Partial<Limits>;
  /** --store / --store-password-env. */
  store?: { url?: string | undefined; passwordEnv?: string | undefined };
}): Promise<void> {
  // Synchronous stdout that never throws: see log-destination.ts (a full disk under a redirected stdout).
  const log = pino({ name: 'kmipd', level: o.logLevel }, failSafeDestination({ fd: 1 }, 4 * 1024 * 1024));
  const running = await startServer(o.data, {
    ...(o.listen ? { listen: o.listen } : {}),
    ...(o.adminListen ? { adminListen: o.adminListen } : {}),
    compatCiphers: o.compatCiphers,
    log,
    limits: o.limits ?? {},
    ...(o.store ? { store: o.store } : {}),
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // logrotate renames audit.log, then sends SIGHUP: the next line goes to a fresh file.
  process.on('SIGHUP', () => running.reopenLogs());
}
