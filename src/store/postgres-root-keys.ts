// Root key versions on PostgreSQL (see root-keys.ts). Version changes lock root_keys (two nodes
// starting at once both find an empty table; two rotations at once); retiring a version locks the
// objects table against writers for that instant, so that no key can be wrapped under the version
// between "nothing depends on it" and "retired" (SQLite gets the same from its single writer).
import type { PgDatabase } from './postgres-database.js';
import { ALREADY_USED, nowSeconds, toVersions, type RootKeyRegistry, type RootKeyVersion, type VersionRow, type WrappedRow } from './root-keys.js';

const LOCK_VERSIONS = 'LOCK TABLE root_keys IN SHARE ROW EXCLUSIVE MODE';

export class PostgresRootKeys implements RootKeyRegistry {
  constructor(private readonly db: PgDatabase) {}

  async ensureInitialized(configuredLabel: string): Promise<void> {
    // Most starts find the table filled: read first, lock only when it may be empty.
    if ((await this.db.rows('SELECT 1 FROM root_keys LIMIT 1')).length > 0) return;
    await this.db.tx(async (q) => {
      await q.run(LOCK_VERSIONS);
      if ((await q.rows('SELECT 1 FROM root_keys LIMIT 1')).length > 0) return;
      await q.run(`INSERT INTO root_keys (version, label, state, created_at) VALUES (1, $1, 'active', $2)`, [configuredLabel, nowSeconds()]);
    });
  }

  async activeLabel(): Promise<string | undefined> {
    const [row] = await this.db.rows<{ label: string }>("SELECT label FROM root_keys WHERE state = 'active'");
    return row?.label;
  }

  async versions(): Promise<RootKeyVersion[]> {
    const rows = await this.db.rows<VersionRow>('SELECT * FROM root_keys ORDER BY version');
    return toVersions(rows, await this.wrappedCounts());
  }

  async wrappedCounts(): Promise<Map<string, number>> {
    const rows = await this.db.rows<{ label: string; n: number }>(
      'SELECT root_key_label AS label, count(*) AS n FROM objects WHERE wrapped_key IS NOT NULL GROUP BY root_key_label',
    );
    return new Map(rows.map((r) => [r.label, r.n]));
  }

  async inProgress(): Promise<boolean> {
    return (await this.db.rows("SELECT 1 FROM root_keys WHERE state = 'retiring' LIMIT 1")).length > 0;
  }

  async beginRotation(label: string): Promise<RootKeyVersion> {
    await this.db.tx(async (q) => {
      await q.run(LOCK_VERSIONS);
      if ((await q.rows('SELECT 1 FROM root_keys WHERE label = $1', [label])).length > 0) throw ALREADY_USED(label);
      const [last] = await q.rows<{ version: number }>('SELECT coalesce(max(version), 0) AS version FROM root_keys');
      await q.run("UPDATE root_keys SET state = 'retiring' WHERE state = 'active'");
      await q.run(`INSERT INTO root_keys (version, label, state, created_at) VALUES ($1, $2, 'active', $3)`, [last!.version + 1, label, nowSeconds()]);
    });
    return (await this.versions()).find((v) => v.label === label)!;
  }

  async pending(activeLabel: string, limit: number, afterId?: string): Promise<WrappedRow[]> {
    const rows = await this.db.rows<{ id: string; root_key_label: string; wrap_mechanism: string; wrapped_key: Buffer }>(
      `SELECT id, root_key_label, wrap_mechanism, wrapped_key FROM objects
       WHERE wrapped_key IS NOT NULL AND root_key_label <> $1
         AND seq > coalesce((SELECT seq FROM objects WHERE id = $2), 0)
       ORDER BY seq LIMIT $3`,
      [activeLabel, afterId ?? null, limit],
    );
    return rows.map((r) => ({ id: r.id, rootKeyLabel: r.root_key_label, mechanism: r.wrap_mechanism, blob: r.wrapped_key }));
  }

  async swap(before: WrappedRow, after: { rootKeyLabel: string; mechanism: string; blob: Uint8Array }): Promise<boolean> {
    const changed = await this.db.run(
      `UPDATE objects SET root_key_label = $1, wrap_mechanism = $2, wrapped_key = $3
       WHERE id = $4 AND root_key_label = $5 AND wrapped_key = $6`,
      [after.rootKeyLabel, after.mechanism, Buffer.from(after.blob), before.id, before.rootKeyLabel, before.blob],
    );
    return changed === 1;
  }

  async tryRetire(label: string): Promise<boolean> {
    return this.db.tx(async (q) => {
      // SHARE: waits for writers in flight to commit, and holds new ones off until we commit.
      await q.run('LOCK TABLE objects IN SHARE MODE');
      if ((await q.rows('SELECT 1 FROM objects WHERE root_key_label = $1 AND wrapped_key IS NOT NULL LIMIT 1', [label])).length > 0) return false;
      return (await q.run("UPDATE root_keys SET state = 'retired', retired_at = $1 WHERE label = $2 AND state = 'retiring'", [nowSeconds(), label])) === 1;
    });
  }
}
