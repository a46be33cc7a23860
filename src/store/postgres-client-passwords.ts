// Client password rows on PostgreSQL (see client-passwords.ts).
import type { PgDatabase } from './postgres-database.js';
import type { PasswordRow, PasswordRows } from './client-passwords.js';

export class PostgresPasswordRows implements PasswordRows {
  constructor(private readonly db: PgDatabase) {}

  async get(clientName: string): Promise<PasswordRow | undefined> {
    const [r] = await this.db.rows<{ username: string; scrypt_hash: Buffer; salt: Buffer; updated_at: number }>(
      'SELECT username, scrypt_hash, salt, updated_at FROM client_passwords WHERE client_name = $1',
      [clientName],
    );
    return r && { username: r.username, scryptHash: r.scrypt_hash, salt: r.salt, updatedAt: r.updated_at };
  }

  async upsert(clientName: string, row: PasswordRow): Promise<void> {
    await this.db.run(
      `INSERT INTO client_passwords (client_name, username, scrypt_hash, salt, updated_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (client_name) DO UPDATE SET username = excluded.username, scrypt_hash = excluded.scrypt_hash,
         salt = excluded.salt, updated_at = excluded.updated_at`,
      [clientName, row.username, row.scryptHash, row.salt, row.updatedAt],
    );
  }

  async remove(clientName: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM client_passwords WHERE client_name = $1', [clientName])) > 0;
  }
}
