// Versioned schema migrations, applied in order; PRAGMA user_version records how far we are.
// Never edit a released migration: add a new one.

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
];
