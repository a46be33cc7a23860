// Operator holds in SQLite (see key-holds.ts).
import type Database from 'better-sqlite3';
import { noSuchKey, toHold, type HoldRow, type KeyHold, type KeyHolds } from './key-holds.js';

export class SqliteKeyHolds implements KeyHolds {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      get: db.prepare('SELECT * FROM key_holds WHERE object_id = ?'),
      insert: db.prepare('INSERT OR IGNORE INTO key_holds (object_id, held_at, reason, message) VALUES (?, ?, ?, ?)'),
      remove: db.prepare('DELETE FROM key_holds WHERE object_id = ?'),
      exists: db.prepare('SELECT 1 FROM objects WHERE id = ?'),
    };
  }

  async get(objectId: string): Promise<KeyHold | undefined> {
    const r = this.stmts.get.get(objectId) as HoldRow | undefined;
    return r && toHold(r);
  }

  async hold(objectId: string, reason: string, message: string | undefined, now = new Date()): Promise<boolean> {
    if (!this.stmts.exists.get(objectId)) throw noSuchKey(objectId);
    return this.stmts.insert.run(objectId, Math.floor(now.getTime() / 1000), reason, message ?? null).changes === 1;
  }

  async release(objectId: string): Promise<void> {
    this.stmts.remove.run(objectId);
  }
}
