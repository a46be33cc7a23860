// Keeps the server connected to its HSM. The Hsm class already reopens a lost session once; what
// it cannot survive is the module itself losing the token (token removed or unreadable, module
// wedged): SoftHSM, for one, does not see a token directory again once it has vanished, until the
// module is finalised and initialised anew. So on such a failure we close the Hsm, or every
// session of an HsmPool (the last user C_Finalizes the module), open a fresh one and retry the
// operation once. While the HSM stays away, requests fail fast with the last error and a new
// attempt is made at most once per interval.
import type { Logger } from 'pino';
import { HsmError, toHsmError, type AesKeyLength, type GeneratedKey, type HsmConnection, type HsmErrorCode, type NewWrappedKey, type WrappedKey } from '../hsm/index.js';
import type { HsmKeys } from '../operations/context.js';
import type { WrappedKeyRecord } from '../store/types.js';

/** Failures of the HSM connection rather than of the request: worth a reconnect. */
const RECONNECT_CODES: ReadonlySet<HsmErrorCode> = new Set<HsmErrorCode>([
  'TOKEN_NOT_FOUND',
  'ROOT_KEY_NOT_FOUND',
  'SESSION_LOST',
  'MODULE_ERROR',
  'LOGIN_FAILED',
  'CLOSED',
]);

export const DEFAULT_HSM_RETRY_INTERVAL_MS = 1000;

export interface HsmSupervisorOptions {
  /** Opens and logs in to the HSM (one session or a pool); reads the PIN afresh each time, so the supervisor never holds it. */
  readonly open: () => Promise<HsmConnection>;
  readonly log: Logger;
  /** Least time between two reconnection attempts. */
  readonly retryIntervalMs?: number;
  /** Times each call as the server sees it, reconnection included (metrics). */
  readonly timeCall?: <T>(call: HsmCall, fn: () => Promise<T>) => Promise<T>;
}

/** The HSM calls the server makes: a bounded metrics label. */
export type HsmCall = 'generate' | 'wrap' | 'unwrap' | 'ping';

function needsReconnect(e: unknown): e is HsmError {
  return e instanceof HsmError && RECONNECT_CODES.has(e.code);
}

export class HsmSupervisor implements HsmKeys {
  private hsm: HsmConnection | undefined;
  private reconnecting: Promise<HsmConnection> | undefined;
  /** When the last reconnection was started, and why the last one failed (if it did). */
  private lastAttemptAt = Number.NEGATIVE_INFINITY;
  private lastFailure: HsmError | undefined;
  private closed = false;
  private readonly retryIntervalMs: number;

  constructor(
    first: HsmConnection,
    private readonly opts: HsmSupervisorOptions,
  ) {
    this.hsm = first;
    this.retryIntervalMs = opts.retryIntervalMs ?? DEFAULT_HSM_RETRY_INTERVAL_MS;
  }

  generateWrappedKey(objectId: string, bits: AesKeyLength): Promise<GeneratedKey> {
    return this.run('generate', (h) => h.generateWrappedKey(objectId, bits));
  }

  newWrappedKey(bits: AesKeyLength): Promise<NewWrappedKey> {
    return this.run('generate', (h) => h.newWrappedKey(bits));
  }

  wrapPlaintextKey(objectId: string, key: Uint8Array): Promise<WrappedKey> {
    return this.run('wrap', (h) => h.wrapPlaintextKey(objectId, key));
  }

  wrapSecretBytes(objectId: string, secret: Uint8Array): Promise<WrappedKey> {
    return this.run('wrap', (h) => h.wrapSecretBytes(objectId, secret));
  }

  unwrapKey(objectId: string, wrapped: WrappedKeyRecord): Promise<Buffer> {
    return this.run('unwrap', (h) => h.unwrapKey(objectId, wrapped));
  }

  /**
   * Resolves if the HSM answers now and holds `rootKeyLabel` (readiness). A session check alone is
   * not enough: SoftHSM keeps answering on an open session after its token is gone. Goes through
   * the same path as a request: a lost session or token is reconnected, at most once per interval.
   */
  ping(rootKeyLabel: string): Promise<void> {
    return this.run('ping', async (h) => {
      if (!(await h.hasRootKey(rootKeyLabel))) throw new HsmError('ROOT_KEY_NOT_FOUND', `root key ${rootKeyLabel} not found in the HSM`);
    });
  }

  /** Whether the server currently holds a working HSM connection (for logs and health checks). */
  get connected(): boolean {
    return this.hsm !== undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.reconnecting?.catch(() => undefined);
    const h = this.hsm;
    this.hsm = undefined;
    await h?.close();
  }

  private run<T>(call: HsmCall, op: (h: HsmConnection) => Promise<T>): Promise<T> {
    return this.opts.timeCall ? this.opts.timeCall(call, () => this.attempt(op)) : this.attempt(op);
  }

  private async attempt<T>(op: (h: HsmConnection) => Promise<T>): Promise<T> {
    // The usual case, an open connection, without a promise to await.
    const h = this.hsm !== undefined && !this.closed ? this.hsm : await this.current();
    try {
      return await op(h);
    } catch (e) {
      if (!needsReconnect(e) || this.closed) throw e;
      if (!this.reconnecting && this.hsm === h && !this.mayAttempt()) throw e;
      this.opts.log.error({ code: e.code, pkcs11Code: e.pkcs11Code }, 'HSM failure; reconnecting');
      let fresh: HsmConnection;
      try {
        fresh = await this.reconnect(h);
      } catch {
        throw e; // the client hears about the failure it met, not about our attempt to recover
      }
      return op(fresh);
    }
  }

  /** The open connection, one being opened, or a new attempt when the last failure is old enough. */
  private current(): Promise<HsmConnection> {
    if (this.closed) return Promise.reject(new HsmError('CLOSED', 'the server is stopping'));
    if (this.hsm) return Promise.resolve(this.hsm);
    if (this.reconnecting) return this.reconnecting;
    if (!this.mayAttempt()) {
      return Promise.reject(this.lastFailure ?? new HsmError('MODULE_ERROR', 'the HSM is unavailable'));
    }
    return this.reconnect(undefined);
  }

  private mayAttempt(): boolean {
    return performance.now() - this.lastAttemptAt >= this.retryIntervalMs;
  }

  /** Replace `broken` by a fresh connection; concurrent callers share one attempt. */
  private reconnect(broken: HsmConnection | undefined): Promise<HsmConnection> {
    if (this.reconnecting) return this.reconnecting;
    if (this.hsm && this.hsm !== broken) return Promise.resolve(this.hsm); // someone else already did it
    this.hsm = undefined;
    this.lastAttemptAt = performance.now();
    const attempt = (async () => {
      // Close first: the module is only finalised (and rescans its tokens) when its last user leaves.
      if (broken) await broken.close().catch(() => undefined);
      try {
        const h = await this.opts.open();
        if (this.closed) {
          await h.close();
          throw new HsmError('CLOSED', 'the server is stopping');
        }
        this.hsm = h;
        if (this.lastFailure) this.opts.log.warn('HSM reconnected');
        else this.opts.log.info('HSM session re-established');
        this.lastFailure = undefined;
        return h;
      } catch (e) {
        const err = toHsmError(e, 'MODULE_ERROR', 'cannot reconnect to the HSM');
        this.lastFailure = err;
        this.opts.log.error({ code: err.code, pkcs11Code: err.pkcs11Code }, 'HSM still unavailable');
        throw err;
      }
    })();
    const tracked: Promise<HsmConnection> = attempt.finally(() => {
      if (this.reconnecting === tracked) this.reconnecting = undefined;
    });
    this.reconnecting = tracked;
    return tracked;
  }
}
