// Property-based fuzzing of the TTLV decoder and the stream framer: whatever the bytes, they
// either decode to items that encode back to exactly those bytes, or fail with a TtlvError;
// the framer never holds more than one message's worth; memory stays flat.
import fc from 'fast-check';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeTtlv, encodeTtlv, TtlvError, TtlvFramer } from '../../src/ttlv/index.js';
import { Tag } from '../../src/kmip/registry/generated.js';
import { Corpus } from './corpus.js';
import { reportFigures } from './figures.js';
import { fixTopLength, hostileRequests, seedRequests } from './mutate.js';
import { malformedCases, bigIntegerRequest } from './malformed.js';
import { newTally } from './tally.js';

const tally = newTally();
const corpus = new Corpus('decoder.jsonl');
const MAX_MESSAGE = 64 * 1024;
const seeds = seedRequests().map((s) => s.item);
const unexpected: { input: string; error: string }[] = [];
const SKELETON: ReadonlySet<number> = new Set([Tag.RequestMessage, Tag.RequestHeader, Tag.ProtocolVersion, Tag.BatchCount, Tag.BatchItem, Tag.Operation, Tag.RequestPayload, Tag.Attribute, Tag.TemplateAttribute, Tag.Attributes]);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Decode like the server does; anything but a TtlvError is a crash. */
function decodeChecked(bytes: Buffer, offer = true): void {
  tally.malformedInputs += 1;
  let signature: string;
  try {
    const item = decodeTtlv(bytes, { maxLength: MAX_MESSAGE, anyTagInside: new Set([Tag.VendorExtension]) });
    // Strict decoding: what was accepted is canonical, so it encodes back to the same bytes.
    expect(Buffer.from(encodeTtlv(item)).equals(bytes)).toBe(true);
    signature = 'ok';
  } catch (e) {
    if (!(e instanceof TtlvError)) {
      tally.crashes += 1;
      unexpected.push({ input: bytes.toString('hex'), error: String(e) });
      return;
    }
    // Coarse on purpose: the error and, for the message skeleton, where it struck.
    signature = `${e.code}@${e.tag !== undefined && SKELETON.has(e.tag) ? e.tag.toString(16) : 'other'}`;
  }
  if (offer) corpus.offer(signature, bytes);
}

afterAll(() => reportFigures('decoder-fuzz', tally));

describe('TTLV decoder under fuzzing', () => {
  it('replays the corpus and the hand-made cases', () => {
    for (const b of corpus.bytes()) decodeChecked(b, false);
    for (const c of malformedCases({ maxMessageSize: MAX_MESSAGE, maxBatchItems: 16, maxAttributes: 32 })) decodeChecked(c.bytes, false);
    expect(unexpected).toEqual([]);
  });

  it('only ever throws TtlvError, on random and mutated requests', () => {
    fc.assert(
      fc.property(hostileRequests(seeds), (bytes) => {
        decodeChecked(bytes);
        return unexpected.length === 0;
      }),
      { numRuns: 8000 },
    );
    expect(unexpected).toEqual([]);
  });

  it('decodes a 256 KiB Big Integer in linear time (it was quadratic: seconds per message)', () => {
    // Not a timing assertion: the work is counted in decodes per run, and a quadratic decoder
    // would need minutes for these twenty.
    for (let i = 0; i < 20; i++) decodeChecked(bigIntegerRequest(256 * 1024 - 64), false);
    expect(unexpected).toEqual([]);
  });

  it('framer: any chunking of any stream yields whole messages or a TtlvError, never more than the limit held', () => {
    const stream = fc.array(hostileRequests(seeds).map(fixTopLength), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(stream, fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 8 }), (messages, cuts) => {
        const all = Buffer.concat(messages);
        const framer = new TtlvFramer({ maxMessageSize: MAX_MESSAGE, expectedTag: Tag.RequestMessage });
        let p = 0;
        let i = 0;
        tally.malformedInputs += messages.length;
        try {
          while (p < all.length) {
            const n = cuts[i++ % cuts.length]!;
            for (const m of framer.push(all.subarray(p, p + n))) expect(m.length).toBeLessThanOrEqual(MAX_MESSAGE);
            expect(framer.bufferedBytes).toBeLessThanOrEqual(MAX_MESSAGE);
            p += n;
          }
        } catch (e) {
          if (!(e instanceof TtlvError)) {
            tally.crashes += 1;
            unexpected.push({ input: all.toString('hex'), error: String(e) });
          }
        }
        return unexpected.length === 0;
      }),
      { numRuns: 1500 },
    );
    expect(unexpected).toEqual([]);
  });

  it('keeps memory flat over many hostile inputs', () => {
    const arb = hostileRequests(seeds);
    const batch = fc.sample(arb, 500);
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let round = 0; round < 10; round++) for (const b of batch) decodeChecked(b);
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    // 5000 decodes; anything kept per input would show as megabytes.
    expect(grown).toBeLessThan(8 * 1024 * 1024);
    expect(unexpected).toEqual([]);
  });
});
