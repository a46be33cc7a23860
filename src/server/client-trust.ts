// Who may talk KMIP to us. The TLS layer asks for a client certificate and proves the peer holds
// its key, but accepts any certificate (`rejectUnauthorized: false`): vCenter's own certificate is
// often self-signed and lacks the clientAuth usage, and trusted external CAs change at run time.
// The verdict is ours, taken right after the handshake and before a single byte of the connection
// is read (the server keeps the socket paused while the registry answers), against the client
// registry in the store, which every node shares and reads afresh for each verdict:
//   - issued / pinned: the certificate's SHA-256 is an active credential of a non-revoked client;
//   - ca: the certificate chains (through intermediates it sent) to a CA trusted for a client,
//     with that client's subject if one was set.
// Unknown, revoked, expired or ambiguous → the connection is destroyed. With TLS 1.3 the client
// completes its handshake before the verdict, so it learns of a refusal as a closed connection.
import { createHash, X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { ClientIdentity } from '../operations/context.js';
import type { ActiveCredential, ClientRegistry } from '../store/client-registry.js';
import {
  CertificateRejected,
  canonicalSubject,
  certificateTimes,
  checkIssuedUnder,
  checkPinnedCertificate,
  inspectCertificate,
} from '../pki/index.js';

/** Why a connection was refused, as a bounded label (metrics); the log and audit say it in full. */
export type RefusalKind =
  | 'no_client_certificate'
  | 'untrusted_certificate'
  | 'revoked_certificate'
  | 'expired_certificate'
  | 'invalid_certificate'
  | 'ambiguous_certificate'
  | 'registry_unavailable';

export interface Refusal {
  readonly refused: RefusalKind;
}

/** The server's view of admission: decided once per connection, re-checked before each request. */
export interface ConnectionGate {
  /** The identity of an admitted peer, or a refusal: the caller must then close the connection. Never rejects. */
  admit(socket: TLSSocket): Promise<ClientIdentity | Refusal>;
  /** Whether an admitted identity is still trusted (not revoked, same tenant and role, not expired). Never rejects. */
  stillAdmitted(client: ClientIdentity): Promise<boolean>;
}

interface Admission {
  readonly credentialId: number;
  /** The earlier of the leaf's and the trusted credential's expiry. */
  readonly expires: Date;
}

type Verdict =
  | { readonly identity: ClientIdentity; readonly admission: Admission }
  | { readonly refused: string; readonly kind: RefusalKind; readonly fingerprint?: string };

/** A certificate check that failed on an otherwise known certificate: expired, or wrong in another way. */
function rejectedKind(err: unknown): RefusalKind {
  return err instanceof CertificateRejected && /\bexpired on\b/.test(err.message) ? 'expired_certificate' : 'invalid_certificate';
}

/** Resumed TLS sessions carry the leaf but not the intermediates: remember verified chains. */
const MAX_REMEMBERED_CHAINS = 1024;
const MAX_CHAIN = 8;

/**
 * Parsed certificates by SHA-256 of their DER. Every ESXi host of a vCenter presents the same
 * certificate, and parsing it was the largest cost of a resumed connection (16 % of the server's
 * CPU). X509Certificate is immutable, so one object can serve every connection, and what does not
 * depend on time is worked out once per object (here: fingerprint and common name; in pki: parsed
 * fields, key strength, signatures). Verification against the registry and the clock is still
 * done for each connection.
 */
const MAX_PARSED_CERTIFICATES = 1024;
interface PeerCertificate {
  readonly cert: X509Certificate;
  /** SHA-256 of the DER, lowercase hex: the registry's key for a pinned or issued certificate. */
  readonly fingerprint: string;
  readonly commonName: string;
}
const parsed = new Map<string, PeerCertificate>();

function known(raw: Buffer, sha256Colons: string, parse: () => X509Certificate): PeerCertificate {
  const hit = parsed.get(sha256Colons);
  if (hit && hit.cert.raw.equals(raw)) return hit;
  const cert = parse();
  const entry = { cert, fingerprint: createHash('sha256').update(cert.raw).digest('hex'), commonName: commonNameOf(cert) };
  if (parsed.size >= MAX_PARSED_CERTIFICATES) parsed.delete(parsed.keys().next().value!);
  parsed.set(cert.fingerprint256, entry);
  return entry;
}

/**
 * The peer's certificate chain as sent, leaf first. A resumed session holds only the leaf, which
 * Node hands out as an X509Certificate without building the JavaScript description of every field
 * that getPeerCertificate() makes (11 % of a resumed connection's server CPU in its profile).
 */
function peerChain(socket: TLSSocket): PeerCertificate[] {
  if (socket.isSessionReused()) {
    const leaf = socket.getPeerX509Certificate();
    return leaf ? [known(leaf.raw, leaf.fingerprint256, () => leaf)] : [];
  }
  const out: PeerCertificate[] = [];
  let cur = socket.getPeerCertificate(true);
  const seen = new Set<object>();
  while (cur && cur.raw && !seen.has(cur) && out.length < MAX_CHAIN) {
    seen.add(cur);
    const raw = cur.raw;
    out.push(known(raw, cur.fingerprint256, () => new X509Certificate(raw)));
    const next = cur.issuerCertificate;
    if (!next || next === cur) break;
    cur = next;
  }
  return out;
}

function commonNameOf(cert: X509Certificate): string {
  try {
    return inspectCertificate(cert).subject.filter(([t]) => t === 'CN').map(([, v]) => v).at(-1) ?? '';
  } catch {
    return '';
  }
}

/** A registry read that failed, kept as a value so that one failure does not stop the others. */
class RegistryFailure {
  constructor(readonly cause: unknown) {}
}

/**
 * Whether the credential a client was admitted under is still active and still says who it is.
 * A registry we cannot read keeps nobody in.
 */
function stillMatches(client: ClientIdentity, cred: ActiveCredential | undefined | RegistryFailure): boolean {
  if (cred === undefined || cred instanceof RegistryFailure) return false;
  return cred.tenant === client.tenant && cred.role === client.role && cred.clientName === client.name;
}

export class ClientTrust implements ConnectionGate {
  private readonly admissions = new WeakMap<ClientIdentity, Admission>();
  private readonly anchors = new Map<number, X509Certificate>();
  private readonly chains = new Map<string, X509Certificate[]>();

  constructor(
    private readonly registry: ClientRegistry,
    private readonly log: Logger,
    private readonly audit: Logger,
  ) {}

  async admit(socket: TLSSocket): Promise<ClientIdentity | Refusal> {
    let verdict: Verdict;
    try {
      verdict = await this.evaluate(socket);
    } catch (err) {
      // Fail closed: a registry we cannot read admits nobody.
      this.log.error({ err, remote: socket.remoteAddress }, 'client verification failed');
      verdict = { refused: 'client registry unavailable', kind: 'registry_unavailable' };
    }
    if ('refused' in verdict) {
      this.log.warn({ remote: socket.remoteAddress, fingerprint: verdict.fingerprint, reason: verdict.refused }, 'connection refused');
      this.audit.info(
        { operation: 'Connect', fingerprint: verdict.fingerprint, remote: socket.remoteAddress, result: 'Refused', reason: verdict.refused },
        'connection refused',
      );
      return { refused: verdict.kind };
    }
    const { identity, admission } = verdict;
    this.admissions.set(identity, admission);
    // Bookkeeping only: the connection does not wait for it.
    this.registry.touch(identity.name, identity.fingerprintSha256).catch((err: unknown) => {
      this.log.warn({ err, client: identity.name }, 'could not record last-seen time');
    });
    return identity;
  }

  /** noLongerAdmitted for one client, asked before every request: no batch bookkeeping. */
  async stillAdmitted(client: ClientIdentity, now = new Date()): Promise<boolean> {
    const admission = this.unexpiredAdmission(client, now);
    return admission !== undefined && stillMatches(client, await this.readCredential(admission.credentialId));
  }

  /**
   * The clients among `clients` that are no longer admitted. Connections sharing one credential
   * (vCenter and its ESXi hosts use one certificate) cost one registry read, and the clients are
   * then checked in one synchronous pass: the once-a-second sweep over 10 000 connections used to
   * await each of them in turn, a chain of microtasks that held up every other request.
   */
  async noLongerAdmitted(clients: readonly ClientIdentity[], now = new Date()): Promise<Set<ClientIdentity>> {
    const gone = new Set<ClientIdentity>();
    const reads = new Map<number, Promise<ActiveCredential | undefined | RegistryFailure>>();
    const toCheck: [ClientIdentity, number][] = [];
    for (const client of clients) {
      const admission = this.unexpiredAdmission(client, now);
      if (!admission) {
        gone.add(client);
        continue;
      }
      const id = admission.credentialId;
      if (!reads.has(id)) reads.set(id, this.readCredential(id));
      toCheck.push([client, id]);
    }
    const creds = new Map<number, ActiveCredential | undefined | RegistryFailure>();
    for (const [id, read] of reads) creds.set(id, await read);
    for (const [client, id] of toCheck) if (!stillMatches(client, creds.get(id))) gone.add(client);
    return gone;
  }

  /** The client's admission, unless it is unknown or its certificate or credential has expired. */
  private unexpiredAdmission(client: ClientIdentity, now: Date): Admission | undefined {
    const admission = this.admissions.get(client);
    if (!admission || now > admission.expires) return undefined;
    return admission;
  }

  /** activeCredential that never throws into the request path: a failure is logged and returned. */
  private readCredential(id: number): Promise<ActiveCredential | undefined | RegistryFailure> {
    return this.registry.activeCredential(id).catch((err: unknown) => {
      this.log.error({ err, credentialId: id }, 'client registry unavailable; closing the connections of that credential');
      return new RegistryFailure(err);
    });
  }

  private async evaluate(socket: TLSSocket): Promise<Verdict> {
    // One call for the whole chain: on Node 20, asking for the X509Certificate first leaves
    // getPeerCertificate(true) without the intermediates.
    const [peer, ...sentPeers] = peerChain(socket);
    if (!peer) return { refused: 'no client certificate', kind: 'no_client_certificate' };
    const { cert: leaf, fingerprint } = peer;
    const sent = sentPeers.map((p) => p.cert);
    const now = new Date();
    const pinned = await this.registry.activeLeaf(fingerprint);
    if (pinned) {
      try {
        checkPinnedCertificate(leaf, now);
      } catch (err) {
        return { refused: (err as Error).message, kind: rejectedKind(err), fingerprint };
      }
      return this.admitted(pinned, peer);
    }
    const owner = await this.registry.leafOwner(fingerprint);
    if (owner?.revoked) return { refused: `certificate of client ${owner.clientName} is revoked`, kind: 'revoked_certificate', fingerprint };

    const intermediates = sent.length > 0 || !socket.isSessionReused() ? sent : (this.chains.get(fingerprint) ?? []);
    const matches: ActiveCredential[] = [];
    let why = 'certificate is not enrolled';
    let kind: RefusalKind = 'untrusted_certificate';
    for (const cred of await this.registry.activeCaTrusts()) {
      try {
        checkIssuedUnder(leaf, intermediates, this.anchor(cred), now);
      } catch (err) {
        if (err instanceof CertificateRejected && !err.message.includes('not issued under')) {
          why = err.message;
          kind = rejectedKind(err);
        }
        continue;
      }
      if (cred.subject !== undefined && canonicalSubject(inspectCertificate(leaf).subject) !== cred.subject) {
        why = 'certificate subject is not the one trusted for this CA';
        kind = 'untrusted_certificate';
        continue;
      }
      matches.push(cred);
    }
    if (matches.length > 1) {
      return { refused: `certificate matches ${matches.length} clients (${matches.map((m) => m.clientName).join(', ')})`, kind: 'ambiguous_certificate', fingerprint };
    }
    const [match] = matches;
    if (!match) return { refused: why, kind, fingerprint };
    if (sent.length > 0) this.rememberChain(fingerprint, sent);
    return this.admitted(match, peer);
  }

  private admitted(cred: ActiveCredential, peer: PeerCertificate): Verdict {
    const leafExpiry = certificateTimes(peer.cert).notAfter;
    return {
      identity: { name: cred.clientName, tenant: cred.tenant, role: cred.role, commonName: peer.commonName, fingerprintSha256: peer.fingerprint },
      admission: { credentialId: cred.id, expires: leafExpiry < cred.notAfter ? leafExpiry : cred.notAfter },
    };
  }

  private anchor(cred: ActiveCredential): X509Certificate {
    let a = this.anchors.get(cred.id);
    if (!a) {
      a = new X509Certificate(cred.certificate);
      this.anchors.set(cred.id, a);
    }
    return a;
  }

  private rememberChain(fingerprint: string, chain: X509Certificate[]): void {
    this.chains.delete(fingerprint);
    this.chains.set(fingerprint, chain);
    if (this.chains.size > MAX_REMEMBERED_CHAINS) this.chains.delete(this.chains.keys().next().value!);
  }
}
