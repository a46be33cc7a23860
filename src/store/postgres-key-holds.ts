// Operator holds on PostgreSQL (see key-holds.ts).
import type { PgDatabase } from './postgres-database.js';
import { noSuchKey, toHold, type HoldRow, type KeyHold, type KeyHolds } from './key-holds.js';

export class PostgresKeyHolds implements KeyHolds {
  constructor(private readonly db: PgDatabase) {}

  async get(objectId: string): Promise<KeyHold | undefined> {
    const [r] = await this.db.rows<HoldRow>('SELECT * FROM key_holds WHERE object_id = $1', [objectId]);
    return r && toHold(r);
  }

  async hold(objectId: string, reason: string, message: string | undefined, now = new Date()): Promise<boolean> {
    if ((await this.db.rows('SELECT 1 FROM objects WHERE id = $1', [objectId])).length === 0) throw noSuchKey(objectId);
    const placed = await this.db.run(
      'INSERT INTO key_holds (object_id, held_at, reason, message) VALUES ($1, $2, $3, $4) ON CONFLICT (object_id) DO NOTHING',
      [objectId, Math.floor(now.getTime() / 1000), reason, message ?? null],
    );
    return placed === 1;
  }

  async release(objectId: string): Promise<void> {
    await this.db.run('DELETE FROM key_holds WHERE object_id = $1', [objectId]);
  }
}
