import { HsmError } from './errors.js';

/** How to reach the PKCS#11 token that holds the customer root key (CRK). */
export interface HsmConfig {
  /** Path of the PKCS#11 module (shared library). */
  modulePath: string;
  /** Label of the token to use; the slot is looked up by this label (trailing padding ignored). */
  tokenLabel: string;
  /** User PIN. Never logged, never put into error messages. */
  pin: string;
  /** CKA_LABEL of the CRK used for new wraps (unless activeRootKeyLabel says otherwise). */
  rootKeyLabel: string;
  /**
   * Root key rotation: asked before every new wrap for the CRK to use, so that all nodes follow the
   * version recorded in the store without a restart. Undefined means rootKeyLabel.
   */
  activeRootKeyLabel?: () => string | undefined;
  /**
   * Environment variables set on process.env before C_Initialize (e.g. SOFTHSM2_CONF).
   * Modules read these only at C_Initialize, so all Hsm instances of one module that are open
   * at the same time in a process must use the same env.
   */
  env?: Record<string, string>;
}

/** Most sessions an HsmPool opens: more than libuv's threads or an HSM's client licence would serve. */
export const MAX_HSM_SESSIONS = 64;

/** PKCS#11 text fields (token label) are at most 32 bytes. */
export const MAX_PKCS11_LABEL_BYTES = 32;

/** Throws HsmError('INVALID_ARGUMENT') if the config is structurally unusable. */
export function validateHsmConfig(config: HsmConfig): void {
  const bad = (what: string): never => {
    throw new HsmError('INVALID_ARGUMENT', `invalid HSM config: ${what}`);
  };
  if (config === null || typeof config !== 'object') bad('not an object');
  if (typeof config.modulePath !== 'string' || config.modulePath.length === 0) bad('modulePath is required');
  if (typeof config.tokenLabel !== 'string' || config.tokenLabel.trim().length === 0) bad('tokenLabel is required');
  if (Buffer.byteLength(config.tokenLabel, 'utf8') > MAX_PKCS11_LABEL_BYTES) bad('tokenLabel is longer than 32 bytes');
  if (typeof config.pin !== 'string' || config.pin.length === 0) bad('pin is required');
  if (typeof config.rootKeyLabel !== 'string' || config.rootKeyLabel.length === 0) bad('rootKeyLabel is required');
  if (config.activeRootKeyLabel !== undefined && typeof config.activeRootKeyLabel !== 'function') bad('activeRootKeyLabel must be a function');
  if (config.env !== undefined) {
    if (config.env === null || typeof config.env !== 'object') bad('env must be an object');
    for (const [k, v] of Object.entries(config.env)) {
      if (typeof v !== 'string') bad(`env.${k} must be a string`);
    }
  }
}
