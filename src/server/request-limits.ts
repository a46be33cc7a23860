// Per-request limits checked once a message has parsed: the size limit already bounds the bytes,
// these bound the work (batch items run one by one, every attribute becomes a stored row).
import { ItemType, type TtlvItem } from '../ttlv/types.js';
import { ResultReason, Tag } from '../kmip/registry/generated.js';
import { KmipError } from '../kmip/errors.js';
import type { RequestMessage } from '../kmip/message.js';
import { isV2 } from '../kmip/version.js';

export interface RequestLimits {
  readonly maxBatchItems: number;
  readonly maxAttributes: number;
}

/** Returns the refusal for a request over a limit, or undefined when it may run. */
export type RequestScreen = (request: RequestMessage) => KmipError | undefined;

/** 2.x structures whose every child is one attribute. */
const ATTRIBUTE_LISTS: ReadonlySet<number> = new Set([Tag.Attributes, Tag.CommonAttributes, Tag.PrivateKeyAttributes, Tag.PublicKeyAttributes]);
/** Items that each stand for one attribute wherever they appear (1.x Attribute, names and references). */
const ONE_ATTRIBUTE: ReadonlySet<number> = new Set([Tag.Attribute, Tag.AttributeName, Tag.AttributeReference]);

/** Attributes named or carried anywhere in a payload; stops counting once past `stopAt`. */
export function countAttributes(item: TtlvItem | undefined, stopAt = Number.POSITIVE_INFINITY): number {
  if (item === undefined) return 0;
  let n = 0;
  const stack: TtlvItem[] = [item];
  while (stack.length > 0 && n <= stopAt) {
    const it = stack.pop()!;
    if (ONE_ATTRIBUTE.has(it.tag)) n += 1; // an Attribute's own Attribute Name is not counted again
    else if (it.type === ItemType.Structure && ATTRIBUTE_LISTS.has(it.tag)) n += it.value.length;
    else if (it.type === ItemType.Structure) stack.push(...it.value);
  }
  return n;
}

export function requestScreen(limits: RequestLimits): RequestScreen {
  return (request) => {
    // Server Limit Exceeded exists from 2.0; a 1.x client gets Invalid Message.
    const reason = isV2(request.header.version) ? ResultReason.ServerLimitExceeded : ResultReason.InvalidMessage;
    if (request.items.length > limits.maxBatchItems) {
      return new KmipError(reason, `the request holds ${request.items.length} batch items; this server accepts at most ${limits.maxBatchItems}`);
    }
    for (const [i, item] of request.items.entries()) {
      const n = countAttributes(item.payload, limits.maxAttributes);
      if (n > limits.maxAttributes) {
        return new KmipError(reason, `batch item ${i + 1} holds more than ${limits.maxAttributes} attributes`);
      }
    }
    return undefined;
  };
}
