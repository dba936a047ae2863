#!/usr/bin/env bash
# Files through the portal, measured against the same work without it, on this machine:
#   - a 1 GiB upload (PUT /api/files/home/…) and download, as a ratio to `cp` of the same file
#     on the same disk, with the portal's peak memory (VmHWM) before and after; the download
#     twice: curl writing to disk (end to end) and curl discarding (what the portal does);
#   - listing a folder of 10,000 files (GET /api/files/home/many);
#   - a zip of 1,000 small files (GET /api/files/home/small?zip=true).
# Starts a release build of the portal on a free port with its own data directory (no Docker
# needed: the static runtime), signs in with a local account, prints a Markdown table.
#
#   BENCH_GIB=1       size of the big file in GiB
#   BENCH_REPEAT=3    runs per measurement (the median is reported)
#   BENCH_PERF=FILE   also record a CPU profile of the portal during the uploads (perf)
#   BENCH_BIN=…       a portal binary to measure instead of this tree's release build (an
#                     older commit's, for a before/after in one sitting)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

gib="${BENCH_GIB:-1}"
repeat="${BENCH_REPEAT:-3}"
work="$(mktemp -d /var/tmp/ird-bench-files.XXXXXX)"
trap 'kill "${pid:-0}" 2>/dev/null || true; [ -n "${ngx_conf:-}" ] && nginx -c "$ngx_conf" -s stop 2>/dev/null; rm -rf "$work"' EXIT

if [ -n "${BENCH_BIN:-}" ]; then
    bin="$BENCH_BIN"
else
    cargo build --release -p iserv-remote-desktop --locked >&2
    bin=target/release/iserv-remote-desktop
fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export IRD_DATA_DIR="$work/data" IRD_LISTEN="127.0.0.1:$port" IRD_RUNTIME=static \
    IRD_METRICS__ENABLED=false IRD_FILES__MAX_UPLOAD_MIB=$((gib * 1024 + 16)) \
    IRD_FILES__QUOTA_ADMIN_MIB=0
echo "bench-password-123" | "$bin" user add bench --role admin --password-stdin >&2
"$bin" serve >"$work/portal.log" 2>&1 &
pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fs "$url/healthz" >/dev/null && break; sleep 0.1; done

# Sign in through the form (its token is double-submitted with a cookie).
jar="$work/cookies"
token="$(curl -fs -c "$jar" "$url/login" | sed -n 's/.*name="csrf_token" value="\([^"]*\)".*/\1/p' | head -1)"
curl -fs -b "$jar" -c "$jar" -o /dev/null -d "username=bench&password=bench-password-123&csrf_token=$token" "$url/login"
csrf="$(curl -fs -b "$jar" "$url/files/home/" | sed -n 's/.*name="csrf-token" content="\([^"]*\)".*/\1/p' | head -1)"
[ -n "$csrf" ] || { echo "sign-in failed" >&2; cat "$work/portal.log" >&2; exit 1; }
home="$(ls -d "$work"/data/files/homes/*)"

hwm() { awk '/VmHWM/ {print $2}' "/proc/$pid/status"; }
# CPU time (user + system) the portal has used so far, in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }

big="$work/big.bin"
dd if=/dev/urandom of="$big" bs=1M count=$((gib * 1024)) status=none
sync
bytes=$((gib * 1024 * 1024 * 1024))
hwm_start="$(hwm)"
# A reference for the end-to-end download: nginx (Debian's, sendfile on) serving the same file
# to the same curl writing to the same disk. What both lose against `cp` is curl's and the
# disk's part, not the server's.
ngx_conf=
if command -v nginx >/dev/null 2>&1; then
    ngx_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    ngx_conf="$work/nginx.conf"
    chmod 755 "$work" # nginx's workers run as www-data
    cat >"$ngx_conf" <<NGX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events {}
http { access_log off; sendfile on; server { listen 127.0.0.1:$ngx_port; root $work; } }
NGX
    nginx -c "$ngx_conf"
fi
cp_t=() up_t=() down_t=() null_t=() up_cpu=() ngx_t=()
for i in $(seq "$repeat"); do
    t0="$(now)"; cp "$big" "$work/copy.bin"; sync; t1="$(now)"; cp_t+=("$(secs "$t0" "$t1")")
    rm -f "$work/copy.bin"
    if [ -n "${BENCH_PERF:-}" ] && [ "$i" = 1 ]; then
        perf record -F 1999 -g -p "$pid" -o "$BENCH_PERF" >&2 2>/dev/null & perf_pid=$!
        sleep 1
    fi
    t0="$(now)"; c0="$(cpu)"
    curl -fs -b "$jar" -H "x-csrf-token: $csrf" -T "$big" -o /dev/null "$url/api/files/home/big-$i.bin"
    c1="$(cpu)"; sync; t1="$(now)"; up_t+=("$(secs "$t0" "$t1")"); up_cpu+=("$((c1 - c0))")
    if [ -n "${perf_pid:-}" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; perf_pid=; fi
    t0="$(now)"; curl -fs -b "$jar" -o "$work/down.bin" "$url/api/files/home/big-$i.bin"; sync; t1="$(now)"
    down_t+=("$(secs "$t0" "$t1")")
    # The portal's part alone: the client throws the bytes away instead of writing them.
    t0="$(now)"; curl -fs -b "$jar" -o /dev/null "$url/api/files/home/big-$i.bin"; t1="$(now)"
    null_t+=("$(secs "$t0" "$t1")")
    cmp -s "$big" "$work/down.bin" || { echo "download differs" >&2; exit 1; }
    rm -f "$work/down.bin" "$home/big-$i.bin"
    if [ -n "$ngx_conf" ]; then
        t0="$(now)"; curl -fs -o "$work/down.bin" "http://127.0.0.1:$ngx_port/big.bin"; sync; t1="$(now)"
        ngx_t+=("$(secs "$t0" "$t1")")
        rm -f "$work/down.bin"
    fi
done
hwm_end="$(hwm)"
cp_s="$(printf '%s\n' "${cp_t[@]}" | median)"
up_s="$(printf '%s\n' "${up_t[@]}" | median)"
down_s="$(printf '%s\n' "${down_t[@]}" | median)"
null_s="$(printf '%s\n' "${null_t[@]}" | median)"
ngx_s="$( [ ${#ngx_t[@]} -gt 0 ] && printf '%s\n' "${ngx_t[@]}" | median || true)"
tick="$(getconf CLK_TCK)"
up_cpu_s="$(printf '%s\n' "${up_cpu[@]}" | median | python3 -c "import sys; print(f'{int(sys.stdin.read()) / $tick / $gib:.2f}')")"

mkdir -p "$home/many" "$home/small"
python3 - "$home" <<'PY'
import os, sys
home = sys.argv[1]
for i in range(10_000):
    open(os.path.join(home, "many", f"Datei {i:05d}.txt"), "w").write("x")
for i in range(1_000):
    open(os.path.join(home, "small", f"Blatt {i:04d}.txt"), "w").write("Aufgabe %d\n" % i * 20)
PY
list_t=() zip_t=()
for _ in $(seq "$repeat"); do
    t0="$(now)"; curl -fs -b "$jar" -o /dev/null "$url/api/files/home/many"; t1="$(now)"; list_t+=("$(secs "$t0" "$t1")")
    t0="$(now)"; curl -fs -b "$jar" -o "$work/small.zip" "$url/api/files/home/small?zip=true"; t1="$(now)"
    zip_t+=("$(secs "$t0" "$t1")")
done
entries="$(python3 -c "import zipfile,sys; print(len(zipfile.ZipFile(sys.argv[1]).namelist()))" "$work/small.zip")"
list_s="$(printf '%s\n' "${list_t[@]}" | median)"
zip_s="$(printf '%s\n' "${zip_t[@]}" | median)"

mib_s() { python3 -c "print(f'{$bytes / 1048576 / $1:.0f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
cat <<EOF
Files through the portal — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r), commit $(git rev-parse --short HEAD), medians of $repeat, nothing pinned

| measurement | portal | baseline | × baseline |
|---|---|---|---|
| upload ${gib} GiB (PUT, streamed to disk) | $(mib_s "$up_s") MiB/s ($up_s s) | cp: $(mib_s "$cp_s") MiB/s ($cp_s s) | $(ratio "$cp_s" "$up_s") |
| portal CPU per GiB uploaded (user + system) | $up_cpu_s s | | |
| download ${gib} GiB (curl writes it to disk) | $(mib_s "$down_s") MiB/s ($down_s s) | cp: $(mib_s "$cp_s") MiB/s | $(ratio "$cp_s" "$down_s") |
$( [ -n "$ngx_s" ] && echo "| download ${gib} GiB from nginx (same file, curl writes it to disk; reference) | $(mib_s "$ngx_s") MiB/s ($ngx_s s) | cp: $(mib_s "$cp_s") MiB/s | $(ratio "$cp_s" "$ngx_s") |" )
| download ${gib} GiB (curl discards it: the portal's part) | $(mib_s "$null_s") MiB/s ($null_s s) | cp: $(mib_s "$cp_s") MiB/s | $(ratio "$cp_s" "$null_s") |
| portal peak memory (VmHWM) during the transfers | $((hwm_start / 1024)) → $((hwm_end / 1024)) MiB (+$(((hwm_end - hwm_start) / 1024)) MiB) | | |
| list a folder of 10,000 files | $list_s s | | |
| zip of 1,000 small files ($entries entries) | $zip_s s | | |
EOF
