// Adjust Attribute (2.1 §6.1.3): increment, decrement or negate a numeric attribute the client may
// change (Integer, Long Integer, Interval, Date-Time, Date-Time Extended). Only from 2.0 on.
import { textString } from '../ttlv/build.js';
import { ItemType, type TtlvItem } from '../ttlv/types.js';
import { AdjustmentType, ResultReason, Tag } from '../kmip/registry/generated.js';
import { parseAttributeReferences } from '../kmip/attributes.js';
import { KmipError } from '../kmip/errors.js';
import type { OperationHandler } from './context.js';
import { dateAttribute, loadObject, nowSeconds, targetId } from './common.js';
import { assertClientMayChange, attributeNotFound, instancesOf, renumber } from './attribute-changes.js';

const INT32 = [-(2n ** 31n), 2n ** 31n - 1n] as const;
const UINT32 = [0n, 2n ** 32n - 1n] as const;
const INT64 = [-(2n ** 63n), 2n ** 63n - 1n] as const;

function adjust(item: TtlvItem, type: number, by: bigint): TtlvItem {
  const apply = (v: bigint) => (type === AdjustmentType.Increment ? v + by : type === AdjustmentType.Decrement ? v - by : -v);
  const inRange = (v: bigint, [lo, hi]: readonly [bigint, bigint]) => {
    if (v < lo || v > hi) throw new KmipError(ResultReason.NumericRange, 'the adjusted value is out of range');
    return v;
  };
  switch (item.type) {
    case ItemType.Integer:
      return { ...item, value: Number(inRange(apply(BigInt(item.value)), INT32)) };
    case ItemType.Interval:
      return { ...item, value: Number(inRange(apply(BigInt(item.value)), UINT32)) };
    case ItemType.LongInteger:
    case ItemType.DateTime:
    case ItemType.DateTimeExtended:
      return { ...item, value: inRange(apply(item.value), INT64) };
    default:
      throw new KmipError(ResultReason.InvalidDataType, 'only numeric and date attributes can be adjusted');
  }
}

export const adjustAttribute: OperationHandler = async (ctx, payload) => {
  const id = targetId(ctx, payload);
  const refs = parseAttributeReferences(payload, ctx.version);
  if (refs.length !== 1) throw new KmipError(ResultReason.InvalidField, 'name exactly one attribute to adjust');
  const name = refs[0]!;
  const type = payload.requiredEnumeration(Tag.AdjustmentType);
  if (!Object.values(AdjustmentType).includes(type as never)) throw new KmipError(ResultReason.InvalidField, `unknown Adjustment Type ${type}`);
  const by = payload.first(Tag.AdjustmentValue);
  let amount = 1n;
  if (by !== undefined) {
    if (by.type === ItemType.Integer || by.type === ItemType.Interval) amount = BigInt(by.value);
    else if (by.type === ItemType.LongInteger || by.type === ItemType.DateTime || by.type === ItemType.DateTimeExtended) amount = by.value;
    else throw new KmipError(ResultReason.InvalidDataType, 'Adjustment Value must be numeric');
  }
  const obj = await loadObject(ctx, id);
  assertClientMayChange(obj, name, ctx.version);
  const existing = instancesOf(obj, name);
  if (existing.length === 0) throw attributeNotFound(ctx.version, name);
  const values = existing.map((a, i) => (i === 0 ? adjust(a.value, type, amount) : a.value));
  await ctx.store.update(id, {
    replace: new Map([
      [name, renumber(name, values)],
      ['Last Change Date', [dateAttribute('Last Change Date', nowSeconds())]],
    ]),
  });
  return [textString(Tag.UniqueIdentifier, id)];
};
