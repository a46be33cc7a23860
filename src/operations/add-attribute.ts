// Add Attribute (1.4 §4.14 / 2.1 §6.1.2): a new instance of an attribute; a single-valued
// attribute that already has a value is refused. 1.x answers with the attribute and its index.
import { textString } from '../ttlv/build.js';
import { ResultReason, Tag } from '../kmip/registry/generated.js';
import { encodeAttribute, parseAttribute1, parseAttribute2, type Attribute } from '../kmip/attributes.js';
import { KmipError } from '../kmip/errors.js';
import { Fields } from '../kmip/fields.js';
import { isV2 } from '../kmip/version.js';
import type { OperationHandler, OperationContext } from './context.js';
import { dateAttribute, loadObject, nowSeconds, targetId } from './common.js';
import { assertClientMayChange, checkValue, instancesOf, renumber } from './attribute-changes.js';
import { assertNamesUnique } from './name-uniqueness.js';

/** 1.x: Attribute; 2.x: New Attribute wrapping one attribute. */
export function newAttribute(ctx: OperationContext, payload: Fields): Attribute {
  if (!isV2(ctx.version)) return parseAttribute1(payload.requiredStruct(Tag.Attribute));
  const wrapper = Fields.of(payload.requiredStruct(Tag.NewAttribute), 'New Attribute');
  const inner = wrapper.items[0];
  if (!inner || wrapper.items.length !== 1) throw new KmipError(ResultReason.InvalidField, 'New Attribute must hold exactly one attribute');
  return parseAttribute2(inner);
}

export const addAttribute: OperationHandler = async (ctx, payload) => {
  const id = targetId(ctx, payload);
  const attr = newAttribute(ctx, payload);
  checkValue(attr);
  const obj = await loadObject(ctx, id);
  const { multi } = assertClientMayChange(obj, attr.name, ctx.version);
  const existing = instancesOf(obj, attr.name);
  if (existing.length > 0 && !multi) {
    throw new KmipError(isV2(ctx.version) ? ResultReason.AttributeSingleValued : ResultReason.PermissionDenied, `attribute ${attr.name} is single-valued and already set`);
  }
  // An identical Name on this object counts too: the object would then hold it twice (2.1 BL-M-8).
  await assertNamesUnique(ctx, [attr]);
  const updated = renumber(attr.name, [...existing.map((a) => a.value), attr.value]);
  await ctx.store.update(id, {
    replace: new Map([
      [attr.name, updated],
      ['Last Change Date', [dateAttribute('Last Change Date', nowSeconds())]],
    ]),
  });
  const added = updated[updated.length - 1]!;
  return isV2(ctx.version) ? [textString(Tag.UniqueIdentifier, id)] : [textString(Tag.UniqueIdentifier, id), encodeAttribute(added, ctx.version)];
};
