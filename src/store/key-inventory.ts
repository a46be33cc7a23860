// Read-only listing of managed objects for the operator (`kmipd keys list`), across tenants.

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

/** Objects from before tenant scoping belong to "default", the tenant every earlier client was in. */
export const DEFAULT_TENANT = 'default';

export interface KeyInventory {
  get(id: string): Promise<InventoryRow | undefined>;
  /** Oldest first. */
  list(q?: InventoryQuery): Promise<InventoryRow[]>;
}

export interface InventoryDbRow {
  id: string;
  object_type: number;
  state: number;
  tenant: string;
  root_key_label: string | null;
  has_key: number | boolean;
  created_at: number;
  held: number | boolean;
}

export function toInventoryRow(r: InventoryDbRow): InventoryRow {
  return {
    id: r.id,
    objectType: r.object_type,
    state: r.state,
    tenant: r.tenant,
    rootKeyLabel: r.root_key_label ?? undefined,
    // SQLite answers 0/1, PostgreSQL true/false.
    hasKeyMaterial: r.has_key === 1 || r.has_key === true,
    createdAt: new Date(r.created_at * 1000),
    held: r.held === 1 || r.held === true,
  };
}
