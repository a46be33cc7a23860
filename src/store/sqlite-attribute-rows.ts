// Writes an object's attribute rows with one INSERT of several rows instead of one INSERT per
// row. A Create stores ~17 attributes; each better-sqlite3 run() is a call into native code, a
// bind of four values, a step and a reset, and those were a quarter of a Create's server CPU under
// the profiler. One statement per chunk keeps the b-tree work and drops most of the rest
// (bench/RESULTS.md, tenth round).
import type Database from 'better-sqlite3';
import { encodeTtlv } from '../ttlv/index.js';
import type { Attribute } from '../kmip/attributes.js';

/** Rows per statement: a Create's attributes fit in one; far below SQLite's bound on variables. */
export const ROWS_PER_INSERT = 32;

/** An INSERT of `rows` attribute rows (the insert thread prepares the same). */
export function attributeInsertSql(rows: number): string {
  return `INSERT INTO attributes (object_seq, name, idx, value) VALUES ${Array.from({ length: rows }, () => '(?, ?, ?, ?)').join(', ')}`;
}

export class SqliteAttributeRows {
  /** The INSERT for n rows, prepared the first time n rows are written (n <= ROWS_PER_INSERT). */
  private readonly inserts = new Map<number, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  /** Inserts `attrs` as rows of the object `seq`; throws (e.g. a duplicate row) as SQLite does. */
  insert(seq: number, attrs: readonly Attribute[]): void {
    for (let start = 0; start < attrs.length; start += ROWS_PER_INSERT) {
      const chunk = attrs.slice(start, start + ROWS_PER_INSERT);
      const values: unknown[] = new Array(chunk.length * 4);
      chunk.forEach((a, i) => {
        values[4 * i] = seq;
        values[4 * i + 1] = a.name;
        values[4 * i + 2] = a.index;
        values[4 * i + 3] = encodeTtlv(a.value);
      });
      this.statementFor(chunk.length).run(values);
    }
  }

  private statementFor(rows: number): Database.Statement {
    let stmt = this.inserts.get(rows);
    if (!stmt) {
      stmt = this.db.prepare(attributeInsertSql(rows));
      this.inserts.set(rows, stmt);
    }
    return stmt;
  }
}
