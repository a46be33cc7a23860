#!/usr/bin/env bash
# One command from a fresh checkout to a running evaluation server: installs what is missing,
# creates ./data (SoftHSM token + root key, SQLite store, dev PKI), enrolls a "demo" client,
# prints how to connect, then serves on 127.0.0.1:5696 until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

data="${KMIPD_DATA:-./data}"
listen="${KMIPD_LISTEN:-127.0.0.1:5696}"
node bin/kmipd.js init --data "$data" --listen "$listen" >/dev/null
if [ ! -f "$data/clients/demo.key" ]; then
  node bin/kmipd.js client enroll demo --data "$data" --out "$data/clients" >/dev/null
fi
host="${listen%:*}"
port="${listen##*:}"
cat <<MSG

kmipd is starting on ${listen} (data folder: ${data})

Connect a KMIP client with mutual TLS using:
  client certificate  ${data}/clients/demo.crt
  client key          ${data}/clients/demo.key   (PKCS#8, unencrypted)
  CA certificate      ${data}/clients/ca.crt

PyKMIP (Debian python3-pykmip):
  /usr/bin/python3 -c "from kmip.pie.client import ProxyKmipClient; from kmip import enums
c = ProxyKmipClient(hostname='${host}', port=${port}, cert='${data}/clients/demo.crt', key='${data}/clients/demo.key', ca='${data}/clients/ca.crt', config_file='/dev/null')
c.open(); uid = c.create(enums.CryptographicAlgorithm.AES, 256); print(uid, c.get(uid).value.hex()); c.close()"

More clients: npx kmipd client enroll NAME --data ${data} --out ./client
Stop with Ctrl-C.

MSG
exec bin/kmipd-serve --data "$data" --listen "$listen"
