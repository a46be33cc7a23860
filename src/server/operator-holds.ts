// Server policy for keys an operator revoked (`kmipd keys revoke`): their material is never handed
// out again, whatever the KMIP state says. KMIP lets a client Get a Compromised or Deactivated key
// (the OASIS profiles do, to process data protected earlier); an operator's revocation is the
// stronger statement "stop serving this key now", so it is enforced where key material leaves the
// HSM: every path to key material goes through unwrapKey. The hold is read from the store on every
// unwrap, so a revocation made through any node or the CLI stops every node at once.
import { KmipError } from '../kmip/errors.js';
import { ResultReason } from '../kmip/registry/generated.js';
import type { KeyProtector } from '../operations/context.js';
import type { KeyHolds } from '../store/key-holds.js';

export function withOperatorHolds(keys: KeyProtector, holds: Pick<KeyHolds, 'get'>): KeyProtector {
  return {
    generateWrappedKey: (objectId, bits) => keys.generateWrappedKey(objectId, bits),
    wrapPlaintextKey: (objectId, key) => keys.wrapPlaintextKey(objectId, key),
    wrapSecretBytes: (objectId, secret) => keys.wrapSecretBytes(objectId, secret),
    async unwrapKey(objectId, wrapped) {
      if (await holds.get(objectId)) throw new KmipError(ResultReason.PermissionDenied, `key ${objectId} was revoked by the operator and is not served`);
      return keys.unwrapKey(objectId, wrapped);
    },
  };
}
