// Modify Attribute (1.4 §4.15 / 2.1 §6.1.30): replace one existing instance. 1.x names it by
// Attribute Index (default 0); 2.x by Current Attribute value (default: the first instance).
import { textString } from '../ttlv/build.js';
import { ResultReason, Tag } from '../kmip/registry/generated.js';
import { encodeAttribute } from '../kmip/attributes.js';
import { encodeTtlv } from '../ttlv/encode.js';
import { KmipError } from '../kmip/errors.js';
import { isV2 } from '../kmip/version.js';
import type { OperationHandler } from './context.js';
import { dateAttribute, loadObject, nowSeconds, targetId } from './common.js';
import { assertClientMayChange, attributeNotFound, checkValue, currentAttribute, instanceNotFound, instancesOf, renumber } from './attribute-changes.js';
import { newAttribute } from './add-attribute.js';
import { assertNamesUnique } from './name-uniqueness.js';

export const modifyAttribute: OperationHandler = async (ctx, payload) => {
  const id = targetId(ctx, payload);
  const attr = newAttribute(ctx, payload);
  checkValue(attr);
  const obj = await loadObject(ctx, id);
  assertClientMayChange(obj, attr.name, ctx.version);
  const existing = instancesOf(obj, attr.name);
  if (existing.length === 0) throw attributeNotFound(ctx.version, attr.name);
  let position = 0;
  if (isV2(ctx.version)) {
    const wanted = currentAttribute(payload);
    if (wanted) {
      if (wanted.name !== attr.name) throw new KmipError(ResultReason.InvalidField, 'Current Attribute and New Attribute name different attributes');
      const bytes = encodeTtlv(wanted.value);
      position = existing.findIndex((a) => encodeTtlv(a.value).equals(bytes));
      if (position < 0) throw instanceNotFound(ctx.version, attr.name, 'with that value');
    }
  } else {
    position = existing.findIndex((a) => a.index === attr.index);
    if (position < 0) throw instanceNotFound(ctx.version, attr.name, `at index ${attr.index}`);
  }
  await assertNamesUnique(ctx, [attr], id);
  const values = existing.map((a) => a.value);
  values[position] = attr.value;
  const updated = renumber(attr.name, values);
  await ctx.store.update(id, {
    replace: new Map([
      [attr.name, updated],
      ['Last Change Date', [dateAttribute('Last Change Date', nowSeconds())]],
    ]),
  });
  return isV2(ctx.version)
    ? [textString(Tag.UniqueIdentifier, id)]
    : [textString(Tag.UniqueIdentifier, id), encodeAttribute(updated[position]!, ctx.version)];
};
