// What one connection may hold on to: time to finish the TLS handshake, time to finish a request
// once it has started, time to stay silent, and how many connections one certificate may keep.
// Node's own handshakeTimeout only emits 'tlsClientError' (and leaves the socket open when the
// server listens for that event), and which bytes re-arm it is an internal detail: the handshake
// deadline here is absolute, counted from TCP accept, and closes the raw socket itself.
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  readonly handshakeTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly readTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerClient: number;
}

/** Same key on the raw TCP socket and on the TLS socket wrapping it. */
function remoteKey(s: Pick<Socket, 'remoteAddress' | 'remotePort'>): string {
  return `${s.remoteAddress ?? '?'}|${s.remotePort ?? '?'}`;
}

/** Absolute deadline from TCP accept to a completed TLS handshake. */
export class HandshakeDeadlines {
  private readonly pending = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly timeoutMs: number,
    private readonly onExpired: (remote: string | undefined) => void,
  ) {}

  /** A TCP connection was accepted: it is destroyed unless handshakeDone() is called in time. */
  accepted(raw: Socket): void {
    const key = remoteKey(raw);
    const timer = setTimeout(() => {
      if (this.pending.get(key) === timer) this.pending.delete(key);
      this.onExpired(raw.remoteAddress);
      // With an error, so that the TLS layer reports this cause (tlsClientError), not a peer reset.
      raw.destroy(Object.assign(new Error(`TLS handshake not completed within ${this.timeoutMs} ms`), { code: 'ERR_KMIPD_HANDSHAKE_TIMEOUT' }));
    }, this.timeoutMs);
    timer.unref();
    this.pending.set(key, timer);
    raw.once('close', () => {
      clearTimeout(timer);
      if (this.pending.get(key) === timer) this.pending.delete(key);
    });
  }

  handshakeDone(socket: Pick<Socket, 'remoteAddress' | 'remotePort'>): void {
    const key = remoteKey(socket);
    clearTimeout(this.pending.get(key));
    this.pending.delete(key);
  }
}

/** Open connections per client certificate. */
export class ClientConnectionCounter {
  private readonly open = new Map<string, number>();

  constructor(private readonly maxPerClient: number) {}

  /** Counts the connection in, or returns false when the client is at its limit. */
  tryAcquire(fingerprint: string): boolean {
    const n = this.open.get(fingerprint) ?? 0;
    if (n >= this.maxPerClient) return false;
    this.open.set(fingerprint, n + 1);
    return true;
  }

  release(fingerprint: string): void {
    const n = (this.open.get(fingerprint) ?? 0) - 1;
    if (n > 0) this.open.set(fingerprint, n);
    else this.open.delete(fingerprint);
  }

  count(fingerprint: string): number {
    return this.open.get(fingerprint) ?? 0;
  }
}

export type Expiry = 'idle' | 'read';

/**
 * Idle and read timers of one connection. The idle timer runs only while nothing is outstanding
 * (no partial request, no request waiting for its answer): a slow HSM is not the client's fault.
 * The read timer runs from the first byte of a request to its last, so a peer that sends one
 * byte now and then (slowloris) is closed even though it is never idle. It stops while reading
 * is paused for backpressure, since the missing bytes are then our doing.
 */
export class ConnectionTimers {
  private idle: NodeJS.Timeout | undefined;
  private read: NodeJS.Timeout | undefined;
  private buffered = 0;
  private outstanding = 0;
  private paused = false;
  private stopped = false;

  constructor(
    private readonly limits: Pick<ConnectionLimits, 'idleTimeoutMs' | 'readTimeoutMs'>,
    private readonly onExpired: (why: Expiry) => void,
  ) {
    this.update(false);
  }

  /**
   * After a chunk went through the framer: `buffered` bytes of an unfinished request are held,
   * `completed` requests were cut out of it (a new request may already have started).
   */
  received(buffered: number, completed: number): void {
    if (completed > 0) this.clearRead(); // the next request gets its own full read time
    this.buffered = buffered;
    this.outstanding += completed;
    this.update(false);
  }

  answered(): void {
    this.outstanding = Math.max(0, this.outstanding - 1);
    this.update(false);
  }

  setPaused(paused: boolean): void {
    this.paused = paused;
    this.update(paused);
  }

  stop(): void {
    this.stopped = true;
    this.clearRead();
    this.clearIdle();
  }

  private update(pausing: boolean): void {
    if (this.stopped) return;
    if (this.buffered > 0 && !this.paused) {
      this.read ??= this.arm(this.limits.readTimeoutMs, 'read');
    } else if (this.buffered === 0 || pausing) {
      this.clearRead();
    }
    if (this.buffered === 0 && this.outstanding === 0) {
      this.idle ??= this.arm(this.limits.idleTimeoutMs, 'idle');
    } else {
      this.clearIdle();
    }
  }

  private arm(ms: number, why: Expiry): NodeJS.Timeout {
    const t = setTimeout(() => {
      if (why === 'read') this.read = undefined;
      else this.idle = undefined;
      if (!this.stopped) this.onExpired(why);
    }, ms);
    t.unref();
    return t;
  }

  private clearRead(): void {
    clearTimeout(this.read);
    this.read = undefined;
  }

  private clearIdle(): void {
    clearTimeout(this.idle);
    this.idle = undefined;
  }
}
