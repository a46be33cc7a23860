/**
 * Process-wide bookkeeping for PKCS#11 modules (internal to src/hsm).
 *
 * A PKCS#11 module is initialised once per process: a second C_Initialize fails with
 * CKR_CRYPTOKI_ALREADY_INITIALIZED and C_Finalize tears it down for every user. Login state is
 * per token and per application (all sessions of the process share it; C_Logout logs all of
 * them out). So several Hsm instances in one process share one initialised module and one login
 * per token; the last one to close logs out and finalises.
 *
 * Loaded libraries are never dlclose()d: some modules (SoftHSM with OpenSSL) do not survive being
 * unloaded and reloaded in one process. C_Finalize followed by C_Initialize works.
 */
import { existsSync } from 'node:fs';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import pkcs11js from 'pkcs11js';
import type { PKCS11 } from 'pkcs11js';
import { HsmError, pkcs11CodeOf, toHsmError } from './errors.js';

export { pkcs11js };
export type { PKCS11 };

interface LoginEntry {
  users: number;
  pinDigest: Buffer;
}

export interface ModuleEntry {
  readonly key: string;
  readonly p11: PKCS11;
  users: number;
  /** false when something else in the process (another PKCS11 instance) had already initialised it. */
  readonly initializedByUs: boolean;
  readonly envKey: string;
  /** Logins per slot (hex of the slot id). */
  readonly logins: Map<string, LoginEntry>;
}

const loaded = new Map<string, PKCS11>();
const active = new Map<string, ModuleEntry>();

function envKeyOf(env: Record<string, string> | undefined): string {
  return JSON.stringify(Object.entries(env ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Load + C_Initialize the module (or join the already-initialised one). Synchronous. */
export function acquireModule(modulePath: string, env: Record<string, string> | undefined): ModuleEntry {
  const key = path.resolve(modulePath);
  const envKey = envKeyOf(env);
  const current = active.get(key);
  if (current) {
    if (current.envKey !== envKey) {
      throw new HsmError(
        'MODULE_ERROR',
        'PKCS#11 module is already initialised in this process with a different env; ' +
          'the module reads its environment only at C_Initialize (use one token dir per process)',
      );
    }
    current.users += 1;
    return current;
  }

  // The module reads e.g. SOFTHSM2_CONF with getenv() during C_Initialize; Node's process.env
  // setter updates the real C environment.
  for (const [k, v] of Object.entries(env ?? {})) process.env[k] = v;

  let p11 = loaded.get(key);
  if (!p11) {
    if (!existsSync(key)) throw new HsmError('MODULE_ERROR', `PKCS#11 module not found: ${key}`);
    const candidate = new pkcs11js.PKCS11();
    try {
      candidate.load(key);
    } catch (e) {
      throw toHsmError(e, 'MODULE_ERROR', `cannot load PKCS#11 module ${key}`, 'load');
    }
    loaded.set(key, candidate);
    p11 = candidate;
  }

  let initializedByUs = true;
  try {
    // OS locking: lets us later call the module from libuv worker threads (pkcs11js *Async).
    p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (e) {
    if (pkcs11CodeOf(e) === 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
      initializedByUs = false;
    } else {
      throw toHsmError(e, 'MODULE_ERROR', 'C_Initialize failed', 'C_Initialize');
    }
  }
  const entry: ModuleEntry = { key, p11, users: 1, initializedByUs, envKey, logins: new Map() };
  active.set(key, entry);
  return entry;
}

/** Drop one user; the last one finalises the module (if we initialised it). Never throws. */
export function releaseModule(entry: ModuleEntry): void {
  entry.users -= 1;
  if (entry.users > 0) return;
  if (active.get(entry.key) === entry) active.delete(entry.key);
  if (entry.initializedByUs) {
    try {
      entry.p11.C_Finalize();
    } catch {
      // nothing useful to do: the process keeps running, the module state is gone either way
    }
  }
}

/** Per-process random key: the PIN check value in memory is useless outside this process. */
const pinCheckKey = randomBytes(32);

function digestPin(pin: string): Buffer {
  return createHmac('sha256', pinCheckKey).update(pin, 'utf8').digest();
}

export function slotKey(slot: Buffer): string {
  return slot.toString('hex');
}

/**
 * C_Login as CKU_USER. If the token is already logged in by another Hsm of this process, the PIN
 * is compared with the one that logged in (PKCS#11 would just say CKR_USER_ALREADY_LOGGED_IN
 * without checking it).
 */
export function loginUser(entry: ModuleEntry, slot: Buffer, session: Buffer, pin: string): void {
  const digest = digestPin(pin);
  try {
    entry.p11.C_Login(session, pkcs11js.CKU_USER, pin);
    return;
  } catch (e) {
    const ckr = pkcs11CodeOf(e);
    if (ckr === 'CKR_USER_ALREADY_LOGGED_IN') {
      const known = entry.logins.get(slotKey(slot));
      if (known && !timingSafeEqual(known.pinDigest, digest)) {
        throw new HsmError('LOGIN_FAILED', 'user PIN does not match the PIN the token is logged in with', {
          pkcs11Code: 'CKR_PIN_INCORRECT',
          operation: 'C_Login',
        });
      }
      return;
    }
    if (
      ckr === 'CKR_PIN_INCORRECT' ||
      ckr === 'CKR_PIN_INVALID' ||
      ckr === 'CKR_PIN_LEN_RANGE' ||
      ckr === 'CKR_PIN_LOCKED' ||
      ckr === 'CKR_PIN_EXPIRED' ||
      ckr === 'CKR_USER_PIN_NOT_INITIALIZED' ||
      ckr === 'CKR_USER_ANOTHER_ALREADY_LOGGED_IN' ||
      ckr === 'CKR_USER_TYPE_INVALID'
    ) {
      throw toHsmError(e, 'LOGIN_FAILED', 'login to the token failed', 'C_Login');
    }
    throw e;
  }
}

/** Record that an Hsm holds a login on this slot. */
export function registerLogin(entry: ModuleEntry, slot: Buffer, pin: string): void {
  const k = slotKey(slot);
  const known = entry.logins.get(k);
  if (known) known.users += 1;
  else entry.logins.set(k, { users: 1, pinDigest: digestPin(pin) });
}

/** Drop a login reference; returns true when the caller was the last one and should C_Logout. */
export function unregisterLogin(entry: ModuleEntry, slot: Buffer): boolean {
  const k = slotKey(slot);
  const known = entry.logins.get(k);
  if (!known) return true;
  known.users -= 1;
  if (known.users > 0) return false;
  entry.logins.delete(k);
  return true;
}

/** Strip the blank (and NUL) padding of fixed-width PKCS#11 text fields. */
export function trimPkcs11Text(s: string): string {
  return s.replace(/[ \0]+$/u, '');
}

/** Slot holding the initialised token with this label. */
export function findTokenSlot(p11: PKCS11, tokenLabel: string): Buffer {
  let slots: Buffer[];
  try {
    slots = p11.C_GetSlotList(true);
  } catch (e) {
    throw toHsmError(e, 'MODULE_ERROR', 'cannot list slots', 'C_GetSlotList');
  }
  const wanted = trimPkcs11Text(tokenLabel);
  const matches: Buffer[] = [];
  for (const slot of slots) {
    let info: ReturnType<PKCS11['C_GetTokenInfo']>;
    try {
      info = p11.C_GetTokenInfo(slot);
    } catch {
      continue; // token vanished between the two calls, or an unreadable slot: not ours
    }
    if ((info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) === 0) continue;
    if (trimPkcs11Text(info.label) === wanted) matches.push(slot);
  }
  const [first, ...rest] = matches;
  if (!first) throw new HsmError('TOKEN_NOT_FOUND', `no initialised token labelled "${wanted}"`);
  if (rest.length > 0) throw new HsmError('MODULE_ERROR', `more than one token labelled "${wanted}"`);
  return first;
}
