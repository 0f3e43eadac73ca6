#!/usr/bin/env bash
# Installs the servers `loadgen peers` measures calscan against, each at the
# version BENCHMARKS.md names, into $CALSCAN_PEERS_DIR (default
# /var/tmp/calscan-peers). Idempotent: what is there already is kept.
#   nginx + nchan   Debian's nginx-light and libnginx-mod-nchan (needs root)
#   better-sse      from npm, on the machine's Node.js
#   sse-starlette   from PyPI, on uvicorn (with uvloop and httptools)
#   aiohttp-sse     from PyPI, on aiohttp
set -euo pipefail
dir=${CALSCAN_PEERS_DIR:-/var/tmp/calscan-peers}
mkdir -p "$dir"

if [ ! -e /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    nginx-light libnginx-mod-nchan >/dev/null
fi

if [ ! -e "$dir/node/node_modules/better-sse/package.json" ]; then
  npm install --silent --no-audit --no-fund --prefix "$dir/node" better-sse@0.16.1 >/dev/null
fi

if [ ! -x "$dir/py/bin/python" ]; then
  python3 -m venv "$dir/py"
fi
if ! "$dir/py/bin/python" -c 'import sse_starlette, uvicorn, aiohttp_sse' 2>/dev/null; then
  "$dir/py/bin/pip" install --quiet --disable-pip-version-check \
    'sse-starlette==3.7.1' 'uvicorn[standard]==0.55.0' 'aiohttp-sse==3.0' 'aiohttp==3.14.5'
fi
