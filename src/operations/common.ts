// Helpers shared by the operation handlers.
import { Tag, State, ResultReason, ObjectType } from '../kmip/registry/generated.js';
import type { Fields } from '../kmip/fields.js';
import { KmipError, itemNotFound } from '../kmip/errors.js';
import { isV2 } from '../kmip/version.js';
import type { Attribute } from '../kmip/attributes.js';
import { dateTime } from '../ttlv/build.js';
import { ItemType } from '../ttlv/types.js';
import type { StoredObject } from '../store/types.js';
import type { OperationContext } from './context.js';
import { single } from './object-attributes.js';

/** The Unique Identifier of the request, or the ID Placeholder left by an earlier batch item. */
export function targetId(ctx: OperationContext, payload: Fields): string {
  const id = payload.text(Tag.UniqueIdentifier) ?? ctx.idPlaceholder;
  if (id === undefined) throw new KmipError(ResultReason.InvalidField, 'Unique Identifier is missing and no ID Placeholder is set');
  ctx.objectId = id;
  return id;
}

export async function loadObject(ctx: OperationContext, id: string): Promise<StoredObject> {
  const obj = await ctx.store.get(id);
  // Another tenant's object answers exactly as an unknown one would.
  if (!obj || obj.tenant !== ctx.client.tenant) throw itemNotFound(id, ctx.version);
  const state = effectiveState(obj, nowSeconds());
  if (state === obj.state) return obj;
  await ctx.store.update(id, { state });
  return { ...obj, state };
}

function dateOf(obj: StoredObject, name: string): bigint | undefined {
  const v = single(obj.attributes, name)?.value;
  return v?.type === ItemType.DateTime ? v.value : undefined;
}

/**
 * Date-driven transitions (1.4 §3.22): a Pre-Active object becomes Active once its Activation
 * Date has passed, and a Pre-Active or Active one becomes Deactivated once its Deactivation Date has.
 */
export function effectiveState(obj: StoredObject, now: bigint): number {
  const deactivation = dateOf(obj, 'Deactivation Date');
  if ((obj.state === State.PreActive || obj.state === State.Active) && deactivation !== undefined && deactivation <= now) {
    return State.Deactivated;
  }
  const activation = dateOf(obj, 'Activation Date');
  if (obj.state === State.PreActive && activation !== undefined && activation <= now) return State.Active;
  return obj.state;
}

/** The result reason for "not allowed in this state": 1.x profiles use Permission Denied, 2.x has its own. */
export function wrongState(ctx: OperationContext, what: string): KmipError {
  return new KmipError(isV2(ctx.version) ? ResultReason.WrongKeyLifecycleState : ResultReason.PermissionDenied, what);
}

export function isDestroyed(state: number): boolean {
  return state === State.Destroyed || state === State.DestroyedCompromised;
}

export function nowSeconds(): bigint {
  return BigInt(Math.floor(Date.now() / 1000));
}

export function dateAttribute(name: string, seconds: bigint): Attribute {
  return { name, index: 0, value: dateTime(Tag.AttributeValue, seconds) };
}

export function stateName(state: number): string {
  return Object.entries(State).find(([, v]) => v === state)?.[0] ?? String(state);
}

export function requireSymmetricKeyType(objectType: number | undefined): void {
  if (objectType !== ObjectType.SymmetricKey) {
    throw new KmipError(ResultReason.InvalidField, 'only Symmetric Key objects are supported');
  }
}
