// The audit log (DATA/audit.log): one line per batch item, written so that a full or failing disk
// cannot take the server down (see log-destination.ts). The lines of one turn of the event loop
// share one write(2); an answer is sent only once its line is with the kernel (kmip-server.ts
// defers it with whenLogsWritten). Trouble writing it is reported in the main log, at most once a
// minute, with counts.
import { pino, type Logger } from 'pino';
import { BufferedLogFile } from './log-destination.js';

/** Audit lines kept in memory while the disk refuses them. */
export const AUDIT_BACKLOG_BYTES = 8 * 1024 * 1024;
const REPORT_INTERVAL_MS = 60_000;

export interface AuditLog {
  readonly logger: Logger;
  /** Reopen the file by its path (after logrotate moved it away): SIGHUP. */
  reopen(): void;
  close(): void;
}

export function openAuditLog(path: string, log: Logger): AuditLog {
  let lastReport = Number.NEGATIVE_INFINITY;
  let failures = 0;
  let dropped = 0;
  const dest = new BufferedLogFile(path, AUDIT_BACKLOG_BYTES, (t) => {
    if (t.kind === 'error') failures += 1;
    else dropped += 1;
    const now = performance.now();
    if (now - lastReport < REPORT_INTERVAL_MS) return;
    lastReport = now;
    log.error(
      { code: t.kind === 'error' ? t.code : undefined, failures, dropped },
      t.kind === 'error' ? 'cannot write the audit log; lines wait in memory until it can' : 'audit log backlog full; lines dropped',
    );
  });
  return {
    logger: pino({ name: 'kmipd-audit', timestamp: isoTimeByMillisecond }, dest),
    reopen() {
      dest.reopen();
    },
    close() {
      dest.end(); // the disk may still refuse the backlog: nothing more to do at shutdown
      if (failures > 0 || dropped > 0) log.error({ failures, dropped }, 'the audit log had write failures');
    },
  };
}

// pino's isoTime, formatted once per millisecond: under load many lines share one.
let stampedAt = Number.NaN;
let stamp = '';
function isoTimeByMillisecond(): string {
  const now = Date.now();
  if (now !== stampedAt) {
    stampedAt = now;
    stamp = `,"time":"${new Date(now).toISOString()}"`;
  }
  return stamp;
}
