// Versioned schema migrations for PostgreSQL: the same steps, tables, columns, constraints and
// indexes as sqlite-migrations.ts, in PostgreSQL's dialect. kmipd_schema records how far we are;
// PgDatabase applies the missing steps in one transaction under an advisory lock. Never edit a
// released migration: add a new one (here and in sqlite-migrations.ts).
//
// Dialect notes:
//   - TEXT columns that are compared or sorted use COLLATE "C" (bytewise, like SQLite's BINARY),
//     so names and attributes come back in the same order from both backends.
//   - BYTEA compares bytewise, like SQLite's BLOB: Locate's value and date-range lookups work on
//     the TTLV encodings unchanged.
//   - A btree entry must stay under ~2.7 kB, and an attribute value may be longer: the value index
//     holds the first 1024 bytes, which preserves equality and order tests (a prefix of a smaller
//     value is never greater), and the query rechecks the full value.
//   - The retired-root-key guard is a PL/pgSQL trigger function instead of SQLite's RAISE(ABORT).
import { valueIndexCondition } from './value-index.js';

/** Bytes of an attribute value held in the value index (see above); postgres-store.ts uses the same. */
export const VALUE_INDEX_PREFIX = 1024;

export const POSTGRES_MIGRATIONS: readonly string[] = [
  // 1: objects and their attributes.
  `CREATE TABLE objects (
     seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     id TEXT COLLATE "C" NOT NULL UNIQUE,
     object_type INTEGER NOT NULL,
     state INTEGER NOT NULL,
     root_key_label TEXT COLLATE "C",
     wrap_mechanism TEXT,
     wrapped_key BYTEA,
     created_at BIGINT NOT NULL
   );
   CREATE INDEX objects_by_type_state ON objects (object_type, state, seq);
   CREATE TABLE attributes (
     object_seq BIGINT NOT NULL REFERENCES objects (seq) ON DELETE CASCADE,
     name TEXT COLLATE "C" NOT NULL,
     idx INTEGER NOT NULL,
     value BYTEA NOT NULL,
     PRIMARY KEY (object_seq, name, idx)
   );
   CREATE INDEX attributes_by_value ON attributes (name, substr(value, 1, ${VALUE_INDEX_PREFIX}), object_seq);`,
  // 2: operator state shared by every node: enrolled clients and how their certificates are
  // trusted, root key versions (which one wraps new keys), and keys the operator revoked.
  `CREATE TABLE clients (
     name TEXT COLLATE "C" PRIMARY KEY,
     tenant TEXT COLLATE "C" NOT NULL,
     role TEXT NOT NULL CHECK (role IN ('reader', 'writer', 'manager')),
     created_at BIGINT NOT NULL,
     revoked_at BIGINT,
     revocation_reason TEXT,
     last_seen_at BIGINT,
     last_seen_fingerprint TEXT
   );
   CREATE TABLE client_credentials (
     id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     client_name TEXT COLLATE "C" NOT NULL REFERENCES clients (name),
     kind TEXT NOT NULL CHECK (kind IN ('issued', 'pinned', 'ca')),
     fingerprint TEXT COLLATE "C" NOT NULL CHECK (length(fingerprint) = 64),
     certificate TEXT NOT NULL,
     subject TEXT COLLATE "C" CHECK (subject IS NULL OR kind = 'ca'),
     serial TEXT NOT NULL,
     not_after BIGINT NOT NULL,
     added_at BIGINT NOT NULL,
     revoked_at BIGINT
   );
   CREATE UNIQUE INDEX client_credentials_leaf ON client_credentials (fingerprint) WHERE kind <> 'ca';
   CREATE UNIQUE INDEX client_credentials_ca ON client_credentials (fingerprint, coalesce(subject, ''))
     WHERE kind = 'ca' AND revoked_at IS NULL;
   CREATE INDEX client_credentials_by_client ON client_credentials (client_name);
   CREATE TABLE root_keys (
     version INTEGER PRIMARY KEY,
     label TEXT COLLATE "C" NOT NULL UNIQUE,
     state TEXT NOT NULL CHECK (state IN ('active', 'retiring', 'retired')),
     created_at BIGINT NOT NULL,
     retired_at BIGINT
   );
   CREATE UNIQUE INDEX root_keys_one_active ON root_keys (state) WHERE state = 'active';
   CREATE INDEX objects_by_root_key ON objects (root_key_label, seq) WHERE wrapped_key IS NOT NULL;
   -- Last line of defence for rotation: nothing may be (re)wrapped under a retired root key.
   CREATE FUNCTION kmipd_refuse_retired_root_key() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF NEW.wrapped_key IS NOT NULL AND EXISTS (SELECT 1 FROM root_keys WHERE label = NEW.root_key_label AND state = 'retired') THEN
       RAISE EXCEPTION 'root key is retired' USING ERRCODE = 'check_violation';
     END IF;
     RETURN NEW;
   END $$;
   CREATE TRIGGER objects_insert_not_retired BEFORE INSERT ON objects
     FOR EACH ROW EXECUTE FUNCTION kmipd_refuse_retired_root_key();
   CREATE TRIGGER objects_update_not_retired BEFORE UPDATE OF root_key_label, wrapped_key ON objects
     FOR EACH ROW EXECUTE FUNCTION kmipd_refuse_retired_root_key();
   CREATE TABLE key_holds (
     object_id TEXT COLLATE "C" PRIMARY KEY REFERENCES objects (id) ON DELETE CASCADE,
     held_at BIGINT NOT NULL,
     reason TEXT NOT NULL,
     message TEXT
   );`,
  // 3: tenant scoping, and Username/Password credentials a client may present (scrypt hashes).
  `ALTER TABLE objects ADD COLUMN tenant TEXT COLLATE "C" NOT NULL DEFAULT 'default';
   CREATE INDEX objects_by_tenant ON objects (tenant, seq);
   CREATE TABLE client_passwords (
     client_name TEXT COLLATE "C" PRIMARY KEY REFERENCES clients (name),
     username TEXT NOT NULL,
     scrypt_hash BYTEA NOT NULL,
     salt BYTEA NOT NULL,
     updated_at BIGINT NOT NULL
   );`,
  // 4: cluster membership (`kmipd cluster status`), times in milliseconds since the epoch.
  `CREATE TABLE cluster_nodes (
     node_id TEXT COLLATE "C" PRIMARY KEY,
     host TEXT NOT NULL,
     listen TEXT NOT NULL,
     version TEXT NOT NULL,
     pid INTEGER NOT NULL,
     started_at BIGINT NOT NULL,
     heartbeat_at BIGINT NOT NULL,
     stopped_at BIGINT
   );`,
  // 5: the value index without the attributes Locate gains nothing from (value-index.ts).
  `DROP INDEX attributes_by_value;
   CREATE INDEX attributes_by_value ON attributes (name, substr(value, 1, ${VALUE_INDEX_PREFIX}), object_seq) WHERE ${valueIndexCondition('name')};`,
  // 6: nothing to do here. SQLite's step 6 rewrites its index condition and root-key guard into
  // forms it evaluates more cheaply; PostgreSQL's are already cheap. Kept so versions stay in step.
  `SELECT 1;`,
  // 7: nothing to do here either. SQLite's step 7 counts the changes that can make a cached value
  // stale, for its insert thread; the PostgreSQL store neither caches objects nor has that thread.
  `SELECT 1;`,
  // 8: nothing to do. SQLite's step 8 keeps the attributes outside the value index in one column
  // per object, to cut its b-tree work per Create; the PostgreSQL store keeps rows.
  `SELECT 1;`,
];
