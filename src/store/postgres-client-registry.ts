// The client registry on PostgreSQL (see client-registry.ts). Writes that check before they insert
// (a certificate registered once, no ambiguous CA trusts) lock the credentials table for their
// transaction, so two nodes or CLI runs cannot both pass the check.
import type { PgDatabase, Queryable } from './postgres-database.js';
import {
  assertValidTenant,
  caTrustClash,
  ClientRegistryError,
  credentialsToRevoke,
  leafTaken,
  seconds,
  toActive,
  toClientRecord,
  TouchThrottle,
  type ActiveCredential,
  type ActiveRow,
  type ClientRecord,
  type ClientRegistry,
  type ClientRole,
  type ClientRow,
  type CredentialRow,
  type NewCredential,
} from './client-registry.js';

const ACTIVE = `SELECT cc.*, c.tenant, c.role FROM client_credentials cc JOIN clients c ON c.name = cc.client_name
                WHERE c.revoked_at IS NULL AND cc.revoked_at IS NULL`;

/** Serialises registry writers (self-conflicting; readers are not blocked). */
const LOCK_CREDENTIALS = 'LOCK TABLE client_credentials IN SHARE ROW EXCLUSIVE MODE';

export class PostgresClientRegistry implements ClientRegistry {
  private readonly throttle = new TouchThrottle();

  constructor(private readonly db: PgDatabase) {}

  async get(name: string): Promise<ClientRecord | undefined> {
    const [row] = await this.db.rows<ClientRow>('SELECT * FROM clients WHERE name = $1', [name]);
    if (!row) return undefined;
    const creds = await this.db.rows<CredentialRow>('SELECT * FROM client_credentials WHERE client_name = $1 ORDER BY id', [name]);
    return toClientRecord(row, creds);
  }

  async list(): Promise<ClientRecord[]> {
    const clients = await this.db.rows<ClientRow>('SELECT * FROM clients ORDER BY name');
    const creds = await this.db.rows<CredentialRow>('SELECT * FROM client_credentials ORDER BY id');
    const byClient = new Map<string, CredentialRow[]>();
    for (const c of creds) byClient.set(c.client_name, [...(byClient.get(c.client_name) ?? []), c]);
    return clients.map((r) => toClientRecord(r, byClient.get(r.name) ?? []));
  }

  async addClient(c: { name: string; tenant: string; role: ClientRole }, credential: NewCredential, now = new Date()): Promise<void> {
    assertValidTenant(c.tenant);
    await this.db.tx(async (q) => {
      await q.run(LOCK_CREDENTIALS);
      if ((await q.rows('SELECT 1 FROM clients WHERE name = $1', [c.name])).length > 0) throw new ClientRegistryError(`client ${c.name} already exists`);
      await q.run('INSERT INTO clients (name, tenant, role, created_at) VALUES ($1, $2, $3, $4)', [c.name, c.tenant, c.role, seconds(now)]);
      await this.insertCredential(q, c.name, credential, now);
    });
  }

  async addCredential(name: string, credential: NewCredential, opts: { revokePrevious: boolean }, now = new Date()): Promise<void> {
    await this.db.tx(async (q) => {
      await q.run(LOCK_CREDENTIALS);
      const [row] = await q.rows<ClientRow>('SELECT * FROM clients WHERE name = $1 FOR UPDATE', [name]);
      if (!row) throw new ClientRegistryError(`no client named ${name}`);
      if (row.revoked_at !== null) throw new ClientRegistryError(`client ${name} is revoked`);
      if (opts.revokePrevious) {
        await q.run('UPDATE client_credentials SET revoked_at = $1 WHERE client_name = $2 AND revoked_at IS NULL', [seconds(now), name]);
      }
      await this.insertCredential(q, name, credential, now);
    });
  }

  private async insertCredential(q: Queryable, name: string, c: NewCredential, now: Date): Promise<void> {
    if (c.kind !== 'ca') {
      const [existing] = await q.rows<CredentialRow>(`SELECT * FROM client_credentials WHERE kind <> 'ca' AND fingerprint = $1`, [c.fingerprint]);
      if (existing) throw leafTaken(existing);
    } else {
      const sameCa = await q.rows<ActiveRow>(`${ACTIVE} AND cc.kind = 'ca' AND cc.fingerprint = $1 ORDER BY cc.id`, [c.fingerprint]);
      const clash = caTrustClash(sameCa, c);
      if (clash) throw clash;
    }
    await q.run(
      `INSERT INTO client_credentials (client_name, kind, fingerprint, certificate, subject, serial, not_after, added_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [name, c.kind, c.fingerprint, c.certificate, c.kind === 'ca' ? (c.subject ?? null) : null, c.serial, seconds(c.notAfter), seconds(now)],
    );
  }

  async revokeClient(name: string, reason: string | undefined, now = new Date()): Promise<boolean> {
    return this.db.tx(async (q) => {
      const [row] = await q.rows<ClientRow>('SELECT * FROM clients WHERE name = $1 FOR UPDATE', [name]);
      if (!row) throw new ClientRegistryError(`no client named ${name}`);
      await q.run('UPDATE client_credentials SET revoked_at = $1 WHERE client_name = $2 AND revoked_at IS NULL', [seconds(now), name]);
      return (await q.run('UPDATE clients SET revoked_at = $1, revocation_reason = $2 WHERE name = $3 AND revoked_at IS NULL', [seconds(now), reason ?? null, name])) > 0;
    });
  }

  async revokeCredential(name: string, fingerprint: string, now = new Date()): Promise<boolean> {
    const matches = credentialsToRevoke(await this.get(name), name, fingerprint);
    const changed = await this.db.run('UPDATE client_credentials SET revoked_at = $1 WHERE id = ANY($2::bigint[]) AND revoked_at IS NULL', [
      seconds(now),
      matches.map((c) => c.id),
    ]);
    return changed > 0;
  }

  async leafOwner(fingerprint: string): Promise<{ clientName: string; revoked: boolean } | undefined> {
    const [row] = await this.db.rows<{ client_name: string; revoked: boolean }>(
      `SELECT cc.client_name, (cc.revoked_at IS NOT NULL OR c.revoked_at IS NOT NULL) AS revoked
       FROM client_credentials cc JOIN clients c ON c.name = cc.client_name
       WHERE cc.kind <> 'ca' AND cc.fingerprint = $1`,
      [fingerprint],
    );
    return row && { clientName: row.client_name, revoked: row.revoked };
  }

  async activeLeaf(fingerprint: string): Promise<ActiveCredential | undefined> {
    const [row] = await this.db.rows<ActiveRow>(`${ACTIVE} AND cc.kind <> 'ca' AND cc.fingerprint = $1`, [fingerprint]);
    return row && toActive(row);
  }

  async activeCaTrusts(): Promise<ActiveCredential[]> {
    return (await this.db.rows<ActiveRow>(`${ACTIVE} AND cc.kind = 'ca' ORDER BY cc.id`)).map(toActive);
  }

  async activeCredential(id: number): Promise<ActiveCredential | undefined> {
    const [row] = await this.db.rows<ActiveRow>(`${ACTIVE} AND cc.id = $1`, [id]);
    return row && toActive(row);
  }

  async touch(name: string, fingerprint: string, now = new Date(), minIntervalS = 60): Promise<void> {
    const s = seconds(now);
    if (!this.throttle.due(name, fingerprint, s, minIntervalS)) return;
    await this.db.run(
      `UPDATE clients SET last_seen_at = $1, last_seen_fingerprint = $2
       WHERE name = $3 AND (last_seen_at IS NULL OR last_seen_at < $4 OR last_seen_fingerprint IS DISTINCT FROM $2)`,
      [s, fingerprint, name, s - minIntervalS],
    );
  }
}
