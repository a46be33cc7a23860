// Tables and the Markdown report of a conformance run. Output is deterministic (no times, no
// ids), so that kmip-spec-notes/conformance.md only changes when results change.
import { TAG_INFO } from '../../src/kmip/registry/generated.js';
import type { CaseResult, Outcome } from './runner.js';
import { SELECTED_PREFIXES } from './cases.js';

const SPEC_NAME_BY_XML = new Map([...TAG_INFO.values()].map((t) => [t.xml, t.name]));

/** The server feature a failure points at, for grouping: "Attribute Digest not returned", … */
export function featureOf(reason: string): string {
  let m: RegExpExecArray | null;
  if ((m = /^(\w+) not implemented/.exec(reason))) return `Operation ${m[1]} not implemented`;
  if (/only AES symmetric keys are supported/.test(reason)) return 'Algorithms other than AES (3DES Create/Register) not supported';
  if (/wrapped key|Key Wrapping Specification/.test(reason)) return 'Key wrapping (Register of a wrapped key, Get with Key Wrapping Specification) not supported';
  if ((m = /^Query: server does not return (\w+)/.exec(reason))) return `Query answer ${m[1]} not provided`;
  if ((m = /^GetAttribute(?:s|List): server does not return (?:Attribute|AttributeName|AttributeReference)?\(?([A-Za-z ]+?)\)?$/.exec(reason))) {
    return `Attribute ${SPEC_NAME_BY_XML.get(m[1]!) ?? m[1]} not kept or not returned`;
  }
  if (/no ID Placeholder is set/.test(reason)) return 'ID Placeholder not set by Locate for the next batch item';
  if (/^Locate lists the same objects in another order/.test(reason)) return 'Locate result order (the cases expect the newest object first)';
  if (/^Locate: server does not return UniqueIdentifier/.test(reason)) return 'Locate finds nothing where the case finds objects (search criteria not supported)';
  if (/is set by the server and cannot be supplied/.test(reason)) return 'Client-supplied value for a server-set attribute refused';
  if (/Key Value structure is missing/.test(reason)) return 'Register without key material (Key Value Location, metadata-only object) not supported';
  if (/^our reason differs/.test(reason)) return 'Result Reason differs from the case';
  return 'Other differences';
}

const VERSIONS = ['1.0', '1.1', '1.2', '1.3', '1.4', '2.1'] as const;

interface Tally {
  pass: number;
  fail: number;
  na: number;
}

function tally(results: readonly CaseResult[]): Map<string, Map<string, Tally>> {
  const rows = new Map<string, Map<string, Tally>>();
  for (const r of results) {
    const row = rows.get(r.case.profile) ?? new Map<string, Tally>();
    rows.set(r.case.profile, row);
    const cell = row.get(r.case.version) ?? { pass: 0, fail: 0, na: 0 };
    row.set(r.case.version, cell);
    if (r.outcome.kind === 'pass') cell.pass++;
    else if (r.outcome.kind === 'fail') cell.fail++;
    else cell.na++;
  }
  return new Map([...rows].sort(([a], [b]) => a.localeCompare(b)));
}

const cellText = (t: Tally | undefined) => (t === undefined ? '' : `${t.pass}/${t.fail}/${t.na}`);

function totals(results: readonly CaseResult[]): Tally {
  const t = { pass: 0, fail: 0, na: 0 };
  for (const r of results) {
    if (r.outcome.kind === 'pass') t.pass++;
    else if (r.outcome.kind === 'fail') t.fail++;
    else t.na++;
  }
  return t;
}

/** Plain-text table for the test log: profile × protocol version, cells passed/failed/n.a. */
export function textTable(results: readonly CaseResult[]): string {
  const rows = tally(results);
  const header = ['profile', ...VERSIONS];
  const body = [...rows].map(([profile, row]) => [profile, ...VERSIONS.map((v) => cellText(row.get(v)))]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  const t = totals(results);
  return [
    'OASIS conformance (cells: passed/failed/not applicable)',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
    `total: ${t.pass} passed, ${t.fail} failed, ${t.na} not applicable, of ${results.length} files`,
  ].join('\n');
}

function markdownTable(results: readonly CaseResult[]): string[] {
  const rows = tally(results);
  return [
    `| profile | ${VERSIONS.join(' | ')} |`,
    `|---|${VERSIONS.map(() => '---').join('|')}|`,
    ...[...rows].map(([profile, row]) => `| ${profile} | ${VERSIONS.map((v) => cellText(row.get(v))).join(' | ')} |`),
  ];
}

/**
 * Table-safe and run-independent: server-made identifiers and clock readings change on every run,
 * and would otherwise rewrite the report each time.
 */
const esc = (s: string) =>
  s
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<id>')
    .replace(/ \(between -?\d+ and -?\d+\)/g, '')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+\)/g, '<time>')
    .replace(/\|/g, '\\|')
    .replace(/\n/g, ' ');

function firstReason(o: Outcome): string {
  return o.kind === 'fail' ? o.failures[0]!.reason : o.kind === 'n/a' ? o.why : 'pass';
}

/** The Markdown written to kmip-spec-notes/conformance.md. */
export function markdownReport(results: readonly CaseResult[]): string {
  const failing = results.filter((r) => r.outcome.kind === 'fail');
  const na = results.filter((r) => r.outcome.kind === 'n/a');
  const passing = results.filter((r) => r.outcome.kind === 'pass');
  const t = totals(results);

  // Features, most cases first: what to implement to make the most cases pass.
  const byFeature = new Map<string, CaseResult[]>();
  for (const r of failing) {
    const feature = featureOf(firstReason(r.outcome));
    byFeature.set(feature, [...(byFeature.get(feature) ?? []), r]);
  }
  const features = [...byFeature].sort(([fa, a], [fb, b]) => b.length - a.length || fa.localeCompare(fb));

  const out: string[] = [
    '# OASIS XML conformance',
    '',
    '<!-- Generated by test/conformance/conformance.test.ts with KMIPD_WRITE_CONFORMANCE=1. Do not edit by hand. -->',
    '',
    'The conformance runner (`test/conformance/`) replays the OASIS XML test cases copied into',
    '`fixtures/oasis-xml/` against a real `kmipd serve` (real mutual TLS, SoftHSM token, SQLite file),',
    'one file at a time, one connection per file, and compares every response with the expected one',
    'structurally. `npx vitest run test/conformance` runs it; `test/conformance/expected-pass.json`',
    'lists the cases that must pass and the known gaps of the must-pass set (SKLC-M-*, BL-M-*).',
    '',
    '## Selection',
    '',
    `Files of profiles-v1.4-os, profiles-v2.1-os, profiles-v1.0-derived and testcases-v1.4-cnprd01 whose`,
    `names start with ${SELECTED_PREFIXES.map((p) => `\`${p}\``).join(', ')}.`,
    'A file is *not applicable* when a request uses a cryptographic service or server-to-client',
    'operation (Encrypt, Sign, MAC, Hash, RNG, Derive Key, Create Key Pair, Certify, split keys,',
    'Validate, Put, Notify) or manages an object other than a Symmetric Key: kmipd is a key manager',
    'for symmetric key-encrypting keys.',
    '',
    '## How responses are compared',
    '',
    '- Same tags in the same order, same item types, same values; attributes (1.x `Attribute`, 2.x',
    '  `Attributes` members, Get Attribute List names) as an unordered collection.',
    '- `$UNIQUE_IDENTIFIER_n` and other `$NAME` placeholders bind to the first value the server returns',
    '  and must keep it; two placeholders never bind to the same identifier. Requests carry the bound values.',
    '- `$NOW±k` must fall within the seconds the file took to run, shifted by k.',
    '- Dates and byte strings the reference server generated (literal values the client never sent in',
    '  the file: its clock, key bytes, digests) compare by type, and byte strings by length.',
    '- The Random Number Generator attribute describes the server\'s own RNG: it must be there with an RNG',
    '  Algorithm, whatever the algorithm, unless a request of the file supplied one.',
    '- Time Stamp, Result Message and Server Correlation Value never compare by value; Result Message,',
    '  Server Correlation Value and Located Items may be absent on either side. Result Status and Result',
    '  Reason always compare.',
    '- Query answers describe the server: the same kinds of item must come back (e.g. some Operation,',
    '  some Capability Information), not the same values. Discover Versions must offer every expected version.',
    '- TL-M-3 continues TL-M-2 (it locates the key TL-M-2 created); otherwise each file\'s objects are',
    '  revoked and destroyed after it, so that Locate sees only the file\'s own objects.',
    '',
    '## Summary',
    '',
    `${t.pass} passed, ${t.fail} failed, ${t.na} not applicable, of ${results.length} files. Cells: passed/failed/not applicable.`,
    '',
    ...markdownTable(results),
    '',
    '## Failing cases by missing feature',
    '',
    'Each failing file under the feature its first difference points at (mandatory cases in bold), with',
    'that difference in one line. Biggest groups first.',
    '',
    '| feature | cases |',
    '|---|---|',
    ...features.map(([feature, rs]) => `| ${esc(feature)} | ${rs.length} |`),
    '',
    ...features.flatMap(([feature, rs]) => [
      `### ${feature}`,
      '',
      ...rs.map((r) => `- ${r.case.mandatory ? `**${r.case.name}**` : r.case.name}: ${esc(firstReason(r.outcome))}`),
      '',
    ]),
    '## Failing cases in detail',
    '',
    'Per file: every request/response pair (0-based) that differs, with its cause and first differences.',
    'The runner keeps replaying after a difference as long as the identifiers it needs were returned.',
    '',
  ];
  for (const r of failing) {
    if (r.outcome.kind !== 'fail') continue;
    out.push(`#### ${r.case.name}`, '', `\`${r.case.file}\` (KMIP ${r.case.version}${r.case.mandatory ? ', mandatory' : ''})`, '');
    for (const f of r.outcome.failures) {
      out.push(`- pair ${f.pair} (${f.operations.join(', ')}): ${esc(f.reason)}`);
      for (const d of f.diffs.slice(0, 4)) {
        out.push(`  - ${d.kind} \`${esc(d.path.replace(/^ResponseMessage\//, ''))}\`: expected ${esc(d.expected)}; actual ${esc(d.actual)}`);
      }
      if (f.diffs.length > 4) out.push(`  - … ${f.diffs.length - 4} more`);
    }
    out.push('');
  }
  out.push('## Not applicable', '', '| case | why |', '|---|---|', ...na.map((r) => `| ${r.case.name} | ${esc(firstReason(r.outcome))} |`), '');
  out.push('## Passing', '', passing.map((r) => r.case.name).join(', ') || '(none)', '');
  return out.join('\n');
}
