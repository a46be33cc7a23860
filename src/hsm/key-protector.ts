/**
 * Key protection with a PKCS#11 HSM.
 *
 * The customer root key (CRK) is an AES-256 token object generated inside the HSM; it is
 * sensitive, never extractable, and its only capability is CKA_DERIVE.
 *
 * KEKs are wrapped under a per-object key derived inside the HSM:
 *
 *   d  = SHA-256("kmipd/kek-wrap/v1/" || UTF-8(objectId))                   (32 bytes, computed here)
 *   Kw = C_DeriveKey(CRK, CKM_AES_CBC_ENCRYPT_DATA, iv = 0^16, data = d)    (AES-256 session key,
 *        sensitive, non-extractable, CKA_WRAP or CKA_UNWRAP only)          i.e. AES-256-CBC_CRK(d))
 *   blob = C_WrapKey(Kw, CKM_AES_KEY_WRAP_PAD, KEK)                           (RFC 5649)
 *
 * Unwrapping a blob under the key derived for another object id fails RFC 5649's integrity check
 * (32-bit constant + message length + zero padding; a wrong key passes with probability about
 * 2^-61), so a blob copied onto another record cannot be opened. Tampering fails the same check.
 *
 * Why CBC_ENCRYPT_DATA and not ECB_ENCRYPT_DATA: CKM_AES_ECB_ENCRYPT_DATA takes a
 * CK_KEY_DERIVATION_STRING_DATA struct, which pkcs11js 2.x cannot build (a Buffer is passed as raw
 * bytes and SoftHSM answers CKR_MECHANISM_PARAM_INVALID); pkcs11js does build
 * CK_AES_CBC_ENCRYPT_DATA_PARAMS. With a zero IV over a 2-block input the derived key is
 * E(d1) || E(d2 xor E(d1)), a fixed-length PRF of d under the CRK. CKA_VALUE_LEN = 32 is required
 * in the derive template (SoftHSM rejects the derive without it) and the derived key reports 32.
 *
 * Format v2 (current; every new wrap). Format v1 above costs five PKCS#11 calls per Get (derive,
 * unwrap, read, two destroys; about 190 µs of CPU with SoftHSM, which also re-reads the CRK's token
 * file each time) and four per Create: more CPU than the Get and Create rates issue 6 asks for. v2
 * keeps the binding to the object id, as AEAD associated data instead of a per-object key:
 *
 *   Kd   = C_DeriveKey(CRK, CKM_AES_CBC_ENCRYPT_DATA, iv = 0^16, data = SHA-256("kmipd/data-key/v2"))
 *          (AES-256 session key, sensitive, non-extractable, CKA_ENCRYPT and CKA_DECRYPT only;
 *          kept as a handle per session and root key version, derived again every second so that
 *          a root key deleted in the HSM stops serving within a second)
 *   blob = iv || C_Encrypt(Kd, CKM_AES_GCM, iv, aad = "kmipd/kek-gcm/v2/" || kind || "/" || objectId, key)
 *          (iv: 12 random bytes from the HSM, tag 128 bits; kind is "aes" or "generic")
 *
 * A Get is one C_DecryptInit + C_Decrypt (about 16 µs). A blob moved to another object id, or
 * altered, fails the GCM tag. Random 96-bit IVs allow 2^32 wraps per Kd (NIST SP 800-38D §8.3);
 * each root key version has its own Kd, and rotation starts a new one.
 * What v2 gives up: a Create draws the key bytes from the HSM's RNG (C_GenerateRandom) and has the
 * HSM encrypt them, so the new key passes through this process's memory, zeroed right after, as it
 * does on every Get; root key rotation likewise decrypts and re-encrypts through this process.
 * C_WrapKey with CKM_AES_GCM would keep those inside the HSM, but SoftHSM does not offer it.
 * v1 blobs stay readable; `kmipd root rotate` re-wraps them as v2.
 *
 * Plaintext handling: key material exists outside the HSM only in unwrapKey()'s return value, in
 * wrapPlaintextKey()'s input, and during a v2 Create or re-wrap between the HSM's calls (on the
 * event loop, or on the thread that makes keys ahead, prewrap-thread.ts). Copies this module makes
 * are zeroed after use. Callers own the Buffers they pass in and get back and MUST zero them
 * (`buf.fill(0)`) as soon as the request is answered. Caveat outside our control: pkcs11js copies
 * attribute values (CKA_VALUE on C_CreateObject / C_GetAttributeValue) through native heap memory
 * that it frees without zeroing.
 */
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import { inspect } from 'node:util';
import type { AesCBC, AesGCM, Mechanism, Template } from 'pkcs11js';
import { validateHsmConfig, type HsmConfig } from './config.js';
import { HsmError, pkcs11CodeOf, toHsmError } from './errors.js';
import {
  acquireModule,
  findTokenSlot,
  loginUser,
  pkcs11js,
  registerLogin,
  releaseModule,
  unregisterLogin,
  type ModuleEntry,
  type PKCS11,
} from './pkcs11-module.js';
import { newUniqueIdentifier } from '../kmip/unique-identifier.js';
import { SerialQueue } from './queue.js';

export type AesKeyLength = 128 | 192 | 256;

/** Identifies how a WrappedKey blob was produced (see the module comment): format v2, an AES KEK. */
export const KEK_WRAP_MECHANISM = 'aes-gcm-v2';
/** Format v2 of any other secret bytes (secret data, private keys, whole registered objects). */
export const OBJECT_WRAP_MECHANISM = 'aes-gcm-v2-generic';
/** Format v1 (per-object derived key, RFC 5649): still read, written only on request (tests). */
export const LEGACY_KEK_WRAP_MECHANISM = 'aes-kwp-derived-v1';
/** Format v1 of other secret bytes, imported into the HSM as a generic secret. */
export const LEGACY_OBJECT_WRAP_MECHANISM = 'aes-kwp-derived-v1-generic';
/** Largest secret wrapped as a generic secret: a registered object, e.g. an RSA-4096 private key. */
export const MAX_OBJECT_SECRET_BYTES = 64 * 1024;
type LegacyMechanism = typeof LEGACY_KEK_WRAP_MECHANISM | typeof LEGACY_OBJECT_WRAP_MECHANISM;
type GcmMechanism = typeof KEK_WRAP_MECHANISM | typeof OBJECT_WRAP_MECHANISM;
type WrapMechanism = LegacyMechanism | GcmMechanism;
/** What a blob holds: an AES key (16, 24 or 32 bytes) or any other secret bytes. */
type SecretKind = 'aes' | 'generic';
export type WrapFormat = 'v2' | 'v1';
/** Domain-separation prefix of the per-object derivation input. Part of the v1 format: never change. */
export const KEK_WRAP_DOMAIN = 'kmipd/kek-wrap/v1/';
/** Derivation input of the v2 data key, and prefix of the v2 associated data. Part of v2: never change. */
const DATA_KEY_DOMAIN = 'kmipd/data-key/v2';
const GCM_AAD_DOMAIN = 'kmipd/kek-gcm/v2/';
/**
 * How long a derived data key is used before it is derived again from its root key. Deriving
 * touches the root key, so a root key deleted in the HSM, or a token that went away, stops all
 * serving within this time (with SoftHSM, session objects outlive their token). One derive per
 * second costs nothing measurable.
 */
const DATA_KEY_MAX_AGE_MS = 1000;
/** The derivation data of every v2 data key. */
const DATA_KEY_DATA = createHash('sha256').update(DATA_KEY_DOMAIN, 'utf8').digest();
const GCM_IV_BYTES = 12;
const GCM_TAG_BYTES = 16;

/**
 * A KEK wrapped for one object id. Store all three fields with the object: rootKeyLabel names
 * the CRK (version) that wrapped it, so CRK rotation can re-wrap old blobs while both CRKs exist.
 */
export interface WrappedKey {
  readonly rootKeyLabel: string;
  readonly mechanism: string;
  readonly blob: Uint8Array;
}

/** A freshly generated key: its wrapped form, and the SHA-256 of its value computed in the HSM. */
export interface GeneratedKey extends WrappedKey {
  /** KMIP's Digest attribute (SHA-256 of the Raw key bytes), from C_DigestKey: the value never leaves the HSM. */
  readonly digest: Uint8Array;
}

type Handle = Buffer;

/** A new object id and the key generated for it (Create): see HsmConnection.newWrappedKey. */
export interface NewWrappedKey {
  readonly objectId: string;
  readonly key: GeneratedKey;
}

/**
 * A data key derived for one batch of keys made on another thread (prewrapped-keys.ts): a session
 * object of this process, usable from any of its sessions, until release() destroys it.
 */
export interface LentDataKey {
  readonly modulePath: string;
  readonly slot: Buffer;
  readonly handle: Buffer;
  readonly rootKeyLabel: string;
  /** performance.now() at the derivation: blobs made under it are fresh for DATA_KEY_MAX_AGE_MS. */
  readonly derivedAt: number;
  release(): Promise<void>;
}

/** What another thread needs to make format-v2 blobs of AES keys that this module opens. */
export const V2_AES_FORMAT = Object.freeze({
  mechanism: KEK_WRAP_MECHANISM,
  aadPrefix: `${GCM_AAD_DOMAIN}aes/`,
  ivBytes: GCM_IV_BYTES,
  tagBytes: GCM_TAG_BYTES,
  /** How long after its data key's derivation a blob may still be handed out: as long as the key itself is used. */
  maxAgeMs: DATA_KEY_MAX_AGE_MS,
});

const AES_KEY_BYTES: ReadonlySet<number> = new Set([16, 24, 32]);
/** RFC 5649 output for 16/24/32-byte keys: key length + 8. */
const MIN_BLOB = 24;
const MAX_BLOB = 40;
const GCM_OVERHEAD = GCM_IV_BYTES + GCM_TAG_BYTES;
const MAX_OBJECT_ID_LENGTH = 1024;
/** CKS_RW_USER_FUNCTIONS (not exported by pkcs11js). */
const CKS_RW_USER_FUNCTIONS = 3;

/** Return values meaning the session (or the login) is gone: reopen the session once and retry. */
const SESSION_LOST_CODES: ReadonlySet<string> = new Set([
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_SESSION_CLOSED',
  'CKR_DEVICE_REMOVED',
  'CKR_DEVICE_ERROR',
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_TOKEN_NOT_RECOGNIZED',
  'CKR_USER_NOT_LOGGED_IN',
]);
/** A cached root key handle went stale (key re-created, HSM failover): look it up again and retry once. */
const STALE_HANDLE_CODES: ReadonlySet<string> = new Set(['CKR_KEY_HANDLE_INVALID', 'CKR_OBJECT_HANDLE_INVALID']);
/** During C_UnwrapKey these mean "the HSM cannot do this", not "this blob is bad". */
const UNWRAP_MODULE_CODES: ReadonlySet<string> = new Set([
  'CKR_MECHANISM_INVALID',
  'CKR_MECHANISM_PARAM_INVALID',
  'CKR_FUNCTION_NOT_SUPPORTED',
  'CKR_HOST_MEMORY',
  'CKR_DEVICE_MEMORY',
  'CKR_CRYPTOKI_NOT_INITIALIZED',
]);

const C = pkcs11js;

function sessionLost(e: unknown): boolean {
  const ckr = pkcs11CodeOf(e);
  return ckr !== undefined && SESSION_LOST_CODES.has(ckr);
}

/** Capabilities are all false unless listed: each key gets only what it needs. */
function noCapabilities(): Template {
  return [
    { type: C.CKA_ENCRYPT, value: false },
    { type: C.CKA_DECRYPT, value: false },
    { type: C.CKA_WRAP, value: false },
    { type: C.CKA_UNWRAP, value: false },
    { type: C.CKA_SIGN, value: false },
    { type: C.CKA_VERIFY, value: false },
    { type: C.CKA_DERIVE, value: false },
  ];
}

function withCapabilities(enabled: readonly number[]): Template {
  return noCapabilities().map((a) => (enabled.includes(a.type) ? { type: a.type, value: true } : a));
}

function aesSecretKey(): Template {
  return secretKeyOf(LEGACY_KEK_WRAP_MECHANISM);
}

/** AES for KEKs; generic secret for any other bytes (no length rule, no cryptographic use). */
function secretKeyOf(mechanism: WrapMechanism): Template {
  return [
    { type: C.CKA_CLASS, value: C.CKO_SECRET_KEY },
    { type: C.CKA_KEY_TYPE, value: kindOf(mechanism) === 'aes' ? C.CKK_AES : C.CKK_GENERIC_SECRET },
  ];
}

function kindOf(mechanism: WrapMechanism): SecretKind {
  return mechanism === KEK_WRAP_MECHANISM || mechanism === LEGACY_KEK_WRAP_MECHANISM ? 'aes' : 'generic';
}

function mechanismFor(kind: SecretKind, format: WrapFormat): WrapMechanism {
  if (format === 'v1') return kind === 'aes' ? LEGACY_KEK_WRAP_MECHANISM : LEGACY_OBJECT_WRAP_MECHANISM;
  return kind === 'aes' ? KEK_WRAP_MECHANISM : OBJECT_WRAP_MECHANISM;
}

function isGcm(mechanism: WrapMechanism): mechanism is GcmMechanism {
  return mechanism === KEK_WRAP_MECHANISM || mechanism === OBJECT_WRAP_MECHANISM;
}

/** The v2 associated data: binds a blob to its object id and to what it holds. */
function gcmAad(kind: SecretKind, objectId: string): Buffer {
  return Buffer.from(`${GCM_AAD_DOMAIN}${kind}/${objectId}`, 'utf8');
}

function gcmMechanism(iv: Buffer, aad: Buffer): Mechanism {
  const parameter: AesGCM = { type: C.CK_PARAMS_AES_GCM, iv, aad, ivBits: GCM_IV_BYTES * 8, tagBits: GCM_TAG_BYTES * 8 };
  return { mechanism: C.CKM_AES_GCM, parameter };
}

/** The CRK: AES-256 token object, sensitive, never extractable, derive-only, immutable. */
function rootKeyTemplate(label: string): Template {
  return [
    ...aesSecretKey(),
    { type: C.CKA_VALUE_LEN, value: 32 },
    { type: C.CKA_TOKEN, value: true },
    { type: C.CKA_PRIVATE, value: true },
    { type: C.CKA_SENSITIVE, value: true },
    { type: C.CKA_EXTRACTABLE, value: false },
    { type: C.CKA_MODIFIABLE, value: false },
    { type: C.CKA_COPYABLE, value: false },
    { type: C.CKA_LABEL, value: label },
    ...withCapabilities([C.CKA_DERIVE]),
  ];
}

/** A KEK while it is being wrapped: session object, sensitive, extractable only so it can be wrapped. */
function transientKekTemplate(valueLen?: number, mechanism: WrapMechanism = LEGACY_KEK_WRAP_MECHANISM): Template {
  return [
    ...secretKeyOf(mechanism),
    ...(valueLen !== undefined ? [{ type: C.CKA_VALUE_LEN, value: valueLen }] : []),
    { type: C.CKA_TOKEN, value: false },
    { type: C.CKA_PRIVATE, value: true },
    { type: C.CKA_SENSITIVE, value: true },
    { type: C.CKA_EXTRACTABLE, value: true },
    ...noCapabilities(),
  ];
}

/** A KEK unwrapped to answer a Get: session object whose CKA_VALUE can be read once. */
function readableKekTemplate(mechanism: WrapMechanism): Template {
  return [
    ...secretKeyOf(mechanism),
    { type: C.CKA_TOKEN, value: false },
    { type: C.CKA_PRIVATE, value: true },
    { type: C.CKA_SENSITIVE, value: false },
    { type: C.CKA_EXTRACTABLE, value: true },
    ...noCapabilities(),
  ];
}

/** SHA-256 of the domain-separated object id: the derivation data for the per-object wrapping key. */
function derivationData(objectId: string): Buffer {
  return createHash('sha256').update(KEK_WRAP_DOMAIN, 'utf8').update(objectId, 'utf8').digest();
}

function validateObjectId(objectId: unknown): asserts objectId is string {
  if (typeof objectId !== 'string' || objectId.length === 0) {
    throw new HsmError('INVALID_ARGUMENT', 'object id must be a non-empty string');
  }
  if (objectId.length > MAX_OBJECT_ID_LENGTH) {
    throw new HsmError('INVALID_ARGUMENT', `object id longer than ${MAX_OBJECT_ID_LENGTH} characters`);
  }
  // Lone surrogates would all encode to U+FFFD, letting two distinct ids share one wrapping key.
  if (Buffer.from(objectId, 'utf8').toString('utf8') !== objectId) {
    throw new HsmError('INVALID_ARGUMENT', 'object id is not well-formed Unicode');
  }
}

/** Which root key a new wrap uses: the caller's choice (rotation), else the configured one. */
export interface WrapOptions {
  readonly rootKeyLabel?: string | undefined;
  /** v2 unless asked: v1 only to produce blobs as older kmipd versions stored them (tests). */
  readonly format?: WrapFormat | undefined;
}

function wrapLabel(opts: WrapOptions, fallback: string): string {
  const label = opts.rootKeyLabel ?? fallback;
  if (typeof label !== 'string' || label.length === 0) throw new HsmError('INVALID_ARGUMENT', 'root key label must be a non-empty string');
  return label;
}

/** Checks a stored wrapped key's shape; returns our own copy of the blob (the caller may reuse theirs). */
/** The secret inside a generic-secret frame (see wrapSecretBytes); the frame is zeroed. */
function unframe(framed: Buffer): Buffer {
  const n = framed.length >= 4 ? framed.readUInt32BE(0) : -1;
  if (n < 1 || n > framed.length - 4) {
    framed.fill(0);
    throw new HsmError('UNWRAP_FAILED', 'unwrapped secret has an invalid frame');
  }
  const secret = Buffer.alloc(n);
  framed.copy(secret, 0, 4, 4 + n);
  framed.fill(0);
  return secret;
}

/** A stored blob, checked for shape, with its mechanism narrowed; the blob is our own copy. */
interface CheckedBlob {
  readonly mechanism: WrapMechanism;
  readonly blob: Buffer;
}

const MECHANISMS: ReadonlySet<string> = new Set<WrapMechanism>([KEK_WRAP_MECHANISM, OBJECT_WRAP_MECHANISM, LEGACY_KEK_WRAP_MECHANISM, LEGACY_OBJECT_WRAP_MECHANISM]);

function isMechanism(m: unknown): m is WrapMechanism {
  return typeof m === 'string' && MECHANISMS.has(m);
}

/** Whether a blob of this length can hold a secret of this kind in this format. */
function plausibleLength(mechanism: WrapMechanism, n: number): boolean {
  switch (mechanism) {
    case KEK_WRAP_MECHANISM:
      return AES_KEY_BYTES.has(n - GCM_OVERHEAD);
    case OBJECT_WRAP_MECHANISM:
      return n > GCM_OVERHEAD && n <= MAX_OBJECT_SECRET_BYTES + GCM_OVERHEAD;
    case LEGACY_KEK_WRAP_MECHANISM:
      return n >= MIN_BLOB && n <= MAX_BLOB && n % 8 === 0;
    case LEGACY_OBJECT_WRAP_MECHANISM:
      return n >= 16 && n <= MAX_OBJECT_SECRET_BYTES + 16 && n % 8 === 0;
  }
}

function checkedBlob(wrapped: WrappedKey): CheckedBlob {
  if (wrapped === null || typeof wrapped !== 'object') throw new HsmError('INVALID_ARGUMENT', 'wrapped key is required');
  const mechanism = wrapped.mechanism;
  if (!isMechanism(mechanism)) throw new HsmError('INVALID_ARGUMENT', `unsupported wrapping mechanism "${String(mechanism)}"`);
  if (typeof wrapped.rootKeyLabel !== 'string' || wrapped.rootKeyLabel.length === 0) {
    throw new HsmError('INVALID_ARGUMENT', 'wrapped key has no root key label');
  }
  if (!(wrapped.blob instanceof Uint8Array)) throw new HsmError('INVALID_ARGUMENT', 'wrapped key blob must be bytes');
  const blob = Buffer.from(wrapped.blob);
  if (!plausibleLength(mechanism, blob.length)) throw new HsmError('UNWRAP_FAILED', 'wrapped key has an invalid length');
  return { mechanism, blob };
}

/** Classifies a C_UnwrapKey failure: session trouble is rethrown for withSession to retry. */
function unwrapError(e: unknown): unknown {
  const ckr = pkcs11CodeOf(e);
  if (ckr !== undefined && (SESSION_LOST_CODES.has(ckr) || STALE_HANDLE_CODES.has(ckr))) return e;
  if (ckr !== undefined && UNWRAP_MODULE_CODES.has(ckr)) {
    return toHsmError(e, 'MODULE_ERROR', 'the HSM cannot unwrap', 'C_UnwrapKey');
  }
  // SoftHSM reports a failed RFC 5649 integrity check as CKR_GENERAL_ERROR; other HSMs
  // use CKR_WRAPPED_KEY_INVALID / CKR_ENCRYPTED_DATA_INVALID.
  return toHsmError(e, 'UNWRAP_FAILED', 'wrapped key does not belong to this object or is corrupt', 'C_UnwrapKey');
}

/** Classifies a C_EncryptInit / C_Encrypt failure like unwrapError does. */
function encryptError(e: unknown): unknown {
  const ckr = pkcs11CodeOf(e);
  if (ckr !== undefined && (SESSION_LOST_CODES.has(ckr) || STALE_HANDLE_CODES.has(ckr))) return e;
  return toHsmError(e, 'MODULE_ERROR', 'cannot encrypt key', 'C_Encrypt');
}

/** The buffers of one v2 C_Encrypt or C_Decrypt. */
interface GcmCall {
  readonly iv: Buffer;
  readonly input: Buffer;
  readonly out: Buffer;
}

/** The v2 blob from C_Encrypt's output (`sealed`, a view of call.out). */
function gcmWrapped(rootKeyLabel: string, kind: SecretKind, call: GcmCall, sealed: Buffer): WrappedKey {
  if (sealed.length !== call.out.length) throw new HsmError('MODULE_ERROR', 'the HSM returned an AES-GCM result of an unexpected length');
  return Object.freeze({ rootKeyLabel, mechanism: mechanismFor(kind, 'v2'), blob: Buffer.concat([call.iv, sealed]) });
}

/** Our own copy of C_Decrypt's output (`opened`, a view of `out`), checked; `out` is zeroed. */
function gcmOpened(kind: SecretKind, out: Buffer, opened: Buffer): Buffer {
  const value = Buffer.alloc(opened.length);
  opened.copy(value);
  out.fill(0);
  if (kind === 'aes' && !AES_KEY_BYTES.has(value.length)) {
    value.fill(0);
    throw new HsmError('UNWRAP_FAILED', 'unwrapped key has an invalid length');
  }
  return value;
}

function readBool(v: Buffer | undefined): boolean | undefined {
  return v && v.length > 0 ? v[0] !== 0 : undefined;
}

function readUlong(v: Buffer | undefined): number | undefined {
  if (!v) return undefined;
  const le = endianness() === 'LE';
  if (v.length === 8) return Number(le ? v.readBigUInt64LE(0) : v.readBigUInt64BE(0));
  if (v.length === 4) return le ? v.readUInt32LE(0) : v.readUInt32BE(0);
  return undefined;
}

/** PINs live outside the instance so console.log / JSON.stringify of an Hsm cannot show them. */
const pins = new WeakMap<Hsm, string>();

export interface HsmOpenOptions {
  /**
   * Run C_Encrypt and C_Decrypt of format v2 (a Get's and a Create's HSM round trip) on libuv's
   * thread pool instead of the event loop. Worth it only when the HSM takes milliseconds per call
   * and several sessions run side by side (HsmPool); with SoftHSM the hand-off costs more than the
   * call. The other calls (the Inits, C_GenerateRandom, which pkcs11js runs synchronously only,
   * and the once-per-session ones) stay on the event loop.
   */
  readonly threadPool?: boolean | undefined;
}

/** What the server uses of an HSM connection: one Hsm, or an HsmPool of them. */
export interface HsmConnection {
  ensureRootKey(): Promise<{ created: boolean }>;
  hasRootKey(label?: string): Promise<boolean>;
  generateWrappedKey(objectId: string, bits: AesKeyLength, opts?: WrapOptions): Promise<GeneratedKey>;
  /** A key for a new object whose id the HSM side picks (newUniqueIdentifier), under the active root key. */
  newWrappedKey(bits: AesKeyLength): Promise<NewWrappedKey>;
  /** A fresh data key of root key `label` for a batch made elsewhere (format v2). */
  lendDataKey(label: string): Promise<LentDataKey>;
  wrapPlaintextKey(objectId: string, key: Uint8Array, opts?: WrapOptions): Promise<WrappedKey>;
  wrapSecretBytes(objectId: string, secret: Uint8Array, opts?: WrapOptions): Promise<WrappedKey>;
  unwrapKey(objectId: string, wrapped: WrappedKey): Promise<Buffer>;
  rewrapKey(objectId: string, wrapped: WrappedKey, newRootKeyLabel: string): Promise<WrappedKey>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class Hsm implements HsmConnection {
  private readonly config: Readonly<Omit<HsmConfig, 'pin'>>;
  private readonly mod: ModuleEntry;
  private readonly p11: PKCS11;
  private slot: Handle;
  private session: Handle | undefined;
  private readonly rootKeys = new Map<string, Handle>();
  /** The v2 data key of each root key version, derived once per session (session objects). */
  private readonly dataKeys = new Map<string, { readonly handle: Handle; readonly derivedAt: number }>();
  private readonly queue = new SerialQueue();
  private readonly threadPool: boolean;
  /** Buffers of the thread-pool call in flight (see offloaded()). */
  private pinned: readonly Buffer[] = [];
  private closeRequested = false;
  private closing: Promise<void> | undefined;

  private constructor(config: HsmConfig, mod: ModuleEntry, slot: Handle, opts: HsmOpenOptions) {
    this.config = Object.freeze({
      modulePath: config.modulePath,
      tokenLabel: config.tokenLabel,
      rootKeyLabel: config.rootKeyLabel,
      activeRootKeyLabel: config.activeRootKeyLabel,
      env: config.env ? { ...config.env } : undefined,
    });
    pins.set(this, config.pin);
    this.mod = mod;
    this.p11 = mod.p11;
    this.slot = slot;
    this.threadPool = opts.threadPool === true;
  }

  /**
   * Applies config.env, C_Initialize (shared with other open Hsm instances of the same module in
   * this process), finds the token by label, opens a R/W session and logs in as user.
   */
  static async open(config: HsmConfig, opts: HsmOpenOptions = {}): Promise<Hsm> {
    validateHsmConfig(config);
    const mod = acquireModule(config.modulePath, config.env);
    try {
      const slot = findTokenSlot(mod.p11, config.tokenLabel);
      const hsm = new Hsm(config, mod, slot, opts);
      hsm.session = hsm.openLoggedInSession();
      registerLogin(mod, slot, config.pin);
      return hsm;
    } catch (e) {
      releaseModule(mod);
      throw toHsmError(e, 'MODULE_ERROR', 'cannot open HSM session');
    }
  }

  /** Generates the CRK (config.rootKeyLabel) inside the HSM unless it exists. Idempotent. */
  async ensureRootKey(): Promise<{ created: boolean }> {
    this.assertOpen();
    const label = this.config.rootKeyLabel;
    return this.queue.run(() =>
      this.withSession('ensureRootKey', (s) => {
        const existing = this.findRootKeys(s, label);
        if (existing.length > 1) throw new HsmError('ROOT_KEY_INVALID', `more than one key labelled "${label}"`);
        const [found] = existing;
        if (found) {
          this.verifyRootKey(s, found, label);
          this.rootKeys.set(label, found);
          return { created: false };
        }
        let h: Handle;
        try {
          h = this.p11.C_GenerateKey(s, { mechanism: C.CKM_AES_KEY_GEN }, rootKeyTemplate(label));
        } catch (e) {
          if (sessionLost(e)) throw e;
          throw toHsmError(e, 'MODULE_ERROR', 'cannot generate the root key', 'C_GenerateKey');
        }
        this.rootKeys.set(label, h);
        return { created: true };
      }),
    );
  }

  /** Whether a root key with this label (default: config.rootKeyLabel) exists on the token. */
  async hasRootKey(label?: string): Promise<boolean> {
    this.assertOpen();
    const wanted = label ?? this.config.rootKeyLabel;
    return this.queue.run(() => this.withSession('hasRootKey', (s) => this.findRootKeys(s, wanted).length > 0));
  }

  /**
   * A new AES KEK wrapped for objectId, with its SHA-256 (KMIP's Digest). v2: the bytes come from
   * the HSM's RNG and the HSM encrypts them; they pass through this process and are zeroed here.
   * v1 (opts.format): generated, digested and wrapped inside the HSM.
   */
  async generateWrappedKey(objectId: string, bits: AesKeyLength, opts: WrapOptions = {}): Promise<GeneratedKey> {
    this.assertOpen();
    validateObjectId(objectId);
    if (bits !== 128 && bits !== 192 && bits !== 256) {
      throw new HsmError('INVALID_ARGUMENT', 'AES key length must be 128, 192 or 256 bits');
    }
    const label = wrapLabel(opts, this.config.activeRootKeyLabel?.() ?? this.config.rootKeyLabel);
    if ((opts.format ?? 'v2') === 'v2') {
      return this.inSession(
        'generateWrappedKey',
        (s) => {
          const dk = this.dataKey(s, label);
          const { key, iv } = this.keyAndIv(s, bits / 8);
          try {
            const digest = createHash('sha256').update(key).digest();
            return Object.freeze({ ...this.gcmWrap(s, dk, label, objectId, 'aes', key, iv), digest });
          } finally {
            key.fill(0);
          }
        },
        async (s) => {
          const dk = this.dataKey(s, label);
          const { key, iv } = this.keyAndIv(s, bits / 8);
          try {
            const digest = createHash('sha256').update(key).digest();
            return Object.freeze({ ...(await this.gcmWrapOffloaded(s, dk, label, objectId, 'aes', key, iv)), digest });
          } finally {
            key.fill(0);
          }
        },
      );
    }
    return this.queue.run(() =>
      this.withSession('generateWrappedKey', (s) => {
        const crk = this.rootKey(s, label);
        let kek: Handle;
        try {
          kek = this.p11.C_GenerateKey(s, { mechanism: C.CKM_AES_KEY_GEN }, transientKekTemplate(bits / 8));
        } catch (e) {
          if (sessionLost(e)) throw e;
          throw toHsmError(e, 'MODULE_ERROR', 'cannot generate key', 'C_GenerateKey');
        }
        try {
          const digest = this.digestKey(s, kek);
          return Object.freeze({ ...this.wrapForObject(s, crk, label, objectId, kek, LEGACY_KEK_WRAP_MECHANISM), digest });
        } finally {
          this.destroyQuietly(s, kek);
        }
      }),
    );
  }

  async newWrappedKey(bits: AesKeyLength): Promise<NewWrappedKey> {
    const objectId = newUniqueIdentifier();
    return { objectId, key: await this.generateWrappedKey(objectId, bits) };
  }

  async lendDataKey(label: string): Promise<LentDataKey> {
    this.assertOpen();
    return this.queue.run(() =>
      this.withSession('lendDataKey', (s) => {
        const handle = this.deriveDataKey(s, label);
        const release = (): Promise<void> =>
          this.queue.run(() => {
            // A lost session took its session objects with it.
            if (this.session === s) this.destroyQuietly(s, handle);
          });
        return { modulePath: this.mod.key, slot: this.slot, handle, rootKeyLabel: label, derivedAt: performance.now(), release };
      }),
    );
  }

  /**
   * Wraps client-supplied key material (KMIP Register) for objectId. This method zeroes its own
   * copies; the caller owns `key` and must zero it.
   */
  async wrapPlaintextKey(objectId: string, key: Uint8Array, opts: WrapOptions = {}): Promise<WrappedKey> {
    if (!(key instanceof Uint8Array) || !AES_KEY_BYTES.has(key.length)) {
      throw new HsmError('INVALID_ARGUMENT', 'AES key must be 16, 24 or 32 bytes');
    }
    return this.wrapBytes(objectId, key, 'aes', opts);
  }

  /**
   * Wraps any secret bytes (1 B .. MAX_OBJECT_SECRET_BYTES) for one object id, as a generic secret:
   * registered secret data, private keys, whole registered objects. Same binding to the id as KEKs;
   * `unwrapKey` returns the bytes. The caller owns and zeroes `secret`.
   */
  async wrapSecretBytes(objectId: string, secret: Uint8Array, opts: WrapOptions = {}): Promise<WrappedKey> {
    if (!(secret instanceof Uint8Array) || secret.length === 0 || secret.length > MAX_OBJECT_SECRET_BYTES) {
      throw new HsmError('INVALID_ARGUMENT', `a secret must be 1 to ${MAX_OBJECT_SECRET_BYTES} bytes`);
    }
    if ((opts.format ?? 'v2') === 'v2') return this.wrapBytes(objectId, secret, 'generic', opts);
    // SoftHSM returns RFC 5649 padding as part of an unwrapped generic secret, so v1 frames the
    // length: 4-byte big-endian length, the bytes, zeros to a multiple of 8 (no KWP padding).
    const framed = Buffer.alloc(Math.ceil((secret.length + 4) / 8) * 8);
    try {
      framed.writeUInt32BE(secret.length, 0);
      framed.set(secret, 4);
      return await this.wrapBytes(objectId, framed, 'generic', opts);
    } finally {
      framed.fill(0);
    }
  }

  private async wrapBytes(objectId: string, key: Uint8Array, kind: SecretKind, opts: WrapOptions): Promise<WrappedKey> {
    this.assertOpen();
    validateObjectId(objectId);
    const label = wrapLabel(opts, this.config.activeRootKeyLabel?.() ?? this.config.rootKeyLabel);
    const mechanism = mechanismFor(kind, opts.format ?? 'v2');
    if (isGcm(mechanism)) {
      return this.inSession(
        'wrapPlaintextKey',
        (s) => this.gcmWrap(s, this.dataKey(s, label), label, objectId, kind, key),
        (s) => this.gcmWrapOffloaded(s, this.dataKey(s, label), label, objectId, kind, key),
      );
    }
    return this.queue.run(() =>
      this.withSession('wrapPlaintextKey', (s) => {
        const crk = this.rootKey(s, label);
        const value = Buffer.alloc(key.length); // not from the shared pool, so zeroing really erases it
        let imported: Handle;
        try {
          value.set(key);
          imported = this.p11.C_CreateObject(s, [...transientKekTemplate(undefined, mechanism), { type: C.CKA_VALUE, value }]);
        } catch (e) {
          if (sessionLost(e)) throw e;
          throw toHsmError(e, 'MODULE_ERROR', 'cannot import key', 'C_CreateObject');
        } finally {
          value.fill(0);
        }
        try {
          return this.wrapForObject(s, crk, label, objectId, imported, mechanism, key.length + 16);
        } finally {
          this.destroyQuietly(s, imported);
        }
      }),
    );
  }

  /**
   * Unwraps a KEK inside the HSM and returns its value. THE CALLER OWNS THE RETURNED BUFFER AND
   * MUST ZERO IT (`key.fill(0)`) once the response is encoded. Throws HsmError('UNWRAP_FAILED')
   * if the blob was wrapped for another object id, or was altered.
   */
  async unwrapKey(objectId: string, wrapped: WrappedKey): Promise<Buffer> {
    this.assertOpen();
    validateObjectId(objectId);
    const checked = checkedBlob(wrapped);
    const label = wrapped.rootKeyLabel;
    return await this.inSession(
      'unwrapKey',
      (s) => this.openBlob(s, label, objectId, checked),
      (s) => this.openBlobOffloaded(s, label, objectId, checked),
    );
  }

  /**
   * Re-wraps a key under `newRootKeyLabel` (root key rotation), always as format v2. The value is
   * decrypted by the HSM, encrypted again by the HSM, and zeroed here in between.
   * Throws HsmError('UNWRAP_FAILED') like unwrapKey.
   */
  async rewrapKey(objectId: string, wrapped: WrappedKey, newRootKeyLabel: string): Promise<WrappedKey> {
    this.assertOpen();
    validateObjectId(objectId);
    const checked = checkedBlob(wrapped);
    const newLabel = wrapLabel({ rootKeyLabel: newRootKeyLabel }, newRootKeyLabel);
    const oldLabel = wrapped.rootKeyLabel;
    const kind = kindOf(checked.mechanism);
    return this.inSession(
      'rewrapKey',
      (s) => {
        const newDk = this.dataKey(s, newLabel);
        const value = this.openBlob(s, oldLabel, objectId, checked);
        try {
          return this.gcmWrap(s, newDk, newLabel, objectId, kind, value);
        } finally {
          value.fill(0);
        }
      },
      async (s) => {
        const newDk = this.dataKey(s, newLabel);
        const value = await this.openBlobOffloaded(s, oldLabel, objectId, checked);
        try {
          return await this.gcmWrapOffloaded(s, newDk, newLabel, objectId, kind, value);
        } finally {
          value.fill(0);
        }
      },
    );
  }

  /** Cheap liveness check: the session exists and is logged in (re-establishes it once if not). */
  async ping(): Promise<void> {
    this.assertOpen();
    return this.queue.run(() =>
      this.withSession('ping', (s) => {
        const info = this.p11.C_GetSessionInfo(s);
        // Logged out behind our back (another application instance called C_Logout, token reset):
        // treat like a lost session so withSession reopens and logs in again.
        if (info.state !== CKS_RW_USER_FUNCTIONS) throw new Error('CKR_USER_NOT_LOGGED_IN');
      }),
    );
  }

  /**
   * Waits for queued operations, then logs out (only if no other Hsm of this process still uses
   * the token), closes the session and C_Finalize()s the module when it is the last user.
   * Idempotent. Operations started after close() reject with HsmError('CLOSED').
   */
  async close(): Promise<void> {
    if (!this.closing) {
      this.closeRequested = true;
      this.closing = this.queue.run(() => this.shutdown());
    }
    return this.closing;
  }

  /** Redacted view for console.log / util.inspect. */
  [inspect.custom](): string {
    const state = this.closeRequested ? 'closed' : this.session ? 'open' : 'no session';
    return `Hsm { token: ${JSON.stringify(this.config.tokenLabel)}, rootKey: ${JSON.stringify(this.config.rootKeyLabel)}, ${state} }`;
  }

  toJSON(): { tokenLabel: string; rootKeyLabel: string } {
    return { tokenLabel: this.config.tokenLabel, rootKeyLabel: this.config.rootKeyLabel };
  }

  // ---------------------------------------------------------------- internals

  private pin(): string {
    const pin = pins.get(this);
    if (pin === undefined) throw new HsmError('CLOSED', 'HSM connection is closed');
    return pin;
  }

  private assertOpen(): void {
    if (this.closeRequested) throw new HsmError('CLOSED', 'HSM connection is closed');
  }

  private shutdown(): void {
    this.forgetKeyHandles();
    pins.delete(this);
    const session = this.session;
    this.session = undefined;
    if (unregisterLogin(this.mod, this.slot) && session) {
      try {
        this.p11.C_Logout(session);
      } catch {
        // already logged out / session gone
      }
    }
    if (session) {
      try {
        this.p11.C_CloseSession(session);
      } catch {
        // session already gone
      }
    }
    releaseModule(this.mod);
  }

  /** Open a R/W session on this.slot and log in; closes the session again if login fails. */
  private openLoggedInSession(): Handle {
    let s: Handle;
    try {
      s = this.p11.C_OpenSession(this.slot, C.CKF_SERIAL_SESSION | C.CKF_RW_SESSION);
    } catch (e) {
      throw toHsmError(e, 'MODULE_ERROR', 'cannot open a session', 'C_OpenSession');
    }
    try {
      loginUser(this.mod, this.slot, s, this.pin());
    } catch (e) {
      try {
        this.p11.C_CloseSession(s);
      } catch {
        // ignore
      }
      throw toHsmError(e, 'MODULE_ERROR', 'login to the token failed', 'C_Login');
    }
    return s;
  }

  /** Drop the current session and log in on a fresh one (the token is looked up again by label). */
  private reopenSession(): Handle {
    this.forgetKeyHandles();
    const old = this.session;
    this.session = undefined;
    if (old) {
      try {
        this.p11.C_CloseSession(old);
      } catch {
        // it is lost: that is why we are here
      }
    }
    const slot = findTokenSlot(this.p11, this.config.tokenLabel);
    if (!slot.equals(this.slot)) {
      // Token came back in another slot: move our login reference along.
      unregisterLogin(this.mod, this.slot);
      registerLogin(this.mod, slot, this.pin());
      this.slot = slot;
    }
    const s = this.openLoggedInSession();
    this.session = s;
    return s;
  }

  /**
   * Runs `op` on the session. A lost session is closed, reopened (with login) and `op` retried
   * once; a stale root key handle is looked up again and `op` retried once. HsmErrors thrown by
   * `op` pass through; other module errors become MODULE_ERROR.
   */
  private withSession<T>(what: string, op: (session: Handle) => T): T {
    let retried = false;
    for (;;) {
      const s = this.session ?? this.reestablish(what);
      try {
        return op(s);
      } catch (e) {
        this.prepareRetry(what, e, retried);
        retried = true;
      }
    }
  }

  /** withSession for an `op` that awaits the thread pool; same retries. */
  private async withSessionAsync<T>(what: string, op: (session: Handle) => Promise<T>): Promise<T> {
    let retried = false;
    for (;;) {
      const s = this.session ?? this.reestablish(what);
      try {
        return await op(s);
      } catch (e) {
        this.prepareRetry(what, e, retried);
        retried = true;
      }
    }
  }

  /**
   * After `op` failed: returns when it is worth running once more (a lost session was reopened,
   * stale key handles were forgotten), else throws the error to report.
   */
  private prepareRetry(what: string, e: unknown, retried: boolean): void {
    if (e instanceof HsmError) throw e;
    const ckr = pkcs11CodeOf(e);
    if (ckr !== undefined && SESSION_LOST_CODES.has(ckr)) {
      if (retried) throw new HsmError('SESSION_LOST', `${what}: HSM session lost`, { pkcs11Code: ckr, cause: e });
      this.reestablish(what);
      return;
    }
    if (ckr !== undefined && STALE_HANDLE_CODES.has(ckr) && !retried) {
      this.forgetKeyHandles();
      return;
    }
    throw toHsmError(e, 'MODULE_ERROR', `${what} failed`);
  }

  /**
   * Runs an operation on this instance's session, one at a time: `sync` on the event loop, or,
   * with the threadPool option, `offloaded`, which runs its slow calls on libuv's thread pool.
   */
  private inSession<T>(what: string, sync: (session: Handle) => T, offloaded: (session: Handle) => Promise<T>): Promise<T> {
    return this.threadPool
      ? this.queue.run(() => this.withSessionAsync(what, offloaded))
      : this.queue.run(() => this.withSession(what, sync));
  }

  /**
   * C_Encrypt or C_Decrypt (after its Init) on libuv's thread pool. pkcs11js hands the worker raw
   * pointers and keeps only `out` referenced: `pinned` keeps `input` alive until the call returns.
   */
  private async offloaded(call: 'C_Encrypt' | 'C_Decrypt', s: Handle, input: Buffer, out: Buffer): Promise<Buffer> {
    this.pinned = [input, out];
    try {
      return await (call === 'C_Encrypt' ? this.p11.C_EncryptAsync(s, input, out) : this.p11.C_DecryptAsync(s, input, out));
    } finally {
      this.pinned = [];
    }
  }

  /** reopenSession(), reporting any failure as SESSION_LOST (the next call tries again). */
  private reestablish(what: string): Handle {
    try {
      return this.reopenSession();
    } catch (e) {
      throw new HsmError('SESSION_LOST', `${what}: cannot re-establish the HSM session`, {
        pkcs11Code: pkcs11CodeOf(e),
        cause: e,
      });
    }
  }

  private findRootKeys(s: Handle, label: string): Handle[] {
    this.p11.C_FindObjectsInit(s, [
      { type: C.CKA_CLASS, value: C.CKO_SECRET_KEY },
      { type: C.CKA_TOKEN, value: true },
      { type: C.CKA_LABEL, value: label },
    ]);
    try {
      return this.p11.C_FindObjects(s, 8);
    } finally {
      try {
        this.p11.C_FindObjectsFinal(s);
      } catch {
        // do not hide the C_FindObjects error
      }
    }
  }

  /** Root key handle for `label`, looked up once per session and checked to be a proper CRK. */
  private rootKey(s: Handle, label: string): Handle {
    const cached = this.rootKeys.get(label);
    if (cached) return cached;
    const found = this.findRootKeys(s, label);
    if (found.length > 1) throw new HsmError('ROOT_KEY_INVALID', `more than one key labelled "${label}"`);
    const [h] = found;
    if (!h) throw new HsmError('ROOT_KEY_NOT_FOUND', `root key "${label}" not found on the token`);
    this.verifyRootKey(s, h, label);
    this.rootKeys.set(label, h);
    return h;
  }

  /** Refuse to use a "root key" that is not AES-256, sensitive, non-extractable and derive-capable. */
  private verifyRootKey(s: Handle, h: Handle, label: string): void {
    const attrs = this.p11.C_GetAttributeValue(s, h, [
      { type: C.CKA_KEY_TYPE },
      { type: C.CKA_VALUE_LEN },
      { type: C.CKA_SENSITIVE },
      { type: C.CKA_EXTRACTABLE },
      { type: C.CKA_DERIVE },
    ]);
    const get = (t: number): Buffer | undefined => attrs.find((a) => a.type === t)?.value;
    const ok =
      readUlong(get(C.CKA_KEY_TYPE)) === C.CKK_AES &&
      readUlong(get(C.CKA_VALUE_LEN)) === 32 &&
      readBool(get(C.CKA_SENSITIVE)) === true &&
      readBool(get(C.CKA_EXTRACTABLE)) === false &&
      readBool(get(C.CKA_DERIVE)) === true;
    if (!ok) {
      throw new HsmError(
        'ROOT_KEY_INVALID',
        `key "${label}" is not usable as root key (needs AES-256, sensitive, non-extractable, CKA_DERIVE)`,
      );
    }
  }

  /** Per-object AES-256 wrapping key (format v1), derived inside the HSM; one capability. */
  private deriveWrappingKey(s: Handle, crk: Handle, objectId: string, use: 'wrap' | 'unwrap'): Handle {
    return this.deriveFromRoot(s, crk, derivationData(objectId), [use === 'wrap' ? C.CKA_WRAP : C.CKA_UNWRAP], 'the wrapping key');
  }

  /**
   * AES-256-CBC_CRK(data) with a zero IV as a new AES-256 session key: sensitive, never
   * extractable, with only `capabilities` (see the module comment for why CBC_ENCRYPT_DATA).
   */
  private deriveFromRoot(s: Handle, crk: Handle, data: Buffer, capabilities: readonly number[], what: string): Handle {
    const parameter: AesCBC = { type: C.CK_PARAMS_AES_CBC, iv: Buffer.alloc(16), data };
    const mechanism: Mechanism = { mechanism: C.CKM_AES_CBC_ENCRYPT_DATA, parameter };
    try {
      return this.p11.C_DeriveKey(s, mechanism, crk, [
        ...aesSecretKey(),
        { type: C.CKA_VALUE_LEN, value: 32 },
        { type: C.CKA_TOKEN, value: false },
        { type: C.CKA_PRIVATE, value: true },
        { type: C.CKA_SENSITIVE, value: true },
        { type: C.CKA_EXTRACTABLE, value: false },
        ...withCapabilities(capabilities),
      ]);
    } catch (e) {
      const ckr = pkcs11CodeOf(e);
      if (ckr !== undefined && (SESSION_LOST_CODES.has(ckr) || STALE_HANDLE_CODES.has(ckr))) throw e;
      throw toHsmError(e, 'MODULE_ERROR', `cannot derive ${what}`, 'C_DeriveKey');
    }
  }

  /** SHA-256 of a key's value, computed inside the HSM (C_DigestKey). */
  private digestKey(s: Handle, key: Handle): Buffer {
    try {
      this.p11.C_DigestInit(s, { mechanism: C.CKM_SHA256 });
      this.p11.C_DigestKey(s, key);
      return Buffer.from(this.p11.C_DigestFinal(s, Buffer.alloc(32)));
    } catch (e) {
      if (sessionLost(e)) throw e;
      throw toHsmError(e, 'MODULE_ERROR', 'cannot digest key', 'C_DigestKey');
    }
  }

  /** `outLen`: room for the blob (key length + 8, rounded up); 64 covers every AES key. */
  private wrapForObject(s: Handle, crk: Handle, rootKeyLabel: string, objectId: string, key: Handle, mechanism: LegacyMechanism, outLen = 64): WrappedKey {
    const kw = this.deriveWrappingKey(s, crk, objectId, 'wrap');
    try {
      let used: Buffer;
      try {
        used = this.p11.C_WrapKey(s, { mechanism: C.CKM_AES_KEY_WRAP_PAD }, kw, key, Buffer.alloc(outLen));
      } catch (e) {
        if (sessionLost(e)) throw e;
        throw toHsmError(e, 'MODULE_ERROR', 'cannot wrap key', 'C_WrapKey');
      }
      const blob = Buffer.alloc(used.length);
      used.copy(blob);
      return Object.freeze({ rootKeyLabel, mechanism, blob });
    } finally {
      this.destroyQuietly(s, kw);
    }
  }

  private forgetKeyHandles(): void {
    this.rootKeys.clear();
    this.dataKeys.clear();
  }

  /** The v2 data key of root key `label`: derived on first use in this session, then reused. */
  private dataKey(s: Handle, label: string): Handle {
    const cached = this.dataKeys.get(label);
    const now = performance.now();
    if (cached && now - cached.derivedAt < DATA_KEY_MAX_AGE_MS) return cached.handle;
    if (cached) {
      this.dataKeys.delete(label);
      this.destroyQuietly(s, cached.handle);
    }
    const dk = this.deriveDataKey(s, label);
    this.dataKeys.set(label, { handle: dk, derivedAt: now });
    return dk;
  }

  /**
   * A new session object holding root key `label`'s v2 data key: the one derivation both the event
   * loop's cached data key and a lent one (lendDataKey) use, so blobs made under either open here.
   */
  private deriveDataKey(s: Handle, label: string): Handle {
    return this.deriveFromRoot(s, this.rootKey(s, label), DATA_KEY_DATA, [C.CKA_ENCRYPT, C.CKA_DECRYPT], 'the data key');
  }

  /** n bytes from the HSM's RNG, in a buffer of our own (not the shared pool) that the caller zeroes. */
  private randomBytes(s: Handle, n: number): Buffer {
    const out = Buffer.alloc(n);
    try {
      this.p11.C_GenerateRandom(s, out);
      return out;
    } catch (e) {
      if (sessionLost(e)) throw e;
      throw toHsmError(e, 'MODULE_ERROR', 'cannot draw random bytes', 'C_GenerateRandom');
    }
  }

  /**
   * A new key's bytes (zeroed by the caller) and the IV that wraps it, from one call to the HSM's
   * RNG: each PKCS#11 call costs (SoftHSM's C_GenerateRandom ~9 µs of CPU; a network HSM a round
   * trip), and the IV is public anyway, stored in the blob.
   */
  private keyAndIv(s: Handle, keyBytes: number): { key: Buffer; iv: Buffer } {
    const drawn = this.randomBytes(s, keyBytes + GCM_IV_BYTES);
    return { key: drawn.subarray(0, keyBytes), iv: Buffer.from(drawn.subarray(keyBytes)) };
  }

  /** Format v2: iv || AES-GCM(dk, iv, aad(kind, objectId), value) || tag, encrypted by the HSM. */
  private gcmWrap(s: Handle, dk: Handle, rootKeyLabel: string, objectId: string, kind: SecretKind, value: Uint8Array, iv?: Buffer): WrappedKey {
    const call = this.beginGcmWrap(s, dk, objectId, kind, value, iv);
    try {
      return gcmWrapped(rootKeyLabel, kind, call, this.p11.C_Encrypt(s, call.input, call.out));
    } catch (e) {
      throw encryptError(e);
    } finally {
      call.input.fill(0);
    }
  }

  /** gcmWrap with C_Encrypt on the thread pool. */
  private async gcmWrapOffloaded(s: Handle, dk: Handle, rootKeyLabel: string, objectId: string, kind: SecretKind, value: Uint8Array, iv?: Buffer): Promise<WrappedKey> {
    const call = this.beginGcmWrap(s, dk, objectId, kind, value, iv);
    try {
      return gcmWrapped(rootKeyLabel, kind, call, await this.offloaded('C_Encrypt', s, call.input, call.out));
    } catch (e) {
      throw encryptError(e);
    } finally {
      call.input.fill(0);
    }
  }

  /** Draws the IV unless given one and starts the encryption; the caller runs C_Encrypt and zeroes `input`. */
  private beginGcmWrap(s: Handle, dk: Handle, objectId: string, kind: SecretKind, value: Uint8Array, iv = this.randomBytes(s, GCM_IV_BYTES)): GcmCall {
    const input = Buffer.alloc(value.length); // pkcs11js wants a Buffer; ours, so zeroing erases it
    input.set(value);
    try {
      this.p11.C_EncryptInit(s, gcmMechanism(iv, gcmAad(kind, objectId)), dk);
    } catch (e) {
      input.fill(0);
      throw encryptError(e);
    }
    return { iv, input, out: Buffer.alloc(value.length + GCM_TAG_BYTES) };
  }

  /** Checks the blob's shape and starts the v2 decryption; the caller runs C_Decrypt. */
  private beginGcmOpen(s: Handle, label: string, objectId: string, mechanism: GcmMechanism, blob: Buffer): GcmCall {
    const dk = this.dataKey(s, label);
    const iv = blob.subarray(0, GCM_IV_BYTES);
    try {
      this.p11.C_DecryptInit(s, gcmMechanism(iv, gcmAad(kindOf(mechanism), objectId)), dk);
    } catch (e) {
      throw unwrapError(e);
    }
    // SoftHSM asks room for the whole input
    return { iv, input: blob.subarray(GCM_IV_BYTES), out: Buffer.alloc(blob.length) };
  }

  /** openBlob with C_Decrypt of format v2 on the thread pool (v1 blobs stay on the event loop). */
  private async openBlobOffloaded(s: Handle, label: string, objectId: string, checked: CheckedBlob): Promise<Buffer> {
    const { mechanism, blob } = checked;
    if (!isGcm(mechanism)) return this.openBlob(s, label, objectId, checked);
    const call = this.beginGcmOpen(s, label, objectId, mechanism, blob);
    let opened: Buffer;
    try {
      opened = await this.offloaded('C_Decrypt', s, call.input, call.out);
    } catch (e) {
      call.out.fill(0);
      throw unwrapError(e);
    }
    return gcmOpened(kindOf(mechanism), call.out, opened);
  }

  /** The plaintext of a checked blob (either format). The caller zeroes it. */
  private openBlob(s: Handle, label: string, objectId: string, checked: CheckedBlob): Buffer {
    const { mechanism, blob } = checked;
    if (isGcm(mechanism)) {
      const call = this.beginGcmOpen(s, label, objectId, mechanism, blob);
      let opened: Buffer;
      try {
        opened = this.p11.C_Decrypt(s, call.input, call.out);
      } catch (e) {
        call.out.fill(0);
        throw unwrapError(e);
      }
      return gcmOpened(kindOf(mechanism), call.out, opened);
    }
    const crk = this.rootKey(s, label);
    const kw = this.deriveWrappingKey(s, crk, objectId, 'unwrap');
    try {
      let kek: Handle;
      try {
        kek = this.p11.C_UnwrapKey(s, { mechanism: C.CKM_AES_KEY_WRAP_PAD }, kw, blob, readableKekTemplate(mechanism));
      } catch (e) {
        throw unwrapError(e);
      }
      try {
        const [attr] = this.p11.C_GetAttributeValue(s, kek, [{ type: C.CKA_VALUE }]);
        const value = attr?.value;
        if (!value || (kindOf(mechanism) === 'aes' && !AES_KEY_BYTES.has(value.length))) {
          value?.fill(0);
          throw new HsmError('UNWRAP_FAILED', 'unwrapped key has an invalid length');
        }
        return kindOf(mechanism) === 'generic' ? unframe(value) : value;
      } catch (e) {
        if (sessionLost(e) || e instanceof HsmError) throw e;
        throw toHsmError(e, 'MODULE_ERROR', 'cannot read the unwrapped key', 'C_GetAttributeValue');
      } finally {
        this.destroyQuietly(s, kek);
      }
    } finally {
      this.destroyQuietly(s, kw);
    }
  }

  /** Session objects die with the session anyway; a failed destroy must not hide the real result. */
  private destroyQuietly(s: Handle, h: Handle): void {
    try {
      this.p11.C_DestroyObject(s, h);
    } catch {
      // ignore
    }
  }
}
