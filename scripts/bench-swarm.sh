#!/usr/bin/env bash
# Start → ready on Docker Swarm against one Docker engine: the same portal binary, the same
# desktop image (iserv-rd/fake-kasm:test), `wsbench start` (POST /api/desktops, the start's
# events until `ready`, the desktop's WebSocket through the portal, then DELETE), first with
# runtime = "docker" (the portal on the host), then with runtime = "swarm" (the machine's
# engine made a one-node swarm for the run; the portal a container on the desktops' overlay,
# as deploy/stack.yaml runs it). Prints a Markdown table for BENCHMARKS.md.
#
# Settings (environment): BENCH_STARTS (measured starts per runtime, default 10; one warm-up
# before), BENCH_PROFILE (cargo profile of the binaries, default dev: the portal's own share of
# a start is small beside the engine's, and both runtimes run the same build).
# Needs root, a Docker engine that is in no swarm, and the images of scripts/build-test-images.sh
# and scripts/build-real-desktop-image.sh (the Debian image the portal binary runs in).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly STARTS=${BENCH_STARTS:-10}
readonly PROFILE=${BENCH_PROFILE:-dev}
readonly IMAGE=iserv-rd/fake-kasm:test
readonly BASE_IMAGE=iserv-rd/real-desktop:test
readonly TAG="irdbs-$$"
readonly PW="bench-swarm-password"

log() { echo "bench-swarm: $*" >&2; }

[[ $(docker info --format '{{.Swarm.LocalNodeState}}') == inactive ]] ||
    { log "the engine is in a swarm already; this benchmark makes and leaves one of its own"; exit 1; }
for image in "$IMAGE" "$BASE_IMAGE"; do
    docker image inspect "$image" >/dev/null 2>&1 || { log "missing $image (scripts/build-test-images.sh, scripts/build-real-desktop-image.sh)"; exit 1; }
done

log "building the portal and wsbench ($PROFILE)"
cargo build --profile "$PROFILE" --locked -p iserv-remote-desktop -p wsbench --manifest-path "$ROOT/Cargo.toml" >&2
target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$ROOT/Cargo.toml" |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[[ $PROFILE == dev ]] && BIN="$target_dir/debug" || BIN="$target_dir/$PROFILE"
readonly BIN

WORK=$(mktemp -d)
PORTAL_PID=""
cleanup() {
    [[ -n $PORTAL_PID ]] && { kill "$PORTAL_PID" 2>/dev/null; wait "$PORTAL_PID" 2>/dev/null; } || true
    docker rm -f "$TAG-portal" >/dev/null 2>&1 || true
    docker service ls -q --filter "label=org.iserv-remote-desktop.instance=$TAG-swarm" | xargs -r docker service rm >/dev/null 2>&1 || true
    docker ps -aq --filter "label=org.iserv-remote-desktop.instance=$TAG-engine" | xargs -r docker rm -f >/dev/null 2>&1 || true
    for _ in $(seq 40); do
        [[ -z $(docker ps -aq --filter "label=org.iserv-remote-desktop.instance=$TAG-swarm") ]] && break
        sleep 0.25
    done
    docker network rm "$TAG" "$TAG-overlay" >/dev/null 2>&1 || true
    if [[ $(docker info --format '{{.Swarm.LocalNodeState}}') != inactive ]]; then docker swarm leave --force >/dev/null; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# config FILE RUNTIME PORT INSTANCE NETWORK: the same settings but the runtime's own.
config() {
    cat >"$1" <<TOML
listen = "$([[ $2 == swarm ]] && echo 0.0.0.0:5020 || echo "127.0.0.1:$3")"
public_url = "http://127.0.0.1:$3"
desktop_origin = "off"
data_dir = "$WORK/data-$2"
runtime = "$2"
[metrics]
enabled = false
[files]
root = "$WORK/files-$2"
[docker]
instance = "$4"
network = "$5"
[swarm]
network = "$5"
[[desktop_types]]
key = "tiny"
name = "Tiny"
image = "$IMAGE"
shm_size_mib = 64
memory_mib = 256
TOML
    mkdir -p "$WORK/files-$2"
    printf '%s\n' "$PW" | "$BIN/iserv-remote-desktop" user add bench --role student --password-stdin --config "$1" >&2
}

wait_ready() {
    for _ in $(seq 240); do
        curl -fsS -o /dev/null "$1/healthz" 2>/dev/null && return 0
        sleep 0.25
    done
    log "the portal at $1 did not answer"; return 1
}

# measure PORTAL_URL OUT: signs in as bench and runs the starts.
measure() {
    local jar="$WORK/jar-$RANDOM" page csrf session
    page=$(curl -fsS -c "$jar" -b "$jar" "$1/login")
    csrf=$(grep -o 'name="csrf_token" value="[^"]*"' <<<"$page" | head -n1 | sed 's/.*value="//; s/"$//')
    curl -fsS -o /dev/null -c "$jar" -b "$jar" --data-urlencode "username=bench" \
        --data-urlencode "password=$PW" --data-urlencode "csrf_token=$csrf" "$1/login"
    session=$(awk '$6 == "ird_session" { print $7 }' "$jar")
    page=$(curl -fsS -H "Cookie: ird_session=$session" "$1/")
    csrf=$(grep -o 'name="csrf-token" content="[^"]*"' <<<"$page" | head -n1 | sed 's/.*content="//; s/"$//')
    "$BIN/wsbench" start --portal "$1" --cookie "ird_session=$session" --csrf "$csrf" \
        --type tiny --runs "$STARTS" --warmup 1 >"$2"
}

log "one engine: the portal on the host"
port=$(free_port)
config "$WORK/engine.toml" docker "$port" "$TAG-engine" "$TAG"
"$BIN/iserv-remote-desktop" serve --config "$WORK/engine.toml" >"$WORK/engine.log" 2>&1 &
PORTAL_PID=$!
wait_ready "http://127.0.0.1:$port"
measure "http://127.0.0.1:$port" "$WORK/engine.json"
kill "$PORTAL_PID"; wait "$PORTAL_PID" 2>/dev/null || true; PORTAL_PID=""

log "swarm: a one-node swarm, the portal a container on the overlay"
docker swarm init --advertise-addr 127.0.0.1 >/dev/null
docker network create --driver overlay --attachable "$TAG-overlay" >/dev/null
port=$(free_port)
config "$WORK/swarm.toml" swarm "$port" "$TAG-swarm" "$TAG-overlay"
docker run -d --name "$TAG-portal" --user 0:0 --network "$TAG-overlay" -p "127.0.0.1:$port:5020" \
    -v /var/run/docker.sock:/var/run/docker.sock -v "$WORK:$WORK" \
    -v "$BIN/iserv-remote-desktop:/usr/local/bin/iserv-remote-desktop:ro" \
    -e "IRD_CONFIG=$WORK/swarm.toml" --entrypoint /usr/local/bin/iserv-remote-desktop "$BASE_IMAGE" serve >/dev/null
wait_ready "http://127.0.0.1:$port" || { docker logs "$TAG-portal" >&2; exit 1; }
measure "http://127.0.0.1:$port" "$WORK/swarm.json"

python3 - "$WORK/engine.json" "$WORK/swarm.json" "$STARTS" "$PROFILE" <<'PY'
import json, statistics, sys, subprocess, datetime, os
engine, swarm = (json.load(open(p)) for p in sys.argv[1:3])
def stat(result, key):
    xs = [r[key] if key in r else r["steps_ms"].get(key) for r in result["runs"]]
    xs = [x for x in xs if x is not None]
    return statistics.median(xs), min(xs), max(xs)
cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print(f"Run of {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}, commit {commit}, "
      f"{os.cpu_count()} vCPU ({cpu}), `scripts/bench-swarm.sh` ({sys.argv[4]} build), "
      f"{sys.argv[3]} starts per runtime after one warm-up; ms after the POST, median (min–max)")
print()
print("| step | one engine | swarm (one node) | swarm ÷ engine (medians) |")
print("|---|---|---|---|")
for label, key in [("`creating`", "creating"), ("`starting`", "starting"), ("`ready`", "ready_ms"),
                   ("WebSocket open", "websocket_ms")]:
    try:
        e, s = stat(engine, key), stat(swarm, key)
    except ValueError:
        continue
    print(f"| {label} | {e[0]:.0f} ({e[1]:.0f}–{e[2]:.0f}) | {s[0]:.0f} ({s[1]:.0f}–{s[2]:.0f}) | {s[0] / e[0]:.1f} |")
PY
