// Query (1.x §4.25 / 2.x §6.1.37): operations, object types and server information.
import { enumeration, structure, textString } from '../ttlv/build.js';
import type { TtlvItem } from '../ttlv/types.js';
import { ObjectType, QueryFunction, Tag } from '../kmip/registry/generated.js';
import type { OperationHandler } from './context.js';
import { supportedOperations } from './registry.js';

export const query: OperationHandler = async (ctx, payload) => {
  const functions = new Set(payload.enumerations(Tag.QueryFunction));
  const out: TtlvItem[] = [];
  if (functions.has(QueryFunction.QueryOperations)) {
    for (const op of supportedOperations(ctx.version)) out.push(enumeration(Tag.Operation, op));
  }
  if (functions.has(QueryFunction.QueryObjects)) {
    out.push(enumeration(Tag.ObjectType, ObjectType.SymmetricKey));
  }
  if (functions.has(QueryFunction.QueryServerInformation)) {
    out.push(textString(Tag.VendorIdentification, `${ctx.server.vendor} ${ctx.server.version}`));
    out.push(structure(Tag.ServerInformation, []));
  }
  return out;
};
