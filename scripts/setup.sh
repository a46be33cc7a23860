#!/usr/bin/env bash
# Installs what kmipd needs on a Debian machine with Node 20, only what is missing, then builds.
#   scripts/setup.sh               runtime: softhsm2, libjemalloc2 (bin/kmipd-serve's allocator),
#                                  npm dependencies, compiled CLI
#   scripts/setup.sh --test        also python3-pykmip, the independent client the tests drive, and
#                                  postgresql (the cluster tests run their own server; the system
#                                  service is not started)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

packages=()
command -v softhsm2-util >/dev/null 2>&1 || packages+=(softhsm2)
[ -e "/usr/lib/$(uname -m)-linux-gnu/libjemalloc.so.2" ] || packages+=(libjemalloc2)
command -v make >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 || packages+=(build-essential)
if [ "$want_test" = 1 ] && ! /usr/bin/python3 -c 'import kmip' >/dev/null 2>&1; then
  packages+=(python3-pykmip)
fi
# git: the tests of the bench's --compare check out a revision of a throwaway repository.
if [ "$want_test" = 1 ] && ! command -v git >/dev/null 2>&1; then
  packages+=(git)
fi
# The cluster tests start their own throwaway PostgreSQL (Debian's initdb and pg_ctl), on loopback.
want_postgres=0
if [ "$want_test" = 1 ] && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  want_postgres=1
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
if [ ${#packages[@]} -gt 0 ] || [ "$want_postgres" = 1 ]; then
  $sudo apt-get update -qq
fi
if [ ${#packages[@]} -gt 0 ]; then
  echo "setup: installing ${packages[*]} with apt-get"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
if [ "$want_postgres" = 1 ]; then
  echo "setup: installing postgresql with apt-get (its system service is not started)"
  # Debian starts a package's service on install unless a policy-rc.d says no: say no for this
  # install only, unless the machine already has its own policy (containers usually do).
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    own_policy=1
  fi
  status=0
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null || status=$?
  [ "$own_policy" = 1 ] && $sudo rm -f "$policy"
  [ "$status" = 0 ] || exit "$status"
fi

# Install when node_modules is missing or older than the lockfile. `npm install` rather than
# `npm ci`: a registry mirror may serve only its own platform's optional packages (e.g. rollup's
# native builds); a lockfile written there lacks the other platforms' entries, and `npm ci` calls
# it stale where `npm install` completes it.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm install"
  npm install --no-audit --no-fund
fi

npm run --silent build
