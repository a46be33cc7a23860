// Request messages of the benchmark, encoded once and reused: the load generator only copies
// bytes onto sockets. KMIP 1.2 throughout, which kmipd and PyKMIP's server both speak (vCenter
// speaks 1.1; the messages are the same shape).
import { encodeTtlv, enumeration, integer, structure, textString } from '../src/ttlv/index.js';
import type { TtlvItem } from '../src/ttlv/types.js';
import { CryptographicAlgorithm, NameType, ObjectType, Operation, Tag } from '../src/kmip/registry/generated.js';

export const BENCH_VERSION = { major: 1, minor: 2 } as const;

/**
 * Operations the generator can drive. `dv` is Discover Versions with an empty payload (vCenter's
 * health check). `locate-length` is a Locate that no index narrows (see locateByLengthRequest).
 * `get-new` is a Get of the key the same connection created last, its first Get (the server marks
 * it no longer Fresh); before that connection has created one, it is a Create.
 */
export const OP_KINDS = ['create', 'get', 'get-attributes', 'locate', 'locate-length', 'dv', 'get-new'] as const;
export type OpKind = (typeof OP_KINDS)[number];

export function isOpKind(s: string): s is OpKind {
  return (OP_KINDS as readonly string[]).includes(s);
}

function message(operation: number, payload: TtlvItem[]): Buffer {
  return Buffer.from(
    encodeTtlv(
      structure(Tag.RequestMessage, [
        structure(Tag.RequestHeader, [
          structure(Tag.ProtocolVersion, [integer(Tag.ProtocolVersionMajor, BENCH_VERSION.major), integer(Tag.ProtocolVersionMinor, BENCH_VERSION.minor)]),
          integer(Tag.BatchCount, 1),
        ]),
        structure(Tag.BatchItem, [enumeration(Tag.Operation, operation), structure(Tag.RequestPayload, payload)]),
      ]),
    ),
  );
}

function attribute(name: string, value: TtlvItem): TtlvItem {
  return structure(Tag.Attribute, [textString(Tag.AttributeName, name), { ...value, tag: Tag.AttributeValue } as TtlvItem]);
}

function nameValue(name: string): TtlvItem {
  return structure(0, [textString(Tag.NameValue, name), enumeration(Tag.NameType, NameType.UninterpretedTextString)]);
}

/** Create of an AES-256 key usable for Encrypt|Decrypt (what vCenter asks for), optionally named. */
export function createRequest(name?: string): Buffer {
  return message(Operation.Create, [
    enumeration(Tag.ObjectType, ObjectType.SymmetricKey),
    structure(Tag.TemplateAttribute, [
      attribute('Cryptographic Algorithm', enumeration(0, CryptographicAlgorithm.AES)),
      attribute('Cryptographic Length', integer(0, 256)),
      attribute('Cryptographic Usage Mask', integer(0, 12)),
      ...(name === undefined ? [] : [attribute('Name', nameValue(name))]),
    ]),
  ]);
}

export const getRequest = (id: string): Buffer => message(Operation.Get, [textString(Tag.UniqueIdentifier, id)]);

/** Get Attributes without names: every attribute of the object. */
export const getAttributesRequest = (id: string): Buffer => message(Operation.GetAttributes, [textString(Tag.UniqueIdentifier, id)]);

export const locateByNameRequest = (name: string): Buffer => message(Operation.Locate, [attribute('Name', nameValue(name))]);

/**
 * Locate of one AES-256 key by its Cryptographic Length alone: an attribute outside the value index
 * that every bench key shares, so the server tests every key of the tenant to count the matches
 * (the first found is returned). What a monitoring script asking "any 256-bit keys?" costs.
 */
export const locateByLengthRequest = (): Buffer =>
  message(Operation.Locate, [integer(Tag.MaximumItems, 1), attribute('Cryptographic Length', integer(0, 256))]);

export const discoverVersionsRequest = (): Buffer => message(Operation.DiscoverVersions, []);

/** A stored key the workloads may address: its id and its Name. */
export interface SeededKey {
  readonly id: string;
  readonly name: string;
}

/**
 * Pre-encoded requests per operation kind; kinds that address a key have one request per key.
 * `get-new` has none: its request names a key created during the run (getRequest, then).
 */
export type RequestTable = Readonly<Record<OpKind, readonly Buffer[]>>;

/** Kinds whose requests are encoded while the load runs, not taken from the table. */
export const RUNTIME_KINDS: ReadonlySet<OpKind> = new Set(['get-new']);

export function buildRequestTable(keys: readonly SeededKey[]): RequestTable {
  return {
    'get-new': [],
    create: [createRequest()],
    get: keys.map((k) => getRequest(k.id)),
    'get-attributes': keys.map((k) => getAttributesRequest(k.id)),
    locate: keys.map((k) => locateByNameRequest(k.name)),
    'locate-length': [locateByLengthRequest()],
    dv: [discoverVersionsRequest()],
  };
}
