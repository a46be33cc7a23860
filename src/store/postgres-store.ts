// The object store on PostgreSQL: same contract as SqliteStore (types.ts). Each mutating call is
// one statement (autocommit) or one transaction, committed before the promise resolves, with
// synchronous_commit at least `on` (postgres-database.ts): a Create is answered only once its row
// is durable, on the synchronous standby too when one is configured. Reads go to the database every
// time, so any node sees a change the moment it is committed by any other.
//
// Crypto-erase: the wrapped key is set to NULL. PostgreSQL keeps the old row version until VACUUM
// reclaims it (and in its WAL); the wrapped key is useless without the HSM root key either way.
import { decodeTtlv, encodeTtlv } from '../ttlv/index.js';
import { State, Tag } from '../kmip/registry/generated.js';
import { dateTime } from '../ttlv/build.js';
import type { Attribute } from '../kmip/attributes.js';
import type { PgDatabase, Queryable } from './postgres-database.js';
import { VALUE_INDEX_PREFIX } from './postgres-migrations.js';
import { isValueIndexed, valueIndexCondition } from './value-index.js';
import { wrappedKeyOf, type KeyStore, type LocateQuery, type LocateResult, type NewObject, type ObjectUpdate, type StoreHealth, type StoredObject } from './types.js';

interface JoinedRow {
  id: string;
  tenant: string;
  object_type: number;
  state: number;
  root_key_label: string | null;
  wrap_mechanism: string | null;
  wrapped_key: Buffer | null;
  name: string | null;
  idx: number | null;
  value: Buffer | null;
  held: boolean;
}

const DESTROYED_STATES = [State.Destroyed, State.DestroyedCompromised];

/** How long a readiness write probe may take. */
const PROBE_TIMEOUT_MS = 2000;

/** Attribute rows as three parallel arrays, for one INSERT … SELECT FROM unnest(…). */
function columns(attrs: readonly Attribute[]): [string[], number[], Buffer[]] {
  return [attrs.map((a) => a.name), attrs.map((a) => a.index), attrs.map((a) => encodeTtlv(a.value))];
}

const INSERT_ATTRIBUTES = `INSERT INTO attributes (object_seq, name, idx, value)
  SELECT $1, a.name, a.idx, a.value FROM unnest($2::text[], $3::int[], $4::bytea[]) AS a(name, idx, value)`;

/** `a.value = $n`, written so that the value index (on a prefix) serves it. */
const valueEquals = (p: number) => `substr(a.value, 1, ${VALUE_INDEX_PREFIX}) = substr($${p}::bytea, 1, ${VALUE_INDEX_PREFIX}) AND a.value = $${p}`;
const valueBetween = (lo: number, hi: number) =>
  `substr(a.value, 1, ${VALUE_INDEX_PREFIX}) BETWEEN substr($${lo}::bytea, 1, ${VALUE_INDEX_PREFIX}) AND substr($${hi}::bytea, 1, ${VALUE_INDEX_PREFIX}) ` +
  `AND a.value BETWEEN $${lo} AND $${hi}`;

/**
 * The Locate statement: one statement, one snapshot, so that the total and the page agree. Rows:
 * the page's ids newest first (none: one row with a null id), each with the total.
 */
export function locateStatement(q: LocateQuery): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (v: unknown) => {
    params.push(v);
    return params.length;
  };
  if (q.tenant !== undefined) where.push(`o.tenant = $${param(q.tenant)}`);
  if (q.objectType !== undefined) where.push(`o.object_type = $${param(q.objectType)}`);
  if (q.states !== undefined) where.push(`o.state = ANY($${param(q.states)}::int[])`);
  if (!q.includeDestroyed) where.push(`o.state NOT IN (${DESTROYED_STATES.join(',')})`);
  for (const m of q.matches) {
    const name = param(m.name);
    if (m.upTo === undefined) {
      // The value index is partial (value-index.ts): its condition is repeated for the planner.
      const indexed = isValueIndexed(m.name) ? ` AND ${valueIndexCondition('a.name')}` : '';
      where.push(`EXISTS (SELECT 1 FROM attributes a WHERE a.object_seq = o.seq AND a.name = $${name} AND ${valueEquals(param(encodeTtlv(m.value)))}${indexed})`);
    } else {
      // Encoded values of one non-negative numeric type sort like the numbers (big-endian).
      const lo = param(encodeTtlv(m.value));
      const hi = param(encodeTtlv(m.upTo));
      where.push(`EXISTS (SELECT 1 FROM attributes a WHERE a.object_seq = o.seq AND a.name = $${name} AND ${valueBetween(lo, hi)})`);
    }
  }
  const cond = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const limit = param(q.maxItems ?? null);
  const offset = param(q.offset);
  return {
    sql: `WITH m AS (SELECT o.seq, o.id FROM objects o ${cond}),
               page AS (SELECT id, seq FROM m ORDER BY seq DESC LIMIT $${limit} OFFSET $${offset})
          SELECT (SELECT count(*) FROM m) AS total, page.id FROM (SELECT 1) one LEFT JOIN page ON true ORDER BY page.seq DESC`,
    params,
  };
}

export class PostgresStore implements KeyStore, StoreHealth {
  constructor(private readonly db: PgDatabase) {}

  async insert(obj: NewObject): Promise<void> {
    // One statement: the object and its attributes commit together or not at all.
    await this.db.run(
      `WITH o AS (
         INSERT INTO objects (id, tenant, object_type, state, root_key_label, wrap_mechanism, wrapped_key, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq)
       INSERT INTO attributes (object_seq, name, idx, value)
       SELECT o.seq, a.name, a.idx, a.value FROM o, unnest($9::text[], $10::int[], $11::bytea[]) AS a(name, idx, value)`,
      [
        obj.id,
        obj.tenant,
        obj.objectType,
        obj.state,
        obj.wrapped.rootKeyLabel,
        obj.wrapped.mechanism,
        Buffer.from(obj.wrapped.blob),
        Math.floor(Date.now() / 1000),
        ...columns(obj.attributes),
      ],
    );
  }

  async get(id: string): Promise<StoredObject | undefined> {
    const rows = await this.db.rows<JoinedRow>(
      `SELECT o.id, o.tenant, o.object_type, o.state, o.root_key_label, o.wrap_mechanism, o.wrapped_key, a.name, a.idx, a.value,
              EXISTS (SELECT 1 FROM key_holds h WHERE h.object_id = o.id) AS held
       FROM objects o LEFT JOIN attributes a ON a.object_seq = o.seq
       WHERE o.id = $1 ORDER BY a.name, a.idx`,
      [id],
    );
    const [row] = rows;
    if (!row) return undefined;
    return {
      id: row.id,
      tenant: row.tenant,
      objectType: row.object_type,
      state: row.state,
      wrapped: wrappedKeyOf(row),
      attributes: rows
        .filter((r) => r.name !== null)
        .map((r): Attribute => ({ name: r.name!, index: r.idx!, value: decodeTtlv(r.value!) })),
      heldByOperator: row.held,
    };
  }

  async update(id: string, change: ObjectUpdate): Promise<boolean> {
    return this.db.tx(async (q) => {
      // The row lock orders concurrent changes to one object, from any node.
      const [row] = await q.rows<{ seq: number }>('SELECT seq FROM objects WHERE id = $1 FOR UPDATE', [id]);
      if (!row) return false;
      if (change.state !== undefined) await q.run('UPDATE objects SET state = $1 WHERE seq = $2', [change.state, row.seq]);
      if (change.replace && change.replace.size > 0) {
        await q.run('DELETE FROM attributes WHERE object_seq = $1 AND name = ANY($2::text[])', [row.seq, [...change.replace.keys()]]);
        await this.insertAttributes(q, row.seq, [...change.replace.values()].flat());
      }
      if (change.eraseKey) await q.run('UPDATE objects SET wrapped_key = NULL, wrap_mechanism = NULL WHERE seq = $1', [row.seq]);
      return true;
    });
  }

  private async insertAttributes(q: Queryable, seq: number, attrs: readonly Attribute[]): Promise<void> {
    if (attrs.length > 0) await q.run(INSERT_ATTRIBUTES, [seq, ...columns(attrs)]);
  }

  async applyDueTransitions(now: bigint): Promise<void> {
    // Encoded Date-Time values of positive times sort like the times themselves (big-endian).
    const nowValue = encodeTtlv(dateTime(Tag.AttributeValue, now));
    const due = (name: string) =>
      `seq IN (SELECT a.object_seq FROM attributes a WHERE a.name = '${name}' AND ${valueIndexCondition('a.name')} ` +
      `AND substr(a.value, 1, ${VALUE_INDEX_PREFIX}) <= substr($1::bytea, 1, ${VALUE_INDEX_PREFIX}) AND a.value <= $1)`;
    await this.db.tx(async (q) => {
      await q.run(`UPDATE objects SET state = ${State.Deactivated} WHERE state IN (${State.PreActive}, ${State.Active}) AND ${due('Deactivation Date')}`, [nowValue]);
      await q.run(`UPDATE objects SET state = ${State.Active} WHERE state = ${State.PreActive} AND ${due('Activation Date')}`, [nowValue]);
    });
  }

  async remove(id: string): Promise<void> {
    await this.db.run('DELETE FROM objects WHERE id = $1', [id]);
  }

  async restore(obj: StoredObject): Promise<void> {
    await this.db.tx(async (q) => {
      const [row] = await q.rows<{ seq: number }>('SELECT seq FROM objects WHERE id = $1 FOR UPDATE', [obj.id]);
      if (!row) return;
      const w = obj.wrapped;
      await q.run('UPDATE objects SET state = $1, root_key_label = $2, wrap_mechanism = $3, wrapped_key = $4 WHERE seq = $5', [
        obj.state,
        w?.rootKeyLabel ?? null,
        w?.mechanism ?? null,
        w ? Buffer.from(w.blob) : null,
        row.seq,
      ]);
      await q.run('DELETE FROM attributes WHERE object_seq = $1', [row.seq]);
      await this.insertAttributes(q, row.seq, obj.attributes);
    });
  }

  async locate(q: LocateQuery): Promise<LocateResult> {
    const { sql, params } = locateStatement(q);
    const rows = await this.db.rows<{ id: string | null; total: number }>(sql, params);
    return { ids: rows.filter((r) => r.id !== null).map((r) => r.id!), total: rows[0]?.total ?? 0 };
  }

  async probeWritable(): Promise<void> {
    // Assigning a transaction id is a write: it fails on a read-only standby or a read-only
    // transaction; nothing is committed.
    await this.db.tx(async (q) => {
      await q.run(`SET LOCAL statement_timeout = ${PROBE_TIMEOUT_MS}`);
      await q.rows('SELECT pg_current_xact_id()');
      throw PROBE_DONE;
    }).catch((err: unknown) => {
      if (err !== PROBE_DONE) throw err;
    });
  }

  async countByState(): Promise<ReadonlyMap<number, number>> {
    const rows = await this.db.rows<{ state: number; n: number }>('SELECT state, count(*) AS n FROM objects GROUP BY state');
    return new Map(rows.map((r) => [r.state, r.n]));
  }

  async close(): Promise<void> {
    /* the backend owns the connection pool */
  }
}

/** Thrown inside the probe's transaction to roll it back. */
const PROBE_DONE = new Error('write probe done');
