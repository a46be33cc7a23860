// A Name identifies one live object of a tenant (2.1 §4.47 / 1.4 §3.2: "SHALL be unique within the server
// domain"): the 2.1 baseline case BL-M-8 expects Non Unique Name Attribute for a duplicate.
// Destroyed objects keep their names as tombstones but no longer hold them.
import { ResultReason } from '../kmip/registry/generated.js';
import { KmipError } from '../kmip/errors.js';
import { isV2 } from '../kmip/version.js';
import type { Attribute } from '../kmip/attributes.js';
import type { OperationContext } from './context.js';

export async function assertNamesUnique(ctx: OperationContext, attrs: readonly Attribute[], ownerId?: string): Promise<void> {
  for (const a of attrs) {
    if (a.name !== 'Name') continue;
    // Scoped to the tenant: another tenant's names must not be discoverable through this error.
    const found = await ctx.store.locate({
      tenant: ctx.client.tenant,
      objectType: undefined,
      states: undefined,
      matches: [{ name: 'Name', value: a.value }],
      includeDestroyed: false,
      maxItems: 2,
      offset: 0,
    });
    if (found.ids.some((id) => id !== ownerId)) {
      throw new KmipError(
        isV2(ctx.version) ? ResultReason.NonUniqueNameAttribute : ResultReason.InvalidField,
        'another object already has this Name',
      );
    }
  }
}
