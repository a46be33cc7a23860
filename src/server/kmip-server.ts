// The KMIP listener: mutual TLS on each connection, messages cut from the stream by the framer and
// answered strictly in order. A bad peer is closed without disturbing anyone else; stop() lets
// in-flight requests finish before closing.
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { TtlvFramer, TtlvError } from '../ttlv/index.js';
import { Tag } from '../kmip/registry/generated.js';
import type { Dispatcher } from '../operations/dispatch.js';
import type { ClientIdentity } from '../operations/context.js';
import { tlsServerOptions, type TlsMaterial } from './tls-options.js';

export interface KmipServerOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: TlsMaterial;
  readonly maxMessageSize: number;
  readonly dispatcher: Dispatcher;
  readonly log: Logger;
}

export function clientIdentity(socket: TLSSocket): ClientIdentity | undefined {
  const cert = socket.getPeerCertificate();
  if (!cert || !cert.fingerprint256) return undefined;
  const cn = cert.subject?.CN;
  return {
    commonName: Array.isArray(cn) ? cn.join(',') : (cn ?? ''),
    fingerprintSha256: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
  };
}

export class KmipServer {
  private readonly server: Server;
  private readonly sockets = new Set<TLSSocket>();
  private readonly inFlight = new Set<Promise<void>>();
  private stopping = false;

  constructor(private readonly opts: KmipServerOptions) {
    this.server = createServer(tlsServerOptions(opts.tls), (socket) => this.onConnection(socket));
    this.server.on('tlsClientError', (err, socket) => {
      opts.log.info({ remote: socket.remoteAddress, err: err.message }, 'TLS handshake refused');
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
    const log = this.opts.log;
    const client = clientIdentity(socket);
    if (!socket.authorized || !client) {
      log.warn({ remote: socket.remoteAddress }, 'connection without a verified client certificate');
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    const framer = new TtlvFramer({ maxMessageSize: this.opts.maxMessageSize, expectedTag: Tag.RequestMessage });
    // Requests on one connection are answered in order: each waits for the previous one.
    let chain: Promise<void> = Promise.resolve();
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
      for (const raw of messages) {
        chain = chain.then(() => this.track(this.answer(socket, raw, client)));
      }
    });
    socket.on('error', (err) => log.debug({ client: client.commonName, err: err.message }, 'connection error'));
    socket.on('close', () => this.sockets.delete(socket));
  }

  private track(p: Promise<void>): Promise<void> {
    this.inFlight.add(p);
    return p.finally(() => this.inFlight.delete(p));
  }

  private async answer(socket: TLSSocket, raw: Buffer, client: ClientIdentity): Promise<void> {
    if (socket.destroyed) return;
    try {
      const result = await this.opts.dispatcher.handle(raw, client);
      raw.fill(0); // a Register request carries plaintext key material
      await new Promise<void>((resolve) => {
        socket.write(result.response, () => resolve());
      });
      if (result.sensitive) result.response.fill(0);
      if (result.close || this.stopping) socket.end();
    } catch (err) {
      this.opts.log.error({ err, client: client.commonName }, 'request failed; closing connection');
      socket.destroy();
    }
  }

  /** Stop accepting, let in-flight requests finish, then close every connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    for (const s of this.sockets) s.end();
    const deadline = setTimeout(() => this.sockets.forEach((s) => s.destroy()), 2000);
    await closed;
    clearTimeout(deadline);
  }
}
