#!/usr/bin/env bash
# Builds iserv-rd/real-desktop:test, a Kasm-like desktop made from Debian packages, because no
# container registry (and so no kasmweb image) is reachable here: a debootstrap'ed bookworm
# rootfs with TigerVNC's Xvnc, openbox, xterm, noVNC and websockify, `docker import`ed with
# images/real-desktop/start.sh as the entrypoint. Same contract as kasmweb images: HTTPS on
# 6901, Basic Auth kasm_user:$VNC_PW, noVNC at / (takes ?path=), VNC WebSocket on any path.
#
# Idempotent, runs as root:
# - the image is labelled with the sha256 of this script and start.sh; when an image with that
#   label exists, nothing is rebuilt (the tag is just pointed at it);
# - the debootstrap result (cleaned) is cached as a tarball under $CACHE_DIR, keyed by the
#   debootstrap recipe below, so a rerun after `docker rmi` or an edit of start.sh only
#   unpacks, customizes and imports (seconds), and never runs debootstrap again.
# Environment: MIRROR overrides the Debian mirror (default: taken from the apt sources).
set -euo pipefail

readonly IMAGE="iserv-rd/real-desktop:test"
readonly LABEL="iserv-rd.real-desktop.sha256"
readonly CACHE_DIR="/var/cache/ird-real-desktop"
readonly SUITE="bookworm"
readonly VARIANT="minbase"
# python3-cffi-backend must be named, or configuring the packages fails. xdotool and x11-utils
# let tests ask the X server from inside which window is active and where the pointer is.
readonly INCLUDE="python3-cffi-backend,tigervnc-standalone-server,websockify,novnc,openbox,xterm,openssl,xdotool,x11-utils"
# Bump BASE_REV when the base step (debootstrap call or its clean-up) changes, so the cached
# tarball is rebuilt; the customization step is covered by the image label instead.
readonly BASE_REV="1"
readonly USER_NAME="kasm-user"
readonly USER_UID="1000"
readonly USER_HOME="/home/kasm-user"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly SELF="$ROOT/scripts/build-real-desktop-image.sh"
readonly START_SH="$ROOT/images/real-desktop/start.sh"

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
total_done() {
    local ms=$(( (${EPOCHREALTIME/./} - ${total_start/./}) / 1000 ))
    echo "==> $IMAGE ready in ${ms} ms"
}

if [[ $EUID -ne 0 ]]; then
    echo "error: run as root (debootstrap, chroot, docker)" >&2
    exit 1
fi

# Work directories live in $CACHE_DIR: same file system as the cache (atomic mv) and not a
# nodev tmpfs (debootstrap creates device nodes). A work tree may hold mounts (debootstrap
# mounts proc and sys in the target): unmount them before deleting, and never cross into one.
work_dirs=()
cleanup() {
    local dir mnt
    for dir in "${work_dirs[@]}"; do
        [[ -d "$dir" ]] || continue
        # Deepest mounts first.
        while read -r mnt; do
            umount -l "$mnt" 2>/dev/null || true
        done < <(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
        rm -rf --one-file-system "$dir"
    done
}
trap cleanup EXIT

mkdir -p "$CACHE_DIR"
# Serialize concurrent runs: they would debootstrap and import the same thing twice.
exec 9>"$CACHE_DIR/lock"
flock 9

step "check for an up-to-date $IMAGE"
sha="$(cat "$SELF" "$START_SH" | sha256sum | cut -d' ' -f1)"
echo "    inputs sha256 $sha"
existing="$(docker images -q --no-trunc --filter "label=$LABEL=$sha" | head -n1)"
step_done
if [[ -n "$existing" ]]; then
    echo "    image $existing already built from these inputs; skipping the build"
    docker tag "$existing" "$IMAGE"
    docker image inspect "$IMAGE" --format '    {{.Id}} {{.Size}} bytes'
    total_done
    exit 0
fi

# The first enabled `deb` source for $SUITE itself (not -updates or -security), deb822 or
# one-line style.
detect_mirror() {
    local f
    shopt -s nullglob
    for f in /etc/apt/sources.list.d/*.sources; do
        awk -v suite="$SUITE" '
            BEGIN { RS = ""; FS = "\n" }
            {
                uris = ""; suites = ""; types = ""; enabled = 1
                for (i = 1; i <= NF; i++) {
                    line = $i
                    if (line ~ /^[Uu][Rr][Ii][Ss]:/) { sub(/^[^:]*:[ \t]*/, "", line); uris = line }
                    else if (line ~ /^[Ss]uites:/) { sub(/^[^:]*:[ \t]*/, "", line); suites = " " line " " }
                    else if (line ~ /^[Tt]ypes:/) { sub(/^[^:]*:[ \t]*/, "", line); types = " " line " " }
                    else if (line ~ /^[Ee]nabled:[ \t]*[Nn]o/) { enabled = 0 }
                }
                if (enabled && types ~ / deb / && suites ~ (" " suite " ") && uris != "") {
                    split(uris, u, /[ \t]+/); print u[1]; exit
                }
            }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r "$f" ]] || continue
        awk -v suite="$SUITE" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite) { print $i; exit }
            }' "$f"
    done
    shopt -u nullglob
}

base_key="$(printf '%s\n' "$BASE_REV" "$SUITE" "$VARIANT" "$INCLUDE" | sha256sum | cut -c1-16)"
base_tar="$CACHE_DIR/rootfs-$SUITE-$base_key.tar"

step "base rootfs $base_tar"
if [[ -f "$base_tar" ]]; then
    echo "    cached ($(du -h "$base_tar" | cut -f1)); skipping debootstrap"
    step_done
else
    step_done

    step "ensure debootstrap"
    # apt-get update only when an install is actually needed, so reruns stay offline and fast.
    if ! command -v debootstrap >/dev/null 2>&1; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap
    fi
    debootstrap --version
    step_done

    step "debootstrap $SUITE"
    mirror="${MIRROR:-$(detect_mirror | head -n1)}"
    if [[ -z "$mirror" ]]; then
        echo "error: no '$SUITE' source found in /etc/apt; set MIRROR" >&2
        exit 1
    fi
    echo "    mirror $mirror"
    base_dir="$(mktemp -d "$CACHE_DIR/base.XXXXXX")"
    work_dirs+=("$base_dir")
    debootstrap --variant="$VARIANT" --include="$INCLUDE" "$SUITE" "$base_dir/rootfs" "$mirror"
    step_done

    step "clean the rootfs"
    rootfs="$base_dir/rootfs"
    du -sh "$rootfs" | sed 's/^/    before: /'
    # Downloaded .debs, package lists, documentation and translations: nothing a test desktop
    # reads. The host's resolv.conf and hostname were copied in; Docker provides its own.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/lintian
    : >"$rootfs/etc/resolv.conf"
    echo localhost >"$rootfs/etc/hostname"
    # An empty sources.list makes `apt-get update` inside the image useless; point it at the mirror.
    echo "deb $mirror $SUITE main" >"$rootfs/etc/apt/sources.list"
    du -sh "$rootfs" | sed 's/^/    after:  /'
    step_done

    step "pack $base_tar"
    # No device nodes, proc or sys: Docker provides /dev, /proc and /sys at run time, and
    # importing device nodes needs privileges the daemon may lack.
    tar -C "$rootfs" --numeric-owner --one-file-system \
        --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
        -cf "$base_tar.tmp" .
    mv "$base_tar.tmp" "$base_tar"
    du -h "$base_tar" | cut -f1 | sed 's/^/    /'
    rm -rf --one-file-system "$base_dir"
    step_done
fi

step "unpack and customize"
img_dir="$(mktemp -d "$CACHE_DIR/image.XXXXXX")"
work_dirs+=("$img_dir")
rootfs="$img_dir/rootfs"
mkdir "$rootfs"
tar -C "$rootfs" --numeric-owner -xpf "$base_tar"
install -m 0755 "$START_SH" "$rootfs/usr/local/bin/start-desktop"
# uid/gid 1000 with a home owned by it: Docker copies the image directory's ownership into a
# fresh named volume mounted there, so uid 1000 can write to it too.
if ! chroot "$rootfs" getent passwd "$USER_NAME" >/dev/null; then
    chroot "$rootfs" groupadd --gid "$USER_UID" "$USER_NAME"
    chroot "$rootfs" useradd --uid "$USER_UID" --gid "$USER_UID" --home-dir "$USER_HOME" \
        --create-home --shell /bin/bash "$USER_NAME"
fi
chown "$USER_UID:$USER_UID" "$rootfs$USER_HOME"
chmod 0755 "$rootfs$USER_HOME"
# Xvnc wants this root-owned and sticky; as uid 1000 it could not fix it itself.
install -d -m 1777 -o root -g root "$rootfs/tmp" "$rootfs/tmp/.X11-unix"
# Kasm serves its client at / and it connects by itself (the portal's view page frames it as
# is); noVNC's page is vnc.html and waits for a click unless told `autoconnect=1`. So / sends
# the browser on to vnc.html with the query it came with (`path=…`) plus autoconnect.
rm -f "$rootfs/usr/share/novnc/index.html"
cat >"$rootfs/usr/share/novnc/index.html" <<'HTML'
<!doctype html>
<meta charset="utf-8">
<title>noVNC</title>
<script>
const q = new URLSearchParams(location.search);
if (!q.has('autoconnect')) q.set('autoconnect', '1');
location.replace('vnc.html?' + q.toString() + location.hash);
</script>
HTML
test -f "$rootfs/usr/share/novnc/vnc.html"
step_done

step "docker import $IMAGE"
previous="$(docker images -q --no-trunc "$IMAGE" | head -n1)"
tar -C "$rootfs" --numeric-owner -cf - . | docker import \
    --change "LABEL $LABEL=$sha" \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV HOME=$USER_HOME" \
    --change "USER $USER_UID" \
    --change "WORKDIR $USER_HOME" \
    --change "EXPOSE 6901" \
    --change 'ENTRYPOINT ["/usr/local/bin/start-desktop"]' \
    --message "debootstrap $SUITE + images/real-desktop/start.sh" \
    - "$IMAGE"
# The image it replaced is now untagged: remove it unless a container still uses it.
if [[ -n "$previous" && "$previous" != "$(docker images -q --no-trunc "$IMAGE" | head -n1)" ]]; then
    if docker rmi "$previous" >/dev/null 2>&1; then
        echo "    removed the previous image $previous"
    fi
fi
docker image inspect "$IMAGE" --format '    {{.Id}} {{.Size}} bytes'
step_done

total_done
