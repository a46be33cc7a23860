// Reading answers on the hot path without building an item tree: walk the TTLV headers of a
// Response Message down to each Batch Item's Result Status. The generator checks every answer
// this way; full decoding is kept for seeding and verification.
import { Tag, ResultStatus } from '../src/kmip/registry/generated.js';

const STRUCTURE = 0x01;
const ENUMERATION = 0x05;

export interface AnswerCheck {
  readonly ok: boolean;
  /** Result Reason of the first failed item, or a label when the message itself is malformed. */
  readonly failure?: string;
}

const OK: AnswerCheck = { ok: true };

function tagAt(b: Buffer, p: number): number {
  return (b[p]! << 16) | (b[p + 1]! << 8) | b[p + 2]!;
}

function padded(n: number): number {
  return (n + 7) & ~7;
}

/** Success when every Batch Item of the Response Message says Success. */
export function checkAnswer(msg: Buffer): AnswerCheck {
  if (msg.length < 8 || tagAt(msg, 0) !== Tag.ResponseMessage || msg[3] !== STRUCTURE) return { ok: false, failure: 'not a Response Message' };
  const end = Math.min(msg.length, 8 + msg.readUInt32BE(4));
  let items = 0;
  for (let p = 8; p + 8 <= end; ) {
    const len = msg.readUInt32BE(p + 4);
    if (tagAt(msg, p) === Tag.BatchItem && msg[p + 3] === STRUCTURE) {
      items += 1;
      const failure = batchItemFailure(msg, p + 8, Math.min(end, p + 8 + len));
      if (failure !== undefined) return { ok: false, failure };
    }
    p += 8 + padded(len);
  }
  return items > 0 ? OK : { ok: false, failure: 'no Batch Item' };
}

function batchItemFailure(msg: Buffer, start: number, end: number): string | undefined {
  let status: number | undefined;
  let reason: number | undefined;
  for (let p = start; p + 8 <= end; ) {
    const tag = tagAt(msg, p);
    const len = msg.readUInt32BE(p + 4);
    if (msg[p + 3] === ENUMERATION && p + 12 <= end) {
      if (tag === Tag.ResultStatus) status = msg.readUInt32BE(p + 8);
      else if (tag === Tag.ResultReason) reason = msg.readUInt32BE(p + 8);
    }
    p += 8 + padded(len);
  }
  if (status === ResultStatus.Success) return undefined;
  if (status === undefined) return 'no Result Status';
  return `status ${status}, reason ${reason ?? 'none'}`;
}

const TEXT_STRING = 0x07;

/**
 * The Unique Identifier in the payload of the first Batch Item of a successful Create's answer (the
 * new key's id), read by walking headers as checkAnswer does; undefined if there is none.
 */
export function createdId(msg: Buffer): string | undefined {
  const end = Math.min(msg.length, 8 + (msg.length >= 8 ? msg.readUInt32BE(4) : 0));
  const item = childOf(msg, 8, end, Tag.BatchItem, STRUCTURE);
  const payload = item && childOf(msg, item.start, item.end, Tag.ResponsePayload, STRUCTURE);
  const id = payload && childOf(msg, payload.start, payload.end, Tag.UniqueIdentifier, TEXT_STRING);
  return id && msg.toString('utf8', id.start, id.end);
}

/** The first child item with this tag and type among the items from `start` to `end`: where its value is. */
function childOf(msg: Buffer, start: number, end: number, tag: number, type: number): { start: number; end: number } | undefined {
  for (let p = start; p + 8 <= end; ) {
    const len = msg.readUInt32BE(p + 4);
    if (tagAt(msg, p) === tag && msg[p + 3] === type) return p + 8 + len <= end ? { start: p + 8, end: p + 8 + len } : undefined;
    p += 8 + padded(len);
  }
  return undefined;
}
