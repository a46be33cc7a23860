// Destroy (1.x §4.21 / 2.x §6.1.16): crypto-erase the wrapped key; the attributes stay as a
// tombstone (state Destroyed / Destroyed Compromised). An Active key must be revoked first.
import { textString } from '../ttlv/build.js';
import { State, Tag } from '../kmip/registry/generated.js';
import type { OperationHandler } from './context.js';
import { dateAttribute, isDestroyed, loadObject, nowSeconds, stateName, targetId, wrongState } from './common.js';

export const destroy: OperationHandler = async (ctx, payload) => {
  const id = targetId(ctx, payload);
  const obj = await loadObject(ctx, id);
  if (obj.state === State.Active || isDestroyed(obj.state)) {
    throw wrongState(ctx, `object ${id} is ${stateName(obj.state)} and cannot be destroyed`);
  }
  const now = nowSeconds();
  await ctx.store.update(id, {
    state: obj.state === State.Compromised ? State.DestroyedCompromised : State.Destroyed,
    eraseKey: true,
    replace: new Map([
      ['Destroy Date', [dateAttribute('Destroy Date', now)]],
      ['Last Change Date', [dateAttribute('Last Change Date', now)]],
    ]),
  });
  return [textString(Tag.UniqueIdentifier, id)];
};
