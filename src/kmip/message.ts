// Request Message parsing and Response Message building (KMIP 1.x §7, 2.x §8).
import { ItemType, type StructureItem, type TtlvItem } from '../ttlv/types.js';
import { byteString, dateTime, enumeration, integer, structure, textString } from '../ttlv/build.js';
import { BatchErrorContinuationOption, Operation, ResultStatus, Tag } from './registry/generated.js';
import { Fields } from './fields.js';
import { invalidMessage, KmipError, type ResultReasonValue } from './errors.js';
import type { ProtocolVersion } from './version.js';

export type OperationCode = (typeof Operation)[keyof typeof Operation];
export type ContinuationOption = (typeof BatchErrorContinuationOption)[keyof typeof BatchErrorContinuationOption];

export interface Credential {
  readonly username: string;
  readonly password: string | undefined;
}

export interface RequestHeader {
  readonly version: ProtocolVersion;
  readonly maximumResponseSize: number | undefined;
  readonly asynchronous: boolean;
  readonly continuation: ContinuationOption;
  readonly credential: Credential | undefined;
  readonly batchCount: number;
}

export interface MessageExtension {
  readonly vendor: string;
  readonly critical: boolean;
}

export interface RequestBatchItem {
  readonly operation: number;
  readonly uniqueBatchItemId: Uint8Array | undefined;
  readonly payload: StructureItem | undefined;
  readonly extensions: readonly MessageExtension[];
}

export interface RequestMessage {
  readonly header: RequestHeader;
  readonly items: readonly RequestBatchItem[];
}

/** Read just the protocol version, so that even a rejected message is answered in its version. */
export function peekVersion(message: TtlvItem): ProtocolVersion | undefined {
  try {
    const header = Fields.of(message).struct(Tag.RequestHeader);
    const pv = Fields.of(header).struct(Tag.ProtocolVersion);
    if (!pv) return undefined;
    const f = Fields.of(pv);
    return { major: f.requiredInteger(Tag.ProtocolVersionMajor), minor: f.requiredInteger(Tag.ProtocolVersionMinor) };
  } catch {
    return undefined;
  }
}

function parseCredential(auth: StructureItem | undefined): Credential | undefined {
  if (!auth) return undefined;
  // KMIP 1.x has one Credential; 1.2+ allows several. We take the first Username/Password one.
  for (const cred of Fields.of(auth).structs(Tag.Credential)) {
    const f = Fields.of(cred);
    const value = f.struct(Tag.CredentialValue);
    if (f.enumeration(Tag.CredentialType) !== 1 || !value) continue;
    const v = Fields.of(value);
    return { username: v.requiredText(Tag.Username), password: v.text(Tag.Password) };
  }
  return undefined;
}

export function parseRequest(message: TtlvItem): RequestMessage {
  if (message.tag !== Tag.RequestMessage || message.type !== ItemType.Structure) {
    throw invalidMessage('not a Request Message');
  }
  const m = Fields.of(message);
  const h = Fields.of(m.requiredStruct(Tag.RequestHeader));
  const pv = Fields.of(h.requiredStruct(Tag.ProtocolVersion));
  const version = { major: pv.requiredInteger(Tag.ProtocolVersionMajor), minor: pv.requiredInteger(Tag.ProtocolVersionMinor) };
  const batchCount = h.requiredInteger(Tag.BatchCount);
  const items = m.structs(Tag.BatchItem).map((bi): RequestBatchItem => {
    const f = Fields.of(bi);
    const payload = f.struct(Tag.RequestPayload);
    const extensions = f.structs(Tag.MessageExtension).map((ext): MessageExtension => {
      const e = Fields.of(ext, 'Message Extension');
      return { vendor: e.requiredText(Tag.VendorIdentification), critical: e.boolean(Tag.CriticalityIndicator) ?? false };
    });
    return { operation: f.requiredEnumeration(Tag.Operation), uniqueBatchItemId: f.bytes(Tag.UniqueBatchItemID), payload, extensions };
  });
  if (items.length !== batchCount) {
    throw invalidMessage(`Batch Count is ${batchCount} but the message holds ${items.length} batch items`);
  }
  if (items.length === 0) throw invalidMessage('the message holds no batch item');
  const continuation = (h.enumeration(Tag.BatchErrorContinuationOption) ?? BatchErrorContinuationOption.Stop) as ContinuationOption;
  return {
    header: {
      version,
      maximumResponseSize: h.integer(Tag.MaximumResponseSize),
      asynchronous: h.boolean(Tag.AsynchronousIndicator) ?? false,
      continuation,
      credential: parseCredential(h.struct(Tag.Authentication)),
      batchCount,
    },
    items,
  };
}

/** Success and Operation Undone carry the item's payload (2.1 BL-M-2); a failure carries its reason. */
export type ResponseBatchItem =
  | {
      readonly status: typeof ResultStatus.Success | typeof ResultStatus.OperationUndone;
      readonly operation: number | undefined;
      readonly uniqueBatchItemId: Uint8Array | undefined;
      readonly payload: readonly TtlvItem[] | undefined;
    }
  | {
      readonly status: typeof ResultStatus.OperationFailed;
      readonly operation: number | undefined;
      readonly uniqueBatchItemId: Uint8Array | undefined;
      readonly reason: ResultReasonValue;
      readonly message: string;
      readonly payload?: readonly TtlvItem[] | undefined;
    };

export function failure(
  request: Pick<RequestBatchItem, 'operation' | 'uniqueBatchItemId'> | undefined,
  error: KmipError,
): ResponseBatchItem {
  return {
    status: ResultStatus.OperationFailed,
    operation: request?.operation,
    uniqueBatchItemId: request?.uniqueBatchItemId,
    reason: error.reason,
    message: error.message,
    payload: error.payload,
  };
}

export function buildResponse(version: ProtocolVersion, items: readonly ResponseBatchItem[], now = new Date()): StructureItem {
  const header = structure(Tag.ResponseHeader, [
    structure(Tag.ProtocolVersion, [
      integer(Tag.ProtocolVersionMajor, version.major),
      integer(Tag.ProtocolVersionMinor, version.minor),
    ]),
    dateTime(Tag.TimeStamp, now),
    integer(Tag.BatchCount, items.length),
  ]);
  const batch = items.map((item) => {
    const children: TtlvItem[] = [];
    if (item.operation !== undefined) children.push(enumeration(Tag.Operation, item.operation));
    if (item.uniqueBatchItemId !== undefined) children.push(byteString(Tag.UniqueBatchItemID, item.uniqueBatchItemId));
    children.push(enumeration(Tag.ResultStatus, item.status));
    if (item.status !== ResultStatus.OperationFailed) {
      if (item.payload !== undefined) children.push(structure(Tag.ResponsePayload, item.payload));
    } else {
      children.push(enumeration(Tag.ResultReason, item.reason));
      children.push(textString(Tag.ResultMessage, item.message));
      if (item.payload !== undefined) children.push(structure(Tag.ResponsePayload, item.payload));
    }
    return structure(Tag.BatchItem, children);
  });
  return structure(Tag.ResponseMessage, [header, ...batch]);
}
