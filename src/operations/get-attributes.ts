// Get Attributes (1.x §4.12 / 2.x §6.1.23): the named attributes, or all of them. A name the
// object does not have (e.g. vCenter's x- attributes before it sets them) is simply not returned.
// "All" leaves out server defaults that carry no information (see omittedWhenAllRequested).
import { textString } from '../ttlv/build.js';
import { Tag } from '../kmip/registry/generated.js';
import { encodeAttribute, parseAttributeReferences } from '../kmip/attributes.js';
import type { OperationHandler } from './context.js';
import { loadObject, targetId } from './common.js';
import { allAttributes, encodeAttributeList, omittedWhenAllRequested } from './object-attributes.js';

export const getAttributes: OperationHandler = async (ctx, payload) => {
  const id = targetId(ctx, payload);
  const names = parseAttributeReferences(payload, ctx.version);
  const obj = await loadObject(ctx, id);
  const all = allAttributes(obj, ctx.version);
  // Named attributes come back in the order they were asked for (as the OASIS cases expect).
  const attrs =
    names.length === 0 ? all.filter((a) => !omittedWhenAllRequested(a, obj, ctx.version)) : [...new Set(names)].flatMap((n) => all.filter((a) => a.name === n));
  return [textString(Tag.UniqueIdentifier, id), ...encodeAttributeList(attrs.map((a) => encodeAttribute(a, ctx.version)), ctx.version)];
};
