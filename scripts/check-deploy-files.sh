#!/usr/bin/env bash
# Checks the shipped deployment files with the tools that read them:
#   - the systemd unit with `systemd-analyze verify` (syntax, directives, the ExecStart
#     binary — pointed at a built portal binary here) and `systemd-analyze security`
#     (the hardening must keep the exposure level at or below 2.0, "OK");
#   - deploy/compose.yaml with `docker compose config` / `docker-compose config`;
#   - deploy/stack.yaml (Docker Swarm) with `docker stack config`, which reads it as
#     `docker stack deploy` does, without a swarm;
#   - the reverse-proxy site files deploy/apache and deploy/nginx with `apache2 -t` and
#     `nginx -t`, exactly as a school installs them (names and ports kept) except that the
#     certificate paths point at throwaway self-signed ones, the desktops' wildcard among them
#     (scripts/start-reverse-proxies.sh configtest; the tests also start both).
# A missing tool fails under CI=true and is skipped with a note elsewhere.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly UNIT="$ROOT/deploy/systemd/iserv-remote-desktop.service"
readonly COMPOSE="$ROOT/deploy/compose.yaml"
readonly STACK="$ROOT/deploy/stack.yaml"

missing() {
    echo "$1 is not installed; $2 not checked" >&2
    if [[ "${CI:-}" == "true" ]]; then exit 1; fi
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if command -v systemd-analyze >/dev/null 2>&1; then
    echo "==> systemd-analyze verify $UNIT"
    # verify insists that ExecStart exists: the debug build if there is one, else any
    # executable (the directives are what is checked, and building just for this is waste).
    binary="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
        | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug/iserv-remote-desktop"
    [[ -x "$binary" ]] || binary="$(command -v true)"
    sed "s#^ExecStart=/usr/local/bin/iserv-remote-desktop#ExecStart=$binary#" "$UNIT" \
        >"$work/iserv-remote-desktop.service"
    systemd-analyze verify "$work/iserv-remote-desktop.service"
    echo "==> systemd-analyze security (exposure must stay ≤ 2.0)"
    systemd-analyze security --offline=yes --threshold=20 "$work/iserv-remote-desktop.service" | tail -n 1
else
    missing systemd-analyze "the systemd unit"
fi

echo "==> compose config $COMPOSE"
# Next to an empty .env, as on a fresh install (the file is required there).
cp "$COMPOSE" "$work/compose.yaml"
touch "$work/.env"
if docker compose version >/dev/null 2>&1; then
    DOCKER_GID=999 docker compose -f "$work/compose.yaml" config --quiet
elif command -v docker-compose >/dev/null 2>&1; then
    DOCKER_GID=999 docker-compose -f "$work/compose.yaml" config --quiet
else
    missing "docker compose" "deploy/compose.yaml"
fi
echo "==> docker stack config $STACK"
if docker stack config --help >/dev/null 2>&1; then
    docker stack config -c "$STACK" >/dev/null
else
    missing "docker stack config (Docker CLI 25 or later)" "deploy/stack.yaml"
fi
# The proxies read their certificates even for a syntax check, so openssl must be there too.
for kind in apache nginx; do
    binary=/usr/sbin/$kind
    [[ "$kind" == apache ]] && binary=/usr/sbin/apache2
    if [[ -x "$binary" ]] && command -v openssl >/dev/null 2>&1; then
        echo "==> $kind -t deploy/$kind/iserv-remote-desktop.conf (portal and wildcard desktop hosts)"
        "$ROOT/scripts/start-reverse-proxies.sh" configtest "$kind" --dir "$work/$kind"
    else
        missing "$binary or openssl (scripts/start-reverse-proxies.sh install)" "deploy/$kind/iserv-remote-desktop.conf"
    fi
done
echo "==> deployment files OK"
