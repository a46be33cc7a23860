// The store holds managed objects: wrapped key bytes and attributes, never plaintext key material.
// The interface is async so that a networked backend (PostgreSQL, for clusters) fits behind it.
import type { Attribute } from '../kmip/attributes.js';

export interface WrappedKeyRecord {
  readonly rootKeyLabel: string;
  readonly mechanism: string;
  readonly blob: Uint8Array;
}

/** The wrapped key of a stored row, or undefined once erased (both backends store these three columns). */
export function wrappedKeyOf(row: {
  readonly root_key_label: string | null;
  readonly wrap_mechanism: string | null;
  readonly wrapped_key: Uint8Array | null;
}): WrappedKeyRecord | undefined {
  return row.wrapped_key && row.root_key_label && row.wrap_mechanism
    ? { rootKeyLabel: row.root_key_label, mechanism: row.wrap_mechanism, blob: row.wrapped_key }
    : undefined;
}

export interface StoredObject {
  readonly id: string;
  /** The tenant whose clients alone may see and use the object. */
  readonly tenant: string;
  readonly objectType: number;
  readonly state: number;
  /** Absent once the object is destroyed (crypto-erased). */
  readonly wrapped: WrappedKeyRecord | undefined;
  /** Client- and server-set attributes, ordered by name then index. State, Object Type and Unique Identifier are columns, not here. */
  readonly attributes: readonly Attribute[];
  /**
   * An operator revoked the key (`kmipd keys revoke`): its material is not served again. Read with
   * the object, so a Get checks it without another read (key-holds.ts has the hold's details).
   */
  readonly heldByOperator: boolean;
}

export interface NewObject {
  readonly id: string;
  readonly tenant: string;
  readonly objectType: number;
  readonly state: number;
  readonly wrapped: WrappedKeyRecord;
  readonly attributes: readonly Attribute[];
}

/** One attribute to match exactly; Object Type and State are matched against their columns. */
export interface AttributeMatch {
  readonly name: string;
  readonly value: import('../ttlv/types.js').TtlvItem;
  /** When present, match values from `value` to `upTo` inclusive (two instances of a date in a Locate). */
  readonly upTo?: import('../ttlv/types.js').TtlvItem;
}

export interface LocateQuery {
  /** Only this tenant's objects; undefined only for operator tools that see every tenant. */
  readonly tenant: string | undefined;
  readonly objectType: number | undefined;
  readonly states: readonly number[] | undefined;
  readonly matches: readonly AttributeMatch[];
  readonly includeDestroyed: boolean;
  readonly maxItems: number | undefined;
  readonly offset: number;
}

export interface LocateResult {
  /** Newest first (the OASIS test cases, e.g. TC-OFFSET-2, expect that order). */
  readonly ids: string[];
  /** Number of matching objects before Offset Items and Maximum Items applied. */
  readonly total: number;
}

/** A change to one object, applied atomically; attribute lists replace all instances of a name. */
export interface ObjectUpdate {
  readonly state?: number;
  /** Replace every instance of these names with the given values (an empty list deletes them). */
  readonly replace?: ReadonlyMap<string, readonly Attribute[]>;
  /** Erase the wrapped key (destroy). */
  readonly eraseKey?: boolean;
}

export interface KeyStore {
  /** Resolves only once the object is durable. */
  insert(obj: NewObject): Promise<void>;
  get(id: string): Promise<StoredObject | undefined>;
  /** Resolves only once the change is durable; false if the object does not exist. */
  update(id: string, change: ObjectUpdate): Promise<boolean>;
  locate(query: LocateQuery): Promise<LocateResult>;
  /**
   * Apply date-driven state changes that are due (Activation / Deactivation Date passed), so that
   * a Locate by State sees the states Get Attributes would report.
   */
  applyDueTransitions(now: bigint): Promise<void>;
  /** Remove an object and its attributes (used only to undo a Create in the same batch). */
  remove(id: string): Promise<void>;
  /** Put an object back exactly as it was read (used only to undo a change in the same batch). */
  restore(obj: StoredObject): Promise<void>;
  close(): Promise<void>;
}

/**
 * What a running server asks of its store besides KMIP operations: readiness (admin /readyz) and
 * figures (/metrics). Separate from KeyStore so that wrappers such as the undo journal need not
 * implement it; every backend the server runs on does.
 */
export interface StoreHealth {
  /**
   * Resolves if the store accepts a write now; rejects, with the reason, if it does not (locked by
   * another process, read-only, gone). Changes nothing and waits at most a moment.
   */
  probeWritable(): Promise<void>;
  /** Number of managed objects in each State (State enumeration value → count), every tenant. */
  countByState(): Promise<ReadonlyMap<number, number>>;
}
