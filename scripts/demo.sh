#!/usr/bin/env bash
# make demo: build everything, then run the origin (embedded store), the edge
# proxy with the sessionedge filter, and the storefront example behind it,
# all on loopback. Ctrl-C stops all three and exits 0.
#
# Environment (defaults in brackets):
#   EDGE        [edge]  the edge proxy: edge (build/bin/edge) or caddy
#                       (build/bin/caddy, the filter in its proxy_wasm
#                       handler, docs/caddy.md)
#   EDGE_PORT          [8080]  the edge, where the browser goes: http://localhost:$EDGE_PORT/
#   ORIGIN_PORT        [8081]  the origin's API
#   APP_PORT           [8082]  the storefront (only the edge talks to it)
#   EDGE_ADMIN_PORT    [9901]  the edge's /metrics, /healthz, /readyz (with
#                              EDGE=caddy: Caddy's admin endpoint, /metrics)
#   ORIGIN_ADMIN_PORT  [9091]  the origin's /metrics, /healthz, /readyz
#   DEMO_DIR    [build/demo]   state, keys, configuration and logs; created
#                              0700 on the first run and reused after, so
#                              sessions survive restarts (make clean forgets them)
#   BUILD_DIR   [build]        where the filter and the binaries are built
#   GO          [go]           the Go command
#
# Secrets never go on a command line: they are generated into
# $DEMO_DIR/secrets.env (0600) and reach the programs through their
# configuration files and SESSIONEDGE_*_FILE variables, all 0600 in the 0700
# directory. `. $DEMO_DIR/secrets.env` gives a shell APP_KEY for curl.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 077

EDGE=${EDGE:-edge}
EDGE_PORT=${EDGE_PORT:-8080}
ORIGIN_PORT=${ORIGIN_PORT:-8081}
APP_PORT=${APP_PORT:-8082}
EDGE_ADMIN_PORT=${EDGE_ADMIN_PORT:-9901}
ORIGIN_ADMIN_PORT=${ORIGIN_ADMIN_PORT:-9091}
DEMO_DIR=${DEMO_DIR:-build/demo}
BUILD_DIR=${BUILD_DIR:-build}
GO=${GO:-go}
ports=(EDGE_PORT ORIGIN_PORT APP_PORT EDGE_ADMIN_PORT ORIGIN_ADMIN_PORT)

die() { echo "demo: $*" >&2; exit 1; }

case $EDGE in
  edge|caddy) ;;
  *) die "EDGE=$EDGE: want edge (the bundled edge proxy) or caddy";;
esac

# A busy port is reported before anything is built or started, by its name.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
seen=" "
for name in "${ports[@]}"; do
  port=${!name}
  [[ $port =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "$name=$port is not a port number"
  case $seen in *" $port "*) die "$name=$port: the port is already taken by another of ${ports[*]}";; esac
  seen="$seen$port "
  if port_busy "$port"; then
    die "port $port ($name) is in use by another program; stop it or run with $name=<another port>"
  fi
done

echo "demo: building the filter and the binaries into $BUILD_DIR"
make --no-print-directory BUILD="$BUILD_DIR" wasm build
$GO build -o "$BUILD_DIR/bin/storefront" ./examples/storefront

mkdir -p "$DEMO_DIR/data"
chmod 700 "$DEMO_DIR" "$DEMO_DIR/data"
secrets="$DEMO_DIR/secrets.env"
[ -f "$secrets" ] || echo "demo: first run: generating keys in $secrets"
touch "$secrets"
chmod 600 "$secrets"
# shellcheck disable=SC1090
. "$secrets"
key32() { head -c 32 /dev/urandom | base64; }
apikey() { echo "$1-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
# Each secret is generated once; a secrets.env from an older demo gets
# the ones it lacks.
[ -n "${TOKEN_KEY:-}" ] || { TOKEN_KEY=$(key32); echo "TOKEN_KEY=$TOKEN_KEY" >> "$secrets"; }
[ -n "${SHARED_SECRET:-}" ] || { SHARED_SECRET=$(key32); echo "SHARED_SECRET=$SHARED_SECRET" >> "$secrets"; }
[ -n "${ASSERTION_KEY:-}" ] || { ASSERTION_KEY=$(key32); echo "ASSERTION_KEY=$ASSERTION_KEY" >> "$secrets"; }
[ -n "${APP_KEY:-}" ] || { APP_KEY=$(apikey app); echo "APP_KEY=$APP_KEY" >> "$secrets"; }
[ -n "${EDGE_KEY:-}" ] || { EDGE_KEY=$(apikey edge); echo "EDGE_KEY=$EDGE_KEY" >> "$secrets"; }

# The configurations are rewritten on every run so that port overrides
# apply; they hold secrets, so they are 0600 like everything here (umask).
cat > "$DEMO_DIR/origin.json" <<JSON
{
  "listen": "127.0.0.1:$ORIGIN_PORT",
  "admin": "127.0.0.1:$ORIGIN_ADMIN_PORT",
  "dataDir": "$DEMO_DIR/data",
  "tokenKeys": {"1": "$TOKEN_KEY"},
  "activeKey": 1,
  "sharedSecret": "$SHARED_SECRET",
  "apiKeys": [
    {"name": "storefront", "key": "$APP_KEY", "scopes": ["sessions:read", "sessions:write"]},
    {"name": "edge", "key": "$EDGE_KEY", "scopes": ["edge:sync", "edge:selfservice"]}
  ]
}
JSON
# The assertion keys: the edge signs what it forwards with them and the
# storefront refuses whatever they do not verify.
assertion="{\"keys\": {\"1\": \"$ASSERTION_KEY\"}, \"activeKey\": 1}"
printf '%s\n' "$assertion" > "$DEMO_DIR/assertion.json"
printf '%s\n' "$APP_KEY" > "$DEMO_DIR/app-api-key"
# The browser talks plain http://localhost:$EDGE_PORT. Browsers treat
# localhost as a secure context, so they keep the default __Host- cookie
# with Secure even without TLS (the browser test checks this in Chromium).
cat > "$DEMO_DIR/plugin.json" <<JSON
{
  "keys": {"1": "$TOKEN_KEY"},
  "activeKey": 1,
  "cookie": {"name": "__Host-sid", "secure": true, "httpOnly": true, "sameSite": "Lax", "path": "/"},
  "sites": {"*": {"siteCode": "DE", "currency": "EUR", "targetLocation": "DE", "locale": "de-DE",
                  "currencies": ["EUR", "USD", "GBP", "CHF"]}},
  "selfService": {"fields": ["currency"]},
  "device": {"addrPrefix": {"v4": 24, "v6": 48}},
  "capture": {"query": ["utm_source", "utm_campaign"], "tracking": ["utm_source", "utm_campaign"], "maxValueLen": 64, "maxCount": 4},
  "consent": {"cookie": "se_dnt"},
  "origin": {"cluster": "origin", "apiKey": "$EDGE_KEY"},
  "sync": {"interval": "500ms"},
  "assertion": $assertion
}
JSON

names=()
pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
stop() {
  echo
  echo "demo: stopping"
  cleanup
  exit 0
}
trap stop INT TERM
trap cleanup EXIT

# http_ok port path: a GET over bash's /dev/tcp, so the script needs no
# curl; true for a 2xx answer.
http_ok() (
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
  read -r _ status _ <&3 || exit 1
  [ "${status:-0}" -ge 200 ] && [ "$status" -lt 300 ]
)

# start name logfile command...: runs a program in the background.
start() {
  local name=$1 log=$2
  shift 2
  "$@" > "$log" 2>&1 &
  names+=("$name")
  pids+=($!)
}

# wait_ready name port path: until the program answers, or it exits (then
# its log says why, at once).
wait_ready() {
  local pid=${pids[${#pids[@]}-1]}
  for _ in $(seq 1 600); do
    if http_ok "$2" "$3" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "demo: $1 exited while starting; the end of $DEMO_DIR/$1.log:" >&2
      tail -n 20 "$DEMO_DIR/$1.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  die "$1 did not answer http://127.0.0.1:$2$3 within 60s; see $DEMO_DIR/$1.log"
}

# The origin's API serves /openapi.json to anyone once the store is open.
start origin "$DEMO_DIR/origin.log" "$BUILD_DIR/bin/origin" -config "$DEMO_DIR/origin.json"
wait_ready origin "$ORIGIN_PORT" /openapi.json

# The storefront listens on loopback only, and verifies the edge's
# assertion on every request: forged x-session-* headers sent straight to
# it are refused with 403.
start storefront "$DEMO_DIR/storefront.log" env \
  SESSIONEDGE_API_KEY_FILE="$DEMO_DIR/app-api-key" SESSIONEDGE_ASSERTION_KEYS_FILE="$DEMO_DIR/assertion.json" \
  "$BUILD_DIR/bin/storefront" -addr "127.0.0.1:$APP_PORT" -origin "http://127.0.0.1:$ORIGIN_PORT"
wait_ready storefront "$APP_PORT" /healthz

if [ "$EDGE" = caddy ]; then
  # Caddy with the filter in its proxy_wasm handler, before reverse_proxy
  # (docs/caddy.md). The plugin configuration stays in its 0600 file; Caddy
  # keeps its own state under $DEMO_DIR/caddy.
  mkdir -p "$DEMO_DIR/caddy"
  cat > "$DEMO_DIR/Caddyfile" <<CADDY
{
	admin 127.0.0.1:$EDGE_ADMIN_PORT
	auto_https off
	persist_config off
}

http://:$EDGE_PORT {
	bind 127.0.0.1
	proxy_wasm {
		wasm $BUILD_DIR/sessionedge.wasm
		plugin_config_file $DEMO_DIR/plugin.json
		cluster origin 127.0.0.1:$ORIGIN_PORT
	}
	reverse_proxy 127.0.0.1:$APP_PORT
}
CADDY
  start edge "$DEMO_DIR/edge.log" env XDG_CONFIG_HOME="$DEMO_DIR/caddy" XDG_DATA_HOME="$DEMO_DIR/caddy" \
    "$BUILD_DIR/bin/caddy" run --config "$DEMO_DIR/Caddyfile" --adapter caddyfile
  # The storefront's health check through Caddy and the filter.
  wait_ready edge "$EDGE_PORT" /healthz
  edge_name="Caddy with proxy_wasm"
  edge_admin="http://127.0.0.1:$EDGE_ADMIN_PORT/metrics (Caddy's admin endpoint)"
else
  start edge "$DEMO_DIR/edge.log" "$BUILD_DIR/bin/edge" -listen "127.0.0.1:$EDGE_PORT" -admin "127.0.0.1:$EDGE_ADMIN_PORT" \
    -upstream "127.0.0.1:$APP_PORT" -clusters "origin=127.0.0.1:$ORIGIN_PORT" -wasm "$BUILD_DIR/sessionedge.wasm" \
    -plugin-config-file "$DEMO_DIR/plugin.json"
  wait_ready edge "$EDGE_ADMIN_PORT" /readyz
  edge_name="edge"
  edge_admin="http://127.0.0.1:$EDGE_ADMIN_PORT/metrics (edge)"
fi

cat <<TXT

  sessionedge demo is running

  storefront, through the edge:  http://localhost:$EDGE_PORT/   ($edge_name)
  origin API:                    http://127.0.0.1:$ORIGIN_PORT/v1/   (key: . $DEMO_DIR/secrets.env; \$APP_KEY)
  admin (metrics, health):       $edge_admin, http://127.0.0.1:$ORIGIN_ADMIN_PORT/metrics (origin)
  logs:                          $DEMO_DIR/{origin,edge,storefront}.log

  Ctrl-C stops everything.
TXT

# Exit (and stop the rest) as soon as any of the three exits.
wait -n "${pids[@]}" || true
for i in "${!pids[@]}"; do
  if ! kill -0 "${pids[$i]}" 2>/dev/null; then
    echo "demo: ${names[$i]} exited; the end of $DEMO_DIR/${names[$i]}.log:" >&2
    tail -n 20 "$DEMO_DIR/${names[$i]}.log" >&2
  fi
done
exit 1
