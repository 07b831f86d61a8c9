#!/usr/bin/env bash
# Fuzzing in CI (called by .ci/run; see README.md):
#   1. installs the nightly toolchain and cargo-fuzz when missing;
#   2. builds `adopt_close` with `--cfg usockets_planted_bug` and fails unless the fuzzer finds
#      the planted double on_close within PLANTED_SECONDS (60);
#   3. runs every real target for FUZZ_SECONDS (60) from its committed corpus with
#      -print_final_stats=1, printing executions per second and coverage; a finding fails.
set -euo pipefail

cd "$(dirname "$0")"

TARGETS=(loop_ops adopt_close timers)
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
PLANTED_SECONDS=${PLANTED_SECONDS:-60}
PLANTED_TARGET=${PLANTED_TARGET:-adopt_close}

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A corpus directory to write into, seeded with the committed corpus (which stays untouched).
scratch_corpus() {
    local dir="$work/corpus-$1"
    mkdir -p "$dir"
    cp corpus/"$1"/* "$dir"/
    echo "$dir"
}

summary() {
    local log=$1
    local execs cov
    execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
    echo "exec/s: ${execs:-?}  ${cov:-cov: ?}"
}

planted() {
    local t=$PLANTED_TARGET
    local corpus log
    corpus=$(scratch_corpus "$t")
    log="$work/planted-$t.log"
    echo "--> $t with --cfg usockets_planted_bug, ${PLANTED_SECONDS}s"
    RUSTFLAGS="--cfg usockets_planted_bug" cargo +nightly fuzz build --target-dir target/planted "$t"
    local start=$SECONDS
    if RUSTFLAGS="--cfg usockets_planted_bug" cargo +nightly fuzz run --target-dir target/planted \
        "$t" "$corpus" -- -max_total_time="$PLANTED_SECONDS" -print_final_stats=1 \
        -artifact_prefix="$work/planted-" >"$log" 2>&1; then
        tail -20 "$log"
        echo "the planted bug was NOT found in ${PLANTED_SECONDS}s" >&2
        return 1
    fi
    if ! grep -q 'on_close for SocketId.*which is Closed' "$log"; then
        tail -60 "$log"
        echo "$t crashed with the planted bug, but not on it (see above)" >&2
        return 1
    fi
    echo "planted bug found after $((SECONDS - start))s:"
    grep -m1 'on_close for SocketId.*which is Closed' "$log"
}

run_target() {
    local t=$1
    local corpus log
    corpus=$(scratch_corpus "$t")
    log="$work/$t.log"
    echo "--> $t, ${FUZZ_SECONDS}s"
    if ! cargo +nightly fuzz run "$t" "$corpus" -- -max_total_time="$FUZZ_SECONDS" \
        -print_final_stats=1 >"$log" 2>&1; then
        tail -80 "$log"
        echo "$t found a crash: minimise it (README.md) and commit it as corpus/$t/regression-*" >&2
        return 1
    fi
    echo "$t: $(summary "$log")"
}

planted
cargo +nightly fuzz build
for t in "${TARGETS[@]}"; do
    run_target "$t"
done
