// Create (1.x §4.1 / 2.x §6.1.9) of an AES symmetric key. The key is generated inside the HSM and
// only its wrapped form is stored; the answer is sent after the row is durable.
import { enumeration, textString } from '../ttlv/build.js';
import { CryptographicAlgorithm, KeyFormatType, ObjectType, ResultReason, Tag } from '../kmip/registry/generated.js';
import { KmipError } from '../kmip/errors.js';
import type { Attribute } from '../kmip/attributes.js';
import type { OperationHandler } from './context.js';
import { assertNamesUnique } from './name-uniqueness.js';
import { clientAttributes, single } from './object-attributes.js';
import { requireSymmetricKeyType } from './common.js';
import { serverAttributes } from './new-object-attributes.js';
import { ItemType } from '../ttlv/types.js';

export type AesBits = 128 | 192 | 256;

export function aesParameters(attrs: readonly Attribute[]): AesBits {
  const alg = single(attrs, 'Cryptographic Algorithm')?.value;
  const len = single(attrs, 'Cryptographic Length')?.value;
  if (alg?.type !== ItemType.Enumeration || len?.type !== ItemType.Integer) {
    throw new KmipError(ResultReason.InvalidField, 'Cryptographic Algorithm and Cryptographic Length are required');
  }
  if (alg.value !== CryptographicAlgorithm.AES) {
    throw new KmipError(ResultReason.InvalidField, 'only AES symmetric keys are supported');
  }
  if (len.value !== 128 && len.value !== 192 && len.value !== 256) {
    throw new KmipError(ResultReason.InvalidField, `AES keys are 128, 192 or 256 bits, not ${len.value}`);
  }
  return len.value;
}

export const create: OperationHandler = async (ctx, payload) => {
  requireSymmetricKeyType(payload.requiredEnumeration(Tag.ObjectType));
  const attrs = clientAttributes(payload, ctx.version);
  const bits = aesParameters(attrs);
  await assertNamesUnique(ctx, attrs);
  const { objectId: id, key: wrapped } = await ctx.keys.newWrappedKey(bits);
  ctx.objectId = id;
  const { state, attrs: serverAttrs } = serverAttributes({ id, clientAttrs: attrs, keyFormat: KeyFormatType.Raw, digest: wrapped.digest });
  await ctx.store.insert({ id, tenant: ctx.client.tenant, objectType: ObjectType.SymmetricKey, state, wrapped, attributes: [...attrs, ...serverAttrs] });
  ctx.idPlaceholder = id;
  return [enumeration(Tag.ObjectType, ObjectType.SymmetricKey), textString(Tag.UniqueIdentifier, id)];
};
