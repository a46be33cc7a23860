// What the running server reads from the operator's side of the store, and keeps following while
// it runs: the client registry (admission, revocation), the active root key version (rotation),
// operator holds on keys, and the server certificate files (rotation without downtime).
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { openSqliteDatabase } from '../store/sqlite-store.js';
import { ClientRegistry } from '../store/client-registry.js';
import { RootKeyRegistry } from '../store/root-keys.js';
import { KeyHolds } from '../store/key-holds.js';
import { ClientPasswords } from '../store/client-passwords.js';
import { ClientTrust } from './client-trust.js';
import { watchServerCertificate } from './tls-reload.js';
import type { KmipServer } from './kmip-server.js';

/** How often open connections are checked against the registry (revocation closes them). */
export const REVOCATION_SWEEP_MS = 1000;

export interface OperatorState {
  readonly gate: ClientTrust;
  readonly holds: KeyHolds;
  /** Username/Password credentials set by the operator (`kmipd client set-password`). */
  readonly passwords: ClientPasswords;
  /** The root key new keys are wrapped under, as recorded in the store. */
  activeRootKeyLabel(): string;
  /** Follow revocations and server certificate changes for this server. */
  attach(server: KmipServer, serverFiles: { cert: string; key: string }): void;
  close(): void;
}

export function openOperatorState(storePath: string, o: { configuredRootKeyLabel: string; log: Logger; audit: Logger }): OperatorState {
  const db: Database.Database = openSqliteDatabase(storePath);
  const registry = new ClientRegistry(db);
  const rootKeys = new RootKeyRegistry(db);
  rootKeys.ensureInitialized(o.configuredRootKeyLabel);
  const gate = new ClientTrust(registry, o.log, o.audit);
  const stops: (() => void)[] = [];
  return {
    gate,
    holds: new KeyHolds(db),
    passwords: new ClientPasswords(db),
    activeRootKeyLabel: () => rootKeys.activeLabel() ?? o.configuredRootKeyLabel,
    attach(server, serverFiles) {
      const sweep = setInterval(() => {
        try {
          server.closeConnectionsOf((c) => !gate.stillAdmitted(c));
        } catch (err) {
          o.log.error({ err }, 'revocation sweep failed');
        }
      }, REVOCATION_SWEEP_MS);
      sweep.unref();
      stops.push(() => clearInterval(sweep));
      stops.push(watchServerCertificate(serverFiles, (pair) => server.reloadTls(pair), o.log));
    },
    close() {
      for (const stop of stops.splice(0)) stop();
      if (db.open) db.close();
    },
  };
}
