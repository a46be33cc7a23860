// The Unique Identifier the server gives a new object (1.4 §3.1: a text string, unique within
// the server; clients treat it as opaque).
//
// A UUID of version 7 (RFC 9562 §5.7): a millisecond timestamp, then a counter and random bits.
// Ids made one after another sort one after another, so each new key's entry in the store's id
// index (objects.id, UNIQUE on both backends) lands on the index's last page instead of a random
// one. With random (version 4) ids every Create of a group commit dirtied a page of its own there,
// about half the pages a commit wrote; create at 16 connections went from 6,877–6,965 to
// 7,271–7,755 Creates/s and its p99 from 6.0 to 4.6 ms (bench/RESULTS.md, fifteenth round).
//
// What the id reveals: the millisecond the key was made, which Initial Date already tells any
// client allowed to see the key. It grants nothing: every operation checks the caller's tenant,
// not the id's secrecy (RFC 9562 §8 advises against UUIDs as capabilities; ours are not).
import { randomFillSync } from 'node:crypto';
import { v7 } from 'uuid';

// The uuid package lays out and prints the id; its random bytes come from here. Left to itself,
// v7() asks crypto.getRandomValues for 16 bytes per id: 1.4 of its 1.7 µs, on the event loop of
// every Create (bench/RESULTS.md, twenty-first round). One draw from the same CSPRNG fills 256 ids.
const pool = new Uint8Array(4096);
let poolAt = pool.length;
/** The last id's millisecond and counter (RFC 9562 §6.2, method 1, as the package keeps them). */
let lastMs = Number.NEGATIVE_INFINITY;
let seq = 0;

export function newUniqueIdentifier(): string {
  if (poolAt === pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const random = pool.subarray(poolAt, (poolAt += 16));
  const now = Date.now();
  if (now > lastMs) {
    // A new millisecond: the counter starts at a random 31-bit value, leaving room to count up.
    lastMs = now;
    seq = ((random[6]! & 0x7f) << 24) | (random[7]! << 16) | (random[8]! << 8) | random[9]!;
  } else {
    // Same millisecond (or the clock stepped back): count on; past 32 bits, borrow the next millisecond.
    seq = (seq + 1) | 0;
    if (seq === 0) lastMs++;
  }
  return v7({ msecs: lastMs, seq, random });
}
