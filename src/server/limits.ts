// Resource limits of a running server: what one peer may cost us. Every limit has a default,
// can be set in kmipd.json (`limits`) and overridden for one run by a `kmipd serve` flag.

export interface Limits {
  /** Largest request accepted, in bytes (header included); larger is refused before it is buffered. */
  readonly maxMessageSize: number;
  /** Deepest TTLV nesting accepted. */
  readonly maxDepth: number;
  /** Most batch items in one request. */
  readonly maxBatchItems: number;
  /** Most attributes (or attribute names/references) in one batch item. */
  readonly maxAttributes: number;
  /** Time from TCP accept to a completed TLS handshake. */
  readonly handshakeTimeoutMs: number;
  /** Time a connection may stay silent with nothing outstanding. */
  readonly idleTimeoutMs: number;
  /** Time from the first byte of a request to its last (slowloris guard). */
  readonly readTimeoutMs: number;
  /** Open TCP connections in total, handshakes included. */
  readonly maxConnections: number;
  /** Open connections per client certificate (SHA-256 fingerprint). */
  readonly maxConnectionsPerClient: number;
}

export const DEFAULT_LIMITS: Limits = Object.freeze({
  maxMessageSize: 256 * 1024,
  maxDepth: 32,
  // vCenter and PyKMIP send one to a few items; OASIS test cases stay under ten.
  maxBatchItems: 256,
  maxAttributes: 256,
  handshakeTimeoutMs: 10_000,
  // Long enough for clients that keep a connection open between operations.
  idleTimeoutMs: 300_000,
  // A request of at most maxMessageSize arrives within seconds on any working link.
  readTimeoutMs: 30_000,
  maxConnections: 1024,
  // One vCenter certificate may be used by many connections at once (parallel operations, hosts).
  maxConnectionsPerClient: 256,
});

export type LimitName = keyof Limits;

/** Smallest accepted value of each limit: below it the server could not work at all. */
const MINIMUM: Readonly<Record<LimitName, number>> = {
  maxMessageSize: 64, // a Discover Versions request is 80 bytes; smaller would make every message fail
  maxDepth: 4,
  maxBatchItems: 1,
  maxAttributes: 1,
  handshakeTimeoutMs: 1,
  idleTimeoutMs: 1,
  readTimeoutMs: 1,
  maxConnections: 1,
  maxConnectionsPerClient: 1,
};

export { MINIMUM as LIMIT_MINIMUM };

export const LIMIT_NAMES = Object.keys(DEFAULT_LIMITS) as LimitName[];

/**
 * Defaults completed with `partial`, each value checked to be a safe integer at or above its
 * minimum. Unknown keys are an error: a misspelt limit must not silently fall back to its default.
 */
export function resolveLimits(partial: Readonly<Record<string, unknown>> | undefined, where = 'limits'): Limits {
  const out: Record<string, number> = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(partial ?? {})) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_LIMITS)) throw new Error(`${where}: unknown limit ${JSON.stringify(key)} (known: ${LIMIT_NAMES.join(', ')})`);
    const min = MINIMUM[key as LimitName];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
      throw new Error(`${where}.${key} must be an integer of at least ${min}, got ${JSON.stringify(value)}`);
    }
    out[key] = value;
  }
  return Object.freeze(out as unknown as Limits);
}
