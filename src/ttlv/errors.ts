// One error class for everything the codec rejects, so that callers (the server, the framer's
// owner, fuzz tests) can tell "the peer sent bad TTLV" apart from bugs with a single instanceof.

export type TtlvErrorCode =
  /** The input ends before the item does. */
  | 'TRUNCATED'
  /** Tag outside the KMIP ranges (0x42xxxx standard, 0x54xxxx extensions), or not 24 bits on encode. */
  | 'BAD_TAG'
  /** Unknown item type byte. */
  | 'BAD_TYPE'
  /** Length field wrong for the type, or an item running past its parent structure. */
  | 'BAD_LENGTH'
  /** Padding bytes not zero. */
  | 'BAD_PADDING'
  /** Boolean value other than 0 or 1. */
  | 'BAD_BOOLEAN'
  /** Text String not valid UTF-8. */
  | 'BAD_UTF8'
  /** Value out of range or of the wrong JS type (encode side). */
  | 'BAD_VALUE'
  /** Structures nested deeper than the configured limit. */
  | 'TOO_DEEP'
  /** Item or message larger than the configured limit. */
  | 'TOO_LARGE'
  /** Bytes left over after the single top-level item. */
  | 'TRAILING_BYTES'
  /** Stream does not start with the expected message (wrong tag, or not a Structure). */
  | 'UNEXPECTED_MESSAGE';

const hex = (n: number, width: number): string => '0x' + n.toString(16).toUpperCase().padStart(width, '0');

export class TtlvError extends Error {
  override readonly name = 'TtlvError';

  /**
   * @param code   machine-readable reason
   * @param detail what is wrong, without location (the location is appended)
   * @param offset byte offset of the offending item's header in the input (-1 when not applicable, e.g. encode)
   * @param tag    tag of the offending item, when known
   */
  constructor(
    readonly code: TtlvErrorCode,
    detail: string,
    readonly offset: number,
    readonly tag?: number,
  ) {
    const where: string[] = [];
    if (offset >= 0) where.push(`offset ${hex(offset, 1)}`);
    if (tag !== undefined) where.push(`tag ${hex(tag, 6)}`);
    super(where.length > 0 ? `${detail} (at ${where.join(', ')})` : detail);
  }
}
