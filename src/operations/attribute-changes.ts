// Shared rules of Add / Modify / Delete / Set / Adjust Attribute: who may change what, in which
// state, and the result reason each refusal carries in 1.x and in 2.x.
import { ResultReason, State, Tag } from '../kmip/registry/generated.js';
import { Fields } from '../kmip/fields.js';
import { KmipError, type ResultReasonValue } from '../kmip/errors.js';
import { attributeRules } from '../kmip/attribute-definitions.js';
import { isV2, type ProtocolVersion } from '../kmip/version.js';
import { parseAttribute2, validateAttributeValue, type Attribute } from '../kmip/attributes.js';
import type { StoredObject } from '../store/types.js';
import { isDestroyed, stateName } from './common.js';

/** 1.x has few result reasons: the 1.4 profiles answer Permission Denied for every refused change. */
function refuse(version: ProtocolVersion, v2Reason: ResultReasonValue, message: string): KmipError {
  return new KmipError(isV2(version) ? v2Reason : ResultReason.PermissionDenied, message);
}

/** Check that a client may change attribute `name` of `obj` now; returns its multiplicity. */
export function assertClientMayChange(obj: StoredObject, name: string, version: ProtocolVersion): { multi: boolean } {
  const rules = attributeRules(name);
  if (!rules) throw new KmipError(isV2(version) ? ResultReason.UnsupportedAttribute : ResultReason.InvalidField, `unsupported attribute ${JSON.stringify(name)}`);
  if (rules.mutability === 'server' || rules.mutability === 'fixed') {
    throw refuse(version, ResultReason.AttributeReadOnly, `attribute ${name} cannot be changed by a client`);
  }
  if (isDestroyed(obj.state)) {
    throw refuse(version, ResultReason.WrongKeyLifecycleState, `object ${obj.id} is ${stateName(obj.state)}`);
  }
  if (rules.mutability === 'preActive' && obj.state !== State.PreActive) {
    throw refuse(version, ResultReason.WrongKeyLifecycleState, `attribute ${name} can only change while the object is Pre-Active`);
  }
  return { multi: rules.multi };
}

export function instancesOf(obj: StoredObject, name: string): Attribute[] {
  return obj.attributes.filter((a) => a.name === name);
}

/** Re-number instances 0..n-1 in their current order (indexes stay dense after a delete). */
export function renumber(name: string, values: readonly Attribute['value'][]): Attribute[] {
  return values.map((value, index) => ({ name, index, value }));
}

export function attributeNotFound(version: ProtocolVersion, name: string): KmipError {
  return new KmipError(isV2(version) ? ResultReason.AttributeNotFound : ResultReason.InvalidField, `the object has no attribute ${name}`);
}

export function instanceNotFound(version: ProtocolVersion, name: string, detail: string): KmipError {
  return new KmipError(isV2(version) ? ResultReason.AttributeInstanceNotFound : ResultReason.IndexOutOfBounds, `no instance of ${name} ${detail}`);
}

export function checkValue(attr: Attribute): void {
  validateAttributeValue(attr.name, attr.value);
}

/** 2.x Current Attribute: the one attribute instance a Modify / Delete names by value. */
export function currentAttribute(payload: Fields): Attribute | undefined {
  const current = payload.struct(Tag.CurrentAttribute);
  if (!current) return undefined;
  const inner = Fields.of(current, 'Current Attribute').items[0];
  if (!inner) throw new KmipError(ResultReason.InvalidField, 'Current Attribute is empty');
  return parseAttribute2(inner);
}
