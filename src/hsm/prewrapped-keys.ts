/**
 * Keys for Creates, made ahead on a thread of their own (prewrap-thread.ts).
 *
 * A Create's HSM work (C_GenerateRandom, C_EncryptInit, C_Encrypt, the digest) ran on the event
 * loop, on the path of every other request: with SoftHSM about a quarter of the server's CPU per
 * Create (bench/RESULTS.md, fourteenth round), with a network HSM three round trips. Here a thread
 * makes them in batches, each under a data key derived for that batch, and a Create takes one
 * that is ready. Only the wrapped form and the digest leave the thread; the key's bytes are zeroed
 * there as soon as the HSM has encrypted them, as on the event loop before.
 *
 * A ready key is handed out only while it is as fresh as the data key a Create would have used
 * (V2_AES_FORMAT.maxAgeMs after its derivation, which checked that the root key is there) and only
 * under the root key version that is active now; others are dropped. Batches are made only while
 * Creates take keys, so an idle server makes none. When none is ready (the first Creates of a
 * burst, a failed batch, an HSM pool busy elsewhere), the Create generates its key as before.
 */
import { createRequire } from 'node:module';
import { inspect } from 'node:util';
import { Worker } from 'node:worker_threads';
import { HsmError } from './errors.js';
import { newUniqueIdentifier } from '../kmip/unique-identifier.js';
import {
  V2_AES_FORMAT,
  type AesKeyLength,
  type GeneratedKey,
  type HsmConnection,
  type LentDataKey,
  type NewWrappedKey,
  type WrapOptions,
  type WrappedKey,
} from './key-protector.js';
import { prewrapThreadMain, type PrewrapReply, type PrewrapRequest, type PrewrappedEntry, type PrewrapThreadData, type PrewrapThreadMessage } from './prewrap-thread.js';

const PKCS11JS = createRequire(import.meta.url).resolve('pkcs11js');

/** Most keys per batch: one data key derivation and one message each way per this many Creates. */
export const PREWRAP_BATCH = 64;
/** Keys in the first batch, before the HSM's speed is known. */
export const PREWRAP_FIRST_BATCH = 8;
/**
 * How long a batch may take: a quarter of the time its keys may be handed out, so that a slow HSM
 * (a 10 ms round trip makes a key in ~20 ms) gets smaller batches rather than keys stale on arrival.
 */
const BATCH_TIME_MS = V2_AES_FORMAT.maxAgeMs / 4;
/** Another batch is asked for once fewer than this many keys of a size are ready. */
const LOW_WATER = 32;
/** After a failed batch, Creates make their own keys for this long before the thread is asked again. */
export const PREWRAP_RETRY_MS = 1000;

interface ReadyKey extends NewWrappedKey {
  /** When its data key was derived (performance.now()). */
  readonly derivedAt: number;
}

interface Waiting {
  readonly resolve: (batch: { readonly keys: readonly PrewrappedEntry[]; readonly ms: number }) => void;
  readonly reject: (err: Error) => void;
}

export interface PrewrapOptions {
  /** The root key version new keys are wrapped under (as the Hsm's config has it). */
  readonly activeRootKeyLabel: () => string;
  /** A batch failed (the Creates meanwhile make their own keys). */
  readonly onError?: ((err: Error) => void) | undefined;
}

export class PrewrappedKeys implements HsmConnection {
  private readonly ready = new Map<AesKeyLength, ReadyKey[]>();
  /** Batches being made, by key size: at most one per size. */
  private readonly making = new Map<AesKeyLength, Promise<void>>();
  private readonly waiting = new Map<number, Waiting>();
  private thread: Worker | undefined;
  private sent = 0;
  private retryAt = Number.NEGATIVE_INFINITY;
  /** How long the thread took per key in its last batch; unknown before the first. */
  private msPerKey: number | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly inner: HsmConnection,
    private readonly opts: PrewrapOptions,
  ) {}

  /** A ready key when there is one, else one generated now; either way more are asked for when few are left. */
  newWrappedKey(bits: AesKeyLength): Promise<NewWrappedKey> {
    if (this.closing) return this.inner.newWrappedKey(bits); // fails as closed
    const taken = this.take(bits);
    this.refill(bits);
    return taken ? Promise.resolve(taken) : this.inner.newWrappedKey(bits);
  }

  /** Keys ready to be handed out now, of each size (tests, metrics). */
  readyCount(bits: AesKeyLength): number {
    return this.fresh(bits).length;
  }

  /** Keys the next batch will ask for: as many as the thread makes in BATCH_TIME_MS, at the rate of its last batch. */
  nextBatchSize(): number {
    if (this.msPerKey === undefined) return PREWRAP_FIRST_BATCH;
    return Math.max(1, Math.min(PREWRAP_BATCH, Math.floor(BATCH_TIME_MS / Math.max(this.msPerKey, 1e-3))));
  }

  ensureRootKey(): Promise<{ created: boolean }> {
    return this.inner.ensureRootKey();
  }

  hasRootKey(label?: string): Promise<boolean> {
    return this.inner.hasRootKey(label);
  }

  generateWrappedKey(objectId: string, bits: AesKeyLength, opts?: WrapOptions): Promise<GeneratedKey> {
    return this.inner.generateWrappedKey(objectId, bits, opts);
  }

  lendDataKey(label: string): Promise<LentDataKey> {
    return this.inner.lendDataKey(label);
  }

  wrapPlaintextKey(objectId: string, key: Uint8Array, opts?: WrapOptions): Promise<WrappedKey> {
    return this.inner.wrapPlaintextKey(objectId, key, opts);
  }

  wrapSecretBytes(objectId: string, secret: Uint8Array, opts?: WrapOptions): Promise<WrappedKey> {
    return this.inner.wrapSecretBytes(objectId, secret, opts);
  }

  /** See Hsm.unwrapKey: THE CALLER OWNS THE RETURNED BUFFER AND MUST ZERO IT. */
  unwrapKey(objectId: string, wrapped: WrappedKey): Promise<Buffer> {
    return this.inner.unwrapKey(objectId, wrapped);
  }

  rewrapKey(objectId: string, wrapped: WrappedKey, newRootKeyLabel: string): Promise<WrappedKey> {
    return this.inner.rewrapKey(objectId, wrapped, newRootKeyLabel);
  }

  ping(): Promise<void> {
    return this.inner.ping();
  }

  /**
   * Lets the batch being made finish and its data key be destroyed, ends the thread, then closes
   * the connection: the module must not be finalised under a call of the thread. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.ready.clear();
      await Promise.all(this.making.values());
      const thread = this.thread;
      this.thread = undefined;
      if (thread) {
        const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
        thread.ref();
        thread.postMessage(null satisfies PrewrapThreadMessage);
        await exited;
      }
      await this.inner.close();
    })();
    return this.closing;
  }

  [inspect.custom](): string {
    return `PrewrappedKeys { ${inspect(this.inner)} }`;
  }

  toJSON(): unknown {
    return this.inner;
  }

  /** The oldest ready key still usable, dropping those that are not. */
  private take(bits: AesKeyLength): NewWrappedKey | undefined {
    const next = this.fresh(bits).shift();
    return next && { objectId: next.objectId, key: next.key };
  }

  /**
   * The ready keys of a size, the stale ones at their front dropped. Keys are kept oldest first,
   * one batch at a time per size: the too old are at the front, and so are those of a root key
   * version that is no longer active, since only later batches can be of the new one.
   */
  private fresh(bits: AesKeyLength): ReadyKey[] {
    const list = this.ready.get(bits);
    if (!list) return [];
    const label = this.opts.activeRootKeyLabel();
    const oldest = performance.now() - V2_AES_FORMAT.maxAgeMs;
    while (list.length > 0 && (list[0]!.derivedAt <= oldest || list[0]!.key.rootKeyLabel !== label)) list.shift();
    return list;
  }

  private refill(bits: AesKeyLength): void {
    if (this.closing || this.making.has(bits) || performance.now() < this.retryAt) return;
    if ((this.ready.get(bits)?.length ?? 0) >= LOW_WATER) return;
    const made = this.makeBatch(bits).finally(() => this.making.delete(bits));
    this.making.set(bits, made);
  }

  private async makeBatch(bits: AesKeyLength): Promise<void> {
    let lent: LentDataKey | undefined;
    try {
      lent = await this.inner.lendDataKey(this.opts.activeRootKeyLabel());
      const ids = Array.from({ length: this.nextBatchSize() }, newUniqueIdentifier);
      const made = await this.ask(lent.modulePath, { n: ++this.sent, slot: lent.slot, dataKey: lent.handle, ids, keyBytes: bits / 8 });
      this.msPerKey = made.ms / ids.length;
      const list = this.ready.get(bits) ?? [];
      for (const [objectId, blob, digest] of made.keys) {
        const key: GeneratedKey = Object.freeze({ rootKeyLabel: lent.rootKeyLabel, mechanism: V2_AES_FORMAT.mechanism, blob: Buffer.from(blob), digest: Buffer.from(digest) });
        list.push({ objectId, key, derivedAt: lent.derivedAt });
      }
      if (!this.closing) this.ready.set(bits, list);
    } catch (err) {
      this.retryAt = performance.now() + PREWRAP_RETRY_MS;
      this.opts.onError?.(err instanceof Error ? err : new Error(String(err)));
    } finally {
      await lent?.release().catch(() => undefined);
    }
  }

  private ask(modulePath: string, request: PrewrapRequest): Promise<{ readonly keys: readonly PrewrappedEntry[]; readonly ms: number }> {
    const thread = this.started(modulePath);
    return new Promise((resolve, reject) => {
      this.waiting.set(request.n, { resolve, reject });
      thread.ref(); // a batch being made keeps the process alive until it is answered
      thread.postMessage(request satisfies PrewrapThreadMessage);
    });
  }

  private answered(reply: PrewrapReply): void {
    const waiting = this.waiting.get(reply.n);
    if (!waiting) return;
    this.waiting.delete(reply.n);
    if (this.waiting.size === 0) this.thread?.unref();
    if ('error' in reply) {
      const [message, code] = reply.error;
      waiting.reject(new HsmError('MODULE_ERROR', `making keys ahead failed: ${message}`, code === undefined ? {} : { pkcs11Code: code }));
    } else {
      waiting.resolve(reply);
    }
  }

  /** The thread stopped: batches it was making fail, and the next one starts another thread. */
  private lost(thread: Worker, err: Error): void {
    if (this.thread === thread) this.thread = undefined;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  private started(modulePath: string): Worker {
    if (this.thread) return this.thread;
    const data: PrewrapThreadData = {
      pkcs11js: PKCS11JS,
      modulePath,
      aadPrefix: V2_AES_FORMAT.aadPrefix,
      ivBytes: V2_AES_FORMAT.ivBytes,
      tagBytes: V2_AES_FORMAT.tagBytes,
    };
    const thread = new Worker(`(${prewrapThreadMain.toString()})(require)`, { eval: true, workerData: data });
    thread.unref();
    thread.on('message', (reply: PrewrapReply) => this.answered(reply));
    thread.on('error', (err) => this.lost(thread, err));
    thread.on('exit', (code) => this.lost(thread, new Error(`the key-making thread exited (code ${code})`)));
    this.thread = thread;
    return thread;
  }
}
