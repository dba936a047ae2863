#!/usr/bin/env bash
# Benchmarks the portal's desktop proxy against a direct connection to the fake KasmVNC desktop:
# WebSocket round-trip latency and echo throughput, memory per open relay, and plain HTTP GETs.
# Everything runs on 127.0.0.1; the results replace the dated block in BENCHMARKS.md.
#
# Knobs (environment): BENCH_IDLE_LEVELS (default 100,200), BENCH_MESSAGES (2000 round trips
# per connection), BENCH_LATENCY_CONNS (1,16), BENCH_THROUGHPUT_CONNS (1,4),
# BENCH_THROUGHPUT_SECS (4), BENCH_HTTP_REQUESTS (2000), BENCH_RELAY_BUFFER (the portal's
# proxy.relay_buffer_bytes, default 8192), BENCH_NO_WRITE=1 (print only).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BENCH_MD="$ROOT/BENCHMARKS.md"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
IDLE_LEVELS=${BENCH_IDLE_LEVELS:-100,200}
MESSAGES=${BENCH_MESSAGES:-2000}
LATENCY_CONNS=${BENCH_LATENCY_CONNS:-1,16}
THROUGHPUT_CONNS=${BENCH_THROUGHPUT_CONNS:-1,4}
THROUGHPUT_SECS=${BENCH_THROUGHPUT_SECS:-4}
HTTP_REQUESTS=${BENCH_HTTP_REQUESTS:-2000}
RELAY_BUFFER=${BENCH_RELAY_BUFFER:-8192}

log() { echo "bench: $*" >&2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ird-bench.XXXXXX")
STARTED_PIDS=()
cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    local port
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 30000))
        if ! port_open "$port"; then
            echo "$port"
            return 0
        fi
    done
    log "no free port found"
    return 1
}

wait_for_port() {
    local port=$1 pid=$2 name=$3
    for _ in $(seq 200); do
        port_open "$port" && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited early; its log:"
            cat "$WORK/$name.log" >&2
            return 1
        fi
        sleep 0.05
    done
    log "$name did not listen on port $port within 10 s"
    return 1
}

log "building release binaries (waits for the build lock if other builds are running)"
cargo build --release -p iserv-remote-desktop -p testkit -p wsbench >&2

FAKE_PORT=$(free_port)
PORTAL_PORT=$(free_port)
while [[ $PORTAL_PORT == "$FAKE_PORT" ]]; do PORTAL_PORT=$(free_port); done
PORTAL="http://127.0.0.1:$PORTAL_PORT"
FAKE_PW=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
BENCH_PW=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')

# fake-kasm binds 0.0.0.0 (it is made to run in a container); it can only be reached with the
# random password above and lives for the few minutes of this run.
log "starting fake-kasm on port $FAKE_PORT (binds 0.0.0.0; not configurable)"
VNC_PW="$FAKE_PW" FAKE_KASM_PORT="$FAKE_PORT" "$BIN/fake-kasm" >"$WORK/fake-kasm.log" 2>&1 &
FAKE_PID=$!
STARTED_PIDS+=("$FAKE_PID")
wait_for_port "$FAKE_PORT" "$FAKE_PID" fake-kasm

cat >"$WORK/portal.toml" <<TOML
listen = "127.0.0.1:$PORTAL_PORT"
data_dir = "$WORK/data"
runtime = "static"

[proxy]
idle_timeout_secs = 600
relay_buffer_bytes = $RELAY_BUFFER

[[static_desktops]]
id = "lab"
name = "Bench lab"
url = "https://127.0.0.1:$FAKE_PORT"
username = "kasm_user"
password = "$FAKE_PW"
verify_tls = false
users = ["bench"]
TOML

# The portal reads seed variables (DATABASE_URL, …) and IRD_* from the environment; a developer's
# shell must not point the benchmark at a real database.
PORTAL_ENV=(env -u RUST_LOG -u DATABASE_URL -u DATABASE_URI -u SECRET_KEY -u FRONTEND_URL -u KASM_IMAGE
    -u KASM_CONTAINER_PORT -u KASM_CONTAINER_PROTOCOL -u KASM_VERIFY_SSL -u VNC_USER -u DOCKER_HOST_URL)
for var in $(compgen -e); do
    [[ $var == IRD_* ]] && PORTAL_ENV+=(-u "$var")
done

log "starting the portal on $PORTAL"
"${PORTAL_ENV[@]}" "$BIN/iserv-remote-desktop" serve --config "$WORK/portal.toml" >"$WORK/portal.log" 2>&1 &
PORTAL_PID=$!
STARTED_PIDS+=("$PORTAL_PID")
wait_for_port "$PORTAL_PORT" "$PORTAL_PID" portal
curl -fsS -o /dev/null "$PORTAL/healthz"

printf '%s\n' "$BENCH_PW" |
    "${PORTAL_ENV[@]}" "$BIN/iserv-remote-desktop" user add bench --role student --password-stdin \
        --config "$WORK/portal.toml" >&2

log "signing in as bench"
JAR="$WORK/cookies.txt"
LOGIN_PAGE=$(curl -fsS -c "$JAR" -b "$JAR" "$PORTAL/login")
CSRF=$(grep -o 'name="csrf_token" value="[^"]*"' <<<"$LOGIN_PAGE" | head -n1 | sed 's/.*value="//; s/"$//')
[[ -n $CSRF ]] || { log "no csrf_token on the sign-in page"; exit 1; }
STATUS=$(curl -sS -o /dev/null -w '%{http_code}' -c "$JAR" -b "$JAR" \
    --data-urlencode "username=bench" --data-urlencode "password=$BENCH_PW" \
    --data-urlencode "csrf_token=$CSRF" "$PORTAL/login")
[[ $STATUS == 303 ]] || { log "sign-in answered $STATUS, expected 303"; exit 1; }
SESSION=$(awk '$6 == "ird_session" { print $7 }' "$JAR")
[[ -n $SESSION ]] || { log "no ird_session cookie after sign-in"; exit 1; }
COOKIE="ird_session=$SESSION"
STATUS=$(curl -sS -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" "$PORTAL/desktop/lab/")
[[ $STATUS == 200 ]] || { log "GET /desktop/lab/ through the portal answered $STATUS"; exit 1; }

DIRECT_WS=(--url "wss://127.0.0.1:$FAKE_PORT/websockify" --basic-auth "kasm_user:$FAKE_PW" --label direct)
PORTAL_WS=(--url "ws://127.0.0.1:$PORTAL_PORT/desktop/lab/websockify" --cookie "$COOKIE" --origin "$PORTAL"
    --label portal)
WS_OPTS=(--messages "$MESSAGES" --latency-connections "$LATENCY_CONNS"
    --throughput-connections "$THROUGHPUT_CONNS" --throughput-secs "$THROUGHPUT_SECS")

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RUSTC_BEFORE=$(pgrep -c -x rustc || true)
SECONDS=0

# Memory first, while the portal's heap is still small and unfragmented by the throughput runs.
log "memory: idle WebSockets through the portal at levels $IDLE_LEVELS"
"$BIN/wsbench" idle "${PORTAL_WS[@]}" --levels "$IDLE_LEVELS" \
    --rss "portal=$PORTAL_PID" --rss "fake-kasm=$FAKE_PID" >"$WORK/idle.json"

log "WebSocket latency and throughput: direct"
"$BIN/wsbench" ws "${DIRECT_WS[@]}" "${WS_OPTS[@]}" >"$WORK/direct-ws.json"
log "WebSocket latency and throughput: through the portal"
"$BIN/wsbench" ws "${PORTAL_WS[@]}" "${WS_OPTS[@]}" >"$WORK/portal-ws.json"

log "HTTP GETs: direct"
"$BIN/wsbench" http --url "https://127.0.0.1:$FAKE_PORT/" --basic-auth "kasm_user:$FAKE_PW" --label direct \
    --requests "$HTTP_REQUESTS" >"$WORK/direct-http.json"
log "HTTP GETs: through the portal"
"$BIN/wsbench" http --url "$PORTAL/desktop/lab/" --cookie "$COOKIE" --label portal \
    --requests "$HTTP_REQUESTS" >"$WORK/portal-http.json"

MEASURE_SECS=$SECONDS
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
RUSTC_AFTER=$(pgrep -c -x rustc || true)
kill -0 "$PORTAL_PID" && kill -0 "$FAKE_PID"

CPU_MODEL=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain 2>/dev/null) ]]; then COMMIT="$COMMIT with uncommitted changes"; fi
{
    echo "<!-- bench:results:begin (written by scripts/bench.sh; edits inside are overwritten) -->"
    echo "### Run of $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo
    echo "- Command: \`scripts/bench.sh\` (release build, commit $COMMIT)"
    echo "- Machine: $(nproc) CPUs ($CPU_MODEL), kernel $(uname -r)"
    echo "- Other load: load average $LOAD_BEFORE before, $LOAD_AFTER after the ${MEASURE_SECS} s of" \
        "measuring; rustc processes running: $RUSTC_BEFORE before, $RUSTC_AFTER after"
    echo "- Settings: $MESSAGES round trips per connection after 100 warm-up ones; latency with" \
        "$LATENCY_CONNS concurrent connections; throughput ${THROUGHPUT_SECS} s per run with" \
        "$THROUGHPUT_CONNS connections; $HTTP_REQUESTS HTTP GETs after 20 warm-up ones; idle levels" \
        "$IDLE_LEVELS; portal relay buffer $RELAY_BUFFER bytes per direction (default 8192)"
    echo
    echo '```'
    free -h
    echo '```'
    echo
    "$BIN/wsbench" report --direct-ws "$WORK/direct-ws.json" --portal-ws "$WORK/portal-ws.json" \
        --direct-http "$WORK/direct-http.json" --portal-http "$WORK/portal-http.json" --idle "$WORK/idle.json"
    echo
    echo "<!-- bench:results:end -->"
} >"$WORK/block.md"

cat "$WORK/block.md"
if [[ ${BENCH_NO_WRITE:-0} == 1 ]]; then
    log "BENCH_NO_WRITE=1: BENCHMARKS.md left as it is"
    exit 0
fi
if [[ -f $BENCH_MD ]] && grep -q '<!-- bench:results:begin' "$BENCH_MD"; then
    awk -v block="$WORK/block.md" '
        /<!-- bench:results:begin/ { while ((getline line < block) > 0) print line; skip = 1; next }
        /<!-- bench:results:end -->/ { skip = 0; next }
        !skip { print }
    ' "$BENCH_MD" >"$WORK/BENCHMARKS.md"
    cat "$WORK/BENCHMARKS.md" >"$BENCH_MD"
else
    { [[ -f $BENCH_MD ]] || echo "# Benchmarks"; echo; cat "$WORK/block.md"; } >>"$BENCH_MD"
fi
log "results written to BENCHMARKS.md"
