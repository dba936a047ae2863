#!/bin/sh
# start-desktop: entrypoint of iserv-rd/real-desktop:test, a Kasm-like desktop built from Debian
# packages (see scripts/build-real-desktop-image.sh). Runs as uid 1000 and as PID 1.
#
# Contract, as for kasmweb images: HTTPS on 6901 with a fresh self-signed certificate, Basic Auth
# kasm_user:$VNC_PW on everything, noVNC at / (index.html -> vnc.html, takes ?path=), the VNC
# WebSocket on any path. Xvnc listens on 127.0.0.1:5901 only; websockify is the only way in.
#
# PID 1 gets no default signal handlers, so TERM/INT/HUP are trapped here: the children are
# stopped and the script exits at once, which keeps `docker stop` well under its 10 s grace.
set -u

log() {
    echo "start-desktop: $*" >&2
}

if [ -z "${VNC_PW:-}" ]; then
    log "VNC_PW is not set; refusing to start a desktop without a password"
    exit 2
fi

DISPLAY_NUM=1
VNC_PORT=5901
WEB_PORT=6901
export DISPLAY=":$DISPLAY_NUM"

xvnc_pid=""
wm_pid=""
ws_pid=""
sleep_pid=""

stop() {
    trap '' TERM INT HUP
    for pid in $ws_pid $wm_pid $xvnc_pid $sleep_pid; do
        kill -TERM "$pid" 2>/dev/null
    done
    # Only our own children: orphans re-parented to PID 1 die with the namespace when we exit.
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    wait $ws_pid $wm_pid $xvnc_pid $sleep_pid 2>/dev/null
    exit "$1"
}
trap 'log "signal received, stopping"; stop 0' TERM INT HUP

# A process that has exited but is not yet reaped still has /proc/PID: check its state too.
alive() {
    state=""
    { read -r _ _ state _ <"/proc/$1/stat"; } 2>/dev/null || return 1
    [ "$state" != Z ] && [ "$state" != X ]
}

# Certificate and key: in the home directory when it is writable (a fresh named volume is, since
# the image's /home/kasm-user belongs to uid 1000), else in /tmp. New on every start, like Kasm.
umask 077
state_dir="${HOME:-/home/kasm-user}/.ird"
if ! mkdir -p "$state_dir" 2>/dev/null || ! [ -w "$state_dir" ]; then
    state_dir="$(mktemp -d /tmp/ird.XXXXXX)" || { log "cannot create a state directory"; exit 1; }
    log "home is not writable; using $state_dir"
fi
cert="$state_dir/self.pem"
key="$state_dir/self.key"
# P-256 is generated in milliseconds (RSA 2048 takes ~100 ms); every TLS client here accepts it.
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=kasm-desktop" -keyout "$key" -out "$cert" 2>/dev/null; then
    log "openssl could not create a self-signed certificate"
    exit 1
fi
umask 022

# A restarted container keeps /tmp: drop the lock and socket of the previous Xvnc (as PID 1 we
# know it is gone), or the new one refuses to start with "Server is already active".
rm -f "/tmp/.X$DISPLAY_NUM-lock" "/tmp/.X11-unix/X$DISPLAY_NUM"

Xvnc ":$DISPLAY_NUM" -geometry 1280x800 -depth 24 -SecurityTypes None -localhost \
    -rfbport "$VNC_PORT" -desktop "IServ Remote Desktop" &
xvnc_pid=$!

# Wait (up to 10 s) for the X socket, so that the clients and the first viewer find a display.
tries=0
while ! [ -S "/tmp/.X11-unix/X$DISPLAY_NUM" ]; do
    if ! alive "$xvnc_pid"; then
        log "Xvnc exited during startup"
        stop 1
    fi
    tries=$((tries + 1))
    if [ "$tries" -gt 200 ]; then
        log "Xvnc did not create its socket within 10 s"
        stop 1
    fi
    sleep 0.05
done

# openbox starts the terminal itself: started side by side, openbox often leaves the xterm
# unmapped until some later X event.
openbox --startup xterm &
wm_pid=$!

# 127.0.0.1, not localhost: localhost may resolve to ::1 first, where Xvnc does not listen.
# --ssl-only: like Kasm, no plain HTTP on 6901 (websockify would otherwise sniff and serve both).
websockify --ssl-only --web /usr/share/novnc --cert "$cert" --key "$key" \
    --web-auth --auth-plugin BasicHTTPAuth --auth-source "kasm_user:$VNC_PW" \
    "$WEB_PORT" "127.0.0.1:$VNC_PORT" &
ws_pid=$!

# The desktop is up as long as both servers are; xterm and openbox may be closed by the user.
# `sleep & wait` rather than a plain sleep, so a trapped signal is handled at once.
while alive "$xvnc_pid" && alive "$ws_pid"; do
    sleep 1 &
    sleep_pid=$!
    wait "$sleep_pid"
    sleep_pid=""
done
if alive "$xvnc_pid"; then
    log "websockify exited; stopping"
else
    log "Xvnc exited; stopping"
fi
stop 1
