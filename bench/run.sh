#!/usr/bin/env bash
# `npm run bench`: install what is missing and build the CLI being measured (scripts/setup.sh;
# jemalloc among it), allow enough open files for 10 000 connections on each side (server and
# load generators are separate processes, each gets this limit), run.
set -euo pipefail
cd "$(dirname "$0")/.."
hard=$(ulimit -Hn)
want=65536
if [ "$hard" != "unlimited" ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
ulimit -n "$want" 2>/dev/null || true
if [ "$(ulimit -n)" != "unlimited" ] && [ "$(ulimit -n)" -lt 11000 ]; then
  echo "bench: only $(ulimit -n) open files allowed; the idle-connection suite needs a little over 10000 (pass --idle to hold fewer)" >&2
fi
bash scripts/setup.sh
exec node node_modules/vite-node/vite-node.mjs bench/run.ts -- "$@"
