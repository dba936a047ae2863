#!/usr/bin/env bash
# Builds iserv-rd/fake-kasm:test, a FROM scratch image holding the static fake-kasm binary,
# as a local stand-in for kasmweb images (no registry is reachable). Idempotent: each step is
# skipped or cheap when already done. Runs as root (apt-get, docker).
set -euo pipefail

readonly IMAGE="iserv-rd/fake-kasm:test"
readonly LABEL="iserv-rd.fake-kasm.sha256"
# A Dockerfile edit must rebuild too, though the binary is unchanged.
readonly DOCKERFILE_LABEL="iserv-rd.fake-kasm.dockerfile-sha256"
readonly TARGET="x86_64-unknown-linux-musl"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly DOCKERFILE="$ROOT/crates/testkit/docker/fake-kasm/Dockerfile"

step_start=0
step() {
    step_start=$EPOCHREALTIME
    echo "==> $*"
}
step_done() {
    # Whole milliseconds are enough to see which step dominates.
    local ms=$(( (${EPOCHREALTIME/./} - ${step_start/./}) / 1000 ))
    echo "    done in ${ms} ms"
}
total_start=$EPOCHREALTIME

step "rustup target add $TARGET"
# A fresh machine lacks the musl target; rustup is a no-op when it is installed.
rustup target add "$TARGET"
step_done

step "ensure musl-gcc (Debian musl-tools)"
# ring compiles C and assembly; for musl that needs musl-gcc. apt-get update only when an
# install is actually needed, so reruns stay offline and fast.
if ! command -v musl-gcc >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends musl-tools
fi
command -v musl-gcc
step_done

step "cargo build --release -p testkit --bin fake-kasm --target $TARGET"
# Strip here rather than in the image: scratch has no tools, and the workspace release profile
# keeps line tables that a test double does not need.
(
    cd "$ROOT"
    CC_x86_64_unknown_linux_musl=musl-gcc \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_PROFILE_RELEASE_DEBUG=false \
        cargo build --release -p testkit --bin fake-kasm --target "$TARGET"
)
target_dir="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
binary="$target_dir/$TARGET/release/fake-kasm"
step_done

step "check $binary is static"
# FROM scratch has no libc or loader: a dynamic binary would fail with a confusing ENOENT.
description="$(file -b "$binary")"
echo "    $description"
case "$description" in
    *"dynamically linked"*) echo "error: $binary is dynamically linked" >&2; exit 1 ;;
    *"statically linked"* | *"static-pie linked"*) ;;
    *) echo "error: cannot tell whether $binary is static" >&2; exit 1 ;;
esac
sha="$(sha256sum "$binary" | cut -d' ' -f1)"
echo "    sha256 $sha, $(stat -c %s "$binary") bytes"
step_done

step "docker build $IMAGE"
dockerfile_sha="$(sha256sum "$DOCKERFILE" | cut -d' ' -f1)"
existing="$(docker images -q --filter "label=$LABEL=$sha" \
    --filter "label=$DOCKERFILE_LABEL=$dockerfile_sha" | head -n1)"
if [[ -n "$existing" ]]; then
    # Same binary, same Dockerfile inputs: reuse the image, just make sure the tag points at it.
    echo "    image $existing already holds this binary; skipping the build"
    docker tag "$existing" "$IMAGE"
else
    context="$(mktemp -d)"
    trap 'rm -rf "$context"' EXIT
    cp "$DOCKERFILE" "$context/Dockerfile"
    cp "$binary" "$context/fake-kasm"
    chmod 0755 "$context/fake-kasm"
    mkdir -p "$context/rootfs/home/kasm-user" "$context/rootfs/tmp"
    chmod 0755 "$context/rootfs/home/kasm-user"
    chmod 1777 "$context/rootfs/tmp"
    docker build --quiet --label "$LABEL=$sha" \
        --label "$DOCKERFILE_LABEL=$dockerfile_sha" -t "$IMAGE" "$context"
fi
docker image inspect "$IMAGE" --format '    {{.Id}} {{.Size}} bytes'
step_done

total_ms=$(( (${EPOCHREALTIME/./} - ${total_start/./}) / 1000 ))
echo "==> $IMAGE ready in ${total_ms} ms"
