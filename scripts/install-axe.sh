#!/usr/bin/env bash
# Installs axe-core (Deque's accessibility rules engine) for the accessibility browser test and
# prints the path of its `axe.min.js`.
#
# Usage: export AXE_JS=$(scripts/install-axe.sh [DIR])
#   DIR  where the package goes (default target/tools/axe-playwright-python-<version>)
#
# axe-core comes from PyPI, inside the wheel of `axe-playwright-python`, which ships
# `axe.min.js` (axe-core 4.12.1 in 0.1.8); the version and the wheel's hash are pinned in
# scripts/axe-requirements.txt. Only the wheel is installed (--no-deps: neither Playwright nor
# a browser of its own); the test injects the script into Debian's Chromium over WebDriver.
# Idempotent: a second run only prints the path. Only the path goes to stdout.
set -euo pipefail
exec 3>&1 1>&2
cd "$(dirname "${BASH_SOURCE[0]}")/.."

version=0.1.8
dir=${1:-target/tools/axe-playwright-python-$version}
js="$dir/axe_playwright_python/axe.min.js"

if [ ! -s "$js" ]; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-pip
    fi
    rm -rf "$dir"
    # --target installs into a folder of its own (no system or user site is touched).
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --require-hashes \
        --target "$dir" -r scripts/axe-requirements.txt
fi
head -c 200 "$js" | grep -q '^/\*! axe v4\.' || { echo "install-axe: $js is not axe-core 4.x" >&2; exit 1; }
printf '%s\n' "$(cd "$(dirname "$js")" && pwd)/axe.min.js" >&3
