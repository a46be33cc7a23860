// Replays the OASIS XML test cases against a real kmipd (mutual TLS, SoftHSM, SQLite) and holds
// the line: every case in expected-pass.json passes, and every case of the must-pass set
// (mandatory Symmetric Key Lifecycle and Baseline) either passes or is a listed, explained gap.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initAndEnroll, startServe, tempDir, ROOT, type ClientBundle, type ServerProcess } from '../helpers/kmipd.js';
import { listCaseFiles, loadCase, type LoadedCase } from './cases.js';
import { runCases, type CaseResult } from './runner.js';
import { markdownReport, textTable } from './report.js';

interface Expectations {
  readonly expectedPass: readonly string[];
  /** Must-pass cases that do not pass yet, each with the reason. The list can only shrink. */
  readonly knownGaps: Readonly<Record<string, string>>;
}

const expectations = JSON.parse(readFileSync(new URL('./expected-pass.json', import.meta.url), 'utf8')) as Expectations;

/** The issue's must-pass set: mandatory Symmetric Key Lifecycle and Baseline cases. */
const isMustPass = (name: string) => /^(SKLC-M|BL-M)-/.test(name);

let dir: ReturnType<typeof tempDir>;
let bundle: ClientBundle;
let server: ServerProcess;
let cases: LoadedCase[];
let results: CaseResult[];

beforeAll(async () => {
  cases = listCaseFiles().map((f) => loadCase(f));
  dir = tempDir('kmipd-conformance-');
  bundle = await initAndEnroll(dir.path, 'conformance');
  server = await startServe(dir.path);
  results = await runCases(cases, { port: server.port, bundle });
  console.log(textTable(results));
  if (process.env['KMIPD_WRITE_CONFORMANCE'] === '1') {
    writeFileSync(join(ROOT, 'kmip-spec-notes', 'conformance.md'), markdownReport(results));
    // Ratchet: every case passing now becomes expected; gaps that pass leave the gap list.
    const passing = results.filter((r) => r.outcome.kind === 'pass').map((r) => r.case.name).sort();
    const gaps = Object.fromEntries(Object.entries(expectations.knownGaps).filter(([n]) => !passing.includes(n)));
    const updated = { ...expectations, expectedPass: [...new Set([...expectations.expectedPass, ...passing])].sort(), knownGaps: gaps };
    writeFileSync(new URL('./expected-pass.json', import.meta.url), JSON.stringify(updated, null, 2) + '\n');
  }
}, 120_000);

afterAll(async () => {
  expect(await server?.stop()).toBe(0);
  dir?.remove();
});

const outcomeOf = (name: string) => results.find((r) => r.case.name === name)?.outcome;

describe('OASIS conformance', () => {
  it('selects a unique name per file, and expected-pass.json only names selected cases', () => {
    const names = cases.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    const unknown = [...expectations.expectedPass, ...Object.keys(expectations.knownGaps)].filter((n) => !names.includes(n));
    expect(unknown).toEqual([]);
    const both = expectations.expectedPass.filter((n) => n in expectations.knownGaps);
    expect(both).toEqual([]);
  });

  it('passes every case listed in expected-pass.json', () => {
    const broken = expectations.expectedPass
      .map((name) => ({ name, outcome: outcomeOf(name) }))
      .filter(({ outcome }) => outcome?.kind !== 'pass')
      .map(({ name, outcome }) =>
        outcome?.kind === 'fail'
          ? `${name}: pair ${outcome.failures[0]!.pair}: ${outcome.failures[0]!.reason}\n    ${outcome.failures[0]!.diffs
              .slice(0, 5)
              .map((d) => `${d.kind} ${d.path}: expected ${d.expected}; actual ${d.actual}`)
              .join('\n    ')}`
          : `${name}: ${outcome?.kind === 'n/a' ? `not applicable: ${outcome.why}` : 'not run'}`,
      );
    expect(broken, broken.join('\n')).toEqual([]);
  });

  it('accounts for every must-pass case (mandatory SKLC, BL): it passes or is a known gap with a reason', () => {
    const mustPass = cases.filter((c) => isMustPass(c.name)).map((c) => c.name);
    expect(mustPass.length).toBeGreaterThanOrEqual(12 + 13);
    const unaccounted = mustPass.filter((n) => !expectations.expectedPass.includes(n) && !(n in expectations.knownGaps));
    expect(unaccounted, 'add these to expectedPass (if they pass) or knownGaps (with the reason)').toEqual([]);
    const noReason = Object.entries(expectations.knownGaps).filter(([, why]) => why.trim().length < 10);
    expect(noReason).toEqual([]);
  });

  it('keeps the known-gap list shrinking: a known gap that now passes must move to expectedPass', () => {
    const fixed = Object.keys(expectations.knownGaps).filter((n) => outcomeOf(n)?.kind === 'pass');
    expect(fixed, 'these pass now: move them from knownGaps to expectedPass').toEqual([]);
  });

  it('calls a gap "not applicable" exactly when the runner judges the case out of scope', () => {
    const mislabelled = Object.entries(expectations.knownGaps)
      .filter(([name, why]) => why.startsWith('not applicable') !== (outcomeOf(name)?.kind === 'n/a'))
      .map(([name]) => name);
    expect(mislabelled).toEqual([]);
  });
});
