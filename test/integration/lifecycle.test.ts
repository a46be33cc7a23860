// The full symmetric-key lifecycle over the wire, at a 1.x and a 2.x version: attribute
// operations and their rules, batches with Undo, Re-key, Check, leases, date-driven states.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boolean, dateTime, decodeTtlv, encodeTtlv, enumeration, integer, longInteger, structure, textString } from '../../src/ttlv/index.js';
import type { TtlvItem } from '../../src/ttlv/types.js';
import { BatchErrorContinuationOption, LinkType, Operation, ResultReason, ResultStatus, RevocationReasonCode, State, Tag } from '../../src/kmip/registry/generated.js';
import { parseAttribute1, parseAttributes2, type Attribute } from '../../src/kmip/attributes.js';
import { Fields } from '../../src/kmip/fields.js';
import { initAndEnroll, startServe, tempDir, type ServerProcess } from '../helpers/kmipd.js';
import { KmipTestClient, parseResponse, requestMessage, type ParsedBatchItem, type Version } from '../helpers/kmip-client.js';
import { addAttribute, attr, create, deleteAttribute, getAttributes, isV2, modifyAttribute, nameAttr, simple, text } from '../helpers/kmip-requests.js';

let dir: ReturnType<typeof tempDir>;
let server: ServerProcess;
let kmip: KmipTestClient;

beforeAll(async () => {
  dir = tempDir();
  const client = await initAndEnroll(dir.path, 'lifecycle');
  server = await startServe(dir.path);
  kmip = await KmipTestClient.connect(server.port, client);
});
afterAll(async () => {
  kmip?.close();
  expect(await server?.stop()).toBe(0);
  dir?.remove();
});

const show = (x: unknown) => JSON.stringify(x, (_k, val) => (typeof val === 'bigint' ? val.toString() : val));
const ok = (item: ParsedBatchItem | undefined) => {
  expect(item, show(item)).toMatchObject({ status: ResultStatus.Success });
  return item!;
};
function attrsOf(item: ParsedBatchItem, v: Version): Attribute[] {
  return isV2(v) ? parseAttributes2(item.payload.struct(Tag.Attributes)) : item.payload.structs(Tag.Attribute).map(parseAttribute1);
}
const values = (attrs: Attribute[], name: string) => attrs.filter((a) => a.name === name).map((a) => a.value.value);
let counter = 0;
const unique = (p: string) => `${p}-${process.pid}-${++counter}`;

describe.each([
  { v: { major: 1, minor: 1 }, label: '1.1' },
  { v: { major: 2, minor: 1 }, label: '2.1' },
])('lifecycle at KMIP $label', ({ v }) => {
  const denied = isV2(v) ? ResultReason.WrongKeyLifecycleState : ResultReason.PermissionDenied;
  const readOnly = isV2(v) ? ResultReason.AttributeReadOnly : ResultReason.PermissionDenied;

  async function newKey(extra: Attribute[] = []): Promise<string> {
    const r = await kmip.call(v, [create(v, extra)]);
    return ok(r.items[0]).payload.requiredText(Tag.UniqueIdentifier);
  }
  async function attrs(id: string, names: string[] = []): Promise<Attribute[]> {
    const r = await kmip.call(v, [getAttributes(v, id, names)]);
    return attrsOf(ok(r.items[0]), v);
  }

  it('adds, modifies and deletes custom attributes in one batch each, and reads them back', async () => {
    const id = await newKey();
    const id8 = (n: number) => Buffer.alloc(8, n);
    const add = await kmip.call(v, [
      { ...addAttribute(v, id, text('x-Vendor', 'VMware, Inc.')), id: id8(1) },
      { ...addAttribute(v, id, text('x-Product', 'VMware vSphere')), id: id8(2) },
      { ...addAttribute(v, id, text('x-Product_Version', '8.0.3')), id: id8(3) },
    ]);
    expect(add.items.map((i) => i.status)).toEqual([0, 0, 0]);
    expect(add.items.map((i) => Buffer.from(i.id!))).toEqual([id8(1), id8(2), id8(3)]);
    expect(values(await attrs(id, ['x-Vendor', 'x-Product', 'x-Product_Version', 'x-Missing']), 'x-Product')).toEqual(['VMware vSphere']);
    ok((await kmip.call(v, [modifyAttribute(v, id, text('x-Product', 'vSAN'))])).items[0]);
    expect(values(await attrs(id, ['x-Product']), 'x-Product')).toEqual(['vSAN']);
    ok((await kmip.call(v, [deleteAttribute(v, id, 'x-Product')])).items[0]);
    expect(values(await attrs(id), 'x-Product')).toEqual([]);
    expect(values(await attrs(id), 'x-Vendor')).toEqual(['VMware, Inc.']);
  });

  it('keeps several instances of a multi-valued attribute with their indexes', async () => {
    const id = await newKey();
    await kmip.call(v, [addAttribute(v, id, text('Object Group', 'g1')), addAttribute(v, id, text('Object Group', 'g2'))]);
    const a = (await attrs(id, ['Object Group'])).filter((x) => x.name === 'Object Group');
    expect(a.map((x) => x.value.value)).toEqual(['g1', 'g2']);
    if (!isV2(v)) expect(a.map((x) => x.index)).toEqual([0, 1]);
  });

  it('refuses a second value of a single-valued attribute, and server-set attributes', async () => {
    const id = await newKey();
    ok((await kmip.call(v, [addAttribute(v, id, text('Contact Information', 'ops@example.com'))])).items[0]);
    const twice = await kmip.call(v, [addAttribute(v, id, text('Contact Information', 'x'))]);
    expect(twice.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: isV2(v) ? ResultReason.AttributeSingleValued : ResultReason.PermissionDenied });
    const state = await kmip.call(v, [modifyAttribute(v, id, attr('State', enumeration(0, State.Compromised)))]);
    expect(state.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: readOnly });
    const alg = await kmip.call(v, [modifyAttribute(v, id, attr('Cryptographic Length', integer(0, 128)))]);
    expect(alg.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: readOnly });
    expect(values(await attrs(id, ['State']), 'State')).toEqual([State.PreActive]);
  });

  it('allows the Activation Date to change only while Pre-Active', async () => {
    const id = await newKey();
    const future = BigInt(Math.floor(Date.now() / 1000) + 3600);
    ok((await kmip.call(v, [addAttribute(v, id, attr('Activation Date', dateTime(0, future)))])).items[0]);
    ok((await kmip.call(v, [modifyAttribute(v, id, attr('Activation Date', dateTime(0, future + 60n)))])).items[0]);
    ok((await kmip.call(v, [simple(Operation.Activate, id)])).items[0]);
    const late = await kmip.call(v, [modifyAttribute(v, id, attr('Activation Date', dateTime(0, future)))]);
    expect(late.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: denied });
  });

  it('moves to Active when a past Activation Date is given, and to Deactivated at the Deactivation Date', async () => {
    const now = Math.floor(Date.now() / 1000);
    const id = await newKey([attr('Activation Date', dateTime(0, BigInt(now - 60))), attr('Deactivation Date', dateTime(0, BigInt(now + 2)))]);
    expect(values(await attrs(id, ['State']), 'State')).toEqual([State.Active]);
    await new Promise((r) => setTimeout(r, 3200));
    expect(values(await attrs(id, ['State']), 'State')).toEqual([State.Deactivated]);
    const located = await kmip.call(v, [simple(Operation.Locate, undefined, isV2(v)
      ? [structure(Tag.Attributes, [enumeration(Tag.State, State.Deactivated)])]
      : [structure(Tag.Attribute, [textString(Tag.AttributeName, 'State'), enumeration(Tag.AttributeValue, State.Deactivated)])])]);
    expect(ok(located.items[0]).payload.texts(Tag.UniqueIdentifier)).toContain(id);
  });

  it('refuses a Name another live object already has', async () => {
    const name = unique('kek');
    await newKey([nameAttr(name)]);
    const dup = await kmip.call(v, [create(v, [nameAttr(name)])]);
    expect(dup.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: isV2(v) ? ResultReason.NonUniqueNameAttribute : ResultReason.InvalidField });
  });

  it('rolls back every item of a batch with Undo when one fails', async () => {
    const name = unique('undo');
    const undo = [enumeration(Tag.BatchErrorContinuationOption, BatchErrorContinuationOption.Undo)];
    const r = await kmip.call(v, [create(v, [nameAttr(name)]), simple(Operation.Activate), simple(Operation.Get, 'no-such-object')], undo);
    expect(r.items.map((i) => i.status)).toEqual([ResultStatus.OperationUndone, ResultStatus.OperationUndone, ResultStatus.OperationFailed]);
    const id = r.items[0]!.payload.requiredText(Tag.UniqueIdentifier);
    const gone = await kmip.call(v, [simple(Operation.GetAttributes, id)]);
    expect(gone.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: v.major === 2 && v.minor >= 1 ? ResultReason.ObjectNotFound : ResultReason.ItemNotFound });

    const kept = await newKey();
    const r2 = await kmip.call(v, [simple(Operation.Activate, kept), addAttribute(v, kept, text('x-undo', '1')), simple(Operation.Destroy, kept)], undo);
    expect(r2.items.map((i) => i.status)).toEqual([ResultStatus.OperationUndone, ResultStatus.OperationUndone, ResultStatus.OperationFailed]);
    const after = await attrs(kept);
    expect(values(after, 'State')).toEqual([State.PreActive]);
    expect(values(after, 'x-undo')).toEqual([]);
  });

  it('continues past a failed item with Continue', async () => {
    const cont = [enumeration(Tag.BatchErrorContinuationOption, BatchErrorContinuationOption.Continue)];
    const r = await kmip.call(v, [simple(Operation.Get, 'missing'), simple(Operation.DiscoverVersions)], cont);
    expect(r.items.map((i) => i.status)).toEqual([ResultStatus.OperationFailed, ResultStatus.Success]);
  });

  it('names new objects with version 7 UUIDs that sort in the order they were made, stamped with their Initial Date', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await newKey());
    const r = await kmip.call(v, [simple(Operation.ReKey, ids[3])]);
    ids.push(ok(r.items[0]).payload.requiredText(Tag.UniqueIdentifier));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    // The first 48 bits are the millisecond it was picked: at most a second (keys made ahead) before its Initial Date.
    const ms = Number.parseInt(ids[0]!.replace(/-/g, '').slice(0, 12), 16);
    const [initial] = values(await attrs(ids[0]!, ['Initial Date']), 'Initial Date') as bigint[];
    expect(Number(initial) - Math.floor(ms / 1000)).toBeGreaterThanOrEqual(0);
    expect(Number(initial) - Math.floor(ms / 1000)).toBeLessThanOrEqual(1);
  });

  it('re-keys: a new key with new material, linked both ways, Name moved', async () => {
    const name = unique('rekey');
    const now = Math.floor(Date.now() / 1000);
    const old = await newKey([nameAttr(name), attr('Activation Date', dateTime(0, BigInt(now - 10)))]);
    const r = await kmip.call(v, [simple(Operation.ReKey, old), simple(Operation.Get), simple(Operation.Get, old)]);
    const fresh = ok(r.items[0]).payload.requiredText(Tag.UniqueIdentifier);
    expect(fresh).not.toBe(old);
    const keyOf = (i: ParsedBatchItem) =>
      Buffer.from(Fields.of(Fields.of(Fields.of(i.payload.requiredStruct(Tag.SymmetricKey)).requiredStruct(Tag.KeyBlock)).requiredStruct(Tag.KeyValue)).requiredBytes(Tag.KeyMaterial));
    expect(keyOf(ok(r.items[1]))).not.toEqual(keyOf(ok(r.items[2])));
    const newAttrs = await attrs(fresh);
    expect(values(newAttrs, 'State')).toEqual([State.Active]);
    expect(values(newAttrs, 'Cryptographic Length')).toEqual([256]);
    const linkOf = (as: Attribute[]) => as.filter((a) => a.name === 'Link').map((a) => Fields.of(a.value)).map((f) => [f.enumeration(Tag.LinkType), f.text(Tag.LinkedObjectIdentifier)]);
    expect(linkOf(newAttrs)).toEqual([[LinkType.ReplacedObjectLink, old]]);
    const oldAttrs = await attrs(old);
    expect(linkOf(oldAttrs)).toEqual([[LinkType.ReplacementObjectLink, fresh]]);
    expect(values(oldAttrs, 'Name')).toEqual([]);
    expect(newAttrs.filter((a) => a.name === 'Name')).toHaveLength(1);
  });

  it('checks usage against the mask and state, leases Active keys, allocates usage', async () => {
    const id = await newKey([attr('Usage Limits', structure(0, [longInteger(Tag.UsageLimitsTotal, 10n), longInteger(Tag.UsageLimitsCount, 10n), enumeration(Tag.UsageLimitsUnit, 2)]))]);
    const early = await kmip.call(v, [simple(Operation.Check, id, [integer(Tag.CryptographicUsageMask, 4)])]);
    expect(early.items[0]).toMatchObject({ status: ResultStatus.OperationFailed });
    ok((await kmip.call(v, [simple(Operation.Activate, id)])).items[0]);
    ok((await kmip.call(v, [simple(Operation.Check, id, [integer(Tag.CryptographicUsageMask, 4)])])).items[0]);
    const bad = await kmip.call(v, [simple(Operation.Check, id, [integer(Tag.CryptographicUsageMask, 1)])]);
    expect(bad.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: isV2(v) ? ResultReason.IncompatibleCryptographicUsageMask : ResultReason.PermissionDenied });
    const lease = ok((await kmip.call(v, [simple(Operation.ObtainLease, id)])).items[0]);
    expect(lease.payload.first(Tag.LeaseTime)).toMatchObject({ value: 3600 });
    ok((await kmip.call(v, [simple(Operation.GetUsageAllocation, id, [longInteger(Tag.UsageLimitsCount, 4n)])])).items[0]);
    const over = await kmip.call(v, [simple(Operation.GetUsageAllocation, id, [longInteger(Tag.UsageLimitsCount, 7n)])]);
    expect(over.items[0]).toMatchObject({ status: ResultStatus.OperationFailed });
  });

  it('revokes with Key Compromise to Compromised, then destroys to Destroyed Compromised', async () => {
    const id = await newKey();
    const reason = structure(Tag.RevocationReason, [enumeration(Tag.RevocationReasonCode, RevocationReasonCode.KeyCompromise)]);
    ok((await kmip.call(v, [simple(Operation.Revoke, id, [reason])])).items[0]);
    expect(values(await attrs(id, ['State']), 'State')).toEqual([State.Compromised]);
    ok((await kmip.call(v, [simple(Operation.Destroy, id)])).items[0]);
    expect(values(await attrs(id, ['State']), 'State')).toEqual([State.DestroyedCompromised]);
    const again = await kmip.call(v, [simple(Operation.Destroy, id)]);
    expect(again.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: denied });
  });

  it('answers Response Too Large when the answer exceeds Maximum Response Size', async () => {
    const r = await kmip.call(v, [simple(Operation.DiscoverVersions)], [integer(Tag.MaximumResponseSize, 64)]);
    expect(r.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.ResponseTooLarge });
  });

  it('answers an Asynchronous Indicator synchronously, and refuses a critical message extension', async () => {
    const r = await kmip.call(v, [simple(Operation.DiscoverVersions)], [boolean(Tag.AsynchronousIndicator, true)]);
    expect(r.items[0]!.status).toBe(ResultStatus.Success);
    const ext: TtlvItem = structure(Tag.MessageExtension, [textString(Tag.VendorIdentification, 'acme'), boolean(Tag.CriticalityIndicator, true), structure(Tag.VendorExtension, [])]);
    const msg = requestMessage(v, [simple(Operation.DiscoverVersions)]);
    const withExt = structure(Tag.RequestMessage, [msg.value[0]!, structure(Tag.BatchItem, [...(msg.value[1]!.value as TtlvItem[]), ext])]);
    kmip.sendRaw(encodeTtlv(withExt));
    const resp = parseResponse(decodeTtlv((await kmip.next())!));
    expect(resp.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: isV2(v) ? ResultReason.UnknownMessageExtension : ResultReason.FeatureNotSupported });
  });
});

describe('version gating', () => {
  it('does not offer Set Attribute at 1.x, and applies it at 2.x', async () => {
    const v1 = { major: 1, minor: 4 };
    const r1 = await kmip.call(v1, [{ operation: Operation.SetAttribute, payload: [] }]);
    expect(r1.items[0]).toMatchObject({ status: ResultStatus.OperationFailed, reason: ResultReason.OperationNotSupported });
    const v2 = { major: 2, minor: 0 };
    const c = await kmip.call(v2, [create(v2)]);
    const id = ok(c.items[0]).payload.requiredText(Tag.UniqueIdentifier);
    const set = await kmip.call(v2, [{ operation: Operation.SetAttribute, payload: [textString(Tag.UniqueIdentifier, id), structure(Tag.NewAttribute, [textString(Tag.Description, 'kek for vm-42')])] }]);
    ok(set.items[0]);
    const g = await kmip.call(v2, [getAttributes(v2, id, ['Description'])]);
    expect(values(attrsOf(ok(g.items[0]), v2), 'Description')).toEqual(['kek for vm-42']);
  });

  it('never returns a 1.2+ attribute to a 1.0 client', async () => {
    const v2 = { major: 2, minor: 0 };
    const c = await kmip.call(v2, [create(v2, [attr('Description', textString(0, 'only in 2.x'))])]);
    const id = ok(c.items[0]).payload.requiredText(Tag.UniqueIdentifier);
    const v10 = { major: 1, minor: 0 };
    const g = await kmip.call(v10, [getAttributes(v10, id)]);
    const names = attrsOf(ok(g.items[0]), v10).map((a) => a.name);
    expect(names).toContain('Cryptographic Algorithm');
    expect(names).not.toContain('Description');
  });
});
