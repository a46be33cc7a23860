// Get (1.x §4.11 / 2.x §6.1.22). The only place a KEK is unwrapped: in the HSM, for this answer.
// A Pre-Active key is served (vCenter Gets before it Activates); a destroyed one is not.
import { boolean, enumeration, textString } from '../ttlv/build.js';
import { ItemType } from '../ttlv/types.js';
import { KeyFormatType, ObjectType, ResultReason, Tag } from '../kmip/registry/generated.js';
import { decodeTtlv } from '../ttlv/decode.js';
import { KmipError, type ResultReasonValue } from '../kmip/errors.js';
import { isV2 } from '../kmip/version.js';
import type { OperationHandler } from './context.js';
import { isDestroyed, loadObject, targetId } from './common.js';
import { single } from './object-attributes.js';
import { encodeSymmetricKey, SERVED_FORMATS } from './symmetric-key.js';
import type { ObjectUpdate, StoredObject } from '../store/types.js';
import { constantAttribute } from '../kmip/attributes.js';

/** What a key's first Get changes: Fresh becomes false (a constant, whose bag entry the store keeps). */
const SERVED: ObjectUpdate = { replace: new Map([['Fresh', [constantAttribute('Fresh', boolean(Tag.AttributeValue, false))]]]) };

function flag(obj: StoredObject, name: string): boolean | undefined {
  const v = single(obj.attributes, name)?.value;
  return v?.type === ItemType.Boolean ? v.value : undefined;
}

export const get: OperationHandler = async (ctx, payload) => {
  const id = targetId(ctx, payload);
  const asked = payload.enumeration(Tag.KeyFormatType);
  if (payload.has(Tag.KeyWrappingSpecification)) {
    throw new KmipError(ResultReason.FeatureNotSupported, 'Key Wrapping Specification is not supported');
  }
  const obj = await loadObject(ctx, id);
  if (isDestroyed(obj.state) || !obj.wrapped) {
    throw new KmipError(isV2(ctx.version) ? ResultReason.ObjectDestroyed : ResultReason.ItemNotFound, `object ${id} is destroyed`);
  }
  // Sensitive / non-extractable keys never leave in the clear (1.4 §3.44, §3.46).
  const denied = (v2: ResultReasonValue, why: string) => new KmipError(isV2(ctx.version) ? v2 : ResultReason.PermissionDenied, why);
  if (flag(obj, 'Sensitive') === true) throw denied(ResultReason.Sensitive, `object ${id} is Sensitive`);
  if (flag(obj, 'Extractable') === false) throw denied(ResultReason.NotExtractable, `object ${id} is not Extractable`);
  const keptFormat = single(obj.attributes, 'Key Format Type')?.value;
  const kept = keptFormat?.type === ItemType.Enumeration ? keptFormat.value : undefined;
  const symmetric = obj.objectType === ObjectType.SymmetricKey;
  // A symmetric key converts between Raw and Transparent; other objects come back as registered.
  if (asked !== undefined && (symmetric ? !SERVED_FORMATS.has(asked) : asked !== kept)) {
    throw new KmipError(ResultReason.KeyFormatTypeNotSupported, `object ${id} is not available in that Key Format Type`);
  }
  const alg = single(obj.attributes, 'Cryptographic Algorithm')?.value;
  const len = single(obj.attributes, 'Cryptographic Length')?.value;
  if (symmetric && (alg?.type !== ItemType.Enumeration || len?.type !== ItemType.Integer)) {
    throw new KmipError(ResultReason.GeneralFailure, `object ${id} lacks its algorithm or length`);
  }
  const material = await ctx.keys.unwrapKey({ id, wrapped: obj.wrapped, heldByOperator: obj.heldByOperator });
  ctx.secrets.push(material);
  // Fresh: true until the object has been served once (1.4 §3.34).
  if (flag(obj, 'Fresh') === true) {
    await ctx.store.update(id, SERVED);
  }
  const body =
    symmetric && alg?.type === ItemType.Enumeration && len?.type === ItemType.Integer
      ? encodeSymmetricKey(material, alg.value, len.value, asked ?? kept ?? KeyFormatType.Raw)
      : decodeTtlv(material); // the registered object, as it came (views into `material`, zeroed after encoding)
  return [enumeration(Tag.ObjectType, obj.objectType), textString(Tag.UniqueIdentifier, id), body];
};
