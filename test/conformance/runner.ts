// Replays OASIS test cases against a running kmipd, one file at a time, one connection per file.
//
// Each request is our own TTLV encoding of the XML request, with placeholders filled from what
// the server answered earlier in the same file; each response is decoded and compared
// structurally with the expected one (compare.ts). After a file, every object it touched is
// revoked and destroyed, so that later files' Locate calls (some match "created in the last 20
// seconds") see only their own objects.
import { decodeTtlv, encodeTtlv, enumeration, integer, structure, textString } from '../../src/ttlv/index.js';
import { ItemType, type TtlvItem } from '../../src/ttlv/types.js';
import { BatchErrorContinuationOption, Operation, RevocationReasonCode, Tag } from '../../src/kmip/registry/generated.js';
import { KmipTestClient } from '../helpers/kmip-client.js';
import type { ClientBundle } from '../helpers/kmipd.js';
import { CaseContext, compareResponse, type Mismatch } from './compare.js';
import { explain } from './explain.js';
import type { LoadedCase } from './cases.js';
import { materialise, type LeafType, type LeafValue, type Placeholder } from './xml-to-ttlv.js';

export interface PairFailure {
  /** Index of the request/response pair in the file (0-based). */
  readonly pair: number;
  readonly operations: readonly string[];
  readonly reason: string;
  readonly diffs: readonly Mismatch[];
}

export type Outcome =
  | { readonly kind: 'pass' }
  /** `failures[0]` is the first differing pair; later pairs were still replayed when possible. */
  | { readonly kind: 'fail'; readonly failures: readonly PairFailure[]; readonly replayed: number }
  | { readonly kind: 'n/a'; readonly why: string };

export interface CaseResult {
  readonly case: LoadedCase;
  readonly outcome: Outcome;
  readonly ms: number;
}

export interface Target {
  readonly port: number;
  readonly bundle: ClientBundle;
}

const RESPONSE_TIMEOUT_MS = 15_000;

class UnboundPlaceholder extends Error {}

const nowSeconds = () => Math.floor(Date.now() / 1000);

function substitution(ctx: CaseContext) {
  return (p: Placeholder, type: LeafType, tag: number): LeafValue => {
    if (p.kind === 'now') {
      if (type !== ItemType.DateTime) throw new UnboundPlaceholder(`$NOW used on a non-DateTime item (tag 0x${tag.toString(16)})`);
      return BigInt(nowSeconds() + p.offset);
    }
    const v = ctx.bindings.get(p.name);
    if (v === undefined) throw new UnboundPlaceholder(`the request needs $${p.name}, which no earlier response supplied`);
    return v;
  };
}

/** Every Unique Identifier (text) in a response: the objects this file made or touched. */
function collectIds(item: TtlvItem, into: Set<string>): void {
  if (item.type === ItemType.Structure) for (const c of item.value) collectIds(c, into);
  else if (item.type === ItemType.TextString && item.tag === Tag.UniqueIdentifier) into.add(item.value);
}

/** Revoke then destroy, batch-continue, errors ignored: leaves no live object behind. */
async function cleanUp(client: KmipTestClient, ids: ReadonlySet<string>): Promise<void> {
  const items: TtlvItem[] = [];
  for (const id of ids) {
    items.push(
      structure(Tag.BatchItem, [
        enumeration(Tag.Operation, Operation.Revoke),
        structure(Tag.RequestPayload, [
          textString(Tag.UniqueIdentifier, id),
          structure(Tag.RevocationReason, [enumeration(Tag.RevocationReasonCode, RevocationReasonCode.CessationOfOperation)]),
        ]),
      ]),
      structure(Tag.BatchItem, [enumeration(Tag.Operation, Operation.Destroy), structure(Tag.RequestPayload, [textString(Tag.UniqueIdentifier, id)])]),
    );
  }
  const message = structure(Tag.RequestMessage, [
    structure(Tag.RequestHeader, [
      structure(Tag.ProtocolVersion, [integer(Tag.ProtocolVersionMajor, 1), integer(Tag.ProtocolVersionMinor, 4)]),
      enumeration(Tag.BatchErrorContinuationOption, BatchErrorContinuationOption.Continue),
      integer(Tag.BatchCount, items.length),
    ]),
    ...items,
  ]);
  client.sendRaw(encodeTtlv(message));
  await client.next(RESPONSE_TIMEOUT_MS).catch(() => undefined);
}

/**
 * Replay one file. `touched` collects the ids of the objects it made or used; they are revoked
 * and destroyed afterwards unless `keepObjects` (the next file continues with them).
 */
export async function runCase(c: LoadedCase, target: Target, touched = new Set<string>(), keepObjects = false): Promise<CaseResult> {
  const started = Date.now();
  if (c.notApplicable !== undefined) return { case: c, outcome: { kind: 'n/a', why: c.notApplicable }, ms: 0 };
  const ctx = new CaseContext(nowSeconds());
  for (const p of c.pairs) ctx.noteSent(p.request);
  const failures: PairFailure[] = [];
  const client = await KmipTestClient.connect(target.port, target.bundle);
  let replayed = 0;
  try {
    for (const [i, pair] of c.pairs.entries()) {
      const fail = (reason: string, diffs: readonly Mismatch[] = []) => failures.push({ pair: i, operations: pair.operations, reason, diffs });
      let bytes: Uint8Array;
      try {
        bytes = encodeTtlv(materialise(pair.request, substitution(ctx)));
      } catch (e) {
        fail(e instanceof UnboundPlaceholder ? e.message : `cannot encode the request: ${(e as Error).message}`);
        break;
      }
      client.sendRaw(bytes);
      const raw = await client.next(RESPONSE_TIMEOUT_MS).catch(() => undefined);
      replayed++;
      if (raw === undefined) {
        fail(client.closed ? 'the server closed the connection' : 'no response in time');
        break;
      }
      let actual: TtlvItem;
      try {
        actual = decodeTtlv(raw);
      } catch (e) {
        fail(`the response does not decode: ${(e as Error).message}`);
        break;
      }
      collectIds(actual, touched);
      const diffs = compareResponse(pair.response, actual, ctx);
      if (diffs.length > 0) fail(explain(pair.response, actual, diffs), diffs);
    }
  } finally {
    client.close();
    if (!keepObjects && touched.size > 0) {
      // A fresh connection: the file's own one may have been closed by the server.
      const cleaner = await KmipTestClient.connect(target.port, target.bundle);
      await cleanUp(cleaner, touched).finally(() => cleaner.close());
    }
  }
  const outcome: Outcome = failures.length === 0 ? { kind: 'pass' } : { kind: 'fail', failures, replayed };
  return { case: c, outcome, ms: Date.now() - started };
}

/** Sequentially: files share one server, and some Locate by creation time. */
export async function runCases(cases: readonly LoadedCase[], target: Target): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  let touched = new Set<string>();
  for (const [i, c] of cases.entries()) {
    const keep = cases[i + 1]?.continuesFrom === c.name;
    results.push(await runCase(c, target, touched, keep));
    if (!keep) touched = new Set();
  }
  return results;
}
