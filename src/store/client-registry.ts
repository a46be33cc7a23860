// The client registry: who may connect, in which tenant, with which role, and by which certificate.
// It lives in the store (not in local files) because every node and every ESXi host of one vCenter
// key provider share one client certificate: trust and revocation must be the same everywhere.
import type Database from 'better-sqlite3';

export const CLIENT_ROLES = ['reader', 'writer', 'manager'] as const;
export type ClientRole = (typeof CLIENT_ROLES)[number];

/**
 * How a certificate is trusted:
 * - issued: signed by the kmipd CA (enroll, sign-csr, renew); the exact certificate is recorded.
 * - pinned: the client's own certificate (vCenter's, often self-signed), pinned by SHA-256.
 * - ca: any certificate issued under an external CA, optionally only for one subject.
 */
export const TRUST_KINDS = ['issued', 'pinned', 'ca'] as const;
export type TrustKind = (typeof TRUST_KINDS)[number];

const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

export function isClientRole(v: string): v is ClientRole {
  return (CLIENT_ROLES as readonly string[]).includes(v);
}

export function assertValidTenant(tenant: string): void {
  if (!NAME.test(tenant)) {
    throw new Error(`invalid tenant ${JSON.stringify(tenant)}: use 1-64 characters from A-Z a-z 0-9 . _ -, not starting with '.' or '-'`);
  }
}

export interface NewCredential {
  readonly kind: TrustKind;
  /** SHA-256 of the certificate DER, lowercase hex: the leaf (issued, pinned) or the CA (ca). */
  readonly fingerprint: string;
  /** PEM of the same certificate. */
  readonly certificate: string;
  /** ca only: the one subject accepted, in canonical form (see canonicalSubject). */
  readonly subject?: string | undefined;
  readonly serial: string;
  readonly notAfter: Date;
}

export interface Credential extends NewCredential {
  readonly id: number;
  readonly clientName: string;
  readonly addedAt: Date;
  readonly revokedAt: Date | undefined;
}

export interface ClientRecord {
  readonly name: string;
  readonly tenant: string;
  readonly role: ClientRole;
  readonly createdAt: Date;
  readonly revokedAt: Date | undefined;
  readonly revocationReason: string | undefined;
  readonly lastSeenAt: Date | undefined;
  readonly lastSeenFingerprint: string | undefined;
  readonly credentials: readonly Credential[];
}

/** A credential that currently admits its client, with the client it admits. */
export interface ActiveCredential extends Credential {
  readonly tenant: string;
  readonly role: ClientRole;
}

interface ClientRow {
  name: string;
  tenant: string;
  role: string;
  created_at: number;
  revoked_at: number | null;
  revocation_reason: string | null;
  last_seen_at: number | null;
  last_seen_fingerprint: string | null;
}

interface CredentialRow {
  id: number;
  client_name: string;
  kind: string;
  fingerprint: string;
  certificate: string;
  subject: string | null;
  serial: string;
  not_after: number;
  added_at: number;
  revoked_at: number | null;
}

type ActiveRow = CredentialRow & { tenant: string; role: string };

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);
const date = (s: number) => new Date(s * 1000);
const optDate = (s: number | null) => (s === null ? undefined : date(s));

function toCredential(r: CredentialRow): Credential {
  return {
    id: r.id,
    clientName: r.client_name,
    kind: r.kind as TrustKind,
    fingerprint: r.fingerprint,
    certificate: r.certificate,
    subject: r.subject ?? undefined,
    serial: r.serial,
    notAfter: date(r.not_after),
    addedAt: date(r.added_at),
    revokedAt: optDate(r.revoked_at),
  };
}

function toActive(r: ActiveRow): ActiveCredential {
  return { ...toCredential(r), tenant: r.tenant, role: r.role as ClientRole };
}

export class ClientRegistryError extends Error {
  override readonly name = 'ClientRegistryError';
}

const ACTIVE = `SELECT cc.*, c.tenant, c.role FROM client_credentials cc JOIN clients c ON c.name = cc.client_name
                WHERE c.revoked_at IS NULL AND cc.revoked_at IS NULL`;

export class ClientRegistry {
  private readonly stmts;
  private readonly touched = new Map<string, number>();

  constructor(private readonly db: Database.Database) {
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

  get(name: string): ClientRecord | undefined {
    const row = this.stmts.client.get(name) as ClientRow | undefined;
    return row && this.toRecord(row);
  }

  list(): ClientRecord[] {
    return (this.stmts.clients.all() as ClientRow[]).map((r) => this.toRecord(r));
  }

  private toRecord(r: ClientRow): ClientRecord {
    return {
      name: r.name,
      tenant: r.tenant,
      role: r.role as ClientRole,
      createdAt: date(r.created_at),
      revokedAt: optDate(r.revoked_at),
      revocationReason: r.revocation_reason ?? undefined,
      lastSeenAt: optDate(r.last_seen_at),
      lastSeenFingerprint: r.last_seen_fingerprint ?? undefined,
      credentials: (this.stmts.credentialsOf.all(r.name) as CredentialRow[]).map(toCredential),
    };
  }

  /** A new client with its first credential, atomically. */
  addClient(c: { name: string; tenant: string; role: ClientRole }, credential: NewCredential, now = new Date()): void {
    assertValidTenant(c.tenant);
    this.db.transaction(() => {
      if (this.stmts.client.get(c.name)) throw new ClientRegistryError(`client ${c.name} already exists`);
      this.stmts.insertClient.run(c.name, c.tenant, c.role, seconds(now));
      this.insertCredential(c.name, credential, now);
    }).immediate();
  }

  /** Another credential for an existing, non-revoked client (renewal); optionally retiring the others. */
  addCredential(name: string, credential: NewCredential, opts: { revokePrevious: boolean }, now = new Date()): void {
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
      if (existing) {
        throw new ClientRegistryError(
          `certificate sha256 ${c.fingerprint} is already registered for client ${existing.client_name}${existing.revoked_at !== null ? ' (revoked)' : ''}`,
        );
      }
    } else {
      // An unrestricted trust in a CA and a subject-restricted one would make the identity ambiguous.
      const sameCa = (this.stmts.activeCas.all() as ActiveRow[]).filter((r) => r.fingerprint === c.fingerprint);
      const clash = sameCa.find((r) => r.subject === null || c.subject === undefined || r.subject === c.subject);
      if (clash) {
        throw new ClientRegistryError(
          `CA sha256 ${c.fingerprint} is already trusted for client ${clash.client_name}${clash.subject ? ` (subject ${clash.subject})` : ' (any subject)'}; give each client its own --subject`,
        );
      }
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

  /** Revoke a client and every credential it has. False if it was already revoked. */
  revokeClient(name: string, reason: string | undefined, now = new Date()): boolean {
    return this.db.transaction(() => {
      if (!this.stmts.client.get(name)) throw new ClientRegistryError(`no client named ${name}`);
      this.stmts.revokeCredentialsOf.run(seconds(now), name);
      return this.stmts.revokeClient.run(seconds(now), reason ?? null, name).changes > 0;
    }).immediate();
  }

  /** Revoke one certificate of a client (a renewed one's predecessor, say). */
  revokeCredential(name: string, fingerprint: string, now = new Date()): boolean {
    const record = this.get(name);
    if (!record) throw new ClientRegistryError(`no client named ${name}`);
    const matches = record.credentials.filter((c) => c.fingerprint === fingerprint.toLowerCase() && c.revokedAt === undefined);
    if (matches.length === 0) throw new ClientRegistryError(`client ${name} has no active certificate with sha256 ${fingerprint}`);
    return this.db.transaction(() => matches.reduce((n, c) => n + this.stmts.revokeCredential.run(seconds(now), c.id).changes, 0) > 0).immediate();
  }

  /** Whom this exact certificate was registered for, active or not (to say why a connection is refused). */
  leafOwner(fingerprint: string): { clientName: string; revoked: boolean } | undefined {
    const row = this.stmts.anyLeafByFingerprint.get(fingerprint) as CredentialRow | undefined;
    if (!row) return undefined;
    const client = this.stmts.client.get(row.client_name) as ClientRow | undefined;
    return { clientName: row.client_name, revoked: row.revoked_at !== null || client?.revoked_at !== null };
  }

  /** The active issued/pinned credential for this exact certificate, if any. */
  activeLeaf(fingerprint: string): ActiveCredential | undefined {
    const row = this.stmts.leafByFingerprint.get(fingerprint) as ActiveRow | undefined;
    return row && toActive(row);
  }

  activeCaTrusts(): ActiveCredential[] {
    return (this.stmts.activeCas.all() as ActiveRow[]).map(toActive);
  }

  /** The credential as it is now, if it still admits its client. */
  activeCredential(id: number): ActiveCredential | undefined {
    const row = this.stmts.activeById.get(id) as ActiveRow | undefined;
    return row && toActive(row);
  }

  /** Record a connection; writes at most once per `minIntervalS` per client and certificate. */
  touch(name: string, fingerprint: string, now = new Date(), minIntervalS = 60): void {
    const s = seconds(now);
    // Checked in memory first: an UPDATE that changes nothing still takes the write lock.
    const key = `${name}\n${fingerprint}`;
    if ((this.touched.get(key) ?? Number.NEGATIVE_INFINITY) > s - minIntervalS) return;
    if (this.touched.size > 10_000) this.touched.clear();
    this.touched.set(key, s);
    this.stmts.touch.run(s, fingerprint, name, s - minIntervalS, fingerprint);
  }
}
