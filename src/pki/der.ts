// A minimal DER reader: splits a constructed element into its children as raw byte slices.
// Signatures are over exact bytes, so the signed part of a CSR or certificate is taken as it
// arrived rather than re-encoded (a re-encoding could differ and break the signature check).

export interface DerElement {
  readonly tag: number;
  /** The whole TLV. */
  readonly raw: Buffer;
  /** The value octets. */
  readonly content: Buffer;
}

const MAX_LENGTH_OCTETS = 4;

/** The element starting at `offset`; throws on anything that is not definite-length DER. */
export function readElement(buf: Buffer, offset = 0): DerElement {
  if (offset + 2 > buf.length) throw new Error('truncated DER');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('multi-byte DER tags are not supported');
  let len = buf[offset + 1]!;
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > MAX_LENGTH_OCTETS) throw new Error('unsupported DER length');
    if (offset + 2 + n > buf.length) throw new Error('truncated DER');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[offset + 2 + i]!;
    header += n;
  }
  const end = offset + header + len;
  if (end > buf.length) throw new Error('truncated DER');
  return { tag, raw: buf.subarray(offset, end), content: buf.subarray(offset + header, end) };
}

/** The children of a constructed element. */
export function children(el: DerElement): DerElement[] {
  if ((el.tag & 0x20) === 0) throw new Error('DER element is not constructed');
  const out: DerElement[] = [];
  let at = 0;
  while (at < el.content.length) {
    const child = readElement(el.content, at);
    out.push(child);
    at += child.raw.length;
  }
  return out;
}

/** Parses a whole buffer as exactly one element. */
export function readWhole(buf: Buffer): DerElement {
  const el = readElement(buf, 0);
  if (el.raw.length !== buf.length) throw new Error('trailing bytes after DER element');
  return el;
}

/** PEM (any of `labels`) or DER bytes → DER. */
export function pemOrDer(input: string | Uint8Array, labels: readonly string[]): Buffer {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
  if (m) {
    if (!labels.includes(m[1]!)) throw new Error(`expected PEM ${labels.join(' or ')}, found ${m[1]}`);
    return Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64');
  }
  if (typeof input === 'string') throw new Error(`no PEM ${labels[0]} found`);
  return Buffer.from(input);
}
