#!/usr/bin/env bash
# Builds the portal's own container image (Dockerfile at the repository root) without any
# registry: a statically linked musl build of the portal, the host's CA bundle and two
# directories, FROM scratch.
#
# Cached by inputs: the image is labelled with a sha256 over the portal's sources (the crates
# it is built from, Cargo.lock, the Dockerfile, this script, the profile). When an image with
# that label exists, nothing is compiled; the tag is just pointed at it. So CI builds it once
# per run, and a rerun without source changes takes a second.
#
# Environment:
#   IRD_IMAGE          tag to build (default iserv-remote-desktop:latest)
#   IRD_IMAGE_PROFILE  cargo profile (default release; `dev` compiles in about a third of
#                      the time — CI uses it, see scripts/test.sh)
#   CARGO_TARGET_DIR   as usual for cargo
# Runs as root on Debian when musl-tools or ca-certificates are missing (apt-get).
set -euo pipefail

readonly IMAGE="${IRD_IMAGE:-iserv-remote-desktop:latest}"
readonly PROFILE="${IRD_IMAGE_PROFILE:-release}"
readonly LABEL="org.iserv-remote-desktop.inputs-sha256"
readonly TARGET="x86_64-unknown-linux-musl"
# The portal's user inside the image; data/ and tmp/ belong to it.
readonly UID_GID="10001"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT

step_start=0
step() {
    step_start=$EPOCHREALTIME
    echo "==> $*"
}
step_done() {
    local ms=$(( (${EPOCHREALTIME/./} - ${step_start/./}) / 1000 ))
    echo "    done in ${ms} ms"
}
total_start=$EPOCHREALTIME
total_done() {
    local ms=$(( (${EPOCHREALTIME/./} - ${total_start/./}) / 1000 ))
    echo "==> $IMAGE ready in ${ms} ms"
}

step "hash the inputs"
# Sources compiled into the binary: every crate but the test-only ones, without tests.
# Untracked (not ignored) files count too, so a new module is seen before it is committed.
inputs="$(
    cd "$ROOT"
    git ls-files --cached --others --exclude-standard -- \
        Cargo.toml Cargo.lock Dockerfile scripts/build-portal-image.sh crates \
        | grep -v -E '^crates/(testkit|wsbench)/|/tests/|/benches/' \
        | sort -u
)"
sha="$(
    cd "$ROOT"
    { echo "profile=$PROFILE target=$TARGET"; rustc --version
      # Deleted-but-tracked files are listed by git yet gone: skip them.
      while IFS= read -r f; do [[ -f "$f" ]] && sha256sum "$f"; done <<<"$inputs"
    } | sha256sum | cut -d' ' -f1
)"
echo "    $(wc -l <<<"$inputs") files, sha256 $sha"
step_done

existing="$(docker images -q --filter "label=$LABEL=$sha" | head -n1)"
if [[ -n "$existing" ]]; then
    echo "==> image $existing was built from these inputs; tagging it $IMAGE"
    docker tag "$existing" "$IMAGE"
    total_done
    exit 0
fi

step "rustup target add $TARGET"
rustup target add "$TARGET"
step_done

step "ensure musl-gcc and the CA bundle (Debian musl-tools, ca-certificates)"
# ring and SQLite compile C; for musl that needs musl-gcc.
missing=()
command -v musl-gcc >/dev/null 2>&1 || missing+=(musl-tools)
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || missing+=(ca-certificates)
if (( ${#missing[@]} )); then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
step_done

step "cargo build --profile $PROFILE -p iserv-remote-desktop --target $TARGET"
# Symbols stripped: scratch has no debugger, and they triple the image.
(
    cd "$ROOT"
    CC_x86_64_unknown_linux_musl=musl-gcc \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_DEV_STRIP=symbols \
        cargo build --locked --profile "$PROFILE" -p iserv-remote-desktop \
            --bin iserv-remote-desktop --target "$TARGET"
)
target_dir="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
case "$PROFILE" in
    dev) profile_dir=debug ;;
    *) profile_dir="$PROFILE" ;;
esac
binary="$target_dir/$TARGET/$profile_dir/iserv-remote-desktop"
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
echo "    $(stat -c %s "$binary") bytes"
step_done

step "docker build $IMAGE"
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$ROOT/Dockerfile" "$context/Dockerfile"
install -m 0755 "$binary" "$context/iserv-remote-desktop"
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$context/ca-certificates.crt"
mkdir -p "$context/rootfs/data" "$context/rootfs/tmp" "$context/etc"
chmod 0750 "$context/rootfs/data"
chmod 0700 "$context/rootfs/tmp"
echo "ird:x:$UID_GID:$UID_GID:IServ Remote Desktop:/data:/nonexistent" >"$context/etc/passwd"
echo "ird:x:$UID_GID:" >"$context/etc/group"
chmod 0644 "$context/etc/passwd" "$context/etc/group"
docker build --quiet --label "$LABEL=$sha" -t "$IMAGE" "$context"
docker image inspect "$IMAGE" --format '    {{.Id}} {{.Size}} bytes'
step_done
total_done
