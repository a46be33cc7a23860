#!/usr/bin/env bash
# The whole test suite: installs what is missing, type-checks, runs vitest, and ends with the
# plain "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test || exit 1
npx tsc -p tsconfig.json --noEmit || exit 1
results="$(mktemp -t kmipd-vitest-XXXXXX.json)"
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@"
code=$?
node scripts/test-summary.mjs "$results" || code=1
rm -f "$results"
exit $code
