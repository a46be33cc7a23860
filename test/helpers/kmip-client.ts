// A minimal KMIP client for protocol-level tests: our own encoder, a real mutual-TLS socket.
// It lets tests send exactly the bytes they mean (including malformed ones) and read the answer.
import { readFileSync } from 'node:fs';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { decodeTtlv, encodeTtlv, TtlvFramer, byteString, enumeration, integer, structure } from '../../src/ttlv/index.js';
import type { StructureItem, TtlvItem } from '../../src/ttlv/types.js';
import { Tag } from '../../src/kmip/registry/generated.js';
import { Fields } from '../../src/kmip/fields.js';
import type { ClientBundle } from './kmipd.js';

export interface Version {
  major: number;
  minor: number;
}

export interface BatchItemRequest {
  operation: number;
  payload?: TtlvItem[];
  id?: Uint8Array;
}

export function requestMessage(version: Version, items: BatchItemRequest[], headerExtra: TtlvItem[] = []): StructureItem {
  return structure(Tag.RequestMessage, [
    structure(Tag.RequestHeader, [
      structure(Tag.ProtocolVersion, [integer(Tag.ProtocolVersionMajor, version.major), integer(Tag.ProtocolVersionMinor, version.minor)]),
      ...headerExtra,
      integer(Tag.BatchCount, items.length),
    ]),
    ...items.map((i) =>
      structure(Tag.BatchItem, [
        enumeration(Tag.Operation, i.operation),
        ...(i.id ? [byteString(Tag.UniqueBatchItemID, i.id)] : []),
        ...(i.payload ? [structure(Tag.RequestPayload, i.payload)] : []),
      ]),
    ),
  ]);
}

export interface ParsedBatchItem {
  operation: number | undefined;
  id: Uint8Array | undefined;
  status: number;
  reason: number | undefined;
  message: string | undefined;
  payload: Fields;
}

export interface ParsedResponse {
  version: Version;
  batchCount: number;
  items: ParsedBatchItem[];
  raw: StructureItem;
}

export function parseResponse(item: TtlvItem): ParsedResponse {
  const m = Fields.of(item);
  const h = Fields.of(m.requiredStruct(Tag.ResponseHeader));
  const pv = Fields.of(h.requiredStruct(Tag.ProtocolVersion));
  return {
    version: { major: pv.requiredInteger(Tag.ProtocolVersionMajor), minor: pv.requiredInteger(Tag.ProtocolVersionMinor) },
    batchCount: h.requiredInteger(Tag.BatchCount),
    items: m.structs(Tag.BatchItem).map((bi) => {
      const f = Fields.of(bi);
      return {
        operation: f.enumeration(Tag.Operation),
        id: f.bytes(Tag.UniqueBatchItemID),
        status: f.requiredEnumeration(Tag.ResultStatus),
        reason: f.enumeration(Tag.ResultReason),
        message: f.text(Tag.ResultMessage),
        payload: Fields.of(f.struct(Tag.ResponsePayload)),
      };
    }),
    raw: item as StructureItem,
  };
}

export class KmipTestClient {
  private framer = new TtlvFramer({ maxMessageSize: 16 << 20 });
  private pending: Buffer[] = [];
  private waiters: ((b: Buffer | undefined) => void)[] = [];
  closed = false;

  private constructor(readonly socket: TLSSocket) {
    socket.on('data', (chunk: Buffer) => {
      for (const msg of this.framer.push(chunk)) {
        const w = this.waiters.shift();
        if (w) w(msg);
        else this.pending.push(msg);
      }
    });
    const end = () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w(undefined);
    };
    socket.on('close', end);
    socket.on('error', end);
  }

  static async connect(port: number, client: ClientBundle, extra: Partial<ConnectionOptions> = {}): Promise<KmipTestClient> {
    const socket = connect({
      host: '127.0.0.1',
      port,
      cert: readFileSync(client.cert),
      key: readFileSync(client.key),
      ca: readFileSync(client.ca),
      servername: 'localhost',
      ...extra,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    return new KmipTestClient(socket);
  }

  sendRaw(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** The next whole message from the server, or undefined if it closed the connection. */
  next(timeoutMs = 10_000): Promise<Buffer | undefined> {
    const ready = this.pending.shift();
    if (ready) return Promise.resolve(ready);
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no response in time')), timeoutMs);
      this.waiters.push((b) => {
        clearTimeout(t);
        resolve(b);
      });
    });
  }

  async call(version: Version, items: BatchItemRequest[], headerExtra: TtlvItem[] = []): Promise<ParsedResponse> {
    this.sendRaw(encodeTtlv(requestMessage(version, items, headerExtra)));
    const raw = await this.next();
    if (!raw) throw new Error('server closed the connection');
    return parseResponse(decodeTtlv(raw));
  }

  /** Resolves once the server has closed the connection. */
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    if (this.closed) return;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('connection still open')), timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
