// Hand-made hostile requests, one per kind of bad input the issue lists, each with the answer the
// server owes it. Built byte by byte (the encoder refuses to produce most of these).
import { ItemType } from '../../src/ttlv/types.js';
import { Operation, ResultReason, Tag } from '../../src/kmip/registry/generated.js';
import type { Version } from '../helpers/kmip-client.js';

/** What the server must do with a request. */
export type Expected =
  /** Close the connection without answering (not KMIP, or nothing can be trusted). */
  | { readonly kind: 'close' }
  /** Answer with Operation Failed and one of these reasons; close afterwards or keep serving. */
  | { readonly kind: 'answer'; readonly reasons: readonly number[]; readonly thenClose: boolean };

export interface MalformedCase {
  readonly name: string;
  readonly bytes: Buffer;
  readonly expected: Expected;
}

const close: Expected = { kind: 'close' };
const invalidMessageThenClose: Expected = { kind: 'answer', reasons: [ResultReason.InvalidMessage], thenClose: true };
const answerOpen = (...reasons: number[]): Expected => ({ kind: 'answer', reasons, thenClose: false });

// --- a raw TTLV writer that writes whatever it is told ---------------------------------------

export interface RawOptions {
  /** Length field to write instead of the true value length. */
  readonly len?: number;
  /** Bytes to write as padding instead of the zeros the value needs. */
  readonly pad?: Buffer;
}

export function rawItem(tag: number, type: number, value: Buffer, o: RawOptions = {}): Buffer {
  const h = Buffer.alloc(8);
  h.writeUIntBE(tag, 0, 3);
  h[3] = type;
  h.writeUInt32BE(o.len ?? value.length, 4);
  return Buffer.concat([h, value, o.pad ?? Buffer.alloc((8 - (value.length % 8)) % 8)]);
}

export const rawStruct = (tag: number, children: Buffer[], o: RawOptions = {}) => rawItem(tag, ItemType.Structure, Buffer.concat(children), o);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n | 0);
  return b;
};
export const rawInt = (tag: number, n: number) => rawItem(tag, ItemType.Integer, u32(n));
export const rawEnum = (tag: number, n: number) => rawItem(tag, ItemType.Enumeration, u32(n >>> 0));
export const rawText = (tag: number, s: string | Buffer, o: RawOptions = {}) =>
  rawItem(tag, ItemType.TextString, typeof s === 'string' ? Buffer.from(s, 'utf8') : s, o);

export function rawVersion(v: Version): Buffer {
  return rawStruct(Tag.ProtocolVersion, [rawInt(Tag.ProtocolVersionMajor, v.major), rawInt(Tag.ProtocolVersionMinor, v.minor)]);
}

export function rawHeader(v: Version, batchCount: number, extra: Buffer[] = []): Buffer {
  return rawStruct(Tag.RequestHeader, [rawVersion(v), ...extra, rawInt(Tag.BatchCount, batchCount)]);
}

export function rawBatchItem(operation: number, payload: Buffer[] | undefined): Buffer {
  return rawStruct(Tag.BatchItem, [rawEnum(Tag.Operation, operation), ...(payload ? [rawStruct(Tag.RequestPayload, payload)] : [])]);
}

export function rawRequest(v: Version, items: Buffer[], batchCount = items.length, headerExtra: Buffer[] = []): Buffer {
  return rawStruct(Tag.RequestMessage, [rawHeader(v, batchCount, headerExtra), ...items]);
}

const V12: Version = { major: 1, minor: 2 };
const V21: Version = { major: 2, minor: 1 };
const discover = () => rawBatchItem(Operation.DiscoverVersions, []);
const getWith = (...payload: Buffer[]) => rawBatchItem(Operation.Get, payload);

function nested(depth: number): Buffer {
  let inner = rawStruct(Tag.Attribute, []);
  for (let i = 1; i < depth; i++) inner = rawStruct(Tag.Attribute, [inner]);
  return inner;
}

/** A Create whose template names `n` attributes (custom attributes, 1.x or 2.x shape). */
function createWithAttributes(v: Version, n: number): Buffer {
  const attrs: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    attrs.push(
      v.major >= 2
        ? rawStruct(Tag.Attribute, [rawText(Tag.VendorIdentification, 'x'), rawText(Tag.AttributeName, `a${i}`), rawText(Tag.AttributeValue, 'v')])
        : rawStruct(Tag.Attribute, [rawText(Tag.AttributeName, `x-a${i}`), rawText(Tag.AttributeValue, 'v')]),
    );
  }
  const container = v.major >= 2 ? Tag.Attributes : Tag.TemplateAttribute;
  return rawRequest(v, [rawBatchItem(Operation.Create, [rawEnum(Tag.ObjectType, 2), rawStruct(container, attrs)])]);
}

/** A Request Message whose top-level header announces `len` body bytes and carries none. */
function announce(tag: number, type: number, len: number): Buffer {
  const h = Buffer.alloc(8);
  h.writeUIntBE(tag, 0, 3);
  h[3] = type;
  h.writeUInt32BE(len >>> 0, 4);
  return h;
}

/**
 * The hand-made cases. `maxMessageSize`, `maxBatchItems` and `maxAttributes` are the limits the
 * server under test runs with.
 */
export function malformedCases(limits: { maxMessageSize: number; maxBatchItems: number; maxAttributes: number }): MalformedCase[] {
  const cases: MalformedCase[] = [];
  const add = (name: string, bytes: Buffer, expected: Expected) => cases.push({ name, bytes, expected });

  // Not a Request Message at all: nothing to answer.
  add('first tag is Response Message', rawStruct(Tag.ResponseMessage, [rawHeader(V12, 1)]), close);
  add('first item is an Integer', rawInt(Tag.RequestMessage, 1), close);
  add('first item is a Text String', rawText(Tag.RequestMessage, 'hello'), close);
  add('HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: kms\r\n\r\n'), close);
  add('TLS record inside TLS', Buffer.from('160301020001000000000000', 'hex'), close);
  add('all zero bytes', Buffer.alloc(64), close);

  // Lengths.
  add('header announces 4 GiB', announce(Tag.RequestMessage, ItemType.Structure, 0xfffffff8), close);
  add('header announces 8 bytes over the size limit', announce(Tag.RequestMessage, ItemType.Structure, limits.maxMessageSize), close);
  add('message length not a multiple of 8', announce(Tag.RequestMessage, ItemType.Structure, 13), close);
  {
    const ok = rawRequest(V12, [discover()]);
    const hdr = Buffer.from(ok);
    hdr.writeUInt32BE(hdr.readUInt32BE(12) + 64, 12); // Request Header runs past the message
    add('Request Header longer than its message', hdr, invalidMessageThenClose);
  }
  add('Text String runs past its structure', rawRequest(V12, [getWith(rawText(Tag.UniqueIdentifier, 'abc', { len: 200 }))]), invalidMessageThenClose);
  add('Integer with length 8', rawRequest(V12, [getWith(rawItem(Tag.UniqueIdentifier, ItemType.Integer, Buffer.alloc(8)))]), invalidMessageThenClose);
  add('Structure length not a multiple of 8', rawRequest(V12, [getWith(rawStruct(Tag.Attribute, [], { len: 4, pad: Buffer.alloc(8) }))]), invalidMessageThenClose);

  // Wrong item types for known tags: the message is well-formed TTLV, a field is not.
  add('Batch Count as an Enumeration', rawRequest(V12, [discover()], 1).fill(0x05, 59, 60), answerOpen(ResultReason.InvalidField));
  add(
    'Operation as an Integer',
    rawRequest(V12, [rawStruct(Tag.BatchItem, [rawInt(Tag.Operation, Operation.DiscoverVersions)])]),
    answerOpen(ResultReason.InvalidField),
  );
  add(
    'Protocol Version Major as a Text String',
    rawStruct(Tag.RequestMessage, [rawStruct(Tag.RequestHeader, [rawStruct(Tag.ProtocolVersion, [rawText(Tag.ProtocolVersionMajor, '1'), rawInt(Tag.ProtocolVersionMinor, 2)]), rawInt(Tag.BatchCount, 1)]), discover()]),
    answerOpen(ResultReason.InvalidField),
  );
  add('Unique Identifier as an Integer', rawRequest(V12, [getWith(rawInt(Tag.UniqueIdentifier, 7))]), answerOpen(ResultReason.InvalidField));
  add('Request Payload as a Text String', rawRequest(V12, [rawStruct(Tag.BatchItem, [rawEnum(Tag.Operation, Operation.Get), rawText(Tag.RequestPayload, 'x')])]), answerOpen(ResultReason.InvalidField));
  add('Request Header missing', rawStruct(Tag.RequestMessage, [discover()]), answerOpen(ResultReason.InvalidField, ResultReason.InvalidMessage));
  add('empty Request Message', rawStruct(Tag.RequestMessage, []), answerOpen(ResultReason.InvalidField, ResultReason.InvalidMessage));

  // Padding.
  add('non-zero padding', rawRequest(V12, [getWith(rawText(Tag.UniqueIdentifier, 'abc', { pad: Buffer.from('0000000001', 'hex') }))]), invalidMessageThenClose);
  {
    // 'abc' followed at once by the next item: the decoder must not take its header for padding.
    const uid = rawText(Tag.UniqueIdentifier, 'abc', { pad: Buffer.alloc(0) });
    const next = rawText(Tag.UniqueIdentifier, 'defgh', { pad: Buffer.alloc(0) });
    add('missing padding', rawRequest(V12, [getWith(uid, next)]), invalidMessageThenClose);
  }

  // Text that is not UTF-8.
  add('invalid UTF-8 (C3 28)', rawRequest(V12, [getWith(rawText(Tag.UniqueIdentifier, Buffer.from('c328', 'hex')))]), invalidMessageThenClose);
  add('overlong UTF-8 (C0 AF)', rawRequest(V12, [getWith(rawText(Tag.UniqueIdentifier, Buffer.from('c0af', 'hex')))]), invalidMessageThenClose);
  add('UTF-8 encoded surrogate (ED A0 80)', rawRequest(V12, [getWith(rawText(Tag.UniqueIdentifier, Buffer.from('eda080', 'hex')))]), invalidMessageThenClose);

  // Other TTLV violations.
  add('Boolean of 2', rawRequest(V12, [discover()], 1, [rawItem(Tag.AsynchronousIndicator, ItemType.Boolean, Buffer.from('0000000000000002', 'hex'))]), invalidMessageThenClose);
  add('unknown item type 0x0C', rawRequest(V12, [getWith(rawItem(Tag.UniqueIdentifier, 0x0c, Buffer.alloc(8)))]), invalidMessageThenClose);
  add('item type 0x00', rawRequest(V12, [getWith(rawItem(Tag.UniqueIdentifier, 0x00, Buffer.alloc(8)))]), invalidMessageThenClose);
  add('tag outside the KMIP ranges', rawRequest(V12, [getWith(rawText(0x010203, 'x'))]), invalidMessageThenClose);

  // Nesting.
  add('40 nested structures', rawRequest(V12, [getWith(nested(40))]), invalidMessageThenClose);
  add('4000 nested structures', rawRequest(V12, [getWith(nested(4000))]), invalidMessageThenClose);

  // Batch Count against the items.
  add('Batch Count 3 for one item', rawRequest(V12, [discover()], 3), answerOpen(ResultReason.InvalidMessage));
  add('Batch Count 0 and no item', rawRequest(V12, [], 0), answerOpen(ResultReason.InvalidMessage));
  add('Batch Count -1', rawRequest(V12, [discover()], -1), answerOpen(ResultReason.InvalidMessage));
  add('Batch Count 2^31-1 for one item', rawRequest(V12, [discover()], 0x7fffffff), answerOpen(ResultReason.InvalidMessage));

  // Absurd counts within the size limit.
  const manyItems = Math.min(2000, Math.floor((limits.maxMessageSize - 64) / 24));
  if (manyItems > limits.maxBatchItems) {
    add(`${manyItems} batch items (1.2)`, rawRequest(V12, Array.from({ length: manyItems }, discover)), answerOpen(ResultReason.InvalidMessage));
    add(`${manyItems} batch items (2.1)`, rawRequest(V21, Array.from({ length: manyItems }, discover)), answerOpen(ResultReason.ServerLimitExceeded));
  }
  const manyAttrs = Math.max(limits.maxAttributes + 1, Math.min(1000, Math.floor((limits.maxMessageSize - 200) / 64)));
  add(`Create with ${manyAttrs} attributes (1.2)`, createWithAttributes(V12, manyAttrs), answerOpen(ResultReason.InvalidMessage));
  add(`Create with ${manyAttrs} attributes (2.1)`, createWithAttributes(V21, manyAttrs), answerOpen(ResultReason.ServerLimitExceeded));
  return cases;
}

/** A Big Integer filling most of a message: cheap to send, and once quadratic to decode. */
export function bigIntegerRequest(bytes: number): Buffer {
  const len = Math.floor(bytes / 8) * 8;
  return rawRequest(V12, [getWith(rawItem(Tag.UniqueIdentifier, ItemType.BigInteger, Buffer.alloc(len, 0x5a)))]);
}
