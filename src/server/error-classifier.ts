// HSM and store trouble becomes a KMIP answer the client can act on (retry later, call the
// operator), never a crash. The client learns the kind of failure; the details stay in our log.
import Database from 'better-sqlite3';
import pg from 'pg';
import { NotReplicatedError } from '../store/postgres-database.js';
import type { Logger } from 'pino';
import { HsmError, type HsmErrorCode } from '../hsm/index.js';
import { KmipError } from '../kmip/errors.js';
import { ResultReason } from '../kmip/registry/generated.js';
import type { ErrorClassifier } from '../operations/dispatch.js';

const HSM_MESSAGES: Readonly<Record<HsmErrorCode, string>> = {
  UNWRAP_FAILED: 'the stored key could not be unwrapped',
  TOKEN_NOT_FOUND: 'the HSM token is not available; retry later',
  SESSION_LOST: 'the HSM is unavailable; retry later',
  MODULE_ERROR: 'the HSM is unavailable; retry later',
  CLOSED: 'the HSM is unavailable; retry later',
  LOGIN_FAILED: 'the server cannot log in to the HSM',
  ROOT_KEY_NOT_FOUND: 'the root key is not available in the HSM; retry later',
  ROOT_KEY_INVALID: 'the root key in the HSM is not usable',
  INVALID_ARGUMENT: 'the HSM refused the request',
};

/** SQLite result code families (the part before the first extended suffix) we can explain. */
function storeMessage(code: string): string | undefined {
  const family = /^SQLITE_[A-Z]+/.exec(code)?.[0];
  switch (family) {
    case 'SQLITE_FULL':
      return 'the key store is full; nothing was stored';
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return 'the key store is locked by another process; nothing was stored, retry later';
    case 'SQLITE_IOERR':
    case 'SQLITE_READONLY':
    case 'SQLITE_CANTOPEN':
    case 'SQLITE_PROTOCOL':
      return 'the key store cannot be written; the request was not completed';
    case 'SQLITE_CORRUPT':
    case 'SQLITE_NOTADB':
      return 'the key store is damaged';
    default:
      return undefined;
  }
}

/** PostgreSQL (SQLSTATE) and connection failures we can explain. */
function postgresMessage(err: unknown): string | undefined {
  if (err instanceof NotReplicatedError) return 'the key store could not confirm the change on its synchronous standby; the request was not completed';
  if (err instanceof pg.DatabaseError) {
    const code = err.code ?? '';
    if (code === '53100') return 'the key store is full; nothing was stored';
    if (code === '25006') return 'the key store is read-only (a standby); the request was not completed';
    if (code === '55P03' || code === '57014' || code === '40001' || code === '40P01') return 'the key store is busy; nothing was stored, retry later';
    if (code.startsWith('08') || code.startsWith('57P') || code.startsWith('53')) return 'the key store is unavailable; retry later';
    return undefined;
  }
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : '';
  if ((typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH)$/.test(code)) ||
      /^Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(message)) {
    return 'the key store is unavailable; retry later';
  }
  return undefined;
}

export function classifyError(err: unknown): KmipError | undefined {
  if (err instanceof HsmError) {
    const reason = err.code === 'UNWRAP_FAILED' ? ResultReason.CryptographicFailure : ResultReason.GeneralFailure;
    return new KmipError(reason, HSM_MESSAGES[err.code]);
  }
  if (err instanceof Database.SqliteError) {
    const message = storeMessage(err.code);
    return message === undefined ? undefined : new KmipError(ResultReason.GeneralFailure, message);
  }
  const pgMessage = postgresMessage(err);
  if (pgMessage !== undefined) return new KmipError(ResultReason.GeneralFailure, pgMessage);
  return undefined;
}

/** classifyError, logging what the client is not told (unwrap failures are the client's data, not a fault). */
export function loggingClassifier(log: Logger): ErrorClassifier {
  return (err) => {
    const mapped = classifyError(err);
    if (mapped && !(err instanceof HsmError && err.code === 'UNWRAP_FAILED')) {
      const code = err instanceof HsmError || err instanceof Database.SqliteError || err instanceof pg.DatabaseError ? err.code : undefined;
      log.error({ err, code }, `request failed: ${mapped.message}`);
    }
    return mapped;
  };
}
