/**
 * Several HSM sessions side by side, for HSMs that take milliseconds per call (network HSMs).
 *
 * One Hsm runs one PKCS#11 operation at a time on its session (PKCS#11 allows no more), and runs
 * it on the event loop: with a network HSM every request of every client would wait behind every
 * HSM call. An HsmPool holds `sessions` Hsm instances (one module, one login per token, shared
 * through pkcs11-module.ts), each with its own session, queue, data key and session recovery,
 * and each running its slow calls on libuv's thread pool. A call goes to the instance with the
 * fewest calls queued, so up to `sessions` HSM calls are in flight while the event loop serves.
 *
 * libuv runs 4 threads unless UV_THREADPOOL_SIZE (read once, before the pool's first use) says
 * otherwise; file system and some crypto work share them. More sessions than threads wait there.
 */
import { inspect } from 'node:util';
import { MAX_HSM_SESSIONS, type HsmConfig } from './config.js';
import { HsmError } from './errors.js';
import { Hsm, type AesKeyLength, type GeneratedKey, type HsmConnection, type LentDataKey, type NewWrappedKey, type WrapOptions, type WrappedKey } from './key-protector.js';

export class HsmPool implements HsmConnection {
  /** Calls queued or running on each member. */
  private readonly busy: number[];
  private closing: Promise<void> | undefined;

  private constructor(private readonly members: readonly Hsm[]) {
    this.busy = members.map(() => 0);
  }

  /** Opens `sessions` (2..MAX_HSM_SESSIONS) sessions; closes the ones it opened if one fails. */
  static async open(config: HsmConfig, sessions: number): Promise<HsmPool> {
    if (!Number.isSafeInteger(sessions) || sessions < 2 || sessions > MAX_HSM_SESSIONS) {
      throw new HsmError('INVALID_ARGUMENT', `an HSM pool has 2 to ${MAX_HSM_SESSIONS} sessions, got ${String(sessions)}`);
    }
    const members: Hsm[] = [];
    try {
      // One after the other: the first joins or initialises the module, the others join it.
      while (members.length < sessions) members.push(await Hsm.open(config, { threadPool: true }));
    } catch (e) {
      await Promise.all(members.map((m) => m.close()));
      throw e;
    }
    return new HsmPool(members);
  }

  get size(): number {
    return this.members.length;
  }

  ensureRootKey(): Promise<{ created: boolean }> {
    return this.dispatch((h) => h.ensureRootKey());
  }

  hasRootKey(label?: string): Promise<boolean> {
    return this.dispatch((h) => h.hasRootKey(label));
  }

  generateWrappedKey(objectId: string, bits: AesKeyLength, opts?: WrapOptions): Promise<GeneratedKey> {
    return this.dispatch((h) => h.generateWrappedKey(objectId, bits, opts));
  }

  newWrappedKey(bits: AesKeyLength): Promise<NewWrappedKey> {
    return this.dispatch((h) => h.newWrappedKey(bits));
  }

  /** From one member: its release() goes back to that member's session. */
  lendDataKey(label: string): Promise<LentDataKey> {
    return this.dispatch((h) => h.lendDataKey(label));
  }

  wrapPlaintextKey(objectId: string, key: Uint8Array, opts?: WrapOptions): Promise<WrappedKey> {
    return this.dispatch((h) => h.wrapPlaintextKey(objectId, key, opts));
  }

  wrapSecretBytes(objectId: string, secret: Uint8Array, opts?: WrapOptions): Promise<WrappedKey> {
    return this.dispatch((h) => h.wrapSecretBytes(objectId, secret, opts));
  }

  /** See Hsm.unwrapKey: THE CALLER OWNS THE RETURNED BUFFER AND MUST ZERO IT. */
  unwrapKey(objectId: string, wrapped: WrappedKey): Promise<Buffer> {
    return this.dispatch((h) => h.unwrapKey(objectId, wrapped));
  }

  rewrapKey(objectId: string, wrapped: WrappedKey, newRootKeyLabel: string): Promise<WrappedKey> {
    return this.dispatch((h) => h.rewrapKey(objectId, wrapped, newRootKeyLabel));
  }

  /** Every session answers (each re-establishes itself once if it was lost). */
  async ping(): Promise<void> {
    this.assertOpen();
    await Promise.all(this.members.map((h) => h.ping()));
  }

  /** Closes every session once its queued calls are done; the last one logs out and finalises. Idempotent. */
  close(): Promise<void> {
    this.closing ??= Promise.all(this.members.map((h) => h.close())).then(() => undefined);
    return this.closing;
  }

  [inspect.custom](): string {
    return `HsmPool { sessions: ${this.members.length}, ${this.members[0]?.[inspect.custom]() ?? ''} }`;
  }

  toJSON(): { tokenLabel: string; rootKeyLabel: string; sessions: number } {
    return { ...this.members[0]!.toJSON(), sessions: this.members.length };
  }

  private assertOpen(): void {
    if (this.closing) throw new HsmError('CLOSED', 'HSM connection is closed');
  }

  /** Runs `op` on the member with the fewest calls queued (the first of those, on a tie). */
  private async dispatch<T>(op: (h: Hsm) => Promise<T>): Promise<T> {
    this.assertOpen();
    let i = 0;
    for (let j = 1; j < this.busy.length; j++) if (this.busy[j]! < this.busy[i]!) i = j;
    this.busy[i]! += 1;
    try {
      return await op(this.members[i]!);
    } finally {
      this.busy[i]! -= 1;
    }
  }
}

/** `sessions` 1: one Hsm, every call on the event loop (fastest with SoftHSM). More: an HsmPool. */
export function openHsmConnection(config: HsmConfig, sessions = 1): Promise<HsmConnection> {
  return sessions === 1 ? Hsm.open(config) : HsmPool.open(config, sessions);
}
