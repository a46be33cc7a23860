// A KMIP-level failure of one batch item: it becomes Result Status "Operation Failed" with the
// given Result Reason and Result Message, and the rest of the message carries on.
import { ResultReason } from './registry/generated.js';
import type { TtlvItem } from '../ttlv/types.js';
import type { ProtocolVersion } from './version.js';

export type ResultReasonValue = (typeof ResultReason)[keyof typeof ResultReason];

export class KmipError extends Error {
  constructor(
    readonly reason: ResultReasonValue,
    message: string,
    /** A failed item's Response Payload, where the spec asks for one (1.x Check). */
    readonly payload?: readonly TtlvItem[],
  ) {
    super(message);
    this.name = 'KmipError';
  }
}

export const invalidField = (msg: string) => new KmipError(ResultReason.InvalidField, msg);
export const invalidMessage = (msg: string) => new KmipError(ResultReason.InvalidMessage, msg);
/**
 * An unknown (or another tenant's) object. 2.1 added Object Not Found and its baseline case BL-M-4
 * expects it; earlier versions, PyKMIP included, know Item Not Found.
 */
export const itemNotFound = (id: string, version: ProtocolVersion) =>
  new KmipError(
    version.major > 2 || (version.major === 2 && version.minor >= 1) ? ResultReason.ObjectNotFound : ResultReason.ItemNotFound,
    `no object with Unique Identifier ${id}`,
  );
