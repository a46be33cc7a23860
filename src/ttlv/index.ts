// Public API of the TTLV codec (KMIP-agnostic: tags are plain 24-bit numbers).
export { ItemType, typeName } from './types.js';
export type {
  TtlvItem,
  ItemOf,
  StructureItem,
  IntegerItem,
  LongIntegerItem,
  BigIntegerItem,
  EnumerationItem,
  BooleanItem,
  TextStringItem,
  ByteStringItem,
  DateTimeItem,
  IntervalItem,
  DateTimeExtendedItem,
} from './types.js';
export { TtlvError, type TtlvErrorCode } from './errors.js';
export { decodeTtlv, DEFAULT_MAX_DEPTH, DEFAULT_MAX_LENGTH, type DecodeLimits, type DecodeOptions } from './decode.js';
export { encodeTtlv, bigIntegerLength } from './encode.js';
export { TtlvFramer, type TtlvFramerOptions } from './framer.js';
export {
  structure,
  integer,
  longInteger,
  bigInteger,
  enumeration,
  boolean,
  textString,
  byteString,
  dateTime,
  interval,
  dateTimeExtended,
} from './build.js';
export { formatTtlv } from './format.js';
