// Get Attribute List (1.x §4.13 / 2.x §6.1.24): the names of the attributes the object has.
import { textString } from '../ttlv/build.js';
import { Tag } from '../kmip/registry/generated.js';
import { encodeAttributeReference } from '../kmip/attributes.js';
import type { OperationHandler } from './context.js';
import { loadObject, targetId } from './common.js';
import { allAttributes } from './object-attributes.js';

export const getAttributeList: OperationHandler = async (ctx, payload) => {
  const id = targetId(ctx, payload);
  const obj = await loadObject(ctx, id);
  const names = [...new Set(allAttributes(obj, ctx.version).map((a) => a.name))];
  return [textString(Tag.UniqueIdentifier, id), ...names.map((n) => encodeAttributeReference(n, ctx.version))];
};
