// The framer must cut messages out of an arbitrary chunking of the stream, and refuse a bad
// message as soon as its 8-byte header is in, without waiting for (or keeping) its body.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeTtlv, integer, structure, textString, TtlvError, TtlvFramer } from '../../src/ttlv/index.js';
import { expectTtlvError, fromHex, loadVectors, toHex } from './helpers.js';

const REQUEST = 0x420078;
const msg = (n: number): Buffer =>
  encodeTtlv(structure(REQUEST, [integer(0x42000d, n), textString(0x420094, 'id-'.repeat(n))]));
const messages = [msg(1), msg(2), msg(5), encodeTtlv(structure(REQUEST, []))];
const stream = Buffer.concat(messages);
const expected = messages.map(toHex);

function feed(framer: TtlvFramer, chunks: Uint8Array[]): string[] {
  return chunks.flatMap((c) => framer.push(Buffer.from(c)).map(toHex));
}

describe('TtlvFramer', () => {
  it('cuts messages split at every byte boundary', () => {
    for (let i = 0; i <= stream.length; i++) {
      const f = new TtlvFramer({ maxMessageSize: 1024, expectedTag: REQUEST });
      expect(feed(f, [stream.subarray(0, i), stream.subarray(i)]), `split at ${i}`).toEqual(expected);
      expect(f.bufferedBytes).toBe(0);
    }
  });

  it('cuts messages fed one byte at a time, tracking bufferedBytes', () => {
    const f = new TtlvFramer({ maxMessageSize: 1024 });
    const out: string[] = [];
    let inMessage = 0;
    for (const byte of stream) {
      const got = f.push(Buffer.from([byte]));
      out.push(...got.map(toHex));
      inMessage = got.length > 0 ? 0 : inMessage + 1;
      expect(f.bufferedBytes).toBe(inMessage);
    }
    expect(out).toEqual(expected);
  });

  it('returns several messages from one chunk', () => {
    const f = new TtlvFramer({ maxMessageSize: 1024, expectedTag: REQUEST });
    expect(f.push(stream).map(toHex)).toEqual(expected);
    // ... and keeps the unfinished tail.
    const g = new TtlvFramer({ maxMessageSize: 1024 });
    expect(g.push(Buffer.concat([stream, messages[0]!.subarray(0, 11)])).length).toBe(4);
    expect(g.bufferedBytes).toBe(11);
    expect(g.push(messages[0]!.subarray(11)).map(toHex)).toEqual([expected[0]]);
  });

  it('cuts every chunking of a stream of real test-case requests', () => {
    const file = loadVectors<{ vectors: Array<{ hex: string; direction: string }> }>('kmip-testcases-v1.1-vectors.json');
    const reqs = file.vectors.filter((v) => v.direction === 'request').slice(0, 40).map((v) => fromHex(v.hex));
    const all = Buffer.concat(reqs);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: all.length }), { maxLength: 30 }), (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), all.length];
        const chunks = points.slice(1).map((p, i) => all.subarray(points[i]!, p));
        const f = new TtlvFramer({ maxMessageSize: 1 << 16, expectedTag: REQUEST });
        expect(feed(f, chunks)).toEqual(reqs.map(toHex));
      }),
      { numRuns: 200 },
    );
  });

  it('hands out messages that do not alias the input chunk', () => {
    const f = new TtlvFramer({ maxMessageSize: 1024 });
    const chunk = Buffer.from(messages[0]!);
    const [m] = f.push(chunk);
    chunk.fill(0);
    expect(toHex(m!)).toBe(expected[0]);
  });

  it('rejects a wrong first tag as soon as 8 bytes are in', () => {
    const f = new TtlvFramer({ maxMessageSize: 1024, expectedTag: REQUEST });
    const response = fromHex('42007B0100000010'); // Response Message header
    expect(f.push(response.subarray(0, 7))).toEqual([]);
    const e = expectTtlvError(() => f.push(response.subarray(7, 8)), 'UNEXPECTED_MESSAGE', 0);
    expect(e.tag).toBe(0x42007b);
    // The framer stays failed: the stream position is lost.
    expectTtlvError(() => f.push(Buffer.alloc(8)), 'UNEXPECTED_MESSAGE');
  });

  it('rejects a TLS ClientHello or HTTP request sent to the TTLV port', () => {
    expectTtlvError(() => new TtlvFramer({ maxMessageSize: 1024, expectedTag: REQUEST }).push(Buffer.from('GET / HTTP/1.1\r\n')), 'UNEXPECTED_MESSAGE', 0);
    expectTtlvError(() => new TtlvFramer({ maxMessageSize: 1024 }).push(fromHex('160301020001000200')), 'UNEXPECTED_MESSAGE', 0);
  });

  it('rejects a non-Structure message', () => {
    const f = new TtlvFramer({ maxMessageSize: 1024 });
    expectTtlvError(() => f.push(fromHex('42007802000000040000000100000000')), 'UNEXPECTED_MESSAGE', 0);
  });

  it('rejects a huge announced length after 8 bytes, without buffering the body', () => {
    const f = new TtlvFramer({ maxMessageSize: 1 << 20, expectedTag: REQUEST });
    const before = process.memoryUsage().arrayBuffers;
    const e = expectTtlvError(() => f.push(fromHex('42007801FFFFFFF0')), 'TOO_LARGE', 0);
    expect(e.message).toContain('4294967288');
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(1 << 20);
    // Exactly at the limit is fine, one byte over is not.
    const g = new TtlvFramer({ maxMessageSize: 40 });
    expect(g.push(fromHex('42007801000000204200770100000018')).length).toBe(0);
    expect(g.bufferedBytes).toBe(16);
    expectTtlvError(() => new TtlvFramer({ maxMessageSize: 39 }).push(fromHex('4200780100000020')), 'TOO_LARGE', 0);
  });

  it('reports the stream offset of a bad message after good ones', () => {
    const f = new TtlvFramer({ maxMessageSize: 1024, expectedTag: REQUEST });
    expect(f.push(messages[0]!).length).toBe(1);
    expectTtlvError(() => f.push(fromHex('4200780100000021')), 'BAD_LENGTH', messages[0]!.length);
  });

  it('validates its options', () => {
    expect(() => new TtlvFramer({ maxMessageSize: 4 })).toThrow(RangeError);
    expect(() => new TtlvFramer({ maxMessageSize: Number.NaN })).toThrow(RangeError);
  });

  it('never throws anything but TtlvError on random bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
        const f = new TtlvFramer({ maxMessageSize: 256 });
        try {
          for (const c of chunks) f.push(Buffer.from(c));
        } catch (e) {
          if (!(e instanceof TtlvError)) throw e;
        }
      }),
      { numRuns: 500 },
    );
  });
});
