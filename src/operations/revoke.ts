// Revoke (1.x §4.20 / 2.x §6.1.42). Key Compromise / CA Compromise → Compromised (from any live
// state); any other reason → Deactivated. A destroyed object cannot be revoked.
import { structure, textString, enumeration } from '../ttlv/build.js';
import { ItemType } from '../ttlv/types.js';
import { ResultReason, RevocationReasonCode, State, Tag } from '../kmip/registry/generated.js';
import { Fields } from '../kmip/fields.js';
import { KmipError } from '../kmip/errors.js';
import type { Attribute } from '../kmip/attributes.js';
import type { OperationHandler } from './context.js';
import { dateAttribute, isDestroyed, loadObject, nowSeconds, stateName, targetId, wrongState } from './common.js';

export const revoke: OperationHandler = async (ctx, payload) => {
  const id = targetId(ctx, payload);
  const reason = Fields.of(payload.requiredStruct(Tag.RevocationReason), 'Revocation Reason');
  const code = reason.requiredEnumeration(Tag.RevocationReasonCode);
  if (!Object.values(RevocationReasonCode).includes(code as never)) {
    throw new KmipError(ResultReason.InvalidField, `unknown Revocation Reason Code ${code}`);
  }
  const message = reason.text(Tag.RevocationMessage);
  const obj = await loadObject(ctx, id);
  if (isDestroyed(obj.state)) throw wrongState(ctx, `object ${id} is ${stateName(obj.state)}`);
  const now = nowSeconds();
  const compromised = code === RevocationReasonCode.KeyCompromise || code === RevocationReasonCode.CACompromise;
  const revocation: Attribute = {
    name: 'Revocation Reason',
    index: 0,
    value: structure(Tag.AttributeValue, [
      enumeration(Tag.RevocationReasonCode, code),
      ...(message !== undefined ? [textString(Tag.RevocationMessage, message)] : []),
    ]),
  };
  const replace = new Map<string, Attribute[]>([
    ['Revocation Reason', [revocation]],
    ['Last Change Date', [dateAttribute('Last Change Date', now)]],
  ]);
  let state: number;
  if (compromised) {
    state = State.Compromised;
    const occurrence = payload.first(Tag.CompromiseOccurrenceDate);
    const when = occurrence?.type === ItemType.DateTime ? occurrence.value : now;
    replace.set('Compromise Occurrence Date', [dateAttribute('Compromise Occurrence Date', when)]);
    replace.set('Compromise Date', [dateAttribute('Compromise Date', now)]);
  } else {
    if (obj.state === State.Compromised) throw wrongState(ctx, `object ${id} is already Compromised`);
    state = State.Deactivated;
    if (obj.state !== State.Deactivated) replace.set('Deactivation Date', [dateAttribute('Deactivation Date', now)]);
  }
  await ctx.store.update(id, { state, replace });
  return [textString(Tag.UniqueIdentifier, id)];
};
