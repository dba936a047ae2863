#!/usr/bin/env bash
# Starts a second Docker engine whose storage driver enforces a container's disk size (btrfs,
# on a loop-mounted file of its own), for the test that a desktop's disk limit really stops it:
# the machine's own engine (fuse-overlayfs) cannot enforce one. Loads the fake-Kasm test image
# into it (run scripts/build-test-images.sh first). Prints the engine's address for
# TEST_BTRFS_DOCKER_HOST. Idempotent: an engine that answers is reused (its image reloaded
# when the test image changed). Runs as root (apt-get, losetup, mount, dockerd).
set -euo pipefail

readonly DIR=/var/lib/ird-btrfs-engine
readonly IMG=/var/tmp/ird-btrfs-engine.img
readonly SOCK=/run/ird-btrfs-engine/docker.sock
readonly HOST="unix://$SOCK"
readonly IMAGE="iserv-rd/fake-kasm:test"
readonly BRIDGE=irdbtrfs0

log() { echo "start-btrfs-engine: $*" >&2; }
engine() { docker -H "$HOST" "$@"; }

if ! command -v mkfs.btrfs >/dev/null 2>&1; then
    log "installing Debian's btrfs-progs"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends btrfs-progs >&2 \
        || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends btrfs-progs >&2; }
fi

if ! engine info >/dev/null 2>&1; then
    if ! mountpoint -q "$DIR"; then
        mkdir -p "$DIR"
        # Sparse: 4 GiB of address space, a few hundred MiB used.
        [ -f "$IMG" ] || { truncate -s 4G "$IMG" && mkfs.btrfs -q -f "$IMG" >&2; }
        mount -o loop "$IMG" "$DIR"
    fi
    mkdir -p "$(dirname "$SOCK")"
    # A default bridge of its own: with --bridge=none dockerd deletes docker0, the machine
    # engine's bridge. No iptables rules of its own (the tests' networks are made by the
    # runtime), an empty config file (the machine's daemon.json names another driver).
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
        ip addr add 10.252.0.1/24 dev "$BRIDGE"
        ip link set "$BRIDGE" up
    fi
    echo '{}' > "$DIR/daemon.json"
    dockerd --config-file "$DIR/daemon.json" --data-root "$DIR/data" --exec-root /run/ird-btrfs-engine/exec \
        -H "$HOST" --pidfile /run/ird-btrfs-engine/dockerd.pid --bridge="$BRIDGE" --iptables=false \
        --ip-masq=false --ip-forward=false --storage-driver btrfs >"$DIR/dockerd.log" 2>&1 &
    for _ in $(seq 100); do engine info >/dev/null 2>&1 && break; sleep 0.2; done
    engine info >/dev/null 2>&1 || { log "the engine did not start:"; tail -20 "$DIR/dockerd.log" >&2; exit 1; }
fi
[ "$(engine info --format '{{.Driver}}')" = btrfs ] || { log "the engine's driver is not btrfs"; exit 1; }
# Docker's btrfs driver limits a container with a qgroup. Removing containers can leave the
# quota accounting marked inconsistent ("rescan recommended"), and then the limit is not
# enforced at all (seen here: a 64 MiB container wrote 256 MiB). A rescan makes it exact again;
# it fails harmlessly while quotas are still off (the driver enables them on first use).
btrfs quota rescan -w "$DIR" >/dev/null 2>&1 || true

want="$(docker image inspect --format '{{.Id}}' "$IMAGE")"
have="$(engine image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
    log "loading $IMAGE"
    docker save "$IMAGE" | engine load >&2
fi
echo "$HOST"
