# shellcheck shell=bash
# Sourced by scripts/bench.sh: the Flask + gevent-websocket reference proxy (app.py beside this
# file; the approach of the product the portal replaces, benchmark only, never shipped).
#
#   start_flask_ref PORT UPSTREAM BASIC WORKDIR
#
# Creates a venv with requirements.txt once (in ${BENCH_FLASK_VENV:-~/.cache/ird-bench-flask-venv},
# rebuilt when requirements.txt changes), starts app.py on 127.0.0.1:PORT in the background,
# relaying to UPSTREAM (e.g. https://127.0.0.1:6901) with Basic Auth BASIC (user:password),
# pinned by the caller's PROXY array (e.g. `taskset -c 1`; may be empty), logging to
# WORKDIR/flask.log. Appends the PID to STARTED_PIDS and sets FLASK_PID. Does not wait for the
# port: call `wait_for_port PORT "$FLASK_PID" flask` afterwards.

BENCH_FLASK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Prints the venv's directory, creating and filling it first if requirements.txt changed.
flask_ref_venv() {
    local venv=${BENCH_FLASK_VENV:-$HOME/.cache/ird-bench-flask-venv} hash
    hash=$(sha256sum "$BENCH_FLASK_DIR/requirements.txt" | cut -c1-64)
    if [[ ! -x $venv/bin/python || $(cat "$venv/.requirements-sha256" 2>/dev/null) != "$hash" ]]; then
        echo "bench: creating the Flask reference venv in $venv (pip install, from PyPI)" >&2
        rm -rf "$venv"
        # Explicit returns: bench.sh calls this in an `if`, where `set -e` does not apply, and a
        # half-installed venv must not be cached as good.
        python3 -m venv "$venv" >&2 || return 1
        "$venv/bin/pip" install --quiet -r "$BENCH_FLASK_DIR/requirements.txt" >&2 || { rm -rf "$venv"; return 1; }
        echo "$hash" >"$venv/.requirements-sha256"
    fi
    echo "$venv"
}

start_flask_ref() {
    local port=$1 upstream=$2 basic=$3 workdir=$4 venv
    venv=$(flask_ref_venv) || return 1
    FLASK_REF_PORT="$port" FLASK_REF_UPSTREAM="$upstream" FLASK_REF_BASIC="$basic" PYTHONUNBUFFERED=1 \
        "${PROXY[@]}" "$venv/bin/python" "$BENCH_FLASK_DIR/app.py" >"$workdir/flask.log" 2>&1 &
    FLASK_PID=$!
    STARTED_PIDS+=("$FLASK_PID")
}
