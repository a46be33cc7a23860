// Activate (1.x §4.19 / 2.x §6.1.1): Pre-Active → Active, recording the Activation Date.
import { textString } from '../ttlv/build.js';
import { State, Tag } from '../kmip/registry/generated.js';
import type { OperationHandler } from './context.js';
import { dateAttribute, loadObject, nowSeconds, stateName, targetId, wrongState } from './common.js';

export const activate: OperationHandler = async (ctx, payload) => {
  const id = targetId(ctx, payload);
  const obj = await loadObject(ctx, id);
  if (obj.state !== State.PreActive) throw wrongState(ctx, `object ${id} is ${stateName(obj.state)}, not Pre-Active`);
  const now = nowSeconds();
  await ctx.store.update(id, {
    state: State.Active,
    replace: new Map([
      ['Activation Date', [dateAttribute('Activation Date', now)]],
      ['Last Change Date', [dateAttribute('Last Change Date', now)]],
    ]),
  });
  return [textString(Tag.UniqueIdentifier, id)];
};
