// Who may talk KMIP to us. The TLS layer asks for a client certificate and proves the peer holds
// its key, but accepts any certificate (`rejectUnauthorized: false`): vCenter's own certificate is
// often self-signed and lacks the clientAuth usage, and trusted external CAs change at run time.
// The verdict is ours, taken right after the handshake and before a single byte of the connection
// is read, against the client registry in the store:
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

/** The server's view of admission: decided once per connection, re-checked before each request. */
export interface ConnectionGate {
  /** The identity of an admitted peer, or undefined: the caller must then close the connection. */
  admit(socket: TLSSocket): ClientIdentity | undefined;
  /** Whether an admitted identity is still trusted (not revoked, same tenant and role, not expired). */
  stillAdmitted(client: ClientIdentity): boolean;
}

interface Admission {
  readonly credentialId: number;
  /** The earlier of the leaf's and the trusted credential's expiry. */
  readonly expires: Date;
}

type Verdict = { readonly identity: ClientIdentity; readonly admission: Admission } | { readonly refused: string; readonly fingerprint?: string };

/** Resumed TLS sessions carry the leaf but not the intermediates: remember verified chains. */
const MAX_REMEMBERED_CHAINS = 1024;
const MAX_CHAIN = 8;

function peerChain(socket: TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  let cur = socket.getPeerCertificate(true);
  const seen = new Set<object>();
  while (cur && cur.raw && !seen.has(cur) && out.length < MAX_CHAIN) {
    seen.add(cur);
    out.push(new X509Certificate(cur.raw));
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

export class ClientTrust implements ConnectionGate {
  private readonly admissions = new WeakMap<ClientIdentity, Admission>();
  private readonly anchors = new Map<number, X509Certificate>();
  private readonly chains = new Map<string, X509Certificate[]>();

  constructor(
    private readonly registry: ClientRegistry,
    private readonly log: Logger,
    private readonly audit: Logger,
  ) {}

  admit(socket: TLSSocket): ClientIdentity | undefined {
    let verdict: Verdict;
    try {
      verdict = this.evaluate(socket);
    } catch (err) {
      // Fail closed: a registry we cannot read admits nobody.
      this.log.error({ err, remote: socket.remoteAddress }, 'client verification failed');
      verdict = { refused: 'client registry unavailable' };
    }
    if ('refused' in verdict) {
      this.log.warn({ remote: socket.remoteAddress, fingerprint: verdict.fingerprint, reason: verdict.refused }, 'connection refused');
      this.audit.info(
        { operation: 'Connect', fingerprint: verdict.fingerprint, remote: socket.remoteAddress, result: 'Refused', reason: verdict.refused },
        'connection refused',
      );
      return undefined;
    }
    const { identity, admission } = verdict;
    this.admissions.set(identity, admission);
    try {
      this.registry.touch(identity.name, identity.fingerprintSha256);
    } catch (err) {
      this.log.warn({ err, client: identity.name }, 'could not record last-seen time');
    }
    return identity;
  }

  stillAdmitted(client: ClientIdentity, now = new Date()): boolean {
    const admission = this.admissions.get(client);
    if (!admission || now > admission.expires) return false;
    let cred: ActiveCredential | undefined;
    try {
      cred = this.registry.activeCredential(admission.credentialId);
    } catch (err) {
      // Never throws into the request path; a registry we cannot read keeps nobody in.
      this.log.error({ err, client: client.name }, 'client registry unavailable; closing the connection');
      return false;
    }
    return cred !== undefined && cred.tenant === client.tenant && cred.role === client.role && cred.clientName === client.name;
  }

  private evaluate(socket: TLSSocket): Verdict {
    // One call for the whole chain: on Node 20, asking for the X509Certificate first leaves
    // getPeerCertificate(true) without the intermediates.
    const [leaf, ...sent] = peerChain(socket);
    if (!leaf) return { refused: 'no client certificate' };
    const fingerprint = createHash('sha256').update(leaf.raw).digest('hex');
    const now = new Date();
    const pinned = this.registry.activeLeaf(fingerprint);
    if (pinned) {
      try {
        checkPinnedCertificate(leaf, now);
      } catch (err) {
        return { refused: (err as Error).message, fingerprint };
      }
      return this.admitted(pinned, leaf, fingerprint);
    }
    const owner = this.registry.leafOwner(fingerprint);
    if (owner?.revoked) return { refused: `certificate of client ${owner.clientName} is revoked`, fingerprint };

    const intermediates = sent.length > 0 || !socket.isSessionReused() ? sent : (this.chains.get(fingerprint) ?? []);
    const matches: ActiveCredential[] = [];
    let why = 'certificate is not enrolled';
    for (const cred of this.registry.activeCaTrusts()) {
      try {
        checkIssuedUnder(leaf, intermediates, this.anchor(cred), now);
      } catch (err) {
        if (err instanceof CertificateRejected && !err.message.includes('not issued under')) why = err.message;
        continue;
      }
      if (cred.subject !== undefined && canonicalSubject(inspectCertificate(leaf).subject) !== cred.subject) {
        why = 'certificate subject is not the one trusted for this CA';
        continue;
      }
      matches.push(cred);
    }
    if (matches.length > 1) return { refused: `certificate matches ${matches.length} clients (${matches.map((m) => m.clientName).join(', ')})`, fingerprint };
    const [match] = matches;
    if (!match) return { refused: why, fingerprint };
    if (sent.length > 0) this.rememberChain(fingerprint, sent);
    return this.admitted(match, leaf, fingerprint);
  }

  private admitted(cred: ActiveCredential, leaf: X509Certificate, fingerprint: string): Verdict {
    const leafExpiry = certificateTimes(leaf).notAfter;
    return {
      identity: { name: cred.clientName, tenant: cred.tenant, role: cred.role, commonName: commonNameOf(leaf), fingerprintSha256: fingerprint },
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
