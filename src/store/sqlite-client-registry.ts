// The client registry in SQLite. Every method runs synchronously to completion (better-sqlite3):
// a transaction never spans an await, so nothing else on the connection can slip into it.
// activeCredential (asked before every request) and activeLeaf (asked at every new connection)
// answer from memory while the database cannot have changed: PRAGMA data_version moves when
// another connection (the operator CLI, another process) commits, and total_changes() when
// anything on this connection writes. A revocation is therefore still seen by the very next
// request or handshake, as if the row were read each time (the server shares one data_version
// reading between arrivals: sqlite-change-watch.ts).
import type Database from 'better-sqlite3';
import { UntilChanged } from './sqlite-change-watch.js';
import { LockWait } from './sqlite-lock-wait.js';
import {
  caTrustClash,
  ClientRegistryError,
  credentialsToRevoke,
  leafTaken,
  seconds,
  toActive,
  toClientRecord,
  TouchThrottle,
  assertValidTenant,
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

/** Credentials remembered by activeCredential; beyond this the memory is simply dropped. */
const MAX_CACHED_CREDENTIALS = 10_000;

export class SqliteClientRegistry implements ClientRegistry {
  private readonly stmts;
  private readonly throttle = new TouchThrottle();
  /** activeCredential answers (undefined: not active). */
  private readonly credentials: UntilChanged<number, ActiveCredential | undefined>;
  /** activeLeaf answers by fingerprint (undefined: no active pinned or issued credential). */
  private readonly leaves: UntilChanged<string, ActiveCredential | undefined>;

  /** Last-seen updates (on the connection path) wait for another process's lock from the event loop. */
  private readonly lockWait: LockWait;

  constructor(private readonly db: Database.Database) {
    this.lockWait = new LockWait(db);
    // Enrolling moves change_epoch (a new credential row): "not enrolled" may be remembered.
    this.credentials = new UntilChanged(db, MAX_CACHED_CREDENTIALS, true);
    this.leaves = new UntilChanged(db, MAX_CACHED_CREDENTIALS, true);
    this.stmts = {
      client: db.prepare('SELECT * FROM clients WHERE name = ?'),
      clients: db.prepare('SELECT * FROM clients ORDER BY name'),
      credentialsOf: db.prepare('SELECT * FROM client_credentials WHERE client_name = ? ORDER BY id'),
      insertClient: db.prepare('INSERT INTO clients (name, tenant, role, created_at) VALUES (?, ?, ?, ?)'),
      insertCredential: db.prepare(
        `INSERT INTO client_credentials (client_name, kind, fingerprint, certificate, subject, serial, not_after, added_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      leafByFingerprint: db.prepare(`${ACTIVE} AND cc.kind <> 'ca' AND cc.fingerprint = ?`),
      anyLeafByFingerprint: db.prepare(`SELECT * FROM client_credentials WHERE kind <> 'ca' AND fingerprint = ?`),
      activeCas: db.prepare(`${ACTIVE} AND cc.kind = 'ca' ORDER BY cc.id`),
      activeById: db.prepare(`${ACTIVE} AND cc.id = ?`),
      revokeClient: db.prepare('UPDATE clients SET revoked_at = ?, revocation_reason = ? WHERE name = ? AND revoked_at IS NULL'),
      revokeCredentialsOf: db.prepare('UPDATE client_credentials SET revoked_at = ? WHERE client_name = ? AND revoked_at IS NULL'),
      revokeCredential: db.prepare('UPDATE client_credentials SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      touch: db.prepare(
        'UPDATE clients SET last_seen_at = ?, last_seen_fingerprint = ? WHERE name = ? AND (last_seen_at IS NULL OR last_seen_at < ? OR last_seen_fingerprint IS NOT ?)',
      ),
    };
  }

  async get(name: string): Promise<ClientRecord | undefined> {
    return this.getNow(name);
  }

  private getNow(name: string): ClientRecord | undefined {
    const row = this.stmts.client.get(name) as ClientRow | undefined;
    return row && this.toRecord(row);
  }

  async list(): Promise<ClientRecord[]> {
    return (this.stmts.clients.all() as ClientRow[]).map((r) => this.toRecord(r));
  }

  private toRecord(r: ClientRow): ClientRecord {
    return toClientRecord(r, this.stmts.credentialsOf.all(r.name) as CredentialRow[]);
  }

  async addClient(c: { name: string; tenant: string; role: ClientRole }, credential: NewCredential, now = new Date()): Promise<void> {
    assertValidTenant(c.tenant);
    this.db.transaction(() => {
      if (this.stmts.client.get(c.name)) throw new ClientRegistryError(`client ${c.name} already exists`);
      this.stmts.insertClient.run(c.name, c.tenant, c.role, seconds(now));
      this.insertCredential(c.name, credential, now);
    }).immediate();
  }

  async addCredential(name: string, credential: NewCredential, opts: { revokePrevious: boolean }, now = new Date()): Promise<void> {
    this.db.transaction(() => {
      const row = this.stmts.client.get(name) as ClientRow | undefined;
      if (!row) throw new ClientRegistryError(`no client named ${name}`);
      if (row.revoked_at !== null) throw new ClientRegistryError(`client ${name} is revoked`);
      if (opts.revokePrevious) this.stmts.revokeCredentialsOf.run(seconds(now), name);
      this.insertCredential(name, credential, now);
    }).immediate();
  }

  private insertCredential(name: string, c: NewCredential, now: Date): void {
    if (c.kind !== 'ca') {
      const existing = this.stmts.anyLeafByFingerprint.get(c.fingerprint) as CredentialRow | undefined;
      if (existing) throw leafTaken(existing);
    } else {
      const sameCa = (this.stmts.activeCas.all() as ActiveRow[]).filter((r) => r.fingerprint === c.fingerprint);
      const clash = caTrustClash(sameCa, c);
      if (clash) throw clash;
    }
    this.stmts.insertCredential.run(
      name,
      c.kind,
      c.fingerprint,
      c.certificate,
      c.kind === 'ca' ? (c.subject ?? null) : null,
      c.serial,
      seconds(c.notAfter),
      seconds(now),
    );
  }

  async revokeClient(name: string, reason: string | undefined, now = new Date()): Promise<boolean> {
    return this.db.transaction(() => {
      if (!this.stmts.client.get(name)) throw new ClientRegistryError(`no client named ${name}`);
      this.stmts.revokeCredentialsOf.run(seconds(now), name);
      return this.stmts.revokeClient.run(seconds(now), reason ?? null, name).changes > 0;
    }).immediate();
  }

  async revokeCredential(name: string, fingerprint: string, now = new Date()): Promise<boolean> {
    const matches = credentialsToRevoke(this.getNow(name), name, fingerprint);
    return this.db.transaction(() => matches.reduce((n, c) => n + this.stmts.revokeCredential.run(seconds(now), c.id).changes, 0) > 0).immediate();
  }

  async leafOwner(fingerprint: string): Promise<{ clientName: string; revoked: boolean } | undefined> {
    const row = this.stmts.anyLeafByFingerprint.get(fingerprint) as CredentialRow | undefined;
    if (!row) return undefined;
    const client = this.stmts.client.get(row.client_name) as ClientRow | undefined;
    return { clientName: row.client_name, revoked: row.revoked_at !== null || client?.revoked_at !== null };
  }

  async activeLeaf(fingerprint: string): Promise<ActiveCredential | undefined> {
    return this.leaves.get(fingerprint, () => {
      const row = this.stmts.leafByFingerprint.get(fingerprint) as ActiveRow | undefined;
      return row && toActive(row);
    });
  }

  async activeCaTrusts(): Promise<ActiveCredential[]> {
    return (this.stmts.activeCas.all() as ActiveRow[]).map(toActive);
  }

  async activeCredential(id: number): Promise<ActiveCredential | undefined> {
    return this.credentials.get(id, () => this.readActiveCredential(id));
  }

  private readActiveCredential(id: number): ActiveCredential | undefined {
    const row = this.stmts.activeById.get(id) as ActiveRow | undefined;
    return row && toActive(row);
  }

  async touch(name: string, fingerprint: string, now = new Date(), minIntervalS = 60): Promise<void> {
    const s = seconds(now);
    if (!this.throttle.due(name, fingerprint, s, minIntervalS)) return;
    await this.lockWait.write(() => this.stmts.touch.run(s, fingerprint, name, s - minIntervalS, fingerprint));
  }
}
