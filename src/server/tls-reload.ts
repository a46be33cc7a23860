// Server certificate rotation without downtime: the running server looks at its certificate and
// key files every few seconds and, when they changed and form a matching pair again, serves the
// new pair to new connections. Connections already open keep theirs.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Logger } from 'pino';

export const TLS_RELOAD_INTERVAL_MS = 1000;

export interface ServerPair {
  readonly cert: string;
  readonly key: string;
}

function stamp(path: string): string {
  const s = statSync(path);
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}

/** Calls `apply` with the new pair each time the files change into a matching pair. Returns a stop function. */
export function watchServerCertificate(
  paths: { cert: string; key: string },
  apply: (pair: ServerPair) => void,
  log: Logger,
  intervalMs = TLS_RELOAD_INTERVAL_MS,
): () => void {
  let last = '';
  try {
    last = `${stamp(paths.cert)}|${stamp(paths.key)}`;
  } catch {
    // checked again on the next tick
  }
  let mismatchLogged = '';
  const tick = () => {
    let now: string;
    try {
      now = `${stamp(paths.cert)}|${stamp(paths.key)}`;
    } catch {
      return; // a file is being replaced; look again next time
    }
    if (now === last) return;
    let pair: ServerPair;
    try {
      pair = { cert: readFileSync(paths.cert, 'utf8'), key: readFileSync(paths.key, 'utf8') };
      // Key and certificate are written one after the other: wait until they belong together.
      if (!new X509Certificate(pair.cert).checkPrivateKey(createPrivateKey(pair.key))) {
        if (mismatchLogged !== now) log.warn('server certificate and key do not match (yet); keeping the current pair');
        mismatchLogged = now;
        return;
      }
    } catch (err) {
      if (mismatchLogged !== now) log.warn({ err: (err as Error).message }, 'server certificate or key unreadable; keeping the current pair');
      mismatchLogged = now;
      return;
    }
    try {
      apply(pair);
    } catch (err) {
      log.error({ err }, 'could not load the new server certificate; keeping the current pair');
      return;
    } finally {
      last = now;
    }
    const x = new X509Certificate(pair.cert);
    log.info({ fingerprint: x.fingerprint256.replace(/:/g, '').toLowerCase(), validTo: x.validTo }, 'server certificate reloaded');
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
