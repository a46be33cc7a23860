// Which handler answers which operation. Anything not listed gets Operation Not Supported.
import { ENUM_INFO, Operation } from '../kmip/registry/generated.js';
import { registryVersionBit } from '../kmip/version.js';
import type { ProtocolVersion } from '../kmip/version.js';
import type { OperationHandler } from './context.js';
import { activate } from './activate.js';
import { addAttribute } from './add-attribute.js';
import { adjustAttribute } from './adjust-attribute.js';
import { check } from './check.js';
import { deleteAttribute } from './delete-attribute.js';
import { getUsageAllocation } from './get-usage-allocation.js';
import { interop, log } from './interop.js';
import { modifyAttribute } from './modify-attribute.js';
import { obtainLease } from './obtain-lease.js';
import { rekey } from './rekey.js';
import { setAttribute } from './set-attribute.js';
import { create } from './create.js';
import { destroy } from './destroy.js';
import { discoverVersions } from './discover-versions.js';
import { get } from './get.js';
import { getAttributeList } from './get-attribute-list.js';
import { getAttributes } from './get-attributes.js';
import { locate } from './locate.js';
import { query } from './query.js';
import { register } from './register.js';
import { revoke } from './revoke.js';

const HANDLERS = new Map<number, OperationHandler>([
  [Operation.Create, create],
  [Operation.Register, register],
  [Operation.Locate, locate],
  [Operation.Get, get],
  [Operation.GetAttributes, getAttributes],
  [Operation.GetAttributeList, getAttributeList],
  [Operation.Activate, activate],
  [Operation.Revoke, revoke],
  [Operation.Destroy, destroy],
  [Operation.Query, query],
  [Operation.DiscoverVersions, discoverVersions],
  [Operation.AddAttribute, addAttribute],
  [Operation.ModifyAttribute, modifyAttribute],
  [Operation.DeleteAttribute, deleteAttribute],
  [Operation.SetAttribute, setAttribute],
  [Operation.AdjustAttribute, adjustAttribute],
  [Operation.ReKey, rekey],
  [Operation.Check, check],
  [Operation.GetUsageAllocation, getUsageAllocation],
  [Operation.ObtainLease, obtainLease],
  [Operation.Interop, interop],
  [Operation.Log, log],
]);

const OPERATION_INFO = ENUM_INFO.get('Operation')!.values;

/** Does the operation exist at that protocol version (e.g. Set Attribute only from 2.0)? */
function definedIn(operation: number, version: ProtocolVersion): boolean {
  return ((OPERATION_INFO.get(operation)?.versions ?? 0) & registryVersionBit(version)) !== 0;
}

export function handlerFor(operation: number, version: ProtocolVersion): OperationHandler | undefined {
  return definedIn(operation, version) ? HANDLERS.get(operation) : undefined;
}

/** Operations answered at a version, in operation-code order. */
export function supportedOperations(version: ProtocolVersion): number[] {
  return [...HANDLERS.keys()].filter((op) => definedIn(op, version)).sort((a, b) => a - b);
}
