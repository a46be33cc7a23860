// Batch Error Continuation Option "Undo" (1.4 §6.8, 2.1 §7.x): when an item fails, the effects
// of the items before it are rolled back. Every change a batch makes goes through this store,
// which remembers how to reverse it; each step is itself durable, and so is each reversal.
import type { KeyStore, LocateQuery, LocateResult, NewObject, ObjectUpdate, StoredObject } from '../store/types.js';

export class UndoJournal implements KeyStore {
  private readonly reversals: (() => Promise<void>)[] = [];

  constructor(private readonly inner: KeyStore) {}

  async insert(obj: NewObject): Promise<void> {
    await this.inner.insert(obj);
    this.reversals.push(() => this.inner.remove(obj.id));
  }

  async update(id: string, change: ObjectUpdate): Promise<boolean> {
    const before = await this.inner.get(id);
    const changed = await this.inner.update(id, change);
    if (changed && before) this.reversals.push(() => this.inner.restore(before));
    return changed;
  }

  get(id: string): Promise<StoredObject | undefined> {
    return this.inner.get(id);
  }
  locate(q: LocateQuery): Promise<LocateResult> {
    return this.inner.locate(q);
  }
  applyDueTransitions(now: bigint): Promise<void> {
    return this.inner.applyDueTransitions(now);
  }
  remove(id: string): Promise<void> {
    return this.inner.remove(id);
  }
  restore(obj: StoredObject): Promise<void> {
    return this.inner.restore(obj);
  }
  async close(): Promise<void> {
    /* the journal does not own the store */
  }

  /** Reverse every recorded change, newest first. */
  async rollback(): Promise<void> {
    while (this.reversals.length > 0) await this.reversals.pop()!();
  }
}
