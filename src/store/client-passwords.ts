// Username/Password credentials a client may present in the request header (vCenter offers one).
// The certificate stays the identity; a password, when an operator sets one, is a second factor
// checked whenever the client sends a credential. Stored as scrypt hashes, never in the clear.
import type Database from 'better-sqlite3';
import { createHash, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 << 20 } as const;
const HASH_BYTES = 32;

interface Row {
  username: string;
  scrypt_hash: Buffer;
  salt: Buffer;
  updated_at: number;
}

export type CredentialVerdict = 'accepted' | 'rejected' | 'not-configured';

export class ClientPasswords {
  private readonly byName;
  private readonly upsert;
  private readonly remove;
  /**
   * Verified presentations, so that vCenter's repeated credentials cost one SHA-256 instead of
   * one scrypt each: client → (updated_at, SHA-256 of username and password last accepted).
   */
  private readonly accepted = new Map<string, { updatedAt: number; digest: Buffer }>();

  constructor(db: Database.Database) {
    this.byName = db.prepare('SELECT username, scrypt_hash, salt, updated_at FROM client_passwords WHERE client_name = ?');
    this.upsert = db.prepare(
      `INSERT INTO client_passwords (client_name, username, scrypt_hash, salt, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (client_name) DO UPDATE SET username = excluded.username, scrypt_hash = excluded.scrypt_hash,
         salt = excluded.salt, updated_at = excluded.updated_at`,
    );
    this.remove = db.prepare('DELETE FROM client_passwords WHERE client_name = ?');
  }

  set(clientName: string, username: string, password: string): void {
    if (password.length < 12) throw new Error('the password must be at least 12 characters');
    const salt = randomBytes(16);
    const hash = scryptSync(password, salt, HASH_BYTES, SCRYPT);
    this.upsert.run(clientName, username, hash, salt, Date.now());
  }

  clear(clientName: string): boolean {
    return this.remove.run(clientName).changes > 0;
  }

  verify(clientName: string, username: string, password: string | undefined): CredentialVerdict {
    const row = this.byName.get(clientName) as Row | undefined;
    if (!row) return 'not-configured';
    if (password === undefined || username !== row.username) return 'rejected';
    const digest = createHash('sha256').update(username).update('\0').update(password).digest();
    const seen = this.accepted.get(clientName);
    if (seen && seen.updatedAt === row.updated_at && timingSafeEqual(seen.digest, digest)) return 'accepted';
    const hash = scryptSync(password, row.salt, HASH_BYTES, SCRYPT);
    if (!timingSafeEqual(hash, row.scrypt_hash)) return 'rejected';
    this.accepted.set(clientName, { updatedAt: row.updated_at, digest });
    return 'accepted';
  }
}
