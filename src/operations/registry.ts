// Which handler answers which operation. Anything not listed gets Operation Not Supported.
import { Operation } from '../kmip/registry/generated.js';
import type { ProtocolVersion } from '../kmip/version.js';
import type { OperationHandler } from './context.js';
import { activate } from './activate.js';
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
]);

export function handlerFor(operation: number): OperationHandler | undefined {
  return HANDLERS.get(operation);
}

/** Operations answered at a version (Discover Versions exists from 1.1 on). */
export function supportedOperations(version: ProtocolVersion): number[] {
  return [...HANDLERS.keys()].filter((op) => op !== Operation.DiscoverVersions || version.major > 1 || version.minor >= 1);
}
