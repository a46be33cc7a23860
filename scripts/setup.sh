#!/usr/bin/env bash
# Installs what kmipd needs on a Debian machine with Node 20, only what is missing, then builds.
#   scripts/setup.sh               runtime: softhsm2, npm dependencies, compiled CLI
#   scripts/setup.sh --test        also python3-pykmip, the independent client the tests drive
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

packages=()
command -v softhsm2-util >/dev/null 2>&1 || packages+=(softhsm2)
command -v make >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 || packages+=(build-essential)
if [ "$want_test" = 1 ] && ! /usr/bin/python3 -c 'import kmip' >/dev/null 2>&1; then
  packages+=(python3-pykmip)
fi
if [ ${#packages[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${packages[*]} with apt-get"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# Install when node_modules is missing or older than the lockfile. `npm install` rather than
# `npm ci`: the registry mirror serves only this platform's optional packages (e.g. rollup's
# native builds), so the lockfile lacks the other platforms' entries and `npm ci` calls it stale.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm install"
  npm install --no-audit --no-fund
fi

npm run --silent build
