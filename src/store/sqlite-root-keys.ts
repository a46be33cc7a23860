// Root key versions in SQLite (see root-keys.ts).
import type Database from 'better-sqlite3';
import { UntilChanged } from './sqlite-change-watch.js';
import { ALREADY_USED, nowSeconds, toVersions, type RootKeyRegistry, type RootKeyVersion, type VersionRow, type WrappedRow } from './root-keys.js';

export class SqliteRootKeys implements RootKeyRegistry {
  private readonly stmts;
  /**
   * The active version's label until the database may have changed: every Create asks (to wrap
   * under the current version), and root_keys' changes move change_epoch, so a rotation by any
   * connection is seen at once while the insert thread's Creates leave it as it is. Saves a read
   * transaction per Create on the event loop.
   */
  private readonly active: UntilChanged<'active', string | undefined>;

  constructor(private readonly db: Database.Database) {
    this.active = new UntilChanged(db, 1, true);
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

  async ensureInitialized(configuredLabel: string): Promise<void> {
    this.db.transaction(() => {
      if ((this.stmts.versions.all() as VersionRow[]).length === 0) this.stmts.insert.run(1, configuredLabel, 'active', nowSeconds());
    }).immediate();
  }

  async activeLabel(): Promise<string | undefined> {
    return this.active.get('active', () => (this.stmts.active.get() as { label: string } | undefined)?.label);
  }

  async versions(): Promise<RootKeyVersion[]> {
    return this.versionsNow();
  }

  private versionsNow(): RootKeyVersion[] {
    return toVersions(this.stmts.versions.all() as VersionRow[], this.countsNow());
  }

  private countsNow(): Map<string, number> {
    return new Map((this.stmts.counts.all() as { label: string; n: number }[]).map((r) => [r.label, r.n]));
  }

  async wrappedCounts(): Promise<Map<string, number>> {
    return this.countsNow();
  }

  async inProgress(): Promise<boolean> {
    return this.versionsNow().some((v) => v.state === 'retiring');
  }

  async beginRotation(label: string): Promise<RootKeyVersion> {
    this.db.transaction(() => {
      if (this.stmts.byLabel.get(label)) throw ALREADY_USED(label);
      const versions = this.stmts.versions.all() as VersionRow[];
      const next = (versions.at(-1)?.version ?? 0) + 1;
      this.stmts.demoteActive.run();
      this.stmts.insert.run(next, label, 'active', nowSeconds());
    }).immediate();
    return this.versionsNow().find((v) => v.label === label)!;
  }

  async pending(activeLabel: string, limit: number, afterId?: string): Promise<WrappedRow[]> {
    const after = afterId === undefined ? 0 : ((this.stmts.seqOf.get(afterId) as { seq: number } | undefined)?.seq ?? 0);
    const rows = this.stmts.pending.all(activeLabel, after, limit) as {
      id: string;
      root_key_label: string;
      wrap_mechanism: string;
      wrapped_key: Buffer;
    }[];
    return rows.map((r) => ({ id: r.id, rootKeyLabel: r.root_key_label, mechanism: r.wrap_mechanism, blob: r.wrapped_key }));
  }

  async swap(before: WrappedRow, after: { rootKeyLabel: string; mechanism: string; blob: Uint8Array }): Promise<boolean> {
    return (
      this.stmts.swap.run(after.rootKeyLabel, after.mechanism, Buffer.from(after.blob), before.id, before.rootKeyLabel, before.blob)
        .changes === 1
    );
  }

  async tryRetire(label: string): Promise<boolean> {
    return this.db.transaction(() => {
      if (this.stmts.stillUsed.get(label)) return false;
      return this.stmts.retire.run(nowSeconds(), label).changes === 1;
    }).immediate();
  }
}
