// Root key versions, recorded in the store so that every node wraps new keys under the same one.
// Rotation: a new version becomes active (new wraps use it at once), the previous one is
// "retiring" while its objects are re-wrapped, and "retired" once no wrapped key depends on it.
import type Database from 'better-sqlite3';

export type RootKeyState = 'active' | 'retiring' | 'retired';

export interface RootKeyVersion {
  readonly version: number;
  readonly label: string;
  readonly state: RootKeyState;
  readonly createdAt: Date;
  readonly retiredAt: Date | undefined;
  /** Keys currently wrapped under this root key. */
  readonly wrappedKeys: number;
}

/** One wrapped key as stored, enough to re-wrap it and to detect a concurrent change. */
export interface WrappedRow {
  readonly id: string;
  readonly rootKeyLabel: string;
  readonly mechanism: string;
  readonly blob: Buffer;
}

interface VersionRow {
  version: number;
  label: string;
  state: string;
  created_at: number;
  retired_at: number | null;
}

const now = () => Math.floor(Date.now() / 1000);

export class RootKeyRegistry {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      versions: db.prepare('SELECT * FROM root_keys ORDER BY version'),
      active: db.prepare("SELECT label FROM root_keys WHERE state = 'active'"),
      byLabel: db.prepare('SELECT * FROM root_keys WHERE label = ?'),
      insert: db.prepare('INSERT INTO root_keys (version, label, state, created_at) VALUES (?, ?, ?, ?)'),
      demoteActive: db.prepare("UPDATE root_keys SET state = 'retiring' WHERE state = 'active'"),
      counts: db.prepare('SELECT root_key_label AS label, count(*) AS n FROM objects WHERE wrapped_key IS NOT NULL GROUP BY root_key_label'),
      pending: db.prepare(
        `SELECT id, root_key_label, wrap_mechanism, wrapped_key FROM objects
         WHERE wrapped_key IS NOT NULL AND root_key_label <> ? AND seq > ? ORDER BY seq LIMIT ?`,
      ),
      seqOf: db.prepare('SELECT seq FROM objects WHERE id = ?'),
      swap: db.prepare(
        `UPDATE objects SET root_key_label = ?, wrap_mechanism = ?, wrapped_key = ?
         WHERE id = ? AND root_key_label = ? AND wrapped_key = ?`,
      ),
      stillUsed: db.prepare('SELECT 1 FROM objects WHERE root_key_label = ? AND wrapped_key IS NOT NULL LIMIT 1'),
      retire: db.prepare("UPDATE root_keys SET state = 'retired', retired_at = ? WHERE label = ? AND state = 'retiring'"),
    };
  }

  /** First use of a store: the configured root key becomes version 1. No-op once versions exist. */
  ensureInitialized(configuredLabel: string): void {
    this.db.transaction(() => {
      if ((this.stmts.versions.all() as VersionRow[]).length === 0) this.stmts.insert.run(1, configuredLabel, 'active', now());
    }).immediate();
  }

  /** The label new keys are wrapped under, or undefined before ensureInitialized. */
  activeLabel(): string | undefined {
    return (this.stmts.active.get() as { label: string } | undefined)?.label;
  }

  versions(): RootKeyVersion[] {
    const counts = new Map((this.stmts.counts.all() as { label: string; n: number }[]).map((r) => [r.label, r.n]));
    return (this.stmts.versions.all() as VersionRow[]).map((r) => ({
      version: r.version,
      label: r.label,
      state: r.state as RootKeyState,
      createdAt: new Date(r.created_at * 1000),
      retiredAt: r.retired_at === null ? undefined : new Date(r.retired_at * 1000),
      wrappedKeys: counts.get(r.label) ?? 0,
    }));
  }

  /** Wrapped-key counts by root key label, including labels this store never recorded. */
  wrappedCounts(): Map<string, number> {
    return new Map((this.stmts.counts.all() as { label: string; n: number }[]).map((r) => [r.label, r.n]));
  }

  inProgress(): boolean {
    return this.versions().some((v) => v.state === 'retiring');
  }

  /** Make `label` the active version; the current one starts retiring. Atomic. */
  beginRotation(label: string): RootKeyVersion {
    this.db.transaction(() => {
      if (this.stmts.byLabel.get(label)) throw new Error(`root key ${label} was already used by this store; choose a new label`);
      const versions = this.stmts.versions.all() as VersionRow[];
      const next = (versions.at(-1)?.version ?? 0) + 1;
      this.stmts.demoteActive.run();
      this.stmts.insert.run(next, label, 'active', now());
    }).immediate();
    return this.versions().find((v) => v.label === label)!;
  }

  /** Up to `limit` keys not yet under `activeLabel`, in creation order after `afterId` (exclusive). */
  pending(activeLabel: string, limit: number, afterId?: string): WrappedRow[] {
    const after = afterId === undefined ? 0 : ((this.stmts.seqOf.get(afterId) as { seq: number } | undefined)?.seq ?? 0);
    const rows = this.stmts.pending.all(activeLabel, after, limit) as {
      id: string;
      root_key_label: string;
      wrap_mechanism: string;
      wrapped_key: Buffer;
    }[];
    return rows.map((r) => ({ id: r.id, rootKeyLabel: r.root_key_label, mechanism: r.wrap_mechanism, blob: r.wrapped_key }));
  }

  /**
   * Replace one wrapped key by its re-wrapped form, only if the row still holds exactly what was
   * re-wrapped (compare-and-swap): a key destroyed or changed meanwhile is left alone.
   */
  swap(before: WrappedRow, after: { rootKeyLabel: string; mechanism: string; blob: Uint8Array }): boolean {
    return (
      this.stmts.swap.run(after.rootKeyLabel, after.mechanism, Buffer.from(after.blob), before.id, before.rootKeyLabel, before.blob)
        .changes === 1
    );
  }

  /** Retire a retiring version if no wrapped key depends on it any more. Atomic with concurrent wraps. */
  tryRetire(label: string): boolean {
    return this.db.transaction(() => {
      if (this.stmts.stillUsed.get(label)) return false;
      return this.stmts.retire.run(now(), label).changes === 1;
    }).immediate();
  }
}
