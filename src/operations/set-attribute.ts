// Set Attribute (2.1 §6.1.49): give a single-valued attribute its value, adding it if absent.
import { textString } from '../ttlv/build.js';
import { ResultReason, Tag } from '../kmip/registry/generated.js';
import { KmipError } from '../kmip/errors.js';
import type { OperationHandler } from './context.js';
import { dateAttribute, loadObject, nowSeconds, targetId } from './common.js';
import { assertClientMayChange, checkValue } from './attribute-changes.js';
import { newAttribute } from './add-attribute.js';
import { assertNamesUnique } from './name-uniqueness.js';

export const setAttribute: OperationHandler = async (ctx, payload) => {
  const id = targetId(ctx, payload);
  const attr = newAttribute(ctx, payload);
  checkValue(attr);
  const obj = await loadObject(ctx, id);
  const { multi } = assertClientMayChange(obj, attr.name, ctx.version);
  if (multi) throw new KmipError(ResultReason.MultiValuedAttribute, `attribute ${attr.name} is multi-valued: use Add or Modify Attribute`);
  await assertNamesUnique(ctx, [attr], id);
  await ctx.store.update(id, {
    replace: new Map([
      [attr.name, [{ name: attr.name, index: 0, value: attr.value }]],
      ['Last Change Date', [dateAttribute('Last Change Date', nowSeconds())]],
    ]),
  });
  return [textString(Tag.UniqueIdentifier, id)];
};
