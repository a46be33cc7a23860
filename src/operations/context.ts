// What every operation handler receives. Handlers are small functions registered by operation code;
// the dispatcher owns batching, error mapping and versions.
import type { Logger } from 'pino';
import type { TtlvItem } from '../ttlv/types.js';
import type { Fields } from '../kmip/fields.js';
import type { ProtocolVersion } from '../kmip/version.js';
import type { KeyStore, StoredObject, WrappedKeyRecord } from '../store/types.js';
import type { ClientRole } from '../store/client-registry.js';

/** The HSM seen from the operations: it wraps and unwraps, and never hands out the root key. */
export interface KeyProtector {
  /** Generates in the HSM; `digest` is the SHA-256 of the key value, also computed in the HSM. */
  generateWrappedKey(objectId: string, bits: 128 | 192 | 256): Promise<WrappedKeyRecord & { readonly digest: Uint8Array }>;
  /** A key for a new object, and the object's id (newUniqueIdentifier): Create's, which may have been made ahead. */
  newWrappedKey(bits: 128 | 192 | 256): Promise<{ readonly objectId: string; readonly key: WrappedKeyRecord & { readonly digest: Uint8Array } }>;
  wrapPlaintextKey(objectId: string, key: Uint8Array): Promise<WrappedKeyRecord>;
  /** Wraps any secret bytes (a whole registered object) for one id; `unwrapKey` gives them back. */
  wrapSecretBytes(objectId: string, secret: Uint8Array): Promise<WrappedKeyRecord>;
  /**
   * The key's material, from the object as the store just gave it (an operator hold refuses it).
   * The caller must zero the returned buffer once the response is encoded.
   */
  unwrapKey(key: KeyToUnwrap): Promise<Buffer>;
}

/** What unwrapKey needs of a stored object. */
export type KeyToUnwrap = Pick<StoredObject, 'id' | 'heldByOperator'> & { readonly wrapped: WrappedKeyRecord };

/** The HSM as the server drives it: it unwraps by object id and blob, and knows nothing of operator holds. */
export type HsmKeys = Omit<KeyProtector, 'unwrapKey'> & {
  unwrapKey(objectId: string, wrapped: WrappedKeyRecord): Promise<Buffer>;
};

/**
 * Who is asking: the enrolled client whose certificate the TLS layer verified against the client
 * registry (never the address). Tenant and role come from the registry, not from the certificate.
 */
export interface ClientIdentity {
  /** Registry name of the client (what the operator enrolled it as). */
  readonly name: string;
  readonly tenant: string;
  readonly role: ClientRole;
  readonly commonName: string;
  readonly fingerprintSha256: string;
}

export interface ServerInfo {
  readonly vendor: string;
  readonly version: string;
}

export interface OperationContext {
  readonly version: ProtocolVersion;
  readonly client: ClientIdentity;
  readonly store: KeyStore;
  readonly keys: KeyProtector;
  readonly log: Logger;
  readonly server: ServerInfo;
  /** The ID Placeholder: the Unique Identifier produced by the previous item of this batch. */
  idPlaceholder: string | undefined;
  /** Buffers holding plaintext key material, zeroed once the response has been encoded. */
  readonly secrets: Buffer[];
  /** Audit detail: the object the item acted on. */
  objectId: string | undefined;
}

export type OperationHandler = (ctx: OperationContext, payload: Fields) => Promise<TtlvItem[]>;
