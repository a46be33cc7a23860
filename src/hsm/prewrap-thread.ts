// The body of the thread that makes new keys ahead of Creates (prewrapped-keys.ts starts it).
//
// Sent to the thread as source text (Function.prototype.toString), like the store's insert thread,
// so that the same code runs from the TypeScript sources under vitest and from dist/:
// prewrapThreadMain may use only its parameters and a worker's globals. Only types are imported.
//
// It opens a session of its own on the module the server already initialised and logged in to
// (login is per process in PKCS#11: the session is logged in from the start). It calls neither
// C_Initialize nor C_Finalize: the module's state belongs to the server (C_Finalize would end
// every session of the process). Each batch
// is encrypted under a data key the main side derived for that batch and destroys after it: the
// thread never looks the root key up and holds no handle of its own beyond its session.

/** What the thread is started with (workerData). */
export interface PrewrapThreadData {
  /** Absolute path of pkcs11js's entry, resolved by the main side. */
  readonly pkcs11js: string;
  /** The PKCS#11 module the main side has initialised. */
  readonly modulePath: string;
  /** Associated data of a blob: this prefix, then the object id (format v2 of an AES key). */
  readonly aadPrefix: string;
  readonly ivBytes: number;
  readonly tagBytes: number;
}

/**
 * A batch to make: one key of `keyBytes` bytes for each of `ids` (the main side picks them with
 * newUniqueIdentifier, which this thread cannot import), encrypted under `dataKey` on a session of `slot`.
 */
export interface PrewrapRequest {
  readonly n: number;
  readonly slot: Uint8Array;
  readonly dataKey: Uint8Array;
  readonly ids: readonly string[];
  readonly keyBytes: number;
}

/** One new key: its object id, its blob (iv || ciphertext || tag) and the SHA-256 of its value. */
export type PrewrappedEntry = readonly [objectId: string, blob: Uint8Array, digest: Uint8Array];

export type PrewrapReply =
  /** `ms`: the thread's own time for the batch (its start and the messages left out). */
  | { readonly n: number; readonly keys: readonly PrewrappedEntry[]; readonly ms: number }
  | { readonly n: number; readonly error: readonly [message: string, code: string | undefined] };

/** What the main side sends: a batch, or null once, to close the session and end the thread. */
export type PrewrapThreadMessage = PrewrapRequest | null;

export function prewrapThreadMain(require: NodeRequire): void {
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  const data = workerData as PrewrapThreadData;
  const pkcs11js = require(data.pkcs11js) as typeof import('pkcs11js');
  const p11 = new pkcs11js.PKCS11();
  // The same library the server loaded and initialised: dlopen hands back that instance, whose
  // functions work without a C_Initialize of ours (a second one only fails, or resets a shim's state).
  p11.load(data.modulePath);
  let session: { readonly slot: string; readonly handle: Buffer } | undefined;

  function closeSession(): void {
    if (!session) return;
    try {
      p11.C_CloseSession(session.handle);
    } catch {
      // already gone with its token
    }
    session = undefined;
  }

  function sessionOn(slot: Buffer): Buffer {
    if (session?.slot !== slot.toString('hex')) {
      closeSession();
      session = { slot: slot.toString('hex'), handle: p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION) };
    }
    return session.handle;
  }

  function makeOne(s: Buffer, dataKey: Buffer, keyBytes: number, objectId: string): PrewrappedEntry {
    const drawn = Buffer.alloc(keyBytes + data.ivBytes); // not the shared pool: zeroed below
    try {
      p11.C_GenerateRandom(s, drawn);
      const key = drawn.subarray(0, keyBytes);
      const iv = Buffer.from(drawn.subarray(keyBytes));
      const digest = createHash('sha256').update(key).digest();
      const aad = Buffer.from(data.aadPrefix + objectId, 'utf8');
      const parameter = { type: pkcs11js.CK_PARAMS_AES_GCM, iv, aad, ivBits: data.ivBytes * 8, tagBits: data.tagBytes * 8 };
      p11.C_EncryptInit(s, { mechanism: pkcs11js.CKM_AES_GCM, parameter }, dataKey);
      const out = Buffer.alloc(keyBytes + data.tagBytes);
      const sealed = p11.C_Encrypt(s, key, out);
      if (sealed.length !== out.length) throw new Error('the HSM returned an AES-GCM result of an unexpected length');
      return [objectId, Buffer.concat([iv, sealed]), digest];
    } finally {
      drawn.fill(0);
    }
  }

  parentPort!.on('message', (request: PrewrapThreadMessage) => {
    if (request === null) {
      closeSession();
      parentPort!.close();
      return;
    }
    try {
      const started = performance.now();
      const s = sessionOn(Buffer.from(request.slot));
      const dataKey = Buffer.from(request.dataKey);
      const keys: PrewrappedEntry[] = [];
      for (const id of request.ids) keys.push(makeOne(s, dataKey, request.keyBytes, id));
      parentPort!.postMessage({ n: request.n, keys, ms: performance.now() - started } satisfies PrewrapReply);
    } catch (err) {
      // A lost session is opened afresh for the next batch.
      closeSession();
      const message = err instanceof Error ? err.message : String(err);
      parentPort!.postMessage({ n: request.n, error: [message, /CKR_\w+/.exec(message)?.[0]] } satisfies PrewrapReply);
    }
  });
}
