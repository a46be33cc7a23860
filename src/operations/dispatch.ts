// From request bytes to response bytes: decode, check the header, run each batch item through its
// handler, map failures to KMIP results, answer in the request's protocol version, audit each item.
import type { Logger } from 'pino';
import { decodeTtlv, encodeTtlv, TtlvError } from '../ttlv/index.js';
import type { TtlvItem } from '../ttlv/types.js';
import { BatchErrorContinuationOption, ENUM_INFO, ResultReason, ResultStatus, Tag } from '../kmip/registry/generated.js';
import { Fields } from '../kmip/fields.js';
import { KmipError } from '../kmip/errors.js';
import { buildResponse, failure, parseRequest, peekVersion, type Credential, type RequestBatchItem, type RequestMessage, type ResponseBatchItem } from '../kmip/message.js';
import { SUPPORTED_VERSIONS, compareVersions, isSupported, isV2, type ProtocolVersion } from '../kmip/version.js';
import type { KeyStore } from '../store/types.js';
import type { ClientIdentity, KeyProtector, OperationContext, ServerInfo } from './context.js';
import { handlerFor } from './registry.js';
import { authorize } from './authorization.js';
import { UndoJournal } from './undo-journal.js';

export interface DispatchDeps {
  readonly store: KeyStore;
  readonly keys: KeyProtector;
  readonly log: Logger;
  readonly audit: Logger;
  readonly server: ServerInfo;
  readonly maxDepth: number;
  /** Server limits on a parsed request (batch items, attributes); a refusal answers the whole message. */
  readonly screen?: (request: RequestMessage) => KmipError | undefined;
  /**
   * Checks a Username/Password Credential against the client's configured one. The certificate is
   * the identity; a request without a credential is not refused (vCenter sends one on some only).
   */
  readonly checkCredential?: (
    client: ClientIdentity,
    credential: Credential,
  ) => 'accepted' | 'rejected' | 'not-configured' | Promise<'accepted' | 'rejected' | 'not-configured'>;
  /** Counts each answer (metrics). Operation and reason labels come from the registry: a bounded set. */
  readonly observe?: RequestObserver;
}

export interface RequestObserver {
  /** `operation` is "message" for a request refused as a whole, before any batch item ran. */
  request(operation: string, result: 'Success' | 'OperationFailed', reason: string | undefined, seconds: number): void;
}

export interface DispatchResult {
  readonly response: Buffer;
  /** The response carries plaintext key material: zero it once written. */
  readonly sensitive: boolean;
  /** The message could not be trusted at all: answer, then close the connection. */
  readonly close: boolean;
}

/** Maps an unexpected error (HSM, store) to a KMIP reason without leaking internals to the client. */
export type ErrorClassifier = (err: unknown) => KmipError | undefined;

/** A Vendor Extension may carry tags outside the KMIP ranges (OASIS test cases 7.1, 7.2 do). */
const VENDOR_EXTENSION: ReadonlySet<number> = new Set([Tag.VendorExtension]);

const FALLBACK_VERSION: ProtocolVersion = { major: 1, minor: 0 };

/** The nearest version we speak that is not newer than the client's, so a failure is still readable. */
function answerVersion(v: ProtocolVersion | undefined): ProtocolVersion {
  if (!v) return FALLBACK_VERSION;
  return SUPPORTED_VERSIONS.find((s) => compareVersions(s, v) <= 0) ?? FALLBACK_VERSION;
}

/** Protocol version read straight from the canonical header layout, for messages that fail to decode. */
function peekVersionBytes(raw: Uint8Array): ProtocolVersion | undefined {
  if (raw.length < 56) return undefined;
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const ok = dv.getUint32(16) === 0x42006901 && dv.getUint32(24) === 0x42006a02 && dv.getUint32(40) === 0x42006b02;
  return ok ? { major: dv.getInt32(32), minor: dv.getInt32(48) } : undefined;
}

function operationName(op: number): string {
  return ENUM_INFO.get('Operation')?.values.get(op)?.xml ?? `0x${op.toString(16)}`;
}

/** The client chooses the operation code: metrics label unknown ones alike, so the label set stays bounded. */
function operationLabel(op: number): string {
  return ENUM_INFO.get('Operation')?.values.get(op)?.xml ?? 'unknown';
}

function reasonName(reason: number): string | undefined {
  return ENUM_INFO.get('ResultReason')?.values.get(reason)?.xml;
}

export class Dispatcher {
  /**
   * Each client's audit logger: pino serialises a child's bindings once, so the four fields that
   * say who asked are not turned into JSON again on every line. The lines are byte for byte what
   * one call with all fields writes (pino puts bindings before the call's own fields).
   */
  private readonly auditOf = new WeakMap<ClientIdentity, Logger>();

  constructor(
    private readonly deps: DispatchDeps,
    private readonly classify: ErrorClassifier = () => undefined,
  ) {}

  private auditFor(client: ClientIdentity): Logger {
    let audit = this.auditOf.get(client);
    if (audit === undefined) {
      audit = this.deps.audit.child({ client: client.name, fingerprint: client.fingerprintSha256, tenant: client.tenant, role: client.role });
      this.auditOf.set(client, audit);
    }
    return audit;
  }

  async handle(raw: Buffer, client: ClientIdentity): Promise<DispatchResult> {
    const started = performance.now();
    let message: TtlvItem;
    try {
      message = decodeTtlv(raw, { maxDepth: this.deps.maxDepth, anyTagInside: VENDOR_EXTENSION });
    } catch (err) {
      if (!(err instanceof TtlvError)) throw err;
      this.deps.log.warn({ client: client.commonName, err: err.message }, 'undecodable request');
      return this.reject(answerVersion(peekVersionBytes(raw)), new KmipError(ResultReason.InvalidMessage, err.message), true, started);
    }
    let request;
    try {
      request = parseRequest(message);
    } catch (err) {
      if (!(err instanceof KmipError)) throw err;
      return this.reject(answerVersion(peekVersion(message)), err, false, started);
    }
    const version = request.header.version;
    if (!isSupported(version)) {
      const v = answerVersion(version);
      const reason = isV2(v) ? ResultReason.UnsupportedProtocolVersion : ResultReason.InvalidMessage;
      return this.reject(v, new KmipError(reason, `protocol version ${version.major}.${version.minor} is not supported`), false, started);
    }
    const refused = this.deps.screen?.(request);
    if (refused) return this.reject(version, refused, false, started);

    // With Undo, every change goes through a journal that can reverse it.
    const journal = request.header.continuation === BatchErrorContinuationOption.Undo ? new UndoJournal(this.deps.store) : undefined;
    const ctx: OperationContext = {
      version,
      client,
      store: journal ?? this.deps.store,
      keys: this.deps.keys,
      log: this.deps.log,
      server: this.deps.server,
      idPlaceholder: undefined,
      secrets: [],
      objectId: undefined,
    };
    const credential = request.header.credential;
    const refusedCredential =
      credential && (await this.deps.checkCredential?.(client, credential)) === 'rejected'
        ? new KmipError(ResultReason.AuthenticationNotSuccessful, 'the credential does not match this client')
        : undefined;
    try {
      let results: ResponseBatchItem[] = [];
      for (const item of request.items) {
        const result = await this.runItem(ctx, item, refusedCredential);
        results.push(result);
        if (result.status === ResultStatus.Success || request.header.continuation === BatchErrorContinuationOption.Continue) continue;
        if (journal) {
          await journal.rollback();
          results = results.map((r) => (r.status === ResultStatus.Success ? { ...r, status: ResultStatus.OperationUndone } : r));
        }
        break;
      }
      let response = encodeTtlv(buildResponse(version, results));
      const max = request.header.maximumResponseSize;
      if (max !== undefined && response.length > max) {
        response.fill(0);
        const tooLarge = new KmipError(ResultReason.ResponseTooLarge, `the response is ${response.length} bytes, more than Maximum Response Size ${max}`);
        response = encodeTtlv(buildResponse(version, request.items.map((i) => failure(i, tooLarge))));
        return { response, sensitive: false, close: false };
      }
      return { response, sensitive: ctx.secrets.length > 0, close: false };
    } finally {
      for (const s of ctx.secrets) s.fill(0);
    }
  }

  // The Asynchronous Indicator only says the client *accepts* an asynchronous answer (1.4 §6.7);
  // answering synchronously is always allowed, so it is not looked at.
  private async runItem(ctx: OperationContext, item: RequestBatchItem, refused?: KmipError): Promise<ResponseBatchItem> {
    ctx.objectId = undefined;
    const started = performance.now();
    let result: ResponseBatchItem;
    try {
      if (refused) throw refused;
      authorize(ctx, item, operationName(item.operation));
      const handler = handlerFor(item.operation, ctx.version);
      if (!handler) throw new KmipError(ResultReason.OperationNotSupported, `operation ${operationName(item.operation)} is not supported`);
      const critical = item.extensions.find((e) => e.critical);
      if (critical) {
        throw new KmipError(
          isV2(ctx.version) ? ResultReason.UnknownMessageExtension : ResultReason.FeatureNotSupported,
          `critical message extension from ${JSON.stringify(critical.vendor)} is not supported`,
        );
      }
      const payload = await handler(ctx, Fields.of(item.payload, 'Request Payload'));
      result = { status: ResultStatus.Success, operation: item.operation, uniqueBatchItemId: item.uniqueBatchItemId, payload };
    } catch (err) {
      const kmipErr = err instanceof KmipError ? err : this.classify(err);
      if (!kmipErr) {
        this.deps.log.error({ err, operation: operationName(item.operation) }, 'operation failed unexpectedly');
      }
      result = failure(item, kmipErr ?? new KmipError(ResultReason.GeneralFailure, 'internal server error'));
    }
    const failed = result.status === ResultStatus.OperationFailed;
    const reason = result.status === ResultStatus.OperationFailed ? reasonName(result.reason) : undefined;
    const ms = performance.now() - started;
    this.auditFor(ctx.client).info({
      operation: operationName(item.operation),
      object: ctx.objectId,
      result: failed ? 'OperationFailed' : 'Success',
      reason,
      ms: Math.round(ms * 1000) / 1000,
    }, 'kmip request');
    this.deps.observe?.request(operationLabel(item.operation), failed ? 'OperationFailed' : 'Success', reason, ms / 1000);
    return result;
  }

  private reject(version: ProtocolVersion, err: KmipError, close: boolean, started: number): DispatchResult {
    this.deps.observe?.request('message', 'OperationFailed', reasonName(err.reason), (performance.now() - started) / 1000);
    const response = encodeTtlv(buildResponse(version, [failure(undefined, err)]));
    return { response, sensitive: false, close };
  }
}
