// Check (1.4 §4.10 / 2.1 §6.1.6): would the object allow this use? A requested Cryptographic
// Usage Mask must be covered by the object's; the object must be usable (Active); a requested
// usage count must fit its Usage Limits. Nothing is changed.
import { integer, textString } from '../ttlv/build.js';
import { ItemType, type TtlvItem } from '../ttlv/types.js';
import { ResultReason, State, Tag } from '../kmip/registry/generated.js';
import { KmipError, type ResultReasonValue } from '../kmip/errors.js';
import { isV2 } from '../kmip/version.js';
import { Fields } from '../kmip/fields.js';
import type { OperationHandler } from './context.js';
import { loadObject, stateName, targetId, wrongState } from './common.js';
import { single } from './object-attributes.js';

export const check: OperationHandler = async (ctx, payload) => {
  const id = targetId(ctx, payload);
  const obj = await loadObject(ctx, id);
  // 1.x (1.4 §4.10) answers a failed check with the Unique Identifier and the failing parameter;
  // the 2.1 baseline case BL-M-2 expects no payload and a specific reason.
  const failed = (v2: ResultReasonValue, msg: string, field: TtlvItem) =>
    isV2(ctx.version) ? new KmipError(v2, msg) : new KmipError(ResultReason.PermissionDenied, msg, [textString(Tag.UniqueIdentifier, id), field]);
  const mask = payload.integer(Tag.CryptographicUsageMask);
  if (mask !== undefined) {
    const own = single(obj.attributes, 'Cryptographic Usage Mask')?.value;
    const allowed = own?.type === ItemType.Integer ? own.value : 0;
    if ((allowed & mask) !== mask) {
      throw failed(ResultReason.IncompatibleCryptographicUsageMask, 'Check Failed: usage not allowed by the Cryptographic Usage Mask', integer(Tag.CryptographicUsageMask, mask));
    }
  }
  if (obj.state !== State.Active) throw wrongState(ctx, `Check Failed: object ${id} is ${stateName(obj.state)}`);
  const count = payload.first(Tag.UsageLimitsCount);
  if (count?.type === ItemType.LongInteger) {
    const limits = single(obj.attributes, 'Usage Limits')?.value;
    if (limits?.type === ItemType.Structure) {
      const left = Fields.of(limits).first(Tag.UsageLimitsCount);
      if (left?.type === ItemType.LongInteger && left.value < count.value) {
        throw failed(ResultReason.UsageLimitExceeded, 'Check Failed: usage limit exceeded', count);
      }
    }
  }
  return [textString(Tag.UniqueIdentifier, id)];
};
