// The operator's key listing on PostgreSQL (see key-inventory.ts).
import type { PgDatabase } from './postgres-database.js';
import { toInventoryRow, type InventoryDbRow, type InventoryQuery, type InventoryRow, type KeyInventory } from './key-inventory.js';

export class PostgresKeyInventory implements KeyInventory {
  constructor(private readonly db: PgDatabase) {}

  async get(id: string): Promise<InventoryRow | undefined> {
    return (await this.select({ id }))[0];
  }

  list(q: InventoryQuery = {}): Promise<InventoryRow[]> {
    return this.select(q);
  }

  private async select(q: InventoryQuery & { id?: string }): Promise<InventoryRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.id !== undefined) where.push(`o.id = $${params.push(q.id)}`);
    if (q.states) where.push(`o.state = ANY($${params.push(q.states)}::int[])`);
    if (q.tenant !== undefined) where.push(`o.tenant = $${params.push(q.tenant)}`);
    const rows = await this.db.rows<InventoryDbRow>(
      `SELECT o.id, o.object_type, o.state, o.tenant, o.root_key_label, o.wrapped_key IS NOT NULL AS has_key,
              o.created_at, EXISTS (SELECT 1 FROM key_holds h WHERE h.object_id = o.id) AS held
       FROM objects o ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY o.seq`,
      params,
    );
    return rows.map(toInventoryRow);
  }
}
