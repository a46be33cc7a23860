// What the running server reads from the operator's side of the store, and keeps following while
// it runs: the client registry (admission, revocation), the active root key version (rotation),
// and the server certificate files (rotation without downtime); operator holds on keys come with
// each object the store reads (StoredObject.heldByOperator, see operator-holds.ts).
// Everything comes from the store backend the server shares with every other node and with the
// operator's commands; nothing is cached in a way that could let a revoked client in or a held
// key out: admission, each request, each unwrap and the revocation sweep read the database (or
// SQLite's caches, which another connection's commit empties for whatever arrives after it; see
// sqlite-change-watch.ts).
import type { Logger } from 'pino';
import type { StoreBackend } from '../store/backend.js';
import type { ClientPasswords } from '../store/client-passwords.js';
import type { KeyProtector } from '../operations/context.js';
import { ClientTrust } from './client-trust.js';
import { watchServerCertificate } from './tls-reload.js';
import type { KmipServer } from './kmip-server.js';

/** How often open connections are checked against the registry (revocation closes them). */
export const REVOCATION_SWEEP_MS = 1000;

export interface OperatorState {
  readonly gate: ClientTrust;
  /** Username/Password credentials set by the operator (`kmipd client set-password`). */
  readonly passwords: ClientPasswords;
  /**
   * The root key new keys are wrapped under, as last read from the store. The HSM asks for it
   * synchronously; withActiveRootKey reads the store again right before every wrap.
   */
  activeRootKeyLabel(): string;
  /** Reads the active root key version from the store (and remembers it for activeRootKeyLabel). */
  refreshActiveRootKey(): Promise<string>;
  /**
   * Follow revocations and server certificate changes for this server. `arrived` as the server's
   * (KmipServerOptions.arrived): each sweep must see every revocation committed before it starts.
   */
  attach(server: KmipServer, serverFiles: { cert: string; key: string }, arrived?: () => void): void;
  /** Stops following; the store itself belongs to the caller. */
  close(): void;
}

export async function openOperatorState(store: StoreBackend, o: { configuredRootKeyLabel: string; log: Logger; audit: Logger }): Promise<OperatorState> {
  await store.rootKeys.ensureInitialized(o.configuredRootKeyLabel);
  let active = (await store.rootKeys.activeLabel()) ?? o.configuredRootKeyLabel;
  const gate = new ClientTrust(store.clients, o.log, o.audit);
  const stops: (() => void)[] = [];
  return {
    gate,
    passwords: store.passwords,
    activeRootKeyLabel: () => active,
    async refreshActiveRootKey() {
      active = (await store.rootKeys.activeLabel()) ?? o.configuredRootKeyLabel;
      return active;
    },
    attach(server, serverFiles, arrived) {
      let sweeping = false;
      const sweep = setInterval(() => {
        if (sweeping) return; // a slow database: never pile sweeps up
        sweeping = true;
        arrived?.();
        gate
          .noLongerAdmitted(server.admittedClients())
          .then((gone) => {
            if (gone.size > 0) server.closeConnectionsOf((c) => gone.has(c));
          })
          .catch((err: unknown) => o.log.error({ err }, 'revocation sweep failed'))
          .finally(() => {
            sweeping = false;
          });
      }, REVOCATION_SWEEP_MS);
      sweep.unref();
      stops.push(() => clearInterval(sweep));
      stops.push(watchServerCertificate(serverFiles, (pair) => server.reloadTls(pair), o.log));
    },
    close() {
      for (const stop of stops.splice(0)) stop();
    },
  };
}

/**
 * Root key rotation across nodes: before each new wrap, read which root key version is active in
 * the store, so that a rotation started from any node (or the CLI) applies to the very next key.
 */
export function withActiveRootKey(keys: KeyProtector, refresh: () => Promise<unknown>): KeyProtector {
  return {
    async generateWrappedKey(objectId, bits) {
      await refresh();
      return keys.generateWrappedKey(objectId, bits);
    },
    async newWrappedKey(bits) {
      await refresh();
      return keys.newWrappedKey(bits);
    },
    async wrapPlaintextKey(objectId, key) {
      await refresh();
      return keys.wrapPlaintextKey(objectId, key);
    },
    async wrapSecretBytes(objectId, secret) {
      await refresh();
      return keys.wrapSecretBytes(objectId, secret);
    },
    unwrapKey: (key) => keys.unwrapKey(key),
  };
}
