// The client registry: who may connect, in which tenant, with which role, and by which certificate.
// It lives in the store (not in local files) because every node and every ESXi host of one vCenter
// key provider share one client certificate: trust and revocation must be the same everywhere.
// This file holds the model and the rules; sqlite-client-registry.ts and
// postgres-client-registry.ts keep it in their database, so that a revocation made anywhere is
// seen by every node at once. PostgreSQL reads it straight from the database; SQLite (one file,
// one node) caches the per-request credential check until any connection writes to the file.

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

export class ClientRegistryError extends Error {
  override readonly name = 'ClientRegistryError';
}

/** The registry as every backend provides it. Each call reads or writes the database itself. */
export interface ClientRegistry {
  get(name: string): Promise<ClientRecord | undefined>;
  list(): Promise<ClientRecord[]>;
  /** A new client with its first credential, atomically. */
  addClient(c: { name: string; tenant: string; role: ClientRole }, credential: NewCredential, now?: Date): Promise<void>;
  /** Another credential for an existing, non-revoked client (renewal); optionally retiring the others. */
  addCredential(name: string, credential: NewCredential, opts: { revokePrevious: boolean }, now?: Date): Promise<void>;
  /** Revoke a client and every credential it has. False if it was already revoked. */
  revokeClient(name: string, reason: string | undefined, now?: Date): Promise<boolean>;
  /** Revoke one certificate of a client (a renewed one's predecessor, say). */
  revokeCredential(name: string, fingerprint: string, now?: Date): Promise<boolean>;
  /** Whom this exact certificate was registered for, active or not (to say why a connection is refused). */
  leafOwner(fingerprint: string): Promise<{ clientName: string; revoked: boolean } | undefined>;
  /** The active issued/pinned credential for this exact certificate, if any. */
  activeLeaf(fingerprint: string): Promise<ActiveCredential | undefined>;
  activeCaTrusts(): Promise<ActiveCredential[]>;
  /** The credential as it is now, if it still admits its client. */
  activeCredential(id: number): Promise<ActiveCredential | undefined>;
  /** Record a connection; writes at most once per `minIntervalS` per client and certificate. */
  touch(name: string, fingerprint: string, now?: Date, minIntervalS?: number): Promise<void>;
}

// ------------------------------------------------------------------ rows, shared by the backends

export interface ClientRow {
  name: string;
  tenant: string;
  role: string;
  created_at: number;
  revoked_at: number | null;
  revocation_reason: string | null;
  last_seen_at: number | null;
  last_seen_fingerprint: string | null;
}

export interface CredentialRow {
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

export type ActiveRow = CredentialRow & { tenant: string; role: string };

export const seconds = (d: Date) => Math.floor(d.getTime() / 1000);
const date = (s: number) => new Date(s * 1000);
const optDate = (s: number | null) => (s === null ? undefined : date(s));

export function toCredential(r: CredentialRow): Credential {
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

export function toActive(r: ActiveRow): ActiveCredential {
  return { ...toCredential(r), tenant: r.tenant, role: r.role as ClientRole };
}

export function toClientRecord(r: ClientRow, credentials: readonly CredentialRow[]): ClientRecord {
  return {
    name: r.name,
    tenant: r.tenant,
    role: r.role as ClientRole,
    createdAt: date(r.created_at),
    revokedAt: optDate(r.revoked_at),
    revocationReason: r.revocation_reason ?? undefined,
    lastSeenAt: optDate(r.last_seen_at),
    lastSeenFingerprint: r.last_seen_fingerprint ?? undefined,
    credentials: credentials.map(toCredential),
  };
}

// ------------------------------------------------------------------ rules, shared by the backends

/** A certificate identifies one client, forever (a revoked one cannot come back under a new name). */
export function leafTaken(existing: CredentialRow): ClientRegistryError {
  return new ClientRegistryError(
    `certificate sha256 ${existing.fingerprint} is already registered for client ${existing.client_name}${existing.revoked_at !== null ? ' (revoked)' : ''}`,
  );
}

/**
 * An unrestricted trust in a CA and a subject-restricted one (or two trusts for the same subject)
 * would make the identity ambiguous. `sameCa`: the active trusts of that CA.
 */
export function caTrustClash(sameCa: readonly ActiveRow[], c: NewCredential): ClientRegistryError | undefined {
  const clash = sameCa.find((r) => r.subject === null || c.subject === undefined || r.subject === c.subject);
  if (!clash) return undefined;
  return new ClientRegistryError(
    `CA sha256 ${c.fingerprint} is already trusted for client ${clash.client_name}${clash.subject ? ` (subject ${clash.subject})` : ' (any subject)'}; give each client its own --subject`,
  );
}

/** The credentials of `record` that `fingerprint` names, or why there is none to revoke. */
export function credentialsToRevoke(record: ClientRecord | undefined, name: string, fingerprint: string): Credential[] {
  if (!record) throw new ClientRegistryError(`no client named ${name}`);
  const matches = record.credentials.filter((c) => c.fingerprint === fingerprint.toLowerCase() && c.revokedAt === undefined);
  if (matches.length === 0) throw new ClientRegistryError(`client ${name} has no active certificate with sha256 ${fingerprint}`);
  return matches;
}

/**
 * Last-seen bookkeeping is throttled in memory: an UPDATE that changes nothing still takes a write
 * lock (SQLite) or writes a row version (PostgreSQL). This only decides when to write, never
 * whether a client is admitted.
 */
export class TouchThrottle {
  private readonly touched = new Map<string, number>();

  /** True if a write is due for this client and certificate at `s` (and notes it as done). */
  due(name: string, fingerprint: string, s: number, minIntervalS: number): boolean {
    const key = `${name}\n${fingerprint}`;
    if ((this.touched.get(key) ?? Number.NEGATIVE_INFINITY) > s - minIntervalS) return false;
    if (this.touched.size > 10_000) this.touched.clear();
    this.touched.set(key, s);
    return true;
  }
}
