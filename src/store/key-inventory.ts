// Read-only listing of managed objects for the operator (`kmipd keys list`), across tenants.
import type Database from 'better-sqlite3';

export interface InventoryRow {
  readonly id: string;
  readonly objectType: number;
  readonly state: number;
  readonly tenant: string;
  readonly rootKeyLabel: string | undefined;
  readonly hasKeyMaterial: boolean;
  readonly createdAt: Date;
  readonly held: boolean;
}

export interface InventoryQuery {
  readonly states?: readonly number[] | undefined;
  readonly tenant?: string | undefined;
}

/** Objects carry a tenant once tenant scoping lands; until then every object belongs to "default". */
export const DEFAULT_TENANT = 'default';

export class KeyInventory {
  private readonly hasTenantColumn: boolean;

  constructor(private readonly db: Database.Database) {
    const cols = db.prepare('PRAGMA table_info(objects)').all() as { name: string }[];
    this.hasTenantColumn = cols.some((c) => c.name === 'tenant');
  }

  get(id: string): InventoryRow | undefined {
    return this.list({ id })[0];
  }

  list(q: InventoryQuery & { id?: string } = {}): InventoryRow[] {
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
      .all(...params) as {
      id: string;
      object_type: number;
      state: number;
      tenant: string;
      root_key_label: string | null;
      has_key: number;
      created_at: number;
      held: number;
    }[];
    return rows.map((r) => ({
      id: r.id,
      objectType: r.object_type,
      state: r.state,
      tenant: r.tenant,
      rootKeyLabel: r.root_key_label ?? undefined,
      hasKeyMaterial: r.has_key === 1,
      createdAt: new Date(r.created_at * 1000),
      held: r.held === 1,
    }));
  }
}
