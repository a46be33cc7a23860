// Client password rows in SQLite (see client-passwords.ts).
import type Database from 'better-sqlite3';
import type { PasswordRow, PasswordRows } from './client-passwords.js';

export class SqlitePasswordRows implements PasswordRows {
  private readonly byName;
  private readonly upsertRow;
  private readonly removeRow;

  constructor(db: Database.Database) {
    this.byName = db.prepare('SELECT username, scrypt_hash, salt, updated_at FROM client_passwords WHERE client_name = ?');
    this.upsertRow = db.prepare(
      `INSERT INTO client_passwords (client_name, username, scrypt_hash, salt, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (client_name) DO UPDATE SET username = excluded.username, scrypt_hash = excluded.scrypt_hash,
         salt = excluded.salt, updated_at = excluded.updated_at`,
    );
    this.removeRow = db.prepare('DELETE FROM client_passwords WHERE client_name = ?');
  }

  async get(clientName: string): Promise<PasswordRow | undefined> {
    const r = this.byName.get(clientName) as { username: string; scrypt_hash: Buffer; salt: Buffer; updated_at: number } | undefined;
    return r && { username: r.username, scryptHash: r.scrypt_hash, salt: r.salt, updatedAt: r.updated_at };
  }

  async upsert(clientName: string, row: PasswordRow): Promise<void> {
    this.upsertRow.run(clientName, row.username, row.scryptHash, row.salt, row.updatedAt);
  }

  async remove(clientName: string): Promise<boolean> {
    return this.removeRow.run(clientName).changes > 0;
  }
}
