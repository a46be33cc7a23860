// Root key versions, recorded in the store so that every node wraps new keys under the same one.
// Rotation: a new version becomes active (new wraps use it at once), the previous one is
// "retiring" while its objects are re-wrapped, and "retired" once no wrapped key depends on it.
// A trigger in each backend refuses any (re)wrap under a retired version: the last line of defence.

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

export interface RootKeyRegistry {
  /** First use of a store: the configured root key becomes version 1. No-op once versions exist. */
  ensureInitialized(configuredLabel: string): Promise<void>;
  /** The label new keys are wrapped under, or undefined before ensureInitialized. */
  activeLabel(): Promise<string | undefined>;
  versions(): Promise<RootKeyVersion[]>;
  /** Wrapped-key counts by root key label, including labels this store never recorded. */
  wrappedCounts(): Promise<Map<string, number>>;
  inProgress(): Promise<boolean>;
  /** Make `label` the active version; the current one starts retiring. Atomic. */
  beginRotation(label: string): Promise<RootKeyVersion>;
  /** Up to `limit` keys not yet under `activeLabel`, in creation order after `afterId` (exclusive). */
  pending(activeLabel: string, limit: number, afterId?: string): Promise<WrappedRow[]>;
  /**
   * Replace one wrapped key by its re-wrapped form, only if the row still holds exactly what was
   * re-wrapped (compare-and-swap): a key destroyed or changed meanwhile is left alone.
   */
  swap(before: WrappedRow, after: { rootKeyLabel: string; mechanism: string; blob: Uint8Array }): Promise<boolean>;
  /** Retire a retiring version if no wrapped key depends on it any more. Atomic with concurrent wraps. */
  tryRetire(label: string): Promise<boolean>;
}

export interface VersionRow {
  version: number;
  label: string;
  state: string;
  created_at: number;
  retired_at: number | null;
}

export function toVersions(rows: readonly VersionRow[], counts: ReadonlyMap<string, number>): RootKeyVersion[] {
  return rows.map((r) => ({
    version: r.version,
    label: r.label,
    state: r.state as RootKeyState,
    createdAt: new Date(r.created_at * 1000),
    retiredAt: r.retired_at === null ? undefined : new Date(r.retired_at * 1000),
    wrappedKeys: counts.get(r.label) ?? 0,
  }));
}

export const ALREADY_USED = (label: string) => new Error(`root key ${label} was already used by this store; choose a new label`);

export const nowSeconds = () => Math.floor(Date.now() / 1000);
