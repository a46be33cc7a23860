// Global setup for the hostile-input figures: a folder each test file writes its tally into, and
// at teardown one line with their sum (the numbers the README's Security section quotes).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { formatFigures, newTally, type Tally } from './tally.js';

export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'kmipd-hostile-figures-'));
  project.provide('hostileFiguresDir', dir);
  return () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    if (files.length > 0) {
      const sum = newTally();
      for (const f of files) {
        const t = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Tally;
        for (const k of Object.keys(sum) as (keyof Tally)[]) sum[k] += t[k];
      }
      console.log(`hostile input (${files.length} test files): ${formatFigures(sum)}`);
    }
    rmSync(dir, { recursive: true, force: true });
  };
}
