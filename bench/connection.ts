// One persistent mutual-TLS connection to a KMIP server on loopback, answering requests in order.
import { readFileSync } from 'node:fs';
import { connect, createSecureContext, type ConnectionOptions, type SecureContext, type TLSSocket } from 'node:tls';
import { TtlvFramer } from '../src/ttlv/index.js';
import { Tag } from '../src/kmip/registry/generated.js';

/** Where a server listens and how to speak TLS to it. Always loopback: the benchmark never leaves the machine. */
export interface Endpoint {
  readonly port: number;
  /** TLS settings the server needs (PyKMIP's server speaks only TLS 1.2 with its own suites). */
  readonly tls: { readonly maxVersion?: 'TLSv1.2' | 'TLSv1.3'; readonly ciphers?: string };
}

export interface ClientFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export interface ClientMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
}

export const LOOPBACK = '127.0.0.1';

export function readClientMaterial(f: ClientFiles): ClientMaterial {
  return { cert: readFileSync(f.cert), key: readFileSync(f.key), ca: readFileSync(f.ca) };
}

/**
 * One TLS context per key material and TLS settings, built once: parsing the PEM key and CA on
 * every connect would make the generator, not the server, the limit on new connections per second.
 */
const contexts = new WeakMap<ClientMaterial, Map<string, SecureContext>>();

function secureContextFor(material: ClientMaterial, tls: Endpoint['tls']): SecureContext {
  let byTls = contexts.get(material);
  if (!byTls) contexts.set(material, (byTls = new Map()));
  const key = `${tls.maxVersion ?? ''}|${tls.ciphers ?? ''}`;
  let ctx = byTls.get(key);
  if (!ctx) {
    ctx = createSecureContext({
      cert: material.cert,
      key: material.key,
      ca: material.ca,
      ...(tls.maxVersion ? { maxVersion: tls.maxVersion } : {}),
      ...(tls.ciphers ? { ciphers: tls.ciphers } : {}),
    });
    byTls.set(key, ctx);
  }
  return ctx;
}

export class ConnectionClosed extends Error {}

type Waiter = { resolve(b: Buffer): void; reject(e: Error): void };

export class BenchConnection {
  private readonly framer = new TtlvFramer({ maxMessageSize: 16 << 20, expectedTag: Tag.ResponseMessage });
  private readonly waiters: Waiter[] = [];
  private failure: Error | undefined;
  /** Latest TLS session the server handed out (for resumption). */
  session: Buffer | undefined;

  private constructor(readonly socket: TLSSocket) {
    socket.setNoDelay(true);
    socket.on('session', (s: Buffer) => {
      this.session = s;
    });
    socket.on('data', (chunk: Buffer) => {
      let messages: Buffer[];
      try {
        messages = this.framer.push(chunk);
      } catch (err) {
        this.fail(() => (err instanceof Error ? err : new Error(String(err))));
        return;
      }
      for (const m of messages) this.waiters.shift()?.resolve(m);
    });
    socket.on('error', (err) => this.fail(() => err));
    socket.on('close', () => this.fail(() => new ConnectionClosed('connection closed by the server')));
  }

  static open(endpoint: Endpoint, material: ClientMaterial, session?: Buffer, connectTimeoutMs = 30_000): Promise<BenchConnection> {
    const options: ConnectionOptions = {
      host: LOOPBACK,
      port: endpoint.port,
      secureContext: secureContextFor(material, endpoint.tls),
      servername: 'localhost',
      ...(session ? { session } : {}),
    };
    return new Promise((resolve, reject) => {
      const socket = connect(options);
      const conn = new BenchConnection(socket);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('TLS handshake timed out'));
      }, connectTimeoutMs);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        resolve(conn);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  get reused(): boolean {
    return this.socket.isSessionReused();
  }

  get open(): boolean {
    return this.failure === undefined;
  }

  /** Sends one request; resolves with the next answer (answers come in request order). */
  request(bytes: Uint8Array): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.socket.write(bytes);
    });
  }

  close(): void {
    this.fail(() => new ConnectionClosed('closed by the client'));
    this.socket.destroy();
  }

  /**
   * Made lazily: an Error captures a stack, and every connection of the new-connections suite
   * closes (3 % of the generator's CPU when each close built one).
   */
  private fail(why: () => Error): void {
    this.failure ??= why();
    for (const w of this.waiters.splice(0)) w.reject(this.failure);
  }
}
