// Structural comparison and failure explanations of the conformance runner (no server involved).
import { describe, expect, it } from 'vitest';
import { byteString, dateTime, enumeration, integer, structure, textString } from '../../src/ttlv/index.js';
import type { TtlvItem } from '../../src/ttlv/types.js';
import { Operation, QueryFunction, ResultReason, ResultStatus, RNGAlgorithm, State, Tag } from '../../src/kmip/registry/generated.js';
import { CaseContext, compareResponse } from './compare.js';
import { explain } from './explain.js';
import { parseCaseXml, xmlToCaseItem, type CaseItem } from './xml-to-ttlv.js';

const T0 = 1_700_000_000;

function expected(batchItems: string, version = '1.4'): CaseItem {
  const [major, minor] = version.split('.');
  return xmlToCaseItem(
    parseCaseXml(`<ResponseMessage>
      <ResponseHeader>
        <ProtocolVersion><ProtocolVersionMajor type="Integer" value="${major}"/><ProtocolVersionMinor type="Integer" value="${minor}"/></ProtocolVersion>
        <TimeStamp type="DateTime" value="$NOW"/>
        <BatchCount type="Integer" value="${(batchItems.match(/<BatchItem>/g) ?? []).length}"/>
      </ResponseHeader>${batchItems}</ResponseMessage>`),
    { version },
  );
}

function actual(items: TtlvItem[], timeStamp = T0): TtlvItem {
  return structure(Tag.ResponseMessage, [
    structure(Tag.ResponseHeader, [
      structure(Tag.ProtocolVersion, [integer(Tag.ProtocolVersionMajor, 1), integer(Tag.ProtocolVersionMinor, 4)]),
      dateTime(Tag.TimeStamp, BigInt(timeStamp)),
      integer(Tag.BatchCount, items.length),
    ]),
    ...items,
  ]);
}

const ok = (op: number, payload: TtlvItem[]) =>
  structure(Tag.BatchItem, [enumeration(Tag.Operation, op), enumeration(Tag.ResultStatus, ResultStatus.Success), structure(Tag.ResponsePayload, payload)]);
const failed = (op: number, reason: number, message = 'nope') =>
  structure(Tag.BatchItem, [
    enumeration(Tag.Operation, op),
    enumeration(Tag.ResultStatus, ResultStatus.OperationFailed),
    enumeration(Tag.ResultReason, reason),
    textString(Tag.ResultMessage, message),
  ]);
const attr = (name: string, value: TtlvItem) => structure(Tag.Attribute, [textString(Tag.AttributeName, name), { ...value, tag: Tag.AttributeValue }]);

const context = (now = T0) => new CaseContext(T0, () => now);

const createOk = `<BatchItem><Operation type="Enumeration" value="Create"/><ResultStatus type="Enumeration" value="Success"/>
  <ResponsePayload><ObjectType type="Enumeration" value="SymmetricKey"/><UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_0"/></ResponsePayload></BatchItem>`;
const createdAs = (id: string) => ok(Operation.Create, [enumeration(Tag.ObjectType, 2), textString(Tag.UniqueIdentifier, id)]);

describe('compareResponse', () => {
  it('binds a Unique Identifier placeholder on first sight and holds the server to it', () => {
    const ctx = context();
    expect(compareResponse(expected(createOk), actual([createdAs('key-1')]), ctx)).toEqual([]);
    expect(ctx.bindings.get('UNIQUE_IDENTIFIER_0')).toBe('key-1');
    const again = compareResponse(expected(createOk), actual([createdAs('key-2')]), ctx);
    expect(again).toHaveLength(1);
    expect(again[0]).toMatchObject({ kind: 'value', path: 'ResponseMessage/BatchItem[0](Create)/ResponsePayload/UniqueIdentifier' });
    expect(again[0]!.expected).toContain('"key-1"');
  });

  it('refuses one identifier for two objects', () => {
    const ctx = context();
    compareResponse(expected(createOk), actual([createdAs('key-1')]), ctx);
    const second = createOk.replace('$UNIQUE_IDENTIFIER_0', '$UNIQUE_IDENTIFIER_1');
    const diffs = compareResponse(expected(second), actual([createdAs('key-1')]), ctx);
    expect(diffs.map((d) => d.actual)).toEqual(['"key-1", already $UNIQUE_IDENTIFIER_0']);
  });

  it('accepts $NOW within the run and rejects a time outside it', () => {
    expect(compareResponse(expected(createOk), actual([createdAs('k')], T0 + 5), context(T0 + 5))).toEqual([]);
    const getDate = (offset: string, t: number) =>
      compareResponse(
        expected(`<BatchItem><Operation type="Enumeration" value="GetAttributes"/><ResultStatus type="Enumeration" value="Success"/><ResponsePayload>
          <UniqueIdentifier type="TextString" value="k"/>
          <Attribute><AttributeName type="TextString" value="Activation Date"/><AttributeValue type="DateTime" value="$NOW${offset}"/></Attribute>
        </ResponsePayload></BatchItem>`),
        actual([ok(Operation.GetAttributes, [textString(Tag.UniqueIdentifier, 'k'), attr('Activation Date', dateTime(0, BigInt(t)))])]),
        context(T0 + 10),
      );
    expect(getDate('', T0 + 3)).toEqual([]);
    expect(getDate('-3600', T0 - 3600)).toEqual([]);
    expect(getDate('', T0 - 3600)).toHaveLength(1);
    expect(getDate('-3600', T0)).toHaveLength(1);
  });

  it('compares echoed bytes exactly and generated ones (key material) by length only', () => {
    const getKey = (hex: string) => `<BatchItem><Operation type="Enumeration" value="Get"/><ResultStatus type="Enumeration" value="Success"/><ResponsePayload>
      <KeyMaterial type="ByteString" value="${hex}"/></ResponsePayload></BatchItem>`;
    const got = (bytes: number[]) => actual([ok(Operation.Get, [byteString(Tag.KeyMaterial, Uint8Array.from(bytes))])]);
    expect(compareResponse(expected(getKey('00112233')), got([9, 9, 9, 9]), context())).toEqual([]);
    expect(compareResponse(expected(getKey('00112233')), got([9, 9, 9]), context())[0]).toMatchObject({ expected: '4 bytes (generated)', actual: '3 bytes' });
    // The same bytes sent in a request of the file are no longer "generated": the echo must match.
    const ctx = context();
    ctx.noteSent(xmlToCaseItem(parseCaseXml(`<KeyMaterial type="ByteString" value="00112233"/>`)));
    expect(compareResponse(expected(getKey('00112233')), got([9, 9, 9, 9]), ctx)).toHaveLength(1);
    expect(compareResponse(expected(getKey('00112233')), got([0, 0x11, 0x22, 0x33]), ctx)).toEqual([]);
  });

  it('treats attributes as an unordered collection and names a missing or extra one', () => {
    const exp = expected(`<BatchItem><Operation type="Enumeration" value="GetAttributes"/><ResultStatus type="Enumeration" value="Success"/><ResponsePayload>
      <UniqueIdentifier type="TextString" value="k"/>
      <Attribute><AttributeName type="TextString" value="State"/><AttributeValue type="Enumeration" value="PreActive"/></Attribute>
      <Attribute><AttributeName type="TextString" value="Cryptographic Length"/><AttributeValue type="Integer" value="256"/></Attribute>
    </ResponsePayload></BatchItem>`);
    const state = attr('State', enumeration(0, State.PreActive));
    const length = attr('Cryptographic Length', integer(0, 256));
    const uid = textString(Tag.UniqueIdentifier, 'k');
    expect(compareResponse(exp, actual([ok(Operation.GetAttributes, [uid, length, state])]), context())).toEqual([]);
    const diffs = compareResponse(exp, actual([ok(Operation.GetAttributes, [uid, state, attr('Digest', integer(0, 1))])]), context());
    expect(diffs.map((d) => `${d.kind} ${d.path}`)).toEqual([
      'missing ResponseMessage/BatchItem[0](GetAttributes)/ResponsePayload/Attribute(Cryptographic Length)',
      'unexpected ResponseMessage/BatchItem[0](GetAttributes)/ResponsePayload/Attribute(Digest)',
    ]);
    const extra = actual([ok(Operation.GetAttributes, [uid, state, attr('Digest', integer(0, 1))])]);
    expect(explain(exp, extra, diffs)).toBe('GetAttributes: server does not return Attribute(Cryptographic Length)');
    const wrongState = compareResponse(exp, actual([ok(Operation.GetAttributes, [uid, length, attr('State', enumeration(0, State.Active))])]), context());
    expect(wrongState).toEqual([
      {
        kind: 'value',
        path: 'ResponseMessage/BatchItem[0](GetAttributes)/ResponsePayload/Attribute(State)/AttributeValue',
        expected: 'PreActive',
        actual: 'Active',
      },
    ]);
  });

  it('lets the Result Message wording differ but not the Result Reason, and explains both kinds of failure', () => {
    const exp = expected(`<BatchItem><Operation type="Enumeration" value="Activate"/><ResultStatus type="Enumeration" value="OperationFailed"/>
      <ResultReason type="Enumeration" value="PermissionDenied"/><ResultMessage type="TextString" value="DENIED"/></BatchItem>`);
    expect(compareResponse(exp, actual([failed(Operation.Activate, ResultReason.PermissionDenied, 'wrong state')]), context())).toEqual([]);
    const other = actual([failed(Operation.Activate, ResultReason.WrongKeyLifecycleState, 'wrong state')]);
    const diffs = compareResponse(exp, other, context());
    expect(diffs).toHaveLength(1);
    expect(explain(exp, other, diffs)).toBe('our reason differs for Activate: expected PermissionDenied, got WrongKeyLifecycleState ("wrong state")');
    const missing = actual([failed(Operation.Activate, ResultReason.OperationNotSupported)]);
    const ok2 = expected(`<BatchItem><Operation type="Enumeration" value="Activate"/><ResultStatus type="Enumeration" value="Success"/><ResponsePayload/></BatchItem>`);
    expect(explain(ok2, missing, compareResponse(ok2, missing, context()))).toBe('Activate not implemented');
  });

  it('accepts Located Items on one side only, compares it when both have it, and reports an order difference in one line', () => {
    const ctx = context();
    ctx.bindings.set('UNIQUE_IDENTIFIER_0', 'a').set('UNIQUE_IDENTIFIER_1', 'b');
    const exp = (extra: string) =>
      expected(`<BatchItem><Operation type="Enumeration" value="Locate"/><ResultStatus type="Enumeration" value="Success"/><ResponsePayload>${extra}
        <UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_1"/><UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_0"/>
      </ResponsePayload></BatchItem>`);
    const located = (n: number | undefined, ...ids: string[]) =>
      actual([ok(Operation.Locate, [...(n === undefined ? [] : [integer(Tag.LocatedItems, n)]), ...ids.map((id) => textString(Tag.UniqueIdentifier, id))])]);
    expect(compareResponse(exp(''), located(2, 'b', 'a'), ctx)).toEqual([]);
    expect(compareResponse(exp('<LocatedItems type="Integer" value="2"/>'), located(undefined, 'b', 'a'), ctx)).toEqual([]);
    expect(compareResponse(exp('<LocatedItems type="Integer" value="2"/>'), located(5, 'b', 'a'), ctx)).toHaveLength(1);
    const order = compareResponse(exp(''), located(2, 'a', 'b'), ctx);
    expect(order).toHaveLength(1);
    expect(explain(exp(''), located(2, 'a', 'b'), order)).toBe('Locate lists the same objects in another order: #0 #1 (#n = $UNIQUE_IDENTIFIER_n); case expects #1 #0');
  });

  it('accepts any RNG Algorithm in a server-reported Random Number Generator, but not a client-supplied one changed', () => {
    const exp = expected(`<BatchItem><Operation type="Enumeration" value="GetAttributes"/><ResultStatus type="Enumeration" value="Success"/><ResponsePayload>
      <Attribute><AttributeName type="TextString" value="Random Number Generator"/><AttributeValue><RNGAlgorithm type="Enumeration" value="ANSIX9_31"/></AttributeValue></Attribute>
    </ResponsePayload></BatchItem>`);
    const rng = (alg: number) => actual([ok(Operation.GetAttributes, [structure(Tag.Attribute, [textString(Tag.AttributeName, 'Random Number Generator'), structure(Tag.AttributeValue, [enumeration(Tag.RNGAlgorithm, alg)])])])]);
    expect(compareResponse(exp, rng(RNGAlgorithm.DRBG), context())).toEqual([]);
    const ctx = context();
    ctx.noteSent(xmlToCaseItem(parseCaseXml(`<TemplateAttribute><Attribute><AttributeName type="TextString" value="Random Number Generator"/><AttributeValue><RNGAlgorithm type="Enumeration" value="ANSIX9_31"/></AttributeValue></Attribute></TemplateAttribute>`)));
    expect(compareResponse(exp, rng(RNGAlgorithm.DRBG), ctx)).toHaveLength(1);
    expect(compareResponse(exp, rng(RNGAlgorithm.ANSIX9_31), ctx)).toEqual([]);
  });

  it('compares Query answers by the kinds of item returned, not their values', () => {
    const exp = expected(`<BatchItem><Operation type="Enumeration" value="Query"/><ResultStatus type="Enumeration" value="Success"/><ResponsePayload>
      <Operation type="Enumeration" value="Create"/><Operation type="Enumeration" value="Get"/><ObjectType type="Enumeration" value="Template"/>
    </ResponsePayload></BatchItem>`);
    const ours = (payload: TtlvItem[]) => actual([ok(Operation.Query, payload)]);
    expect(compareResponse(exp, ours([enumeration(Tag.Operation, Operation.Locate), enumeration(Tag.ObjectType, 2)]), context())).toEqual([]);
    const diffs = compareResponse(exp, ours([enumeration(Tag.Operation, Operation.Locate), enumeration(Tag.QueryFunction, QueryFunction.QueryOperations)]), context());
    expect(diffs.map((d) => `${d.kind} ${d.path.replace(/^.*\//, '')}`)).toEqual(['missing ObjectType', 'unexpected QueryFunction']);
  });
});
