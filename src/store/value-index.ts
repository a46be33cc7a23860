// Which attributes the value index (attributes_by_value, both backends) holds.
//
// Locate finds keys by an attribute's value through that index. Some attributes gain nothing from
// it and cost every Create the most:
//   - values that (nearly) every key shares: the server's flags and constants, and the key's
//     shape (a fleet's keys are all AES-256 Encrypt|Decrypt). A lookup by one of them matches most
//     of the store, which a scan reads as fast; and each name's entries end in the middle of the
//     index, so every name is one more page written per commit.
//   - hashes (Digest, Short Unique Identifier): random, so each lands on its own page of a large
//     index, often splitting it.
// Dates stay (their entries are appended, cheap; a Locate by a creation date range uses them on
// PostgreSQL). At 50,000 keys, leaving the rest out cut the write-ahead log per stored key from
// 38.7 to 13.1 kB (bench/RESULTS.md). A Locate on one of them alone walks the objects (their
// attributes by primary key): slower at a million keys, and rare: clients look keys up by Name,
// Object Group, Application Specific Information, custom attributes, all still indexed.
//
// The list is frozen into the index by migration 5 (SQLite and PostgreSQL; SQLite restates it in
// migration 6). Changing it needs a new migration; store tests check that the index in the
// database is the one the queries assume. Since migration 8 the SQLite store also keeps these
// attributes of each new object in one column (attribute-bag.ts), not as rows: that migration would
// have to move a name leaving the list out of every bag and into rows.

/** Attribute names whose values the value index leaves out. */
export const UNINDEXED_ATTRIBUTE_NAMES: readonly string[] = Object.freeze([
  'Always Sensitive',
  'Cryptographic Algorithm',
  'Cryptographic Length',
  'Cryptographic Usage Mask',
  'Digest',
  'Extractable',
  'Fresh',
  'Key Format Type',
  'Lease Time',
  'Never Extractable',
  'Protection Storage Mask',
  'Random Number Generator',
  'Sensitive',
  'Short Unique Identifier',
]);

const unindexed = new Set(UNINDEXED_ATTRIBUTE_NAMES);

export function isValueIndexed(name: string): boolean {
  return !unindexed.has(name);
}

/**
 * The partial index's condition on the attribute name column `column`, as PostgreSQL's index and
 * SQLite's migration 5 state it. A query must state it word for word for either database to use the
 * index (neither proves it from a bound parameter).
 */
export function valueIndexCondition(column: string): string {
  // Constant names without quotes in them: safe to inline.
  return `${column} NOT IN (${UNINDEXED_ATTRIBUTE_NAMES.map((n) => `'${n}'`).join(', ')})`;
}

/**
 * The same condition as SQLite's index states it since migration 6: one `<>` per name. SQLite
 * evaluates a NOT IN list of more than two constants through a temporary b-tree that it builds
 * again at every run of a statement; an INSERT, UPDATE or DELETE of an attribute row evaluates the
 * index's condition, so every attribute a Create stored paid for one (~35 µs per Create, a quarter
 * of its SQLite time: bench/RESULTS.md, eighth round). A chain of `<>` is a few comparisons.
 */
export function sqliteValueIndexCondition(column: string): string {
  return UNINDEXED_ATTRIBUTE_NAMES.map((n) => `${column} <> '${n}'`).join(' AND ');
}
