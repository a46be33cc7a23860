// Obtain Lease (1.4 §4.18 / 2.1 §6.1.32): how long the client may use the key before checking
// again. kmipd grants a fixed lease to Active objects; revocation takes effect at the next Get.
import { dateTime, interval, textString } from '../ttlv/build.js';
import { ItemType } from '../ttlv/types.js';
import { State, Tag } from '../kmip/registry/generated.js';
import type { OperationHandler } from './context.js';
import { loadObject, nowSeconds, stateName, targetId, wrongState } from './common.js';
import { single } from './object-attributes.js';

export const LEASE_SECONDS = 3600;

export const obtainLease: OperationHandler = async (ctx, payload) => {
  const id = targetId(ctx, payload);
  const obj = await loadObject(ctx, id);
  if (obj.state !== State.Active) throw wrongState(ctx, `object ${id} is ${stateName(obj.state)}; only Active objects are leased`);
  const changed = single(obj.attributes, 'Last Change Date')?.value;
  return [
    textString(Tag.UniqueIdentifier, id),
    interval(Tag.LeaseTime, LEASE_SECONDS),
    dateTime(Tag.LastChangeDate, changed?.type === ItemType.DateTime ? changed.value : nowSeconds()),
  ];
};
