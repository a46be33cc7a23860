// Role-based authorisation of each batch item, before its handler runs. Roles, in the spirit of
// IBM Key Protect's IAM roles:
//   reader  – discover, query, locate, read attributes; never key material
//   writer  – reader + Get key material (and the operations that only account for its use)
//   manager – everything, including Create, Register, Activate, Revoke, Destroy, attribute changes
// Default deny: an operation not listed for reader or writer needs manager, so a handler added
// later is never open to a lower role by accident.
import { Operation, ResultReason, Tag } from '../kmip/registry/generated.js';
import { KmipError } from '../kmip/errors.js';
import type { RequestBatchItem } from '../kmip/message.js';
import { ItemType } from '../ttlv/types.js';
import type { ClientRole } from '../store/client-registry.js';
import type { OperationContext } from './context.js';

const READER_OPERATIONS: ReadonlySet<number> = new Set([
  Operation.DiscoverVersions,
  Operation.Query,
  Operation.Locate,
  Operation.Check,
  Operation.GetAttributes,
  Operation.GetAttributeList,
]);

const WRITER_OPERATIONS: ReadonlySet<number> = new Set([
  ...READER_OPERATIONS,
  Operation.Get,
  Operation.ObtainLease,
  Operation.GetUsageAllocation,
]);

const RANK: Readonly<Record<ClientRole, number>> = { reader: 0, writer: 1, manager: 2 };

/** The least role allowed to run `operation`. */
export function requiredRole(operation: number): ClientRole {
  if (READER_OPERATIONS.has(operation)) return 'reader';
  if (WRITER_OPERATIONS.has(operation)) return 'writer';
  return 'manager';
}

export function isAllowed(role: ClientRole, operation: number): boolean {
  return RANK[role] >= RANK[requiredRole(operation)];
}

/**
 * Throws Permission Denied unless the client's role allows the item's operation. On denial the
 * object the item named is recorded in ctx.objectId, so the audit line says what was attempted.
 */
export function authorize(ctx: OperationContext, item: RequestBatchItem, operationName: string): void {
  const { client } = ctx;
  if (isAllowed(client.role, item.operation)) return;
  const target = item.payload?.value.find((i) => i.tag === Tag.UniqueIdentifier);
  if (target?.type === ItemType.TextString) ctx.objectId = target.value;
  throw new KmipError(
    ResultReason.PermissionDenied,
    `client ${client.name} has role ${client.role}; ${operationName} needs ${requiredRole(item.operation)}`,
  );
}
