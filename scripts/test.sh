#!/usr/bin/env bash
# Installs and starts everything the tests need, then runs them all:
#   format and lint checks, PostgreSQL for the store suite, the fake-Kasm test image for the
#   Docker tests, the whole workspace under cargo-nextest, then a bounded fuzz run
#   (scripts/fuzz.sh, FUZZ_SECONDS per target).
# Runs as root on Debian (as CI does). Idempotent: a second run skips what is already there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=$SECONDS
log() { printf '\n==> %s (%ss)\n' "$*" "$((SECONDS - started))"; }

log "toolchain"
command -v cargo-nextest >/dev/null 2>&1 || cargo install cargo-nextest --locked
rustup component add rustfmt clippy >/dev/null 2>&1 || true
if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    echo "Docker engine is not reachable; the Docker tests need it." >&2
    [ "${CI:-}" = "true" ] && exit 1
fi

log "ip and nsenter for the swarm test"
# It runs a second Docker engine in a network namespace of its own (crates/portal/tests/portal/swarm.rs).
if ! command -v ip >/dev/null 2>&1 || ! command -v nsenter >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iproute2 util-linux
fi

log "Chromium for the browser tests"
# Debian's own packages: nothing downloads a browser build of its own.
# The emoji font: desktop types' icons are emoji, and the screenshots should show them.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 \
    || [ ! -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver \
        fonts-noto-color-emoji
fi

log "axe-core for the accessibility test"
# From PyPI (a wheel that ships axe.min.js, pinned by hash); nothing is fetched at test time.
AXE_JS="$(scripts/install-axe.sh)"
export AXE_JS

log "Apache and nginx for the reverse-proxy tests"
# Debian's packages; each test starts its own instance from deploy/ on free ports.
scripts/start-reverse-proxies.sh install

log "cargo fmt --check"
cargo fmt --all -- --check

log "PostgreSQL for the store suite"
TEST_DATABASE_URL="$(scripts/start-postgres.sh)"
export TEST_DATABASE_URL

log "test images"
scripts/build-test-images.sh
TEST_REGISTRY="$(scripts/start-registry.sh)"
export TEST_REGISTRY
# A second engine on btrfs, whose driver enforces a desktop's disk limit (this one cannot).
TEST_BTRFS_DOCKER_HOST="$(scripts/start-btrfs-engine.sh)"
export TEST_BTRFS_DOCKER_HOST
scripts/build-real-desktop-image.sh

log "the portal's container image and deployment files"
# The dev profile: a musl release build of every dependency costs about 12 CPU-minutes (over
# the CI budget); the dev build about 5. The container test checks the image's wiring (user,
# socket, network, health check), which the profile does not change.
IRD_IMAGE_PROFILE="${IRD_IMAGE_PROFILE:-dev}" scripts/build-portal-image.sh
scripts/check-deploy-files.sh

log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "tests"
cargo nextest run --workspace --locked --no-fail-fast "$@"

# 60 s per target, as the hardening issue asks: seven targets add 7 minutes to a run of about
# 25 (the fuzz build is the larger part); run scripts/fuzz.sh with FUZZ_SECONDS=600 or more
# before a release.
export FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
log "fuzzing: each target ${FUZZ_SECONDS} s under libFuzzer"
# The targets' bodies and committed inputs already ran above (crate fuzz-targets); this looks
# for new inputs that break them. Fails under CI=true if the targets cannot be built.
scripts/fuzz.sh

log "done"
