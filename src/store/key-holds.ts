// Operator holds: keys an operator revoked with `kmipd keys revoke`. A held key is never served
// again (server policy, independent of the KMIP state, which follows the Revoke semantics).
import type Database from 'better-sqlite3';

export interface KeyHold {
  readonly objectId: string;
  readonly heldAt: Date;
  readonly reason: string;
  readonly message: string | undefined;
}

interface HoldRow {
  object_id: string;
  held_at: number;
  reason: string;
  message: string | null;
}

export class KeyHolds {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      get: db.prepare('SELECT * FROM key_holds WHERE object_id = ?'),
      insert: db.prepare('INSERT OR IGNORE INTO key_holds (object_id, held_at, reason, message) VALUES (?, ?, ?, ?)'),
      remove: db.prepare('DELETE FROM key_holds WHERE object_id = ?'),
      exists: db.prepare('SELECT 1 FROM objects WHERE id = ?'),
    };
  }

  get(objectId: string): KeyHold | undefined {
    const r = this.stmts.get.get(objectId) as HoldRow | undefined;
    return r && { objectId: r.object_id, heldAt: new Date(r.held_at * 1000), reason: r.reason, message: r.message ?? undefined };
  }

  /** True if this call placed the hold (false: already held). Throws if the object does not exist. */
  hold(objectId: string, reason: string, message: string | undefined, now = new Date()): boolean {
    if (!this.stmts.exists.get(objectId)) throw new Error(`no key with id ${objectId}`);
    return this.stmts.insert.run(objectId, Math.floor(now.getTime() / 1000), reason, message ?? null).changes === 1;
  }

  /** Only to undo a hold placed by a revoke that then failed. */
  release(objectId: string): void {
    this.stmts.remove.run(objectId);
  }
}
