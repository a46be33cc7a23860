// Username/Password credentials a client may present in the request header (vCenter offers one).
// The certificate stays the identity; a password, when an operator sets one, is a second factor
// checked whenever the client sends a credential. Stored as scrypt hashes, never in the clear.
// The rows live in either backend (PasswordRows); the hashing and checking are here, once.
import { createHash, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';

const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 << 20 } as const;
const HASH_BYTES = 32;

export interface PasswordRow {
  readonly username: string;
  readonly scryptHash: Buffer;
  readonly salt: Buffer;
  /** Milliseconds since the epoch: identifies this version of the password. */
  readonly updatedAt: number;
}

/** Where a backend keeps the rows. */
export interface PasswordRows {
  get(clientName: string): Promise<PasswordRow | undefined>;
  upsert(clientName: string, row: PasswordRow): Promise<void>;
  /** False if the client had no password. */
  remove(clientName: string): Promise<boolean>;
}

export type CredentialVerdict = 'accepted' | 'rejected' | 'not-configured';

export class ClientPasswords {
  /**
   * Verified presentations, so that vCenter's repeated credentials cost one SHA-256 instead of
   * one scrypt each: client → (updated_at, SHA-256 of username and password last accepted). The
   * row is read from the database on every check, so a changed or cleared password applies at once.
   */
  private readonly accepted = new Map<string, { updatedAt: number; digest: Buffer }>();

  constructor(private readonly rows: PasswordRows) {}

  async set(clientName: string, username: string, password: string): Promise<void> {
    if (password.length < 12) throw new Error('the password must be at least 12 characters');
    const salt = randomBytes(16);
    const hash = scryptSync(password, salt, HASH_BYTES, SCRYPT);
    await this.rows.upsert(clientName, { username, scryptHash: hash, salt, updatedAt: Date.now() });
  }

  clear(clientName: string): Promise<boolean> {
    return this.rows.remove(clientName);
  }

  async verify(clientName: string, username: string, password: string | undefined): Promise<CredentialVerdict> {
    const row = await this.rows.get(clientName);
    if (!row) return 'not-configured';
    if (password === undefined || username !== row.username) return 'rejected';
    const digest = createHash('sha256').update(username).update('\0').update(password).digest();
    const seen = this.accepted.get(clientName);
    if (seen && seen.updatedAt === row.updatedAt && timingSafeEqual(seen.digest, digest)) return 'accepted';
    const hash = scryptSync(password, row.salt, HASH_BYTES, SCRYPT);
    if (!timingSafeEqual(hash, row.scryptHash)) return 'rejected';
    this.accepted.set(clientName, { updatedAt: row.updatedAt, digest });
    return 'accepted';
  }
}
