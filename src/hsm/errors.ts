/**
 * Error codes of the HSM layer. The KMIP layer maps these to KMIP result reasons.
 *
 * - UNWRAP_FAILED: the blob does not unwrap under the key derived for this object id
 *   (copied onto another record, tampered with, truncated, or wrapped by another root key).
 * - ROOT_KEY_NOT_FOUND: no CRK with the requested label on the token.
 * - ROOT_KEY_INVALID: an object with the CRK label exists but is not an acceptable CRK
 *   (not AES-256, extractable, not sensitive, no CKA_DERIVE), or the label is ambiguous.
 * - TOKEN_NOT_FOUND: no initialised token with the configured label.
 * - LOGIN_FAILED: wrong / locked / uninitialised user PIN.
 * - MODULE_ERROR: the module could not be loaded/initialised, or any other PKCS#11 failure.
 * - SESSION_LOST: the session was lost and could not be re-established (after one retry).
 * - INVALID_ARGUMENT: bad input from the caller (key length, object id, unknown mechanism, config).
 * - CLOSED: the Hsm instance was closed.
 */
export type HsmErrorCode =
  | 'UNWRAP_FAILED'
  | 'ROOT_KEY_NOT_FOUND'
  | 'ROOT_KEY_INVALID'
  | 'TOKEN_NOT_FOUND'
  | 'LOGIN_FAILED'
  | 'MODULE_ERROR'
  | 'SESSION_LOST'
  | 'INVALID_ARGUMENT'
  | 'CLOSED';

export interface HsmErrorOptions {
  /** PKCS#11 return value name, e.g. 'CKR_PIN_INCORRECT'. */
  pkcs11Code?: string | undefined;
  /** PKCS#11 function that failed, e.g. 'C_UnwrapKey'. */
  operation?: string | undefined;
  cause?: unknown;
}

/** Typed error of the HSM layer. Messages never contain PINs or key material. */
export class HsmError extends Error {
  override readonly name = 'HsmError';
  readonly code: HsmErrorCode;
  /** PKCS#11 return value name (e.g. 'CKR_GENERAL_ERROR'), when the error came from the module. */
  readonly pkcs11Code: string | undefined;
  /** PKCS#11 function that failed, when known. */
  readonly operation: string | undefined;

  constructor(code: HsmErrorCode, message: string, opts: HsmErrorOptions = {}) {
    const suffix = opts.pkcs11Code !== undefined ? ` (${opts.operation ? `${opts.operation}: ` : ''}${opts.pkcs11Code})` : '';
    super(`${message}${suffix}`, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.code = code;
    this.pkcs11Code = opts.pkcs11Code;
    this.operation = opts.operation;
  }
}

export function isHsmError(e: unknown, code?: HsmErrorCode): e is HsmError {
  return e instanceof HsmError && (code === undefined || e.code === code);
}

const CKR_NAME = /\b(CKR_[A-Z0-9_]+)\b/;

/** The CKR_* name carried by a pkcs11js error (Pkcs11Error.message is the name), if any. */
export function pkcs11CodeOf(e: unknown): string | undefined {
  if (e instanceof HsmError) return e.pkcs11Code;
  if (e instanceof Error) {
    const m = CKR_NAME.exec(e.message);
    return m?.[1];
  }
  return undefined;
}

/** Wrap any error into an HsmError, keeping HsmErrors as they are. */
export function toHsmError(e: unknown, code: HsmErrorCode, message: string, operation?: string): HsmError {
  if (e instanceof HsmError) return e;
  return new HsmError(code, message, { pkcs11Code: pkcs11CodeOf(e), operation, cause: e });
}
