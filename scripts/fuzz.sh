#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/*.rs) under libFuzzer for a bounded time, starting
# from its committed seeds (fuzz/corpus/<target>/) and former crashes (fuzz/regressions/<target>/).
#
#   FUZZ_SECONDS   seconds per target (default 60; 0: only build and replay the committed inputs)
#   FUZZ_TARGETS   space-separated subset (default: all)
#   FUZZ_SANITIZER address (default) or none (faster, finds panics and broken invariants only)
#
# cargo-fuzz instruments the code with rustc's `-Z` flags (sanitizer, coverage counters), which
# only a nightly compiler accepts. CI has the stable toolchain only, so RUSTC_BOOTSTRAP=1 lets
# the stable compiler take them; the sanitizer runtime ships with the standard library for
# x86_64 Linux. If a toolchain update ever breaks that, this script fails under CI=true instead
# of silently fuzzing nothing (elsewhere it warns and stops: the same bodies still run in
# `cargo nextest run -p fuzz-targets` on any toolchain).
#
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the run. Fix the cause, then
# copy the input to fuzz/regressions/<target>/ so the test suite replays it from then on.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-address}"
if [ -n "${FUZZ_TARGETS:-}" ]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    targets=()
    for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

cant_build() {
    echo "scripts/fuzz.sh: $*" >&2
    if [ "${CI:-}" = "true" ]; then
        echo "scripts/fuzz.sh: CI=true: the fuzz targets must build and run; failing." >&2
        exit 1
    fi
    echo "scripts/fuzz.sh: skipping the fuzz run (not CI); the targets' bodies still run in the test suite." >&2
    exit 0
}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked || cant_build "cargo-fuzz could not be installed"
fi
command -v c++ >/dev/null 2>&1 || cant_build "libFuzzer needs a C++ compiler (apt-get install g++)"

export RUSTC_BOOTSTRAP=1
# --debug-assertions is cargo-fuzz's default for release builds; spelled out for the reader.
build=(cargo fuzz build --release --debug-assertions --sanitizer "$sanitizer")
echo "==> ${build[*]} (RUSTC_BOOTSTRAP=1)"
if ! "${build[@]}"; then
    cant_build "cargo fuzz build failed on $(rustc --version) with RUSTC_BOOTSTRAP=1 (see above)"
fi

failed=()
for t in "${targets[@]}"; do
    # New inputs go to a scratch folder, not into the committed seeds.
    run_dir="fuzz/corpus-run/$t"
    mkdir -p "$run_dir" "fuzz/artifacts/$t"
    # cargo fuzz sets -artifact_prefix=fuzz/artifacts/<target>/ itself.
    args=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
    if [ "$seconds" -gt 0 ]; then
        args+=(-max_total_time="$seconds")
    else
        args+=(-runs=0)
    fi
    echo "==> $t: ${seconds}s"
    if ! cargo fuzz run --release --debug-assertions --sanitizer "$sanitizer" "$t" \
        "$run_dir" "fuzz/corpus/$t" "fuzz/regressions/$t" -- "${args[@]}"; then
        failed+=("$t")
        echo "!!! $t failed; the input is in fuzz/artifacts/$t/ (reproduce: cargo fuzz run $t <file>)" >&2
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "scripts/fuzz.sh: failing targets: ${failed[*]}" >&2
    exit 1
fi
echo "scripts/fuzz.sh: ${#targets[@]} targets, ${seconds}s each, no failures"
