#!/usr/bin/env bash
# Memory of a long-running portal under repeated bursts of sessions (issue 18): 15 bursts of
# 300 WebSockets through the portal (each opens, echoes 10 messages of 64 KiB, closes), the
# portal's VmRSS after each. Memory must be flat after warm-up. Prints a table; writes nothing.
# The knobs of scripts/bench.sh apply (BENCH_BURSTS, BENCH_BURST_SESSIONS, BENCH_BURST_PATHS,
# BENCH_PORTAL_ENV, BENCH_BIN, BENCH_PIN).
set -euo pipefail
BENCH_ONLY=bursts exec "$(dirname "${BASH_SOURCE[0]}")/bench.sh" "$@"
