// Delete Attribute (1.4 §4.16 / 2.1 §6.1.14). 1.x: Attribute Name and optional Attribute Index
// (default 0), answered with the deleted attribute. 2.x: Current Attribute (that instance) or
// Attribute Reference (every instance).
import { textString } from '../ttlv/build.js';
import { ResultReason, Tag } from '../kmip/registry/generated.js';
import { encodeAttribute, parseAttributeReferences } from '../kmip/attributes.js';
import { encodeTtlv } from '../ttlv/encode.js';
import { KmipError } from '../kmip/errors.js';
import { isV2 } from '../kmip/version.js';
import type { OperationHandler } from './context.js';
import { dateAttribute, loadObject, nowSeconds, targetId } from './common.js';
import { assertClientMayChange, attributeNotFound, currentAttribute, instanceNotFound, instancesOf, renumber } from './attribute-changes.js';

export const deleteAttribute: OperationHandler = async (ctx, payload) => {
  const id = targetId(ctx, payload);
  let name: string;
  let select: (values: readonly { index: number; bytes: Buffer }[]) => number[];
  if (isV2(ctx.version)) {
    const wanted = currentAttribute(payload);
    if (wanted) {
      const bytes = encodeTtlv(wanted.value);
      name = wanted.name;
      select = (vs) => vs.filter((v) => v.bytes.equals(bytes)).map((v) => v.index);
    } else {
      const refs = parseAttributeReferences(payload, ctx.version);
      if (refs.length !== 1) throw new KmipError(ResultReason.InvalidField, 'name exactly one attribute to delete');
      name = refs[0]!;
      select = (vs) => vs.map((v) => v.index);
    }
  } else {
    name = payload.requiredText(Tag.AttributeName);
    const index = payload.integer(Tag.AttributeIndex) ?? 0;
    select = (vs) => vs.filter((v) => v.index === index).map((v) => v.index);
  }
  const obj = await loadObject(ctx, id);
  assertClientMayChange(obj, name, ctx.version);
  const existing = instancesOf(obj, name);
  if (existing.length === 0) throw attributeNotFound(ctx.version, name);
  const doomed = new Set(select(existing.map((a) => ({ index: a.index, bytes: encodeTtlv(a.value) }))));
  if (doomed.size === 0) throw instanceNotFound(ctx.version, name, 'matching the request');
  const kept = existing.filter((a) => !doomed.has(a.index));
  await ctx.store.update(id, {
    replace: new Map([
      [name, renumber(name, kept.map((a) => a.value))],
      ['Last Change Date', [dateAttribute('Last Change Date', nowSeconds())]],
    ]),
  });
  const deleted = existing.find((a) => doomed.has(a.index))!;
  return isV2(ctx.version) ? [textString(Tag.UniqueIdentifier, id)] : [textString(Tag.UniqueIdentifier, id), encodeAttribute(deleted, ctx.version)];
};
