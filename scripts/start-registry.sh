#!/usr/bin/env bash
# Start a throwaway Docker registry on 127.0.0.1:5555 for the image-pull tests, push the fake-Kasm
# test image into it and print its address.
#
# Usage: export TEST_REGISTRY=$(scripts/start-registry.sh)
#   needs iserv-rd/fake-kasm:test (scripts/build-test-images.sh) and a running Docker engine.
#
# Idempotent: installs Debian's `docker-registry` (the CNCF distribution registry) only when its
# binary is missing, starts it only when nothing answers on the port yet, and re-pushing an image
# the registry already holds only checks its layers. The registry runs from our own config in
# /tmp/ird-registry (filesystem storage under data/, no auth, plain HTTP on loopback only); the
# package's own service (port 5000, /etc/docker/registry) is neither used nor needed. Docker
# allows plain HTTP to registries on 127.0.0.0/8 without any daemon configuration. Only the
# address goes to stdout; all logs go to stderr. Runs as root (apt-get).
set -euo pipefail

# Everything below logs to stderr; fd 3 keeps the real stdout for the one line callers want.
exec 3>&1 1>&2

readonly ADDR="127.0.0.1:5555"
readonly DIR="/tmp/ird-registry"
readonly SOURCE_IMAGE="iserv-rd/fake-kasm:test"
readonly PUSHED_IMAGE="$ADDR/iserv-rd/fake-kasm:pull"
readonly BINARY="/usr/bin/docker-registry"

log() { printf 'start-registry: %s\n' "$*" >&2; }

# A registry (not just any server) answers /v2/ with this header.
registry_answers() {
    curl -s -m 2 -o /dev/null -D - "http://$ADDR/v2/" 2>/dev/null \
        | grep -qi '^docker-distribution-api-version: *registry/2.0'
}

if [[ ! -x "$BINARY" ]]; then
    log "installing Debian's docker-registry package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends docker-registry >&2
fi

if registry_answers; then
    log "a registry already answers on $ADDR"
else
    if curl -s -m 2 -o /dev/null "http://$ADDR/" 2>/dev/null; then
        log "something that is not a registry listens on $ADDR"
        exit 1
    fi
    mkdir -p "$DIR/data"
    cat >"$DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $DIR/data
  delete:
    enabled: true
http:
  addr: $ADDR
EOF
    log "starting $BINARY on $ADDR (log: $DIR/registry.log)"
    # setsid: the registry outlives this script and the caller's process group; 3>&- : it must
    # not inherit the caller's stdout, or `$(start-registry.sh)` would wait for it to exit.
    setsid "$BINARY" serve "$DIR/config.yml" </dev/null >>"$DIR/registry.log" 2>&1 3>&- &
    echo $! >"$DIR/registry.pid"
    for _ in $(seq 1 100); do
        registry_answers && break
        sleep 0.1
    done
    if ! registry_answers; then
        log "the registry did not answer on http://$ADDR/v2/; last lines of $DIR/registry.log:"
        tail -n 30 "$DIR/registry.log" >&2 || true
        exit 1
    fi
    log "registry is up (pid $(cat "$DIR/registry.pid"))"
fi

if ! docker image inspect "$SOURCE_IMAGE" >/dev/null 2>&1; then
    log "$SOURCE_IMAGE is missing: run scripts/build-test-images.sh first"
    exit 1
fi
docker tag "$SOURCE_IMAGE" "$PUSHED_IMAGE"
log "pushing $PUSHED_IMAGE"
docker push "$PUSHED_IMAGE" >&2

printf '%s\n' "$ADDR" >&3
