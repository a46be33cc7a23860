// The KMIP listener: mutual TLS on each connection, messages cut from the stream by the framer and
// answered strictly in order. A bad peer is closed without disturbing anyone else; stop() lets
// in-flight requests finish before closing. Limits (connection-guard.ts) bound what one peer can
// hold: connections, handshake/idle/read time, and requests queued on one connection.
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { TtlvFramer, TtlvError } from '../ttlv/index.js';
import { Tag } from '../kmip/registry/generated.js';
import type { Dispatcher } from '../operations/dispatch.js';
import type { ClientIdentity } from '../operations/context.js';
import { tlsServerOptions, type TlsMaterial } from './tls-options.js';
import type { ConnectionGate, Refusal } from './client-trust.js';
import { handshakeFailureReason } from './metrics.js';
import { ClientConnectionCounter, ConnectionTimers, HandshakeDeadlines, type ConnectionLimits } from './connection-guard.js';
import { DEFAULT_LIMITS } from './limits.js';
import { whenLogsWritten } from './log-destination.js';

/**
 * Requests read from one connection and not yet answered. Past it we stop reading from the socket
 * (TCP backpressure) instead of queueing: a client pipelining requests faster than the HSM
 * answers must not grow our memory without bound.
 */
export const MAX_QUEUED_REQUESTS = 8;

export interface KmipServerOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: TlsMaterial;
  readonly maxMessageSize: number;
  readonly dispatcher: Dispatcher;
  readonly log: Logger;
  /** Decides, after the handshake and before any byte is read, whether the peer is an enrolled client. */
  readonly gate: ConnectionGate;
  /** Connection limits and timeouts; each missing one takes its default (DEFAULT_LIMITS). */
  readonly limits?: Partial<ConnectionLimits>;
  /** Counts connections and refusals (metrics). */
  readonly observe?: ConnectionObserver;
  /**
   * The listener is shared with other serve processes (node:cluster). Node's own maxConnections
   * does not drop a connection there but hands it to another process or holds it for later, so a
   * flood would queue in the primary: this process closes the excess itself.
   */
  readonly sharedListener?: boolean;
  /**
   * Called as each connection and each request arrives, before anything is read for it: the
   * store's change checks may be shared until the next call (StoreBackend.shareChangeChecks).
   */
  readonly arrived?: () => void;
}

/** Connection events, with bounded reason labels. */
export interface ConnectionObserver {
  /** An admitted client connection opened / closed. */
  connectionOpened(): void;
  connectionClosed(): void;
  /** A connection ended before any KMIP was read: failed handshake, refused certificate, limits. */
  handshakeFailed(reason: string): void;
}

export class KmipServer {
  private readonly server: Server;
  private readonly sockets = new Set<TLSSocket>();
  /** The admitted identity of each open connection (to close a revoked client's connections). */
  private readonly identities = new Map<TLSSocket, ClientIdentity>();
  private readonly inFlight = new Set<Promise<void>>();
  /** Requests received and not yet answered, over all connections (stop() waits for them). */
  private queued = 0;
  private readonly drained: (() => void)[] = [];
  private stopping = false;
  private readonly limits: ConnectionLimits;
  private readonly handshakes: HandshakeDeadlines;
  private readonly perClient: ClientConnectionCounter;

  constructor(private readonly opts: KmipServerOptions) {
    const limits = { ...pickConnectionLimits(DEFAULT_LIMITS), ...definedOnly(opts.limits) };
    this.limits = limits;
    // Counted where the TLS layer reports it (tlsClientError), like every other handshake failure.
    this.handshakes = new HandshakeDeadlines(limits.handshakeTimeoutMs, (remote) =>
      opts.log.info({ remote }, 'TLS handshake not completed in time; connection closed'),
    );
    this.perClient = new ClientConnectionCounter(limits.maxConnectionsPerClient);
    this.server = createServer({ ...tlsServerOptions(opts.tls), handshakeTimeout: limits.handshakeTimeoutMs }, (socket) =>
      this.onConnection(socket),
    );
    const refuse = (remote: string | undefined) => {
      opts.log.warn({ remote, max: limits.maxConnections }, 'connection refused: too many connections');
      opts.observe?.handshakeFailed('too_many_connections');
    };
    if (opts.sharedListener) {
      let open = 0;
      this.server.on('connection', (raw: Socket) => {
        if (open >= limits.maxConnections) {
          refuse(raw.remoteAddress);
          raw.destroy();
          return;
        }
        open += 1;
        raw.once('close', () => (open -= 1));
        this.handshakes.accepted(raw);
      });
    } else {
      // Past maxConnections Node closes new TCP connections before any TLS work is done.
      this.server.maxConnections = limits.maxConnections;
      this.server.on('drop', (d) => refuse(d?.remoteAddress));
      this.server.on('connection', (raw: Socket) => this.handshakes.accepted(raw));
    }
    this.server.on('tlsClientError', (err, socket) => {
      opts.log.info({ remote: socket.remoteAddress, err: err.message }, 'TLS handshake refused');
      // Settled here: our own deadline must not fire for it too (and count it twice). When our
      // deadline fired first, `err` is its ERR_KMIPD_HANDSHAKE_TIMEOUT.
      this.handshakes.handshakeDone(socket);
      opts.observe?.handshakeFailed(handshakeFailureReason(err));
      // With a listener here Node leaves the socket open (even after its own handshake timeout).
      socket.destroy();
    });
  }

  async start(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  private onConnection(socket: TLSSocket): void {
    this.handshakes.handshakeDone(socket);
    // The verdict reads the client registry (a database, maybe over the network): no byte of the
    // connection is read until it is in.
    socket.pause();
    socket.on('error', (err) => this.opts.log.debug({ remote: socket.remoteAddress, err: err.message }, 'connection error'));
    this.opts.arrived?.();
    this.opts.gate.admit(socket).then(
      (client) => this.serveAdmitted(socket, client),
      (err: unknown) => {
        this.opts.log.error({ err, remote: socket.remoteAddress }, 'client verification failed');
        socket.destroy();
      },
    );
  }

  private serveAdmitted(socket: TLSSocket, client: ClientIdentity | Refusal): void {
    const log = this.opts.log;
    if (socket.destroyed) return; // the peer left while we were deciding
    if (this.stopping) {
      socket.destroy();
      return;
    }
    if ('refused' in client) {
      this.opts.observe?.handshakeFailed(client.refused);
      // The gate logged and audited why; that line is with the kernel before the peer sees the close.
      whenLogsWritten(() => socket.destroy());
      return;
    }
    if (!this.perClient.tryAcquire(client.fingerprintSha256)) {
      log.warn({ client: client.commonName, max: this.limits.maxConnectionsPerClient }, 'connection refused: too many connections for this client');
      this.opts.observe?.handshakeFailed('too_many_connections_for_client');
      socket.destroy();
      return;
    }
    this.opts.observe?.connectionOpened();
    this.sockets.add(socket);
    this.identities.set(socket, client);
    const framer = new TtlvFramer({ maxMessageSize: this.opts.maxMessageSize, expectedTag: Tag.RequestMessage });
    const timers = new ConnectionTimers(this.limits, (why) => {
      log.info({ client: client.commonName, why }, why === 'idle' ? 'closing idle connection' : 'closing connection: request not completed in time');
      socket.destroy();
    });
    // Requests on one connection are answered in order: each waits for the previous one.
    let chain: Promise<void> = Promise.resolve();
    let waiting = 0; // read from this socket, not yet answered
    const settle = () => {
      waiting -= 1;
      this.requestDone();
      timers.answered();
      if (waiting < MAX_QUEUED_REQUESTS && socket.isPaused() && !socket.destroyed) {
        socket.resume();
        timers.setPaused(false);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      let messages: Buffer[];
      try {
        messages = framer.push(chunk);
      } catch (err) {
        // Not KMIP, or a length we refuse to buffer: close at once.
        log.warn({ client: client.commonName, err: err instanceof TtlvError ? err.message : String(err) }, 'closing connection: bad framing');
        socket.destroy();
        return;
      }
      timers.received(framer.bufferedBytes, messages.length);
      if (this.stopping) {
        // Requests sent after the stop began are not started; those already read are answered.
        for (const raw of messages) raw.fill(0);
        if (waiting === 0) socket.end();
        return;
      }
      for (const raw of messages) {
        waiting += 1;
        this.queued += 1;
        // The last request read before a stop is still answered: the connection is ended after it.
        const last = () => this.stopping && waiting === 1;
        chain = chain.then(() => this.track(this.answer(socket, raw, client, last))).finally(settle);
      }
      if (waiting >= MAX_QUEUED_REQUESTS) {
        socket.pause();
        timers.setPaused(true);
      }
    });
    socket.on('close', () => {
      this.opts.observe?.connectionClosed();
      timers.stop();
      this.perClient.release(client.fingerprintSha256);
      this.sockets.delete(socket);
      this.identities.delete(socket);
    });
    socket.resume();
  }

  private requestDone(): void {
    this.queued -= 1;
    if (this.queued === 0) for (const wake of this.drained.splice(0)) wake();
  }

  private track(p: Promise<void>): Promise<void> {
    this.inFlight.add(p);
    return p.finally(() => this.inFlight.delete(p));
  }

  private async answer(socket: TLSSocket, raw: Buffer, client: ClientIdentity, last: () => boolean): Promise<void> {
    this.opts.arrived?.();
    if (socket.destroyed || !(await this.opts.gate.stillAdmitted(client))) {
      raw.fill(0);
      if (!socket.destroyed) this.opts.log.warn({ client: client.name }, 'client no longer trusted; closing connection');
      socket.destroy();
      return;
    }
    try {
      const result = await this.opts.dispatcher.handle(raw, client);
      raw.fill(0); // a Register request carries plaintext key material
      // Not before its audit lines are with the kernel; the answers finished in one turn of the
      // event loop share one write of the audit log.
      await new Promise<void>((resolve, reject) => {
        whenLogsWritten(() => {
          try {
            socket.write(result.response, () => resolve());
          } catch (err) {
            reject(err);
          }
        });
      });
      if (result.sensitive) result.response.fill(0);
      if (result.close || last()) socket.end();
    } catch (err) {
      this.opts.log.error({ err, client: client.commonName }, 'request failed; closing connection');
      socket.destroy();
    }
  }

  /** The identities of the open, admitted connections (one entry per connection). */
  admittedClients(): ClientIdentity[] {
    return [...this.identities.values()];
  }

  /** Close the connections of every admitted client matching `which` (a revoked one, say). */
  closeConnectionsOf(which: (client: ClientIdentity) => boolean): number {
    let n = 0;
    for (const [socket, client] of this.identities) {
      if (!which(client)) continue;
      this.opts.log.warn({ client: client.name }, 'client no longer trusted; closing connection');
      socket.destroy();
      n += 1;
    }
    return n;
  }

  /** Serve a new certificate and key to new connections; open ones keep theirs. */
  reloadTls(pair: { cert: string; key: string }): void {
    // Keep the session ticket keys so that clients can still resume across the change.
    this.server.setSecureContext({ ...tlsServerOptions({ ...this.opts.tls, ...pair }), ticketKeys: this.server.getTicketKeys() });
  }

  /** Stop accepting, let in-flight requests finish, then close every connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // Every request already read is answered first (a connection whose last answer went out
    // during the stop has ended itself); then whatever is still open is ended.
    if (this.queued > 0) await new Promise<void>((resolve) => this.drained.push(resolve));
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    for (const s of this.sockets) s.end();
    const deadline = setTimeout(() => this.sockets.forEach((s) => s.destroy()), 2000);
    await closed;
    clearTimeout(deadline);
  }
}

function pickConnectionLimits(l: ConnectionLimits): ConnectionLimits {
  const { handshakeTimeoutMs, idleTimeoutMs, readTimeoutMs, maxConnections, maxConnectionsPerClient } = l;
  return { handshakeTimeoutMs, idleTimeoutMs, readTimeoutMs, maxConnections, maxConnectionsPerClient };
}

function definedOnly<T extends object>(o: Partial<T> | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}
