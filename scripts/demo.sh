#!/usr/bin/env bash
# make demo: build everything, then run the origin (embedded store), the edge
# proxy with the sessionedge filter, and the storefront example behind it.
# Ctrl-C stops all three.
#
# Ports (env overrides): EDGE_PORT=8080, ORIGIN_PORT=8081, APP_PORT=8082,
# EDGE_ADMIN_PORT=9901. State, keys and config live in DEMO_DIR (build/demo,
# ignored by git), created on the first run and reused after, so sessions
# survive restarts; make clean forgets them.
set -euo pipefail
cd "$(dirname "$0")/.."

EDGE_PORT=${EDGE_PORT:-8080}
ORIGIN_PORT=${ORIGIN_PORT:-8081}
APP_PORT=${APP_PORT:-8082}
EDGE_ADMIN_PORT=${EDGE_ADMIN_PORT:-9901}
DEMO_DIR=${DEMO_DIR:-build/demo}
GO=${GO:-go}

echo "demo: building the filter and the binaries (make wasm build)"
make --no-print-directory wasm build
$GO build -o build/bin/storefront ./examples/storefront
for f in build/sessionedge.wasm build/bin/edge build/bin/origin; do
  [ -e "$f" ] || { echo "demo: $f was not built (is its component merged yet?)" >&2; exit 1; }
done

mkdir -p "$DEMO_DIR/data"
chmod 700 "$DEMO_DIR"
secrets="$DEMO_DIR/secrets.env"
if [ ! -f "$secrets" ]; then
  echo "demo: first run: generating keys in $secrets"
  umask 077
  {
    echo "TOKEN_KEY=$(head -c 32 /dev/urandom | base64)"
    echo "SHARED_SECRET=$(head -c 32 /dev/urandom | base64)"
    echo "APP_KEY=app-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    echo "EDGE_KEY=edge-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  } > "$secrets"
fi
# shellcheck disable=SC1090
. "$secrets"

# The configs are rewritten on every run so that port overrides apply.
cat > "$DEMO_DIR/origin.json" <<JSON
{
  "listen": "127.0.0.1:$ORIGIN_PORT",
  "dataDir": "$DEMO_DIR/data",
  "tokenKeys": {"1": "$TOKEN_KEY"},
  "activeKey": 1,
  "sharedSecret": "$SHARED_SECRET",
  "apiKeys": [
    {"name": "storefront", "key": "$APP_KEY", "scopes": ["sessions:read", "sessions:write"]},
    {"name": "edge", "key": "$EDGE_KEY", "scopes": ["edge:sync", "sessions:read", "sessions:write"]}
  ]
}
JSON
# The browser talks plain http://localhost:$EDGE_PORT. Browsers treat
# localhost as a secure context, so they keep the default __Host- cookie
# with Secure even without TLS (the browser test checks this in Chromium).
cat > "$DEMO_DIR/plugin.json" <<JSON
{
  "keys": {"1": "$TOKEN_KEY"},
  "activeKey": 1,
  "cookie": {"name": "__Host-sid", "secure": true, "httpOnly": true, "sameSite": "Lax", "path": "/"},
  "sites": {"*": {"siteCode": "DE", "currency": "EUR", "targetLocation": "DE", "locale": "de-DE"}},
  "origin": {"cluster": "origin", "apiKey": "$EDGE_KEY"},
  "sync": {"interval": "500ms"}
}
JSON

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

# http_ok host port path: a GET over bash's /dev/tcp, so the script needs no
# curl; true for a 2xx answer.
http_ok() (
  exec 3<>"/dev/tcp/$1/$2" || exit 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3
  read -r _ status _ <&3 || exit 1
  [ "${status:-0}" -ge 200 ] && [ "$status" -lt 300 ]
)

wait_ready() { # name port path
  for _ in $(seq 1 150); do
    if http_ok 127.0.0.1 "$2" "$3" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "demo: $1 did not get ready at 127.0.0.1:$2$3; see $DEMO_DIR/$1.log" >&2
  exit 1
}

build/bin/origin -config "$DEMO_DIR/origin.json" > "$DEMO_DIR/origin.log" 2>&1 &
pids+=($!)
wait_ready origin "$ORIGIN_PORT" /readyz

# The storefront listens on loopback only: it trusts the x-session-* headers,
# so only the edge may reach it.
build/bin/storefront -addr "127.0.0.1:$APP_PORT" -origin "http://127.0.0.1:$ORIGIN_PORT" -api-key "$APP_KEY" \
  > "$DEMO_DIR/storefront.log" 2>&1 &
pids+=($!)
wait_ready storefront "$APP_PORT" /healthz

build/bin/edge -listen ":$EDGE_PORT" -admin "127.0.0.1:$EDGE_ADMIN_PORT" -upstream "127.0.0.1:$APP_PORT" \
  -clusters "origin=127.0.0.1:$ORIGIN_PORT" -wasm build/sessionedge.wasm -plugin-config-file "$DEMO_DIR/plugin.json" \
  > "$DEMO_DIR/edge.log" 2>&1 &
pids+=($!)
wait_ready edge "$EDGE_ADMIN_PORT" /readyz

cat <<TXT

  sessionedge demo is running

  storefront, through the edge:  http://localhost:$EDGE_PORT/
  origin API:                    http://127.0.0.1:$ORIGIN_PORT/v1/  (API key: $APP_KEY)
  edge admin (metrics, ready):   http://127.0.0.1:$EDGE_ADMIN_PORT/metrics
  logs:                          $DEMO_DIR/{origin,edge,storefront}.log

  try:  curl -si http://localhost:$EDGE_PORT/api/session
        curl -s -H "Authorization: Bearer $APP_KEY" http://127.0.0.1:$ORIGIN_PORT/v1/sessions/<id>

  Ctrl-C stops everything.
TXT

# Exit (and stop the rest) as soon as any of the three exits.
wait -n "${pids[@]}" || true
echo "demo: a process exited; see the logs in $DEMO_DIR" >&2
exit 1
