// Operator holds: keys an operator revoked with `kmipd keys revoke`. A held key is never served
// again (server policy, independent of the KMIP state, which follows the Revoke semantics).
// Read from the database on every unwrap: a hold placed through any node stops every node at once.

export interface KeyHold {
  readonly objectId: string;
  readonly heldAt: Date;
  readonly reason: string;
  readonly message: string | undefined;
}

export interface KeyHolds {
  get(objectId: string): Promise<KeyHold | undefined>;
  /** True if this call placed the hold (false: already held). Throws if the object does not exist. */
  hold(objectId: string, reason: string, message: string | undefined, now?: Date): Promise<boolean>;
  /** Only to undo a hold placed by a revoke that then failed. */
  release(objectId: string): Promise<void>;
}

export interface HoldRow {
  object_id: string;
  held_at: number;
  reason: string;
  message: string | null;
}

export function toHold(r: HoldRow): KeyHold {
  return { objectId: r.object_id, heldAt: new Date(r.held_at * 1000), reason: r.reason, message: r.message ?? undefined };
}

export const noSuchKey = (id: string) => new Error(`no key with id ${id}`);
