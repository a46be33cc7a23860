// Operator actions go to the same audit log as KMIP requests (DATA/audit.log), one JSON line each,
// marked source "cli" with the OS user who ran them. Never key material, never PINs.
import { appendFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';

export const AUDIT_FILE = 'audit.log';

export interface OperatorAction {
  /** e.g. "client revoke", "keys destroy", "root rotate". */
  readonly operation: string;
  readonly client?: string | undefined;
  readonly fingerprint?: string | undefined;
  readonly tenant?: string | undefined;
  readonly object?: string | undefined;
  readonly detail?: Record<string, string | number | boolean | undefined>;
}

function actor(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}@${hostname()}`;
  }
}

export function auditPath(data: string): string {
  return join(data, AUDIT_FILE);
}

export function recordOperatorAction(data: string, action: OperatorAction, outcome: { ok: true } | { ok: false; reason: string }): void {
  const line = {
    ...action.detail, // first: details never overwrite the fields every record has
    level: 30,
    time: new Date().toISOString(),
    name: 'kmipd-audit',
    source: 'cli',
    actor: actor(),
    operation: action.operation,
    client: action.client,
    fingerprint: action.fingerprint,
    tenant: action.tenant,
    object: action.object,
    result: outcome.ok ? 'Success' : 'Failed',
    reason: outcome.ok ? undefined : outcome.reason,
    msg: 'operator action',
  };
  // O_APPEND: one write per line, so lines from the server and from CLI runs never interleave.
  appendFileSync(auditPath(data), JSON.stringify(line) + '\n', { mode: 0o600 });
}

/** Runs an operator action and audits its outcome, success or failure. */
export async function audited<T>(data: string, action: OperatorAction | (() => OperatorAction), run: () => Promise<T>): Promise<T> {
  try {
    const result = await run();
    recordOperatorAction(data, typeof action === 'function' ? action() : action, { ok: true });
    return result;
  } catch (err) {
    recordOperatorAction(data, typeof action === 'function' ? action() : action, { ok: false, reason: err instanceof Error ? err.message : String(err) });
    throw err;
  }
}
