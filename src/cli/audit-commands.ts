// `kmipd audit tail`: the last audit records, filtered, as JSON lines (pipe them to jq) or a table.
// The audit log is separate from the service log: one line per KMIP batch item, refused
// connection and operator action.
import { closeSync, existsSync, openSync, readSync, statSync, watchFile, unwatchFile } from 'node:fs';
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import { auditPath } from './operator-audit.js';
import { positiveInt, table } from './format.js';

const dataOption = () => new Option('-d, --data <dir>', 'kmipd data folder').default('./data');

export interface AuditFilter {
  /** Client name or certificate fingerprint (a prefix of at least 8 hex digits is enough). */
  readonly client?: string | undefined;
  readonly key?: string | undefined;
  readonly tenant?: string | undefined;
  readonly operation?: string | undefined;
  readonly result?: string | undefined;
  readonly since?: Date | undefined;
}

type Rec = Record<string, unknown>;

function timeOf(r: Rec): Date | undefined {
  const t = r['time'];
  if (typeof t === 'number') return new Date(t);
  if (typeof t === 'string') return new Date(t);
  return undefined;
}

export function matches(r: Rec, f: AuditFilter): boolean {
  if (f.client !== undefined) {
    const c = f.client.toLowerCase().replace(/:/g, '');
    const fp = typeof r['fingerprint'] === 'string' ? r['fingerprint'] : '';
    const byFingerprint = c.length >= 8 && /^[0-9a-f]+$/.test(c) && fp.startsWith(c);
    if (r['client'] !== f.client && !byFingerprint) return false;
  }
  if (f.key !== undefined && r['object'] !== f.key) return false;
  if (f.tenant !== undefined && r['tenant'] !== f.tenant) return false;
  if (f.operation !== undefined && String(r['operation'] ?? '').toLowerCase() !== f.operation.toLowerCase()) return false;
  if (f.result !== undefined && String(r['result'] ?? '').toLowerCase() !== f.result.toLowerCase()) return false;
  if (f.since !== undefined) {
    const t = timeOf(r);
    if (!t || t < f.since) return false;
  }
  return true;
}

function parse(line: string): Rec | undefined {
  if (!line.trim()) return undefined;
  try {
    const v = JSON.parse(line) as unknown;
    return v && typeof v === 'object' ? (v as Rec) : undefined;
  } catch {
    return undefined; // a torn last line while the server writes: skip it
  }
}

function readFrom(path: string, offset: number): { text: string; end: number } {
  const size = statSync(path).size;
  if (size <= offset) return { text: '', end: size < offset ? 0 : offset };
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(size - offset);
    const n = readSync(fd, buf, 0, buf.length, offset);
    const text = buf.subarray(0, n).toString('utf8');
    // Only whole lines: a partial last line is read again next time.
    const cut = text.lastIndexOf('\n') + 1;
    return { text: text.slice(0, cut), end: offset + Buffer.byteLength(text.slice(0, cut)) };
  } finally {
    closeSync(fd);
  }
}

function render(records: Rec[], format: 'json' | 'table'): string {
  if (format === 'json') return records.map((r) => JSON.stringify(r)).join('\n');
  return table(
    ['TIME', 'CLIENT', 'TENANT', 'OPERATION', 'OBJECT', 'RESULT', 'REASON'],
    records.map((r) => {
      const t = timeOf(r);
      return [
        t ? t.toISOString() : '-',
        String(r['source'] === 'cli' ? `cli:${String(r['actor'] ?? '')}` : (r['client'] ?? '-')),
        String(r['tenant'] ?? '-'),
        String(r['operation'] ?? '-'),
        String(r['object'] ?? '-'),
        String(r['result'] ?? '-'),
        String(r['reason'] ?? ''),
      ];
    }),
  );
}

async function tail(o: { data: string; lines: number; follow: boolean; format: 'json' | 'table' } & AuditFilter): Promise<void> {
  const path = auditPath(o.data);
  if (!existsSync(path)) throw new Error(`${path} does not exist yet: nothing audited`);
  const first = readFrom(path, 0);
  const records = first.text.split('\n').map(parse).filter((r): r is Rec => r !== undefined && matches(r, o));
  const shown = records.slice(-o.lines);
  if (shown.length > 0) console.log(render(shown, o.format));
  if (!o.follow) return;
  let offset = first.end;
  await new Promise<void>((done) => {
    const onChange = () => {
      const next = readFrom(path, offset);
      offset = next.end;
      const fresh = next.text.split('\n').map(parse).filter((r): r is Rec => r !== undefined && matches(r, o));
      if (fresh.length > 0) console.log(render(fresh, 'json'));
    };
    watchFile(path, { interval: 500 }, onChange);
    const stop = () => {
      unwatchFile(path, onChange);
      done();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the audit log (DATA/audit.log): one JSON line per request, refused connection and operator action');
  audit
    .command('tail')
    .description('the last audit records, optionally filtered by client, key, tenant, operation or result')
    .addOption(dataOption())
    .addOption(new Option('-n, --lines <n>', 'how many records').argParser(positiveInt('--lines')).default(20))
    .option('--client <name-or-fingerprint>', 'only this client (name, or SHA-256 fingerprint / a prefix of 8+ hex digits)')
    .option('--key <id>', 'only records about this key (object id)')
    .option('--tenant <tenant>', 'only this tenant')
    .option('--operation <op>', 'only this operation, e.g. Get, Create, Connect, "keys revoke"')
    .option('--result <result>', 'only this result: Success, OperationFailed, Refused, Failed')
    .option('--since <iso-date>', 'only records at or after this time', (v: string) => {
      const d = new Date(v);
      if (Number.isNaN(d.getTime())) throw new Error('--since must be an ISO-8601 date');
      return d;
    })
    .option('-f, --follow', 'keep printing new matching records (JSON lines) until interrupted', false)
    .addOption(new Option('--format <format>', 'output').choices(['json', 'table']).default('json'))
    .action((o) =>
      tail({
        data: resolve(o.data),
        lines: o.lines,
        follow: o.follow,
        format: o.format,
        client: o.client,
        key: o.key,
        tenant: o.tenant,
        operation: o.operation,
        result: o.result,
        since: o.since,
      }),
    );
}
