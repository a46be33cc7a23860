#!/bin/sh
# Container start: make the data volume ready (idempotent), then serve in the foreground.
# KMIPD_SERVER_NAMES (comma-separated DNS names) sets the dev server certificate's names.
set -eu
names=""
if [ -n "${KMIPD_SERVER_NAMES:-}" ]; then
  for n in $(echo "$KMIPD_SERVER_NAMES" | tr ',' ' '); do names="$names --server-name $n"; done
fi
# shellcheck disable=SC2086
node /opt/kmipd/bin/kmipd.js init --data "$KMIPD_DATA" --listen "$KMIPD_LISTEN" $names
# kmipd-serve: `kmipd serve` with jemalloc as its allocator (installed in the image).
exec /opt/kmipd/bin/kmipd-serve --data "$KMIPD_DATA" --listen "$KMIPD_LISTEN" --admin-listen "$KMIPD_ADMIN_LISTEN"
