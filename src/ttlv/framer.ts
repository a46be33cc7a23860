// Cuts whole TTLV messages out of a TCP byte stream. A message is one top-level Structure, so
// its 8-byte header says exactly how long it is. The header is vetted (expected tag, Structure,
// size limit) before any body byte is kept: a peer cannot make us buffer an unwanted or huge message.

import { TtlvError } from './errors.js';
import { ItemType } from './types.js';

export interface TtlvFramerOptions {
  /** Largest whole message (header + body) accepted, in bytes. */
  maxMessageSize: number;
  /** Tag every message must carry, e.g. the Request Message tag on a server. */
  expectedTag?: number;
}

export class TtlvFramer {
  private readonly maxMessageSize: number;
  private readonly expectedTag: number | undefined;
  /** Header of the next message while fewer than 8 bytes of it have arrived. */
  private readonly header = Buffer.alloc(8);
  private headerFill = 0;
  /** Message being assembled, allocated at its final size once the header is vetted. */
  private message: Buffer | undefined;
  private messageFill = 0;
  /** Set on the first error: the stream position is lost, so the framer cannot continue. */
  private failure: TtlvError | undefined;
  private streamOffset = 0;

  constructor(options: TtlvFramerOptions) {
    if (!(options.maxMessageSize >= 8)) throw new RangeError('maxMessageSize must be at least 8');
    this.maxMessageSize = options.maxMessageSize;
    this.expectedTag = options.expectedTag;
  }

  /** Bytes of an unfinished message currently held (0 between messages); for read timeouts. */
  get bufferedBytes(): number {
    return this.message !== undefined ? this.messageFill : this.headerFill;
  }

  /**
   * Feed the next chunk of the stream; returns the messages it completes, in order, each a fresh
   * Buffer of header + body that the caller owns. Throws TtlvError (UNEXPECTED_MESSAGE, TOO_LARGE,
   * BAD_LENGTH) as soon as a bad header is complete; the framer then stays failed, and messages
   * completed earlier in the same chunk are discarded with it (the connection is going away).
   */
  push(chunk: Uint8Array): Buffer[] {
    if (this.failure) throw this.failure;
    const out: Buffer[] = [];
    let p = 0;
    while (p < chunk.length) {
      if (this.message === undefined) {
        const n = Math.min(8 - this.headerFill, chunk.length - p);
        this.header.set(chunk.subarray(p, p + n), this.headerFill);
        this.headerFill += n;
        p += n;
        if (this.headerFill < 8) break;
        this.headerFill = 0;
        this.start();
      }
      const msg = this.message!;
      const n = Math.min(msg.length - this.messageFill, chunk.length - p);
      msg.set(chunk.subarray(p, p + n), this.messageFill);
      this.messageFill += n;
      p += n;
      if (this.messageFill === msg.length) {
        out.push(msg);
        this.streamOffset += msg.length;
        this.message = undefined;
        this.messageFill = 0;
      }
    }
    return out;
  }

  /** Vet the complete header in this.header and allocate the message. */
  private start(): void {
    const h = this.header;
    const tag = (h[0]! << 16) | (h[1]! << 8) | h[2]!;
    const type = h[3]!;
    const len = h.readUInt32BE(4);
    const at = this.streamOffset;
    if (this.expectedTag !== undefined && tag !== this.expectedTag) {
      this.fail(new TtlvError('UNEXPECTED_MESSAGE', `message tag is not the expected 0x${this.expectedTag.toString(16).toUpperCase()}`, at, tag));
    }
    if (type !== ItemType.Structure) {
      this.fail(new TtlvError('UNEXPECTED_MESSAGE', `message is type 0x${type.toString(16).padStart(2, '0')}, not a Structure`, at, tag));
    }
    if (len + 8 > this.maxMessageSize) {
      this.fail(new TtlvError('TOO_LARGE', `message of ${len + 8} bytes exceeds the limit of ${this.maxMessageSize}`, at, tag));
    }
    // A Structure's length is a sum of padded items; anything else leaves the stream unframeable.
    if (len % 8 !== 0) this.fail(new TtlvError('BAD_LENGTH', `message length ${len} is not a multiple of 8`, at, tag));
    const msg = Buffer.allocUnsafe(len + 8); // every byte is overwritten before it is handed out
    msg.set(h, 0);
    this.message = msg;
    this.messageFill = 8;
  }

  private fail(e: TtlvError): never {
    this.failure = e;
    throw e;
  }
}
