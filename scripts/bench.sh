#!/usr/bin/env bash
# Benchmarks the portal's desktop proxy in one run against a direct connection to the fake
# KasmVNC desktop and against nginx (Debian's package) set up as the equivalent TLS-upstream
# WebSocket proxy with Basic Auth injection: bulk echo throughput per message size (with the
# proxy's CPU time per GiB and RSS), small-message round trips at a fixed rate (1 and 1,000
# sessions), WebSocket set-up rate, HTTP GET rate of a desktop asset and of the dashboard,
# memory per idle proxied WebSocket (10,000, or fewer if the open-files limit is lower; see below)
# and after they close, and the time from
# "start" to an open WebSocket with the tiny test desktop image on Docker. Each measurement is
# repeated and reduced to its median; the results replace the dated block in BENCHMARKS.md.
#
# Pinning (the machine has few cores, and client, proxy and desktop compete for them): by
# default nothing is pinned (BENCH_PIN=0): the kernel schedules client, proxy and desktop on
# the two cores as it would on a small school server, so a proxy's CPU time is taken from the
# ends and shows in every path's numbers. BENCH_PIN=1 pins the client (wsbench) and the desktop
# (fake-kasm) to CPU 0 and the proxy under test (portal or nginx, one worker each) to CPU 1 —
# the same for every path, so "direct" and the proxies see the same client and desktop budget
# (this hides what the proxy costs the machine); BENCH_PIN=same puts all three on CPU 0. With
# BENCH_PIN=1, the 1-session round trips are measured a second time with the proxy moved to
# CPU 0 as well (BENCH_SAME_CPU=0 skips it).
#
# Knobs (environment): BENCH_REPEATS (3), BENCH_IDLE (10,000 idle WebSockets, or as many as
# the open-files limit allows; 0 skips),
# BENCH_SIZES (1024,16384,65536,1048576), BENCH_THROUGHPUT_SECS (2), BENCH_LATENCY_SECS (3),
# BENCH_SESSIONS (1,1000) with BENCH_RATES (1000,10 round trips per second per session),
# BENCH_CONNECTS (2000 set-ups), BENCH_HTTP_REQUESTS (4000), BENCH_HTTP_CONCURRENCY (8),
# BENCH_STARTS (5 starts on Docker; 0 skips), BENCH_SETUPS (1; 0 skips the WebSocket set-up,
# asset and dashboard rates, e.g. while iterating on the relay), BENCH_PATHS (the paths
# measured, default direct,portal,portal-path,nginx,nginx-64k), BENCH_RELAY_BUFFER (the portal's
# proxy.relay_buffer_bytes; unset = the portal's default), BENCH_PIN (0), BENCH_NO_WRITE=1
# (print only), BENCH_LABEL (a note shown with the run, e.g. "before the relay change"),
# BENCH_BIN (a directory with already built binaries to measure instead of building; e.g. an
# older build for a before/after comparison), BENCH_BEFORE_BIN (a directory with an older
# build of the portal, measured in the same run as the path `portal-before`, set up like
# `portal-path`: before and after a change side by side), BENCH_KEEP (a directory to keep the raw results
# and logs in), BENCH_PERF (a directory: `perf record` the proxy under test during each of its
# measurements and write a flat profile per measurement there, `*.txt`),
# BENCH_NGINX_UPSTREAM_TLS (nginx's proxy_ssl_protocols; "TLSv1.2 TLSv1.3" by default),
# BENCH_BURSTS (bursts of sessions through the portal for memory over time, 0 skips; 15 with
# BENCH_ONLY=bursts, which measures nothing else and writes nothing: scripts/bench-bursts.sh),
# BENCH_BURST_SESSIONS (300 WebSockets per burst, each echoing 10 messages of 64 KiB),
# BENCH_BURST_PATHS (portal), BENCH_PORTAL_ENV (VAR=value ... in the portal's environment, e.g.
# allocator settings such as MALLOC_ARENA_MAX=2 for an experiment),
# BENCH_FLASK (1: also measure the old product's approach, Flask + gevent-websocket from PyPI,
# scripts/bench-flask; 0 skips it).
set -euo pipefail

ROOT=${BENCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
cd "$ROOT"
BENCH_MD="$ROOT/BENCHMARKS.md"
BIN="${BENCH_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release}"
REPEATS=${BENCH_REPEATS:-3}
IDLE=${BENCH_IDLE:-}
SIZES=${BENCH_SIZES:-1024,16384,65536,1048576}
THROUGHPUT_SECS=${BENCH_THROUGHPUT_SECS:-2}
LATENCY_SECS=${BENCH_LATENCY_SECS:-3}
SESSIONS=${BENCH_SESSIONS:-1,1000}
RATES=${BENCH_RATES:-1000,10}
CONNECTS=${BENCH_CONNECTS:-2000}
HTTP_REQUESTS=${BENCH_HTTP_REQUESTS:-4000}
HTTP_CONCURRENCY=${BENCH_HTTP_CONCURRENCY:-8}
STARTS=${BENCH_STARTS:-5}
RELAY_BUFFER=${BENCH_RELAY_BUFFER:-}
PIN=${BENCH_PIN:-0}
SETUPS=${BENCH_SETUPS:-1}
ONLY=${BENCH_ONLY:-}
if [[ $ONLY == bursts ]]; then
    BURSTS=${BENCH_BURSTS:-15}
    IDLE=0
    BENCH_FLASK=0
elif [[ -n $ONLY ]]; then
    echo "bench: BENCH_ONLY=$ONLY: only \"bursts\" is known" >&2
    exit 2
else
    BURSTS=${BENCH_BURSTS:-0}
fi
BURST_SESSIONS=${BENCH_BURST_SESSIONS:-300}
# nginx ≥ 1.23.4 offers TLS 1.2 and 1.3 to upstreams by default and so negotiates 1.3 with a
# desktop, as the portal does; Debian's 1.22 still defaults to "TLSv1 TLSv1.1 TLSv1.2".
NGINX_UPSTREAM_TLS=${BENCH_NGINX_UPSTREAM_TLS:-TLSv1.2 TLSv1.3}
START_IMAGE="iserv-rd/fake-kasm:test"

log() { echo "bench: $*" >&2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ird-bench.XXXXXX")
chmod 755 "$WORK" # nginx's worker (user nobody) reads its temp paths here
STARTED_PIDS=()
cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    # Desktops a failed start run left behind (this run's own instance label only).
    if command -v docker >/dev/null 2>&1; then
        docker ps -aq --filter "label=org.iserv-remote-desktop.instance=$INSTANCE" 2>/dev/null | xargs -r docker rm -f >/dev/null 2>&1 || true
        docker network rm ird-bench >/dev/null 2>&1 || true
    fi
    if [[ -n ${BENCH_KEEP:-} ]]; then
        mkdir -p "$BENCH_KEEP" && cp "$WORK"/*.json "$WORK"/*.log "$BENCH_KEEP"/ 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
INSTANCE="bench$$"
trap cleanup EXIT
trap 'exit 130' INT TERM

# Thousands of idle WebSockets: the client holds one descriptor each, a proxy two. Raised as
# far as the hard limit allows; a sandbox without CAP_SYS_RESOURCE may cap it (e.g. at 20,000,
# which leaves room for 9,700 proxied WebSockets next to the proxy's own files), and then the
# default is as many as fit, in hundreds.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
log "open files limit: $NOFILE"
if [[ -z $IDLE ]]; then
    IDLE=$(((NOFILE - 500) / 2 / 100 * 100))
    ((IDLE > 10000)) && IDLE=10000
fi
if ((IDLE * 2 + 500 > NOFILE)); then
    log "BENCH_IDLE=$IDLE needs $((IDLE * 2 + 500)) open files per proxy; the limit is $NOFILE"
    exit 1
fi

if [[ $PIN == same ]]; then
    ENDS=(taskset -c 0)
    PROXY=(taskset -c 0)
    PINNING="client, desktop and the proxy all on CPU 0 (BENCH_PIN=same: no wake-ups across CPUs, but one CPU for everything)"
elif [[ $PIN == 1 && $(nproc) -ge 2 ]]; then
    ENDS=(taskset -c 0)  # client and desktop
    PROXY=(taskset -c 1) # the proxy under test
    PINNING="client (wsbench) and desktop (fake-kasm) on CPU 0, the proxy under test (the portal, nginx or Flask; one worker or process each) on CPU 1"
else
    ENDS=()
    PROXY=()
    PINNING="none (BENCH_PIN=0 or a single CPU)"
fi

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

USED_PORTS=()
# Below the kernel's ephemeral range: the benchmark's own client connections leave thousands
# of ports there in TIME_WAIT, where a later bind would fail.
EPHEMERAL_LOW=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
((EPHEMERAL_LOW > 12000)) || EPHEMERAL_LOW=61000
# Sets the variable named $1 to a free port. Not in a subshell ($(…)), so that USED_PORTS
# keeps every port handed out, also those not bound yet (a second portal's metrics port once
# got the port chosen earlier for nginx).
free_port() {
    local port
    for _ in $(seq 50); do
        port=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
        if ! port_open "$port" && [[ " ${USED_PORTS[*]} " != *" $port "* ]]; then
            USED_PORTS+=("$port")
            printf -v "$1" '%s' "$port"
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

if ! command -v nginx >/dev/null 2>&1; then
    log "installing nginx-light from Debian (the reference proxy)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y nginx-light >&2 ||
        { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y nginx-light >&2; }
fi

PERF_DIR=${BENCH_PERF:-}
if [[ -n $PERF_DIR ]]; then
    mkdir -p "$PERF_DIR"
    PERF_DIR=$(cd "$PERF_DIR" && pwd)
    if ! command -v perf >/dev/null 2>&1; then
        log "installing linux-perf from Debian (BENCH_PERF)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y linux-perf >&2
    fi
fi

# Runs a measurement ($3…) of path $2; with BENCH_PERF, profiles the proxy under test while
# it runs and writes the flat profile (self time per symbol) to BENCH_PERF/$1-$2.txt.
measure() {
    local name=$1 path=$2 perf_pid rc=0
    shift 2
    if [[ -z $PERF_DIR || $path == direct ]]; then
        "$@"
        return
    fi
    perf record -q -F 2999 -p "$(proxy_pid "$path")" -o "$PERF_DIR/$name-$path.data" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 0.5 # perf attaches before the load starts
    "$@" || rc=$?
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf report -i "$PERF_DIR/$name-$path.data" --no-children --sort dso,symbol --percent-limit 0.5 \
        --stdio 2>/dev/null | grep -v '^$' | sed 's/ *\(- *- *\)\?$//' >"$PERF_DIR/$name-$path.txt" || true
    return "$rc"
}

if [[ -n ${BENCH_BIN:-} ]]; then
    log "using the binaries in $BIN (BENCH_BIN; not rebuilt)"
else
    log "building release binaries (waits for the build lock if other builds are running)"
    cargo build --release -p iserv-remote-desktop -p testkit -p wsbench >&2
fi

free_port FAKE_PORT
free_port PORTAL_PORT
free_port NGINX_PORT
free_port NGINX12_PORT
free_port METRICS_PORT
PORTAL="http://127.0.0.1:$PORTAL_PORT"
# A second portal with desktop_origin off: the path split (`/desktop/lab/…` on the portal's
# origin) beside the desktop origin (`lab.localhost:PORT`, routed by Host), in one run.
free_port PORTAL_PATH_PORT
free_port PORTAL_PATH_METRICS_PORT
PORTAL_PATH="http://127.0.0.1:$PORTAL_PATH_PORT"
DESKTOP_HOST="lab.localhost:$PORTAL_PORT"
FAKE_PW=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
BENCH_PW=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')

# fake-kasm binds 0.0.0.0 (it is made to run in a container); it can only be reached with the
# random password above and lives for the minutes of this run.
log "starting fake-kasm on port $FAKE_PORT (binds 0.0.0.0; not configurable)"
VNC_PW="$FAKE_PW" FAKE_KASM_PORT="$FAKE_PORT" "${ENDS[@]}" "$BIN/fake-kasm" >"$WORK/fake-kasm.log" 2>&1 &
FAKE_PID=$!
STARTED_PIDS+=("$FAKE_PID")
wait_for_port "$FAKE_PORT" "$FAKE_PID" fake-kasm

RELAY_LINE=
[[ -n $RELAY_BUFFER ]] && RELAY_LINE="relay_buffer_bytes = $RELAY_BUFFER"
cat >"$WORK/portal.toml" <<TOML
listen = "127.0.0.1:$PORTAL_PORT"
data_dir = "$WORK/data"
runtime = "static"

[metrics]
listen = "127.0.0.1:$METRICS_PORT"

[proxy]
idle_timeout_secs = 600
$RELAY_LINE
# The client holds thousands of WebSockets from 127.0.0.1 as one user (idle memory, bursts);
# the bounds on connections per address and in total, and on WebSockets per user, are for a
# school's browsers, not for this client.
max_connections = 100000
max_connections_per_address = 100000

[limits]
max_websockets_per_user = 100000

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
# shellcheck disable=SC2206 # VAR=value words, split on purpose
PORTAL_ENV+=(${BENCH_PORTAL_ENV:-})

# Starts the portal binary in directory $1 with $WORK/$2.toml and waits for port $3; sets
# PORTAL_STARTED to its PID.
start_portal() {
    local bin=$1 name=$2 port=$3 pid
    "${PORTAL_ENV[@]}" "${PROXY[@]}" "$bin/iserv-remote-desktop" serve --config "$WORK/$name.toml" \
        >"$WORK/$name.log" 2>&1 &
    pid=$!
    STARTED_PIDS+=("$pid")
    wait_for_port "$port" "$pid" "$name"
    PORTAL_STARTED=$pid
}
# Prints the config $WORK/$1.toml moved to listen port $3 (from $2), metrics port $5 (from $4)
# and data directory $WORK/$6.
moved_config() {
    sed -e "s|^listen = \"127.0.0.1:$2\"|listen = \"127.0.0.1:$3\"|" \
        -e "s|^data_dir = .*|data_dir = \"$WORK/$6\"|" \
        -e "s|127.0.0.1:$4|127.0.0.1:$5|" \
        "$WORK/$1.toml"
}

log "starting the portal on $PORTAL (desktops on their own origins, http://{id}.localhost:$PORTAL_PORT)"
start_portal "$BIN" portal "$PORTAL_PORT"
PORTAL_PID=$PORTAL_STARTED
curl -fsS -o /dev/null "$PORTAL/healthz"

{
    echo 'desktop_origin = "off"'
    moved_config portal "$PORTAL_PORT" "$PORTAL_PATH_PORT" "$METRICS_PORT" "$PORTAL_PATH_METRICS_PORT" data-path
} >"$WORK/portal-path.toml"
log "starting the path-split portal on $PORTAL_PATH (desktop_origin off)"
start_portal "$BIN" portal-path "$PORTAL_PATH_PORT"
PORTAL_PATH_PID=$PORTAL_STARTED

# Before and after in one run: an older build of the portal (BENCH_BEFORE_BIN), set up like
# portal-path (desktop_origin off), measured as the path `portal-before` beside `portal-path`.
BEFORE_BIN=${BENCH_BEFORE_BIN:-}
if [[ -n $BEFORE_BIN ]]; then
    free_port PORTAL_BEFORE_PORT
    free_port PORTAL_BEFORE_METRICS_PORT
    PORTAL_BEFORE="http://127.0.0.1:$PORTAL_BEFORE_PORT"
    moved_config portal-path "$PORTAL_PATH_PORT" "$PORTAL_BEFORE_PORT" "$PORTAL_PATH_METRICS_PORT" \
        "$PORTAL_BEFORE_METRICS_PORT" data-before >"$WORK/portal-before.toml"
    log "starting the older portal from $BEFORE_BIN on $PORTAL_BEFORE (desktop_origin off)"
    start_portal "$BEFORE_BIN" portal-before "$PORTAL_BEFORE_PORT"
    PORTAL_BEFORE_PID=$PORTAL_STARTED
fi

# nginx: the proxy a school would otherwise put in front — TLS to the desktop without
# verification (Kasm's certificates are self-signed), the desktop's Basic Auth injected, the
# browser's cookies dropped, WebSocket upgrades passed through, no response buffering (a
# desktop stream must not wait in a buffer), TCP_NODELAY, one worker like the portal's one
# pinned core. It checks no session: the portal does more per request than this nginx does.
BASIC=$(printf '%s' "kasm_user:$FAKE_PW" | base64 -w0)
# Writes an nginx config for port $2 that offers the TLS versions $3 to the desktop, with its
# pid file, logs and temp paths under $WORK/$1; $4 adds directives to the proxied location.
nginx_conf() {
    local name=$1 port=$2 protocols=$3 extra=${4:-} dir="$WORK/$1"
    mkdir -p "$dir"
    cat >"$dir.conf" <<NGINX
worker_processes 1;
worker_rlimit_nofile 100000;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections 50000;
}
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    tcp_nodelay on;
    map \$http_upgrade \$connection_upgrade {
        default upgrade;
        ''      close;
    }
    server {
        listen 127.0.0.1:$port;
        location /desktop/lab/ {
            proxy_pass https://127.0.0.1:$FAKE_PORT/;
            proxy_http_version 1.1;
            proxy_ssl_verify off;
            proxy_ssl_session_reuse on;
            proxy_ssl_protocols $protocols;
            proxy_set_header Host \$proxy_host;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_set_header Authorization "Basic $BASIC";
            proxy_set_header Cookie "";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 600s;
            proxy_send_timeout 600s;
            $extra
        }
    }
}
NGINX
}
# Starts nginx from $WORK/$1.conf on port $2; sets NGINX_STARTED to its worker's PID.
start_nginx() {
    local name=$1 port=$2 master
    "${PROXY[@]}" nginx -c "$WORK/$name.conf" -g 'daemon off;' >"$WORK/$name.log" 2>&1 &
    master=$!
    STARTED_PIDS+=("$master")
    wait_for_port "$port" "$master" "$name"
    NGINX_STARTED=$(pgrep -P "$master" | head -n1)
    [[ -n $NGINX_STARTED ]] || { log "no worker process of $name"; exit 1; }
}
nginx_conf nginx "$NGINX_PORT" "$NGINX_UPSTREAM_TLS"
log "starting nginx on 127.0.0.1:$NGINX_PORT ($(nginx -v 2>&1); upstream $NGINX_UPSTREAM_TLS)"
start_nginx nginx "$NGINX_PORT"
NGINX_WORKER=$NGINX_STARTED
# The same nginx tuned for bulk: an upgraded connection relays through one buffer of
# proxy_buffer_size per direction (4 KiB by default, one memory page); 64 KiB lets it read and
# write a desktop's frame updates in large pieces, as the portal's relay does. proxy_buffers and
# proxy_busy_buffers_size only have to be consistent with it (nginx checks them at start).
free_port NGINX64_PORT
nginx_conf nginx-64k "$NGINX64_PORT" "$NGINX_UPSTREAM_TLS" \
    "proxy_buffer_size 64k; proxy_buffers 4 64k; proxy_busy_buffers_size 128k;"
log "starting nginx-64k on 127.0.0.1:$NGINX64_PORT (64 KiB proxy buffers)"
start_nginx nginx-64k "$NGINX64_PORT"
NGINX64_WORKER=$NGINX_STARTED
# For comparison only: the same nginx held to Debian 1.22's default upstream protocols. Its
# resumed TLS 1.2 handshakes skip the key exchange that a resumed TLS 1.3 handshake keeps.
nginx_conf nginx-tls12 "$NGINX12_PORT" "TLSv1 TLSv1.1 TLSv1.2"
log "starting nginx-tls12 on 127.0.0.1:$NGINX12_PORT (upstream TLS ≤ 1.2, for comparison)"
start_nginx nginx-tls12 "$NGINX12_PORT"
NGINX12_WORKER=$NGINX_STARTED

# The approach of the product the portal replaces, as a labelled reference: Flask with
# gevent-websocket relaying frame by frame (scripts/bench-flask; a venv from PyPI, cached).
FLASK_NOTE="not measured (BENCH_FLASK=0)"
IFS=, read -r -a PATHS <<<"${BENCH_PATHS:-direct,portal,portal-path${BEFORE_BIN:+,portal-before},nginx,nginx-64k}"
if [[ ${BENCH_FLASK:-1} == 1 ]]; then
    # shellcheck source=SCRIPTDIR/bench-flask/start.sh
    source "$ROOT/scripts/bench-flask/start.sh"
    free_port FLASK_PORT
    log "starting the Flask + gevent-websocket reference on 127.0.0.1:$FLASK_PORT"
    if start_flask_ref "$FLASK_PORT" "https://127.0.0.1:$FAKE_PORT" "kasm_user:$FAKE_PW" "$WORK"; then
        wait_for_port "$FLASK_PORT" "$FLASK_PID" flask
        PATHS+=(flask)
        FLASK_NOTE="Flask $("$(flask_ref_venv)/bin/python" -c 'import importlib.metadata as m; print(m.version("flask"), "with gevent-websocket", m.version("gevent-websocket"))'), one process"
    else
        log "the Flask reference could not be set up (PyPI unreachable?); measuring without it"
        FLASK_NOTE="not measured: its venv could not be created"
    fi
fi

for config in portal portal-path ${BEFORE_BIN:+portal-before}; do
    printf '%s\n' "$BENCH_PW" |
        "${PORTAL_ENV[@]}" "$BIN/iserv-remote-desktop" user add bench --role student --password-stdin \
            --config "$WORK/$config.toml" >&2
done

# Signs in as bench on the portal at $1; prints the session cookie, then the CSRF token.
sign_in() {
    local portal=$1 jar="$WORK/cookies-$RANDOM.txt" page csrf status session
    page=$(curl -fsS -c "$jar" -b "$jar" "$portal/login")
    csrf=$(grep -o 'name="csrf_token" value="[^"]*"' <<<"$page" | head -n1 | sed 's/.*value="//; s/"$//')
    [[ -n $csrf ]] || { log "no csrf_token on the sign-in page"; return 1; }
    status=$(curl -sS -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" \
        --data-urlencode "username=bench" --data-urlencode "password=$BENCH_PW" \
        --data-urlencode "csrf_token=$csrf" "$portal/login")
    [[ $status == 303 ]] || { log "sign-in answered $status, expected 303"; return 1; }
    session=$(awk '$6 == "ird_session" { print $7 }' "$jar")
    [[ -n $session ]] || { log "no ird_session cookie after sign-in"; return 1; }
    page=$(curl -fsS -H "Cookie: ird_session=$session" "$portal/")
    csrf=$(grep -o 'name="csrf-token" content="[^"]*"' <<<"$page" | head -n1 | sed 's/.*content="//; s/"$//')
    echo "ird_session=$session"
    echo "$csrf"
}
log "signing in as bench"
{ read -r COOKIE; read -r _; } < <(sign_in "$PORTAL")
{ read -r PATH_COOKIE; read -r _; } < <(sign_in "$PORTAL_PATH")
if [[ -n $BEFORE_BIN ]]; then
    { read -r BEFORE_COOKIE; read -r _; } < <(sign_in "$PORTAL_BEFORE")
fi
# The desktop origin's own cookie, through the ticket handover the view page uses.
HANDOVER=$(curl -sS -o /dev/null -w '%{redirect_url}' -H "Cookie: $COOKIE" "$PORTAL/desktop/lab/")
DESK_COOKIE=$(curl -sS -o /dev/null -D - --resolve "$DESKTOP_HOST:127.0.0.1" "$HANDOVER" |
    sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -n1)
[[ -n $DESK_COOKIE ]] || { log "no desktop cookie from the handover $HANDOVER"; exit 1; }
for url in "http://$DESKTOP_HOST/" "$PORTAL_PATH/desktop/lab/" "http://127.0.0.1:$NGINX_PORT/desktop/lab/" "http://127.0.0.1:$NGINX12_PORT/desktop/lab/"; do
    STATUS=$(curl -sS -o /dev/null -w '%{http_code}' --resolve "$DESKTOP_HOST:127.0.0.1" \
        -H "Cookie: $DESK_COOKIE; $PATH_COOKIE" "$url")
    [[ $STATUS == 200 ]] || { log "GET $url answered $STATUS"; exit 1; }
done

# Per path: the WebSocket URL and headers, and the processes to watch.
ws_opts() {
    case $1 in
    direct) echo "--url wss://127.0.0.1:$FAKE_PORT/websockify --basic-auth kasm_user:$FAKE_PW" ;;
    portal) echo "--url ws://127.0.0.1:$PORTAL_PORT/websockify --host $DESKTOP_HOST --origin http://$DESKTOP_HOST --cookie $DESK_COOKIE" ;;
    portal-path) echo "--url ws://127.0.0.1:$PORTAL_PATH_PORT/desktop/lab/websockify --cookie $PATH_COOKIE --origin $PORTAL_PATH" ;;
    portal-before) echo "--url ws://127.0.0.1:$PORTAL_BEFORE_PORT/desktop/lab/websockify --cookie $BEFORE_COOKIE --origin $PORTAL_BEFORE" ;;
    nginx) echo "--url ws://127.0.0.1:$NGINX_PORT/desktop/lab/websockify --origin $PORTAL" ;;
    nginx-tls12) echo "--url ws://127.0.0.1:$NGINX12_PORT/desktop/lab/websockify --origin $PORTAL" ;;
    nginx-64k) echo "--url ws://127.0.0.1:$NGINX64_PORT/desktop/lab/websockify --origin $PORTAL" ;;
    flask) echo "--url ws://127.0.0.1:$FLASK_PORT/desktop/lab/websockify --origin $PORTAL" ;;
    esac
}
http_opts() {
    case $1 in
    direct) echo "--url https://127.0.0.1:$FAKE_PORT/app/ui.js --basic-auth kasm_user:$FAKE_PW" ;;
    portal) echo "--url http://127.0.0.1:$PORTAL_PORT/app/ui.js --host $DESKTOP_HOST --cookie $DESK_COOKIE" ;;
    portal-path) echo "--url $PORTAL_PATH/desktop/lab/app/ui.js --cookie $PATH_COOKIE" ;;
    portal-before) echo "--url $PORTAL_BEFORE/desktop/lab/app/ui.js --cookie $BEFORE_COOKIE" ;;
    nginx) echo "--url http://127.0.0.1:$NGINX_PORT/desktop/lab/app/ui.js" ;;
    nginx-tls12) echo "--url http://127.0.0.1:$NGINX12_PORT/desktop/lab/app/ui.js" ;;
    nginx-64k) echo "--url http://127.0.0.1:$NGINX64_PORT/desktop/lab/app/ui.js" ;;
    flask) echo "--url http://127.0.0.1:$FLASK_PORT/desktop/lab/app/ui.js" ;;
    esac
}
proxy_pid() {
    case $1 in
    portal) echo "$PORTAL_PID" ;;
    portal-path) echo "$PORTAL_PATH_PID" ;;
    portal-before) echo "$PORTAL_BEFORE_PID" ;;
    nginx) echo "$NGINX_WORKER" ;;
    nginx-tls12) echo "$NGINX12_WORKER" ;;
    nginx-64k) echo "$NGINX64_WORKER" ;;
    flask) echo "$FLASK_PID" ;;
    esac
}
# `/app/ui.js` is the fake's stand-in for the Kasm client's script: a small static file.
STATUS=$(curl -sS -o /dev/null -w '%{http_code}' --resolve "$DESKTOP_HOST:127.0.0.1" -H "Cookie: $DESK_COOKIE" "http://$DESKTOP_HOST/app/ui.js")
[[ $STATUS == 200 ]] || { log "GET of the desktop asset through the portal answered $STATUS"; exit 1; }

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RUSTC_BEFORE=$(pgrep -c -x rustc || true)
SECONDS=0
RESULTS=()

# Memory first, while each proxy's heap is still small and unfragmented by the other runs:
# repeated bursts of sessions (memory over months), then idle WebSockets.
if ((BURSTS > 0)); then
    IFS=, read -r -a BURST_PATHS <<<"${BENCH_BURST_PATHS:-portal}"
    for path in "${BURST_PATHS[@]}"; do
        log "memory: $BURSTS bursts of $BURST_SESSIONS sessions through $path"
        # shellcheck disable=SC2046
        "${ENDS[@]}" "$BIN/wsbench" bursts $(ws_opts "$path") --label "$path" --bursts "$BURSTS" \
            --sessions "$BURST_SESSIONS" --rss "proxy=$(proxy_pid "$path")" >"$WORK/bursts-$path.json"
        RESULTS+=("$WORK/bursts-$path.json")
    done
fi
if [[ $ONLY == bursts ]]; then
    echo "Bursts, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)${BENCH_PORTAL_ENV:+, portal environment: $BENCH_PORTAL_ENV}${BENCH_LABEL:+ — $BENCH_LABEL}"
    echo
    "$BIN/wsbench" report "${RESULTS[@]}"
    exit 0
fi
if ((IDLE > 0)); then
    LEVELS="$((IDLE / 10)),$IDLE"
    for path in portal nginx; do
        log "memory: $IDLE idle WebSockets through $path (levels $LEVELS)"
        # shellcheck disable=SC2046 # word splitting of the option lists is intended
        "${ENDS[@]}" "$BIN/wsbench" idle $(ws_opts "$path") --label "$path" --levels "$LEVELS" \
            --parallel 32 --cycles 2 --rss "proxy=$(proxy_pid "$path")" --rss "fake-kasm=$FAKE_PID" \
            >"$WORK/idle-$path.json"
        RESULTS+=("$WORK/idle-$path.json")
    done
fi

# WebSocket set-up rate and HTTP GETs of a desktop asset through path $1, repeat $2.
setups_and_assets() {
    local path=$1 rep=$2
    log "repeat $rep/$REPEATS, $path: WebSocket set-up rate"
    # shellcheck disable=SC2046
    measure "connect-$rep" "$path" "${ENDS[@]}" "$BIN/wsbench" connect $(ws_opts "$path") --label "$path" \
        --connections "$CONNECTS" --concurrency 8 >"$WORK/connect-$path-$rep.json"
    log "repeat $rep/$REPEATS, $path: HTTP GETs of a desktop asset"
    # shellcheck disable=SC2046
    measure "asset-$rep" "$path" "${ENDS[@]}" "$BIN/wsbench" http $(http_opts "$path") --label "asset/$path" \
        --requests "$HTTP_REQUESTS" --concurrency "$HTTP_CONCURRENCY" >"$WORK/http-$path-$rep.json"
    RESULTS+=("$WORK/connect-$path-$rep.json" "$WORK/http-$path-$rep.json")
}

for ((rep = 1; rep <= REPEATS; rep++)); do
    # A different order each repeat, so a drift of the machine does not favour one path.
    ORDER=("${PATHS[@]:rep % ${#PATHS[@]}}" "${PATHS[@]:0:rep % ${#PATHS[@]}}")
    for path in "${ORDER[@]}"; do
        procs=(--proc "upstream=$FAKE_PID")
        [[ $path != direct ]] && procs+=(--proc "proxy=$(proxy_pid "$path")")
        log "repeat $rep/$REPEATS, $path: WebSocket latency and throughput"
        # shellcheck disable=SC2046
        measure "ws-$rep" "$path" "${ENDS[@]}" "$BIN/wsbench" ws $(ws_opts "$path") --label "$path" \
            --latency-connections "$SESSIONS" --latency-rates "$RATES" --latency-secs "$LATENCY_SECS" \
            --warmup 20 --throughput-connections 1 --throughput-bytes "$SIZES" \
            --throughput-secs "$THROUGHPUT_SECS" "${procs[@]}" >"$WORK/ws-$path-$rep.json"
        RESULTS+=("$WORK/ws-$path-$rep.json")
        # nginx's buffer size plays no part in set-ups and small GETs.
        if [[ $SETUPS == 1 && $path != nginx-64k ]]; then
            setups_and_assets "$path" "$rep"
        fi
    done
    ((SETUPS == 1)) || continue
    setups_and_assets nginx-tls12 "$rep"
    log "repeat $rep/$REPEATS: HTTP GETs of the dashboard"
    measure "dashboard-$rep" portal "${ENDS[@]}" "$BIN/wsbench" http --url "$PORTAL/" --cookie "$COOKIE" --label "dashboard/portal" \
        --requests "$HTTP_REQUESTS" --concurrency "$HTTP_CONCURRENCY" >"$WORK/dashboard-$rep.json"
    RESULTS+=("$WORK/dashboard-$rep.json")
done
# Round trips once more with the proxy moved onto the client's and desktop's CPU: every
# wake-up then stays on one CPU, so what the proxy adds is its own work and two more context
# switches, not the cross-CPU wake-ups (IPIs, and in a VM the exits they cause) of the split.
SAME_RESULTS=()
if [[ $PIN == 1 && ${BENCH_SAME_CPU:-1} == 1 && ${#ENDS[@]} -gt 0 ]]; then
    taskset -a -p -c 0 "$PORTAL_PID" >/dev/null
    taskset -a -p -c 0 "$NGINX_WORKER" >/dev/null
    SAME_PATHS=(direct portal nginx)
    for ((rep = 1; rep <= REPEATS; rep++)); do
        ORDER=("${SAME_PATHS[@]:rep % 3}" "${SAME_PATHS[@]:0:rep % 3}")
        for path in "${ORDER[@]}"; do
            log "repeat $rep/$REPEATS, $path: round trips with everything on CPU 0"
            # shellcheck disable=SC2046
            "${ENDS[@]}" "$BIN/wsbench" ws $(ws_opts "$path") --label "$path" --latency-connections 1 \
                --latency-rates 1000 --latency-secs "$LATENCY_SECS" --warmup 20 --no-throughput \
                >"$WORK/same-$path-$rep.json"
            SAME_RESULTS+=("$WORK/same-$path-$rep.json")
        done
    done
    taskset -a -p -c 1 "$PORTAL_PID" >/dev/null
    taskset -a -p -c 1 "$NGINX_WORKER" >/dev/null
fi
MEASURE_SECS=$SECONDS
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
RUSTC_AFTER=$(pgrep -c -x rustc || true)
kill -0 "$PORTAL_PID" && kill -0 "$FAKE_PID" && kill -0 "$NGINX_WORKER" && kill -0 "$NGINX12_WORKER" && kill -0 "$NGINX64_WORKER"
[[ " ${PATHS[*]} " != *" flask "* ]] || kill -0 "$FLASK_PID"

# Start → open WebSocket: a second portal on the Docker runtime with the tiny test image.
START_NOTE="skipped (BENCH_STARTS=0)"
if ((STARTS > 0)); then
    if ! docker info >/dev/null 2>&1; then
        START_NOTE="skipped: no Docker engine"
    else
        if ! docker image inspect "$START_IMAGE" >/dev/null 2>&1; then
            log "building $START_IMAGE (scripts/build-test-images.sh)"
            "$ROOT/scripts/build-test-images.sh" >&2
        fi
        free_port START_PORT
        free_port START_METRICS_PORT
        mkdir -p "$WORK/start-data"
        cat >"$WORK/start.toml" <<TOML
listen = "127.0.0.1:$START_PORT"
data_dir = "$WORK/start-data"
runtime = "docker"

[metrics]
listen = "127.0.0.1:$START_METRICS_PORT"

[docker]
instance = "$INSTANCE"
network = "ird-bench"
shared_volume = ""
home_volume_prefix = "ird-$INSTANCE-home-"

[[desktop_types]]
key = "tiny"
name = "Tiny"
description = "Testdesktop"
icon = "T"
image = "$START_IMAGE"
container_port = 6901
shm_size_mib = 64
memory_mib = 256
TOML
        log "starting a Docker portal on 127.0.0.1:$START_PORT for the start timings"
        # In a subshell, so a failure here costs only this measurement, not the whole run.
        set +e
        (
            set -e
            "${PORTAL_ENV[@]}" "$BIN/iserv-remote-desktop" serve --config "$WORK/start.toml" \
                >"$WORK/start-portal.log" 2>&1 &
            START_PORTAL_PID=$!
            trap 'kill "$START_PORTAL_PID" 2>/dev/null; wait "$START_PORTAL_PID" 2>/dev/null' EXIT
            wait_for_port "$START_PORT" "$START_PORTAL_PID" start-portal
            printf '%s\n' "$BENCH_PW" |
                "${PORTAL_ENV[@]}" "$BIN/iserv-remote-desktop" user add bench --role student --password-stdin \
                    --config "$WORK/start.toml" >&2
            { read -r START_COOKIE; read -r START_CSRF; } < <(sign_in "http://127.0.0.1:$START_PORT")
            log "start → WebSocket, $STARTS starts after one warm-up"
            "$BIN/wsbench" start --portal "http://127.0.0.1:$START_PORT" --cookie "$START_COOKIE" \
                --csrf "$START_CSRF" --type tiny --runs "$STARTS" --warmup 1 >"$WORK/start.json"
        )
        START_RC=$?
        set -e
        if ((START_RC == 0)); then
            RESULTS+=("$WORK/start.json")
            START_NOTE="$STARTS starts of \`$START_IMAGE\` on the local Docker engine (unpinned), after one warm-up"
        else
            log "the start measurement failed (exit $START_RC); the other results are still written"
            START_NOTE="failed (exit $START_RC; see the script's output)"
        fi
        docker volume ls -q --filter "label=org.iserv-remote-desktop.instance=$INSTANCE" | xargs -r docker volume rm >/dev/null 2>&1 || true
    fi
fi

CPU_MODEL=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain -- crates scripts 2>/dev/null) ]]; then COMMIT="$COMMIT with uncommitted changes"; fi
RELAY_NOTE=${RELAY_BUFFER:-"the portal's default"}
{
    echo "<!-- bench:results:begin (written by scripts/bench.sh; edits inside are overwritten) -->"
    echo "### Run of $(date -u '+%Y-%m-%d %H:%M:%S UTC')${BENCH_LABEL:+ — $BENCH_LABEL}"
    echo
    echo "- Command: \`scripts/bench.sh\` (release build, commit $COMMIT)"
    echo "- Machine: $(nproc) CPUs ($CPU_MODEL), kernel $(uname -r), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM"
    echo "- Paths: \`portal\` reaches the desktop through its own origin (\`lab.localhost:PORT\`, routed by Host, the desktop host's cookie), \`portal-path\` through a second portal with desktop_origin off (\`/desktop/lab/…\` on the portal's origin, the session cookie)${BEFORE_BIN:+; \`portal-before\`: an older build set up like portal-path, for before and after in one run}"
    echo "- Proxies: the portal (relay buffer: $RELAY_NOTE); $(nginx -v 2>&1 | sed 's/^nginx version: //') from Debian, one worker," \
        "offering $NGINX_UPSTREAM_TLS to the desktop, with its default 4 KiB proxy buffer (\`nginx\`) and with 64 KiB proxy buffers (\`nginx-64k\`), and for comparison the same held to TLS ≤ 1.2 (\`nginx-tls12\`);" \
        "the old product's approach (\`flask\`): $FLASK_NOTE"
    echo "- Pinning: $PINNING"
    echo "- Repeats: $REPEATS of every WebSocket and HTTP measurement, paths in rotating order; cells are median (min–max)"
    echo "- Other load: load average $LOAD_BEFORE before, $LOAD_AFTER after the ${MEASURE_SECS} s of" \
        "measuring; rustc processes running: $RUSTC_BEFORE before, $RUSTC_AFTER after"
    echo "- Settings: latency with $SESSIONS sessions at $RATES round trips/s each for ${LATENCY_SECS} s;" \
        "throughput ${THROUGHPUT_SECS} s per message size, 1 connection, 4 messages in flight;" \
        "$CONNECTS WebSocket set-ups, 8 at once; $HTTP_REQUESTS HTTP GETs, $HTTP_CONCURRENCY at once;" \
        "$IDLE idle WebSockets (open files limit $NOFILE); start: $START_NOTE"
    echo
    "$BIN/wsbench" report --paths direct,portal,portal-path,portal-before,nginx,nginx-64k,nginx-tls12,flask "${RESULTS[@]}"
    if ((${#SAME_RESULTS[@]} > 0)); then
        echo "#### The same round trips with client, desktop and proxy all on CPU 0"
        echo
        echo "The proxy (the portal or nginx) moved onto CPU 0 with \`taskset -a -p\` for this part only;" \
            "1 session at 1,000 round trips/s, ${LATENCY_SECS} s, $REPEATS repeats."
        echo
        "$BIN/wsbench" report --conditions "all on CPU 0" "${SAME_RESULTS[@]}" | sed 's/^#### WebSocket round trip/##### WebSocket round trip/; s/^#### Targets/##### Targets/'
    fi
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
