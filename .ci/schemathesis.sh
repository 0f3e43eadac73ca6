#!/usr/bin/env bash
# schemathesis against a live calscan: every answer must match
# /api/openapi.json and none may be a 5xx. The server is `calscan demo`
# (the built-in Calendly simulator behind it) on a fresh SQLite database,
# reached with an API token, so scans really start, run and end.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/calscan-target}"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  schemathesis==4.32.5
cargo build --locked --bin calscan

work="$(mktemp -d)"
port=18472
token="schemathesis-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
# With a webhook key, so /webhooks/calendly answers as in production (401
# for what is not signed with it), not 503 as unconfigured.
CALSCAN_API_TOKEN="$token" CALENDLY_WEBHOOK_SIGNING_KEY="$token-webhooks" RUST_LOG=warn \
  "$CARGO_TARGET_DIR/debug/calscan" demo --bind "127.0.0.1:$port" \
  --database-url "sqlite://$work/schemathesis.db" --events 40 --latency-ms 5 \
  >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done

"$(python3 -c "import sysconfig; print(sysconfig.get_path('scripts'))")/schemathesis" run \
  "http://127.0.0.1:$port/api/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples 30 \
  --request-timeout 10 \
  || { echo "== server log"; tail -50 "$work/server.log"; exit 1; }
