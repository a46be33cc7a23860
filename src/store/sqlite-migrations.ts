// Versioned schema migrations, applied in order; PRAGMA user_version records how far we are.
// Never edit a released migration: add a new one.
import { sqliteValueIndexCondition, valueIndexCondition } from './value-index.js';

/**
 * Tables whose every change moves change_epoch (migration 7): what the server's caches hold
 * (objects, their attributes and holds; clients, their credentials and passwords; root keys).
 * Not moved by: a new object and its attribute rows (INSERTs into objects and attributes; a
 * change to an existing object's attributes also updates its objects row, see SqliteStore.update),
 * and cluster heartbeats.
 */
const EPOCH_TRIGGERS: readonly (readonly [table: string, events: readonly string[]])[] = [
  ['objects', ['UPDATE', 'DELETE']],
  ['attributes', ['UPDATE', 'DELETE']],
  ['key_holds', ['INSERT', 'UPDATE', 'DELETE']],
  ['clients', ['INSERT', 'UPDATE', 'DELETE']],
  ['client_credentials', ['INSERT', 'UPDATE', 'DELETE']],
  ['client_passwords', ['INSERT', 'UPDATE', 'DELETE']],
  ['root_keys', ['INSERT', 'UPDATE', 'DELETE']],
];

export const MIGRATIONS: readonly string[] = [
  // 1: objects and their attributes. seq gives Locate a stable order; attribute values are the
  // TTLV encoding of the Attribute Value item, so equality lookups are served by an index.
  `CREATE TABLE objects (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     object_type INTEGER NOT NULL,
     state INTEGER NOT NULL,
     root_key_label TEXT,
     wrap_mechanism TEXT,
     wrapped_key BLOB,
     created_at INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX objects_by_type_state ON objects (object_type, state, seq);
   CREATE TABLE attributes (
     object_seq INTEGER NOT NULL REFERENCES objects (seq) ON DELETE CASCADE,
     name TEXT NOT NULL,
     idx INTEGER NOT NULL,
     value BLOB NOT NULL,
     PRIMARY KEY (object_seq, name, idx)
   ) STRICT, WITHOUT ROWID;
   CREATE INDEX attributes_by_value ON attributes (name, value, object_seq);`,
  // 2: operator state shared by every node: enrolled clients and how their certificates are
  // trusted, root key versions (which one wraps new keys), and keys the operator revoked.
  `CREATE TABLE clients (
     name TEXT PRIMARY KEY,
     tenant TEXT NOT NULL,
     role TEXT NOT NULL CHECK (role IN ('reader', 'writer', 'manager')),
     created_at INTEGER NOT NULL,
     revoked_at INTEGER,
     revocation_reason TEXT,
     last_seen_at INTEGER,
     last_seen_fingerprint TEXT
   ) STRICT;
   -- issued / pinned: the exact certificate (fingerprint of the leaf). ca: any certificate issued
   -- under this CA certificate, optionally only for one subject.
   CREATE TABLE client_credentials (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     client_name TEXT NOT NULL REFERENCES clients (name),
     kind TEXT NOT NULL CHECK (kind IN ('issued', 'pinned', 'ca')),
     fingerprint TEXT NOT NULL CHECK (length(fingerprint) = 64),
     certificate TEXT NOT NULL,
     subject TEXT CHECK (subject IS NULL OR kind = 'ca'),
     serial TEXT NOT NULL,
     not_after INTEGER NOT NULL,
     added_at INTEGER NOT NULL,
     revoked_at INTEGER
   ) STRICT;
   -- A certificate identifies one client, forever (a revoked one cannot come back under a new name).
   CREATE UNIQUE INDEX client_credentials_leaf ON client_credentials (fingerprint) WHERE kind <> 'ca';
   CREATE UNIQUE INDEX client_credentials_ca ON client_credentials (fingerprint, ifnull(subject, ''))
     WHERE kind = 'ca' AND revoked_at IS NULL;
   CREATE INDEX client_credentials_by_client ON client_credentials (client_name);
   CREATE TABLE root_keys (
     version INTEGER PRIMARY KEY,
     label TEXT NOT NULL UNIQUE,
     state TEXT NOT NULL CHECK (state IN ('active', 'retiring', 'retired')),
     created_at INTEGER NOT NULL,
     retired_at INTEGER
   ) STRICT;
   CREATE UNIQUE INDEX root_keys_one_active ON root_keys (state) WHERE state = 'active';
   CREATE INDEX objects_by_root_key ON objects (root_key_label, seq) WHERE wrapped_key IS NOT NULL;
   -- Last line of defence for rotation: nothing may be (re)wrapped under a retired root key.
   CREATE TRIGGER objects_insert_not_retired BEFORE INSERT ON objects
     WHEN NEW.wrapped_key IS NOT NULL AND NEW.root_key_label IN (SELECT label FROM root_keys WHERE state = 'retired')
     BEGIN SELECT RAISE(ABORT, 'root key is retired'); END;
   CREATE TRIGGER objects_update_not_retired BEFORE UPDATE OF root_key_label, wrapped_key ON objects
     WHEN NEW.wrapped_key IS NOT NULL AND NEW.root_key_label IN (SELECT label FROM root_keys WHERE state = 'retired')
     BEGIN SELECT RAISE(ABORT, 'root key is retired'); END;
   CREATE TABLE key_holds (
     object_id TEXT PRIMARY KEY REFERENCES objects (id) ON DELETE CASCADE,
     held_at INTEGER NOT NULL,
     reason TEXT NOT NULL,
     message TEXT
   ) STRICT;`,
  // 3: tenant scoping. Every object belongs to the tenant of the client that created it; objects
  // from before this migration belong to "default", the tenant every earlier client was in.
  // Username/Password credentials a client may present (vCenter offers them), as scrypt hashes.
  `ALTER TABLE objects ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
   CREATE INDEX objects_by_tenant ON objects (tenant, seq);
   CREATE TABLE client_passwords (
     client_name TEXT PRIMARY KEY REFERENCES clients (name),
     username TEXT NOT NULL,
     scrypt_hash BLOB NOT NULL,
     salt BLOB NOT NULL,
     updated_at INTEGER NOT NULL
   ) STRICT;`,
  // 4: cluster membership (`kmipd cluster status`): each serving node and its last heartbeat, in
  // milliseconds since the epoch. postgres-migrations.ts has the same steps for PostgreSQL.
  `CREATE TABLE cluster_nodes (
     node_id TEXT PRIMARY KEY,
     host TEXT NOT NULL,
     listen TEXT NOT NULL,
     version TEXT NOT NULL,
     pid INTEGER NOT NULL,
     started_at INTEGER NOT NULL,
     heartbeat_at INTEGER NOT NULL,
     stopped_at INTEGER
   ) STRICT;`,
  // 5: the value index without the attributes Locate gains nothing from (value-index.ts): a third
  // of the write-ahead log per Create. Rebuilding it reads every attribute once (2.9 s at 100,000
  // keys on the bench machine; the server starts after it).
  `DROP INDEX attributes_by_value;
   CREATE INDEX attributes_by_value ON attributes (name, value, object_seq) WHERE ${valueIndexCondition('name')};`,
  // 6: the same index and the same retired-root-key guard, in forms SQLite evaluates without a
  // temporary b-tree per row written: the index's condition as a chain of <> (value-index.ts), the
  // guard as an EXISTS on root_keys' label index (PostgreSQL's guard already is). Together ~45 µs of
  // a Create's SQLite time (bench/RESULTS.md, eighth round). Rebuilding the index reads every
  // attribute once, as migration 5 did.
  `DROP INDEX attributes_by_value;
   CREATE INDEX attributes_by_value ON attributes (name, value, object_seq) WHERE ${sqliteValueIndexCondition('name')};
   DROP TRIGGER objects_insert_not_retired;
   DROP TRIGGER objects_update_not_retired;
   CREATE TRIGGER objects_insert_not_retired BEFORE INSERT ON objects
     WHEN NEW.wrapped_key IS NOT NULL AND EXISTS (SELECT 1 FROM root_keys WHERE label = NEW.root_key_label AND state = 'retired')
     BEGIN SELECT RAISE(ABORT, 'root key is retired'); END;
   CREATE TRIGGER objects_update_not_retired BEFORE UPDATE OF root_key_label, wrapped_key ON objects
     WHEN NEW.wrapped_key IS NOT NULL AND EXISTS (SELECT 1 FROM root_keys WHERE label = NEW.root_key_label AND state = 'retired')
     BEGIN SELECT RAISE(ABORT, 'root key is retired'); END;`,
  // 7: a count of the changes that can make a cached value stale (sqlite-change-watch.ts): with
  // it, another connection's commit that only adds objects (the insert thread's, another serve
  // process's) leaves the caches as they are, where data_version alone emptied them.
  `CREATE TABLE change_epoch (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     epoch INTEGER NOT NULL
   ) STRICT;
   INSERT INTO change_epoch (id, epoch) VALUES (1, 0);
   ${EPOCH_TRIGGERS.flatMap(([table, events]) =>
     events.map((e) => `CREATE TRIGGER ${table}_${e.toLowerCase()}_epoch AFTER ${e} ON ${table} BEGIN UPDATE change_epoch SET epoch = epoch + 1; END;`),
   ).join('\n   ')}`,
  // 8: each object's attributes outside the value index in one column (attribute-bag.ts) instead of
  // one row each. Objects stored before keep their rows (the column stays NULL for them).
  `ALTER TABLE objects ADD COLUMN unindexed_attributes BLOB;`,
];
