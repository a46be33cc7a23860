#!/usr/bin/env node
// Rewrites the generated parts of README.md (kmipd.json reference, command reference) from the
// code itself: the config schema and commander's definitions, via the built CLI (dist/).
//   node scripts/gen-config-reference.mjs           rewrite README.md
//   node scripts/gen-config-reference.mjs --check   exit 1 if README.md is out of date
// Run `npm run build` first. test/admin/readme-reference.test.ts fails when the README drifts.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist/cli/reference-docs.js');
if (!existsSync(built)) {
  console.error('dist/cli/reference-docs.js not found: run `npm run build` first');
  process.exit(2);
}
const { regenerate } = await import(built);
const readmePath = join(root, 'README.md');
const current = readFileSync(readmePath, 'utf8');
const fresh = regenerate(current);
if (process.argv.includes('--check')) {
  if (fresh !== current) {
    console.error('README.md is out of date: run `npm run build && node scripts/gen-config-reference.mjs`');
    process.exit(1);
  }
  console.log('README.md generated sections are up to date');
} else if (fresh !== current) {
  writeFileSync(readmePath, fresh);
  console.log('README.md updated');
} else {
  console.log('README.md already up to date');
}
