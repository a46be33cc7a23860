// Shared by the hostile-input tests: a set of keys created before an attack and checked byte for
// byte after it, a "still serving" probe, raw TLS connections that report how the server ended
// them, and the tally of figures every file reports.
import { readFileSync } from 'node:fs';
import { connect, type TLSSocket } from 'node:tls';
import { expect } from 'vitest';
import { decodeTtlv, encodeTtlv, enumeration, integer, structure, textString, TtlvFramer } from '../../src/ttlv/index.js';
import type { TtlvItem } from '../../src/ttlv/types.js';
import { Fields } from '../../src/kmip/fields.js';
import { CryptographicAlgorithm, ObjectType, Operation, ResultStatus, Tag } from '../../src/kmip/registry/generated.js';
import type { ClientBundle } from '../helpers/kmipd.js';
import type { Tally } from './tally.js';

export { newTally, type Tally } from './tally.js';
import { KmipTestClient, parseResponse, requestMessage, type BatchItemRequest, type ParsedResponse, type Version } from '../helpers/kmip-client.js';

export const V12: Version = { major: 1, minor: 2 };
export const V21: Version = { major: 2, minor: 1 };

/** Create of an AES key in the 1.x (Template-Attribute) or 2.x (Attributes) shape. */
export function createItem(version: Version = V12, bits = 256): BatchItemRequest {
  const v2 = version.major >= 2;
  const attr = (name: string, value: TtlvItem): TtlvItem =>
    v2 ? { ...value, tag: Tag[name.replace(/ /g, '') as 'CryptographicAlgorithm'] } : structure(Tag.Attribute, [textString(Tag.AttributeName, name), { ...value, tag: Tag.AttributeValue }]);
  const attrs = [
    attr('Cryptographic Algorithm', enumeration(0, CryptographicAlgorithm.AES)),
    attr('Cryptographic Length', integer(0, bits)),
    attr('Cryptographic Usage Mask', integer(0, 12)),
  ];
  return {
    operation: Operation.Create,
    payload: [enumeration(Tag.ObjectType, ObjectType.SymmetricKey), structure(v2 ? Tag.Attributes : Tag.TemplateAttribute, attrs)],
  };
}

export const getItem = (id?: string): BatchItemRequest => ({ operation: Operation.Get, payload: id === undefined ? [] : [textString(Tag.UniqueIdentifier, id)] });
export const discoverItem = (): BatchItemRequest => ({ operation: Operation.DiscoverVersions, payload: [] });

/** Key Material of a Get answer, copied out of the response buffer. */
export function keyMaterial(payload: Fields): Buffer {
  const sk = payload.requiredStruct(Tag.SymmetricKey);
  const kb = Fields.of(Fields.of(sk).requiredStruct(Tag.KeyBlock));
  return Buffer.from(Fields.of(kb.requiredStruct(Tag.KeyValue)).requiredBytes(Tag.KeyMaterial));
}

/** Keys whose plaintext a client has seen: the server must give back exactly these bytes. */
export type KeySet = Map<string, Buffer>;

/** Create-then-Get in one batch (ID Placeholder): the answer is the acknowledgement and the bytes. */
export function parseCreateGet(r: ParsedResponse): { id: string; material: Buffer } | undefined {
  const [c, g] = r.items;
  if (c?.status !== ResultStatus.Success || g?.status !== ResultStatus.Success) return undefined;
  return { id: c.payload.requiredText(Tag.UniqueIdentifier), material: keyMaterial(g.payload) };
}

export async function seedKeys(port: number, bundle: ClientBundle, n: number, into: KeySet = new Map()): Promise<KeySet> {
  const k = await KmipTestClient.connect(port, bundle);
  try {
    for (let i = 0; i < n; i++) {
      const version = i % 2 === 0 ? V12 : V21;
      const made = parseCreateGet(await k.call(version, [createItem(version, [128, 192, 256][i % 3]), getItem()]));
      expect(made, 'seeding a key failed').toBeDefined();
      into.set(made!.id, made!.material);
    }
  } finally {
    k.close();
  }
  return into;
}

/** Keys that do not come back byte for byte (missing, failing, or different). */
export async function lostKeys(port: number, bundle: ClientBundle, keys: KeySet): Promise<string[]> {
  const k = await KmipTestClient.connect(port, bundle);
  const lost: string[] = [];
  try {
    const ids = [...keys.keys()];
    // Several Gets per message keeps this quick without reaching any batch limit a test sets.
    for (let i = 0; i < ids.length; i += 8) {
      const chunk = ids.slice(i, i + 8);
      const r = await k.call(V12, chunk.map((id) => getItem(id)), [enumeration(Tag.BatchErrorContinuationOption, 1)]);
      chunk.forEach((id, j) => {
        const item = r.items[j];
        if (item?.status !== ResultStatus.Success || !keyMaterial(item.payload).equals(keys.get(id)!)) lost.push(id);
      });
    }
  } finally {
    k.close();
  }
  return lost;
}

/** Keys each tally has seen checked (its keysAcknowledged figure). */
const checkedKeys = new WeakMap<Tally, Set<string>>();

/** A new client is served, and every key comes back byte for byte. Returns the number lost. */
export async function expectServedAndIntact(port: number, bundle: ClientBundle, keys: KeySet, tally?: Tally): Promise<void> {
  const k = await KmipTestClient.connect(port, bundle);
  try {
    const r = await k.call(V12, [discoverItem()]);
    expect(r.items[0]!.status).toBe(ResultStatus.Success);
  } finally {
    k.close();
  }
  const lost = await lostKeys(port, bundle, keys);
  if (tally) {
    tally.keysLost += lost.length;
    const seen = checkedKeys.get(tally) ?? new Set<string>();
    for (const id of keys.keys()) seen.add(id);
    checkedKeys.set(tally, seen);
    tally.keysAcknowledged = seen.size;
  }
  expect(lost).toEqual([]);
}

/** What came back for a request: an answer, the end of the connection, or nothing in time. */
export type Reply = ParsedResponse | 'closed' | 'hung';

/** A raw mutual-TLS connection to send exact bytes on and see how the server reacts. */
export class RawConnection {
  private readonly framer = new TtlvFramer({ maxMessageSize: 16 << 20 });
  private readonly messages: Buffer[] = [];
  private closedAt: number | undefined;
  private wake: (() => void) | undefined;

  private constructor(readonly socket: TLSSocket) {
    socket.on('data', (chunk: Buffer) => {
      try {
        this.messages.push(...this.framer.push(chunk));
      } catch {
        socket.destroy();
      }
      this.wake?.();
    });
    const end = () => {
      this.closedAt ??= performance.now();
      this.wake?.();
    };
    socket.on('close', end);
    socket.on('error', end);
  }

  static async open(port: number, bundle: ClientBundle): Promise<RawConnection> {
    const socket = connect({
      host: '127.0.0.1',
      port,
      cert: readFileSync(bundle.cert),
      key: readFileSync(bundle.key),
      ca: readFileSync(bundle.ca),
      servername: 'localhost',
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    return new RawConnection(socket);
  }

  get closed(): boolean {
    return this.closedAt !== undefined;
  }

  write(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** The next answer, 'closed' once the server ended the connection, or 'hung' after timeoutMs. */
  async next(timeoutMs = 10_000): Promise<Reply> {
    const ready = await this.until(() => this.messages.length > 0 || this.closed, timeoutMs);
    if (!ready) return 'hung';
    const msg = this.messages.shift();
    return msg ? parseResponse(decodeTtlv(msg)) : 'closed';
  }

  /** Whether the connection still answers a Discover Versions (and so was kept open). */
  async stillServes(timeoutMs = 10_000): Promise<boolean> {
    if (this.closed) return false;
    this.write(encodeRequest(V12, [discoverItem()]));
    const r = await this.next(timeoutMs);
    return typeof r !== 'string' && r.items[0]?.status === ResultStatus.Success;
  }

  /** Resolves true once the server has closed the connection, false after timeoutMs. */
  waitClosed(timeoutMs: number): Promise<boolean> {
    return this.until(() => this.closed, timeoutMs);
  }

  close(): void {
    this.socket.destroy();
  }

  private async until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return true;
  }
}

export const encodeRequest = (version: Version, items: BatchItemRequest[], headerExtra: TtlvItem[] = []): Buffer =>
  Buffer.from(encodeTtlv(requestMessage(version, items, headerExtra)));

/** Resident memory of a process, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

