// Register (1.x §4.3 / 2.x §6.1.40) of a client-supplied AES key: the HSM wraps it at once and the
// plaintext copy is zeroed; only the wrapped form is stored.
import { createHash } from 'node:crypto';
import { enumeration, integer, textString } from '../ttlv/build.js';
import { ObjectType, ResultReason, Tag } from '../kmip/registry/generated.js';
import { newUniqueIdentifier } from '../kmip/unique-identifier.js';
import { KmipError } from '../kmip/errors.js';
import type { Attribute } from '../kmip/attributes.js';
import type { OperationHandler } from './context.js';
import { assertNamesUnique } from './name-uniqueness.js';
import { clientAttributes, single } from './object-attributes.js';
import { parseSymmetricKey } from './symmetric-key.js';
import { parseRegisteredObject } from './registered-objects.js';
import { encodeTtlv } from '../ttlv/encode.js';
import { aesParameters } from './create.js';
import { serverAttributes } from './new-object-attributes.js';

/** Register of anything but a symmetric key: the whole object is wrapped as one secret. */
const registerObject: OperationHandler = async (ctx, payload) => {
  const objectType = payload.requiredEnumeration(Tag.ObjectType);
  const object = parseRegisteredObject(objectType, payload);
  const attrs: Attribute[] = clientAttributes(payload, ctx.version);
  const given = new Set(attrs.map((a) => a.name));
  attrs.push(...object.derived.filter((a) => !given.has(a.name)));
  await assertNamesUnique(ctx, attrs);
  const id = newUniqueIdentifier();
  ctx.objectId = id;
  const encoded = encodeTtlv(object.body);
  let wrapped;
  try {
    wrapped = await ctx.keys.wrapSecretBytes(id, encoded);
  } finally {
    encoded.fill(0);
  }
  const { state, attrs: serverAttrs } = serverAttributes({ id, clientAttrs: attrs, keyFormat: object.keyFormat, digest: object.digest });
  await ctx.store.insert({ id, tenant: ctx.client.tenant, objectType, state, wrapped, attributes: [...attrs, ...serverAttrs] });
  ctx.idPlaceholder = id;
  return [textString(Tag.UniqueIdentifier, id)];
};

export const register: OperationHandler = async (ctx, payload) => {
  if (payload.requiredEnumeration(Tag.ObjectType) !== ObjectType.SymmetricKey) return registerObject(ctx, payload);
  const key = parseSymmetricKey(payload.first(Tag.SymmetricKey));
  ctx.secrets.push(key.material);
  const attrs: Attribute[] = clientAttributes(payload, ctx.version);
  // The Key Block's algorithm and length stand in for attributes the template left out.
  if (!single(attrs, 'Cryptographic Algorithm') && key.algorithm !== undefined) {
    attrs.push({ name: 'Cryptographic Algorithm', index: 0, value: enumeration(Tag.AttributeValue, key.algorithm) });
  }
  if (!single(attrs, 'Cryptographic Length') && key.lengthBits !== undefined) {
    attrs.push({ name: 'Cryptographic Length', index: 0, value: integer(Tag.AttributeValue, key.lengthBits) });
  }
  const bits = aesParameters(attrs);
  if (key.material.length * 8 !== bits) {
    throw new KmipError(ResultReason.InvalidField, `Key Material is ${key.material.length * 8} bits but Cryptographic Length says ${bits}`);
  }
  await assertNamesUnique(ctx, attrs);
  const id = newUniqueIdentifier();
  ctx.objectId = id;
  const digest = createHash('sha256').update(key.material).digest();
  const wrapped = await ctx.keys.wrapPlaintextKey(id, key.material);
  key.material.fill(0);
  const { state, attrs: serverAttrs } = serverAttributes({ id, clientAttrs: attrs, keyFormat: key.format, digest });
  await ctx.store.insert({ id, tenant: ctx.client.tenant, objectType: ObjectType.SymmetricKey, state, wrapped, attributes: [...attrs, ...serverAttrs] });
  ctx.idPlaceholder = id;
  return [textString(Tag.UniqueIdentifier, id)];
};
