// Locate (1.x §4.9 / 2.x §6.1.27): objects whose attributes equal every given one, newest first
// (as the OASIS TC-OFFSET cases expect), after Offset Items, at most Maximum Items. Matching is an indexed equality lookup on the
// encoded attribute value (see store). Located Items exists from 1.3 on.
import { integer, textString } from '../ttlv/build.js';
import type { TtlvItem } from '../ttlv/types.js';
import { ItemType } from '../ttlv/types.js';
import { ResultReason, State, StorageStatusMask, Tag } from '../kmip/registry/generated.js';
import { KmipError } from '../kmip/errors.js';
import { parseAttribute1, parseAttributes2, validateAttributeValue, type Attribute } from '../kmip/attributes.js';
import { compareVersions, isV2 } from '../kmip/version.js';
import type { AttributeMatch } from '../store/types.js';
import type { OperationHandler } from './context.js';
import { nowSeconds } from './common.js';

function enumValue(a: Attribute): number {
  if (a.value.type !== ItemType.Enumeration) throw new KmipError(ResultReason.InvalidField, `${a.name} must be an Enumeration`);
  return a.value.value;
}

/**
 * Two instances of the same date attribute select a range (1.4 §4.9: "... the two values are
 * the bounds"), inclusive, whichever order they come in. Other attributes match exactly.
 */
function dateRanges(matches: readonly AttributeMatch[]): AttributeMatch[] {
  const out: AttributeMatch[] = [];
  for (const m of matches) {
    const same = matches.filter((x) => x.name === m.name);
    if (same.length !== 2 || m.value.type !== ItemType.DateTime || same[1]!.value.type !== ItemType.DateTime) {
      out.push(m);
      continue;
    }
    if (m !== same[0]) continue;
    const [a, b] = [same[0]!.value, same[1]!.value] as { value: bigint }[];
    out.push(a!.value <= b!.value ? { name: m.name, value: same[0]!.value, upTo: same[1]!.value } : { name: m.name, value: same[1]!.value, upTo: same[0]!.value });
  }
  return out;
}

export const locate: OperationHandler = async (ctx, payload) => {
  const attrs = isV2(ctx.version)
    ? parseAttributes2(payload.struct(Tag.Attributes))
    : payload.all(Tag.Attribute).map(parseAttribute1);
  let objectType: number | undefined;
  const states: number[] = [];
  const matches: AttributeMatch[] = [];
  for (const a of attrs) {
    validateAttributeValue(a.name, a.value);
    if (a.name === 'Object Type') objectType = enumValue(a);
    else if (a.name === 'State') states.push(enumValue(a));
    else matches.push({ name: a.name, value: a.value });
  }
  const ranged = dateRanges(matches);
  const maxItems = payload.integer(Tag.MaximumItems);
  const offset = payload.integer(Tag.OffsetItems) ?? 0;
  if ((maxItems !== undefined && maxItems < 0) || offset < 0) {
    throw new KmipError(ResultReason.InvalidField, 'Maximum Items and Offset Items must not be negative');
  }
  const mask = payload.integer(Tag.StorageStatusMask) ?? StorageStatusMask.OnLineStorage;
  const wantsDestroyed =
    (mask & StorageStatusMask.DestroyedStorage) !== 0 || states.some((s) => s === State.Destroyed || s === State.DestroyedCompromised);
  if (states.length > 0) await ctx.store.applyDueTransitions(nowSeconds());
  const result = await ctx.store.locate({
    tenant: ctx.client.tenant,
    objectType,
    states: states.length ? states : undefined,
    matches: ranged,
    includeDestroyed: wantsDestroyed,
    maxItems,
    offset,
  });
  // A Locate that finds exactly one object names it for the next item of the batch.
  if (result.ids.length === 1) ctx.idPlaceholder = result.ids[0];
  const out: TtlvItem[] = [];
  if (compareVersions(ctx.version, { major: 1, minor: 3 }) >= 0) out.push(integer(Tag.LocatedItems, result.total));
  for (const id of result.ids) out.push(textString(Tag.UniqueIdentifier, id));
  return out;
};
