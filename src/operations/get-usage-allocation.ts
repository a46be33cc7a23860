// Get Usage Allocation (1.4 §4.17 / 2.1 §6.1.26): reserve part of an object's Usage Limits.
// An object without Usage Limits has no limit to allocate from: success, nothing recorded.
import { longInteger, structure, textString } from '../ttlv/build.js';
import { ItemType } from '../ttlv/types.js';
import { ResultReason, State, Tag } from '../kmip/registry/generated.js';
import { KmipError } from '../kmip/errors.js';
import { isV2 } from '../kmip/version.js';
import type { OperationHandler } from './context.js';
import { dateAttribute, loadObject, nowSeconds, stateName, targetId, wrongState } from './common.js';
import { single } from './object-attributes.js';

export const getUsageAllocation: OperationHandler = async (ctx, payload) => {
  const id = targetId(ctx, payload);
  const wanted = payload.first(Tag.UsageLimitsCount);
  if (wanted?.type !== ItemType.LongInteger || wanted.value <= 0n) {
    throw new KmipError(ResultReason.InvalidField, 'Usage Limits Count must be a positive Long Integer');
  }
  const obj = await loadObject(ctx, id);
  if (obj.state !== State.Active) throw wrongState(ctx, `object ${id} is ${stateName(obj.state)}`);
  const limits = single(obj.attributes, 'Usage Limits')?.value;
  if (limits?.type === ItemType.Structure) {
    const children = limits.value;
    const count = children.find((c) => c.tag === Tag.UsageLimitsCount);
    const total = children.find((c) => c.tag === Tag.UsageLimitsTotal);
    const left = count?.type === ItemType.LongInteger ? count.value : total?.type === ItemType.LongInteger ? total.value : undefined;
    if (left !== undefined) {
      if (left < wanted.value) {
        throw new KmipError(isV2(ctx.version) ? ResultReason.UsageLimitExceeded : ResultReason.PermissionDenied, 'usage limit exceeded');
      }
      const rest = children.filter((c) => c.tag !== Tag.UsageLimitsCount);
      const updated = structure(Tag.AttributeValue, [...rest, longInteger(Tag.UsageLimitsCount, left - wanted.value)]);
      await ctx.store.update(id, {
        replace: new Map([
          ['Usage Limits', [{ name: 'Usage Limits', index: 0, value: updated }]],
          ['Last Change Date', [dateAttribute('Last Change Date', nowSeconds())]],
        ]),
      });
    }
  }
  return [textString(Tag.UniqueIdentifier, id)];
};
