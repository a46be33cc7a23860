// The operator's key listing in SQLite (see key-inventory.ts).
import type Database from 'better-sqlite3';
import { DEFAULT_TENANT, toInventoryRow, type InventoryDbRow, type InventoryQuery, type InventoryRow, type KeyInventory } from './key-inventory.js';

export class SqliteKeyInventory implements KeyInventory {
  private readonly hasTenantColumn: boolean;

  constructor(private readonly db: Database.Database) {
    const cols = db.prepare('PRAGMA table_info(objects)').all() as { name: string }[];
    this.hasTenantColumn = cols.some((c) => c.name === 'tenant');
  }

  async get(id: string): Promise<InventoryRow | undefined> {
    return this.select({ id })[0];
  }

  async list(q: InventoryQuery = {}): Promise<InventoryRow[]> {
    return this.select(q);
  }

  private select(q: InventoryQuery & { id?: string }): InventoryRow[] {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.id !== undefined) {
      where.push('o.id = ?');
      params.push(q.id);
    }
    if (q.states) {
      where.push(`o.state IN (${q.states.map(() => '?').join(',') || 'NULL'})`);
      params.push(...q.states);
    }
    const tenantExpr = this.hasTenantColumn ? 'o.tenant' : `'${DEFAULT_TENANT}'`;
    if (q.tenant !== undefined) {
      where.push(`${tenantExpr} = ?`);
      params.push(q.tenant);
    }
    const rows = this.db
      .prepare(
        `SELECT o.id, o.object_type, o.state, ${tenantExpr} AS tenant, o.root_key_label, o.wrapped_key IS NOT NULL AS has_key,
                o.created_at, EXISTS (SELECT 1 FROM key_holds h WHERE h.object_id = o.id) AS held
         FROM objects o ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY o.seq`,
      )
      .all(...params) as InventoryDbRow[];
    return rows.map(toInventoryRow);
  }
}
