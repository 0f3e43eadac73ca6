#!/usr/bin/env bash
# What the image promises, checked without a container engine (this machine
# has the docker client but no daemon): the release binary runs as the
# Dockerfile's numeric USER with only its VOLUME writable, keeps its
# database there, and `calscan healthcheck` (the HEALTHCHECK) exits 0 while
# the server is up and non-zero once it is down. USER, VOLUME and
# DATABASE_URL are read from the Dockerfile, so the check follows it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/calscan-target}"

user="$(awk '$1 == "USER" { print $2 }' Dockerfile)"
volume="$(sed -n 's/^VOLUME \["\([^"]*\)"\]$/\1/p' Dockerfile)"
database_url="$(grep -o 'DATABASE_URL=[^ ]*' Dockerfile | head -1 | cut -d= -f2-)"
uid="${user%%:*}"
gid="${user##*:}"
[[ "$uid" =~ ^[0-9]+$ && "$uid" != 0 ]] || { echo "USER must be numeric and not root: $user"; exit 1; }
[[ -n "$volume" && "$database_url" == *"$volume"* ]] || {
  echo "DATABASE_URL ($database_url) must lie in the VOLUME ($volume)"; exit 1; }

cargo build --release --locked --bin calscan
root="$(mktemp -d)"
chmod 755 "$root"
install -m 755 "$CARGO_TARGET_DIR/release/calscan" "$root/calscan"
data="$root$volume"
mkdir -p "$data"
chown "$uid:$gid" "$data"
url="${database_url/$volume/$data}"
port=18473
as_user=(setpriv --reuid="$uid" --regid="$gid" --clear-groups env -i
  PATH=/usr/bin:/bin HOME="$data" CALSCAN_BIND="127.0.0.1:$port")

"${as_user[@]}" DATABASE_URL="$url" CALSCAN_ADMIN_PASSWORD=image-check RUST_LOG=warn \
  "$root/calscan" serve >"$root/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$root"' EXIT

up=no
for _ in $(seq 1 100); do
  if "${as_user[@]}" "$root/calscan" healthcheck 2>/dev/null; then up=yes; break; fi
  sleep 0.1
done
[[ "$up" == yes ]] || { echo "healthcheck never passed"; cat "$root/server.log"; exit 1; }
[[ "$(ps -o uid= -p "$server" | tr -d ' ')" == "$uid" ]] || { echo "the server does not run as $uid"; exit 1; }
db="${url#sqlite://}"
[[ -f "$db" && "$(stat -c %u "$db")" == "$uid" ]] || { echo "no database of $uid at $db"; exit 1; }
echo "server up as uid $uid, database in the volume: $db"

kill "$server"
wait "$server" || true
if "${as_user[@]}" "$root/calscan" healthcheck 2>/dev/null; then
  echo "healthcheck passed with the server down"; exit 1
fi
echo "healthcheck fails with the server down: ok"
