// One-line, human-readable reason for a failed request/response pair, classified the way the
// lead reads it: an operation that is missing, a reason that differs, an attribute too many or
// too few, or a value that differs.
import { ItemType, type TtlvItem } from '../../src/ttlv/types.js';
import { ENUM_INFO, ResultReason, ResultStatus, Tag } from '../../src/kmip/registry/generated.js';
import type { Mismatch } from './compare.js';
import type { CaseItem } from './xml-to-ttlv.js';

interface ItemSummary {
  readonly operation: string;
  readonly status: number | undefined;
  readonly reason: number | undefined;
  readonly message: string | undefined;
}

type AnyItem = CaseItem | TtlvItem;

function kidsOf(item: AnyItem): readonly AnyItem[] {
  if ('children' in item) return item.children;
  return item.type === ItemType.Structure ? item.value : [];
}

function leaf(kids: readonly AnyItem[], tag: number): string | number | undefined {
  const k = kids.find((c) => c.tag === tag);
  if (k === undefined || 'children' in k || k.type === ItemType.Structure) return undefined;
  const v = k.value;
  return typeof v === 'number' || typeof v === 'string' ? v : undefined;
}

function enumName(key: string, n: number | undefined): string {
  if (n === undefined) return '(none)';
  return ENUM_INFO.get(key)?.values.get(n)?.xml ?? `0x${n.toString(16)}`;
}

function summaries(message: AnyItem): ItemSummary[] {
  return kidsOf(message)
    .filter((k) => k.tag === Tag.BatchItem)
    .map((b) => {
      const kids = kidsOf(b);
      const op = leaf(kids, Tag.Operation);
      const status = leaf(kids, Tag.ResultStatus);
      const reason = leaf(kids, Tag.ResultReason);
      const message = leaf(kids, Tag.ResultMessage);
      return {
        operation: typeof op === 'number' ? enumName('Operation', op) : '?',
        status: typeof status === 'number' ? status : undefined,
        reason: typeof reason === 'number' ? reason : undefined,
        message: typeof message === 'string' ? message : undefined,
      };
    });
}

/** Failed items sort first. */
function rank(a: ItemSummary | undefined): number {
  return a?.status === ResultStatus.OperationFailed ? 0 : 1;
}

const quote = (m: string | undefined) => (m === undefined ? '' : ` ("${m.length > 90 ? `${m.slice(0, 87)}...` : m}")`);

/** The first, most telling difference between an expected and an actual response. */
export function explain(expected: CaseItem, actual: TtlvItem, diffs: readonly Mismatch[]): string {
  const exp = summaries(expected);
  const act = summaries(actual);
  // The root cause first: an item that failed where the case expects something else
  // (later items of the batch may then be Undone or skipped because of it).
  const order = [...exp.keys()].sort((i, j) => rank(act[i]) - rank(act[j]) || i - j);
  for (const i of order) {
    const e = exp[i]!;
    const a = act[i];
    if (a === undefined) return `${e.operation}: the response holds ${act.length} batch item(s), the case expects ${exp.length}`;
    if (e.status !== a.status) {
      if (a.status === ResultStatus.OperationFailed && a.reason === ResultReason.OperationNotSupported) return `${e.operation} not implemented`;
      if (e.status === ResultStatus.Success) return `${e.operation} fails: ${enumName('ResultReason', a.reason)}${quote(a.message)}`;
      if (a.status === ResultStatus.Success) return `${e.operation} succeeds where the case expects ${enumName('ResultStatus', e.status)}/${enumName('ResultReason', e.reason)}`;
      return `${e.operation}: status ${enumName('ResultStatus', a.status)}, case expects ${enumName('ResultStatus', e.status)}`;
    }
    if (e.reason !== a.reason) {
      return `our reason differs for ${e.operation}: expected ${enumName('ResultReason', e.reason)}, got ${enumName('ResultReason', a.reason)}${quote(a.message)}`;
    }
  }
  const d = diffs[0];
  if (d === undefined) return 'no difference';
  const op = /BatchItem\[\d+\]\((\w+)\)/.exec(d.path)?.[1] ?? 'response';
  const what = d.path.replace(/^.*BatchItem\[\d+\]\(\w+\)\/?/, '').replace(/^ResponseMessage\/?/, '') || d.path;
  const last = what.split('/').pop() ?? what;
  switch (d.kind) {
    case 'missing':
      return `${op}: server does not return ${last}`;
    case 'unexpected':
      return `${op}: server returns ${last} that the case does not expect`;
    case 'type':
      return `${op}: ${what} has type ${d.actual}, case expects ${d.expected}`;
    case 'value':
      if (d.expected.startsWith('order ')) return `${op} lists the same objects in another order: ${d.actual.replace(/^order /, '')}; case expects ${d.expected.replace(/^order /, '')}`;
      return `${op}: ${what} is ${d.actual}, case expects ${d.expected}`;
  }
}
