/** Stable codes so the CLI can map PKI failures to exit codes/messages without parsing text. */
export type PkiErrorCode = 'INVALID_NAME' | 'INVALID_ARGUMENT' | 'EXISTS' | 'CA_MISSING';

export class PkiError extends Error {
  override readonly name = 'PkiError';
  constructor(
    readonly code: PkiErrorCode,
    message: string,
  ) {
    super(message);
  }
}
