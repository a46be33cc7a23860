// Get (1.x §4.11 / 2.x §6.1.22). The only place a KEK is unwrapped: in the HSM, for this answer.
// A Pre-Active key is served (vCenter Gets before it Activates); a destroyed one is not.
import { enumeration, textString } from '../ttlv/build.js';
import { ItemType } from '../ttlv/types.js';
import { KeyFormatType, ResultReason, Tag } from '../kmip/registry/generated.js';
import { KmipError } from '../kmip/errors.js';
import { isV2 } from '../kmip/version.js';
import type { OperationHandler } from './context.js';
import { isDestroyed, loadObject, targetId } from './common.js';
import { single } from './object-attributes.js';
import { encodeSymmetricKey } from './symmetric-key.js';

export const get: OperationHandler = async (ctx, payload) => {
  const id = targetId(ctx, payload);
  const format = payload.enumeration(Tag.KeyFormatType);
  if (format !== undefined && format !== KeyFormatType.Raw) {
    throw new KmipError(ResultReason.KeyFormatTypeNotSupported, 'symmetric keys are served in Raw format');
  }
  if (payload.has(Tag.KeyWrappingSpecification)) {
    throw new KmipError(ResultReason.FeatureNotSupported, 'Key Wrapping Specification is not supported');
  }
  const obj = await loadObject(ctx, id);
  if (isDestroyed(obj.state) || !obj.wrapped) {
    throw new KmipError(isV2(ctx.version) ? ResultReason.ObjectDestroyed : ResultReason.ItemNotFound, `object ${id} is destroyed`);
  }
  const alg = single(obj.attributes, 'Cryptographic Algorithm')?.value;
  const len = single(obj.attributes, 'Cryptographic Length')?.value;
  if (alg?.type !== ItemType.Enumeration || len?.type !== ItemType.Integer) {
    throw new KmipError(ResultReason.GeneralFailure, `object ${id} lacks its algorithm or length`);
  }
  const material = await ctx.keys.unwrapKey(id, obj.wrapped);
  ctx.secrets.push(material);
  return [
    enumeration(Tag.ObjectType, obj.objectType),
    textString(Tag.UniqueIdentifier, id),
    encodeSymmetricKey(material, alg.value, len.value),
  ];
};
