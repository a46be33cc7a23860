// A KMIP-level failure of one batch item: it becomes Result Status "Operation Failed" with the
// given Result Reason and Result Message, and the rest of the message carries on.
import { ResultReason } from './registry/generated.js';
import type { TtlvItem } from '../ttlv/types.js';

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
export const itemNotFound = (id: string) => new KmipError(ResultReason.ItemNotFound, `no object with Unique Identifier ${id}`);
