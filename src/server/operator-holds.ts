// Server policy for keys an operator revoked (`kmipd keys revoke`): their material is never handed
// out again, whatever the KMIP state says. KMIP lets a client Get a Compromised or Deactivated key
// (the OASIS profiles do, to process data protected earlier); an operator's revocation is the
// stronger statement "stop serving this key now", so it is enforced where key material leaves the
// HSM: every path to key material goes through unwrapKey, with the object the store just gave.
// The hold is read with that object (StoredObject.heldByOperator), as fresh as the object itself:
// a revocation through any node or the CLI is a commit that every request arriving after it sees
// (SQLite's object cache is dropped when another connection commits), so it stops every node at once.
import { KmipError } from '../kmip/errors.js';
import { ResultReason } from '../kmip/registry/generated.js';
import type { HsmKeys, KeyProtector } from '../operations/context.js';

export function withOperatorHolds(keys: HsmKeys): KeyProtector {
  return {
    generateWrappedKey: (objectId, bits) => keys.generateWrappedKey(objectId, bits),
    newWrappedKey: (bits) => keys.newWrappedKey(bits),
    wrapPlaintextKey: (objectId, key) => keys.wrapPlaintextKey(objectId, key),
    wrapSecretBytes: (objectId, secret) => keys.wrapSecretBytes(objectId, secret),
    async unwrapKey(key) {
      if (key.heldByOperator) throw new KmipError(ResultReason.PermissionDenied, `key ${key.id} was revoked by the operator and is not served`);
      return await keys.unwrapKey(key.id, key.wrapped); // `return await`: one tick fewer than returning the promise
    },
  };
}
