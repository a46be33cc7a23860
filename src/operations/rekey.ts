// Re-key (1.4 §4.4 / 2.1 §6.1.41): a replacement key with fresh material from the HSM. It takes the
// existing key's attributes (its Names move to it), the request's template on top, and the two are
// linked: existing → Replacement Object → new, new → Replaced Object → existing. With an Offset the
// new key's dates are Initial Date + Offset (and the existing key's spacing between dates kept).
import { enumeration, structure, textString } from '../ttlv/build.js';
import { ItemType } from '../ttlv/types.js';
import { KeyFormatType, LinkType, ObjectType, ResultReason, State, Tag } from '../kmip/registry/generated.js';
import { KmipError } from '../kmip/errors.js';
import { isV2 } from '../kmip/version.js';
import { newUniqueIdentifier } from '../kmip/unique-identifier.js';
import type { Attribute } from '../kmip/attributes.js';
import type { OperationHandler } from './context.js';
import { dateAttribute, isDestroyed, loadObject, nowSeconds, stateName, targetId, wrongState } from './common.js';
import { clientAttributes, single } from './object-attributes.js';
import { aesParameters } from './create.js';
import { serverAttributes } from './new-object-attributes.js';
import { attributeDefinition } from '../kmip/attribute-definitions.js';

const DATES = ['Activation Date', 'Process Start Date', 'Protect Stop Date', 'Deactivation Date'];

function link(type: number, id: string, index: number): Attribute {
  return {
    name: 'Link',
    index,
    value: structure(Tag.AttributeValue, [enumeration(Tag.LinkType, type), textString(Tag.LinkedObjectIdentifier, id)]),
  };
}

export const rekey: OperationHandler = async (ctx, payload) => {
  const oldId = targetId(ctx, payload);
  const old = await loadObject(ctx, oldId);
  if (old.objectType !== ObjectType.SymmetricKey) throw new KmipError(isV2(ctx.version) ? ResultReason.InvalidObjectType : ResultReason.InvalidField, 'only symmetric keys can be re-keyed');
  if (isDestroyed(old.state) || old.state === State.Compromised) throw wrongState(ctx, `object ${oldId} is ${stateName(old.state)}`);
  const template = clientAttributes(payload, ctx.version);
  const offset = payload.first(Tag.Offset);
  const now = nowSeconds();

  // Copy what the client owns; server-kept and date attributes are recomputed below.
  const copied = old.attributes.filter((a) => attributeDefinition(a.name)?.mutability !== 'server' && !DATES.includes(a.name) && a.name !== 'Link');
  const dates: Attribute[] = [];
  const oldActivation = single(old.attributes, 'Activation Date')?.value;
  for (const name of DATES) {
    const v = single(old.attributes, name)?.value;
    if (v?.type !== ItemType.DateTime) continue;
    if (offset?.type === ItemType.Interval) {
      const base = oldActivation?.type === ItemType.DateTime ? oldActivation.value : v.value;
      dates.push(dateAttribute(name, now + BigInt(offset.value) + (v.value - base)));
    } else {
      dates.push(dateAttribute(name, v.value));
    }
  }
  // Template values replace copied ones of the same name, except Names, which accumulate.
  const templateNames = new Set(template.map((a) => a.name).filter((n) => n !== 'Name'));
  const merged = [...copied, ...dates].filter((a) => !templateNames.has(a.name));
  const names = [...merged.filter((a) => a.name === 'Name'), ...template.filter((a) => a.name === 'Name')].map((a, index) => ({ ...a, index }));
  const attrs: Attribute[] = [...merged.filter((a) => a.name !== 'Name'), ...template.filter((a) => a.name !== 'Name'), ...names];
  const bits = aesParameters(attrs);

  const newId = newUniqueIdentifier();
  ctx.objectId = newId;
  const wrapped = await ctx.keys.generateWrappedKey(newId, bits);
  const { state, attrs: serverAttrs } = serverAttributes({ id: newId, clientAttrs: attrs, keyFormat: KeyFormatType.Raw, digest: wrapped.digest });
  await ctx.store.insert({
    id: newId,
    tenant: old.tenant,
    objectType: ObjectType.SymmetricKey,
    state,
    wrapped,
    attributes: [...attrs, link(LinkType.ReplacedObjectLink, oldId, 0), ...serverAttrs],
  });
  const oldLinks = old.attributes.filter((a) => a.name === 'Link' && !(a.value.type === ItemType.Structure && a.value.value.some((c) => c.tag === Tag.LinkType && c.value === LinkType.ReplacementObjectLink)));
  await ctx.store.update(oldId, {
    replace: new Map([
      ['Name', []],
      ['Link', [...oldLinks.map((l) => l.value), link(LinkType.ReplacementObjectLink, newId, 0).value].map((value, index) => ({ name: 'Link', index, value }))],
      ['Last Change Date', [dateAttribute('Last Change Date', now)]],
    ]),
  });
  ctx.idPlaceholder = newId;
  return [textString(Tag.UniqueIdentifier, newId)];
};
