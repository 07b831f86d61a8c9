#!/usr/bin/env bash
# Measures fuzz targets the way fuzz/README.md ("Throughput") reports them: for each target, a
# run of SECONDS_PER_TARGET (60) seconds from a scratch copy of its seeds, then what that run's
# corpus reaches of the code under test.
#
#   bash fuzz/measure.sh [TARGET...]                  (default: every target)
#   FUZZ_BUILD="-s none" bash fuzz/measure.sh hammer  (build flags; default: those of ci.sh)
#
# Prints one line per target: exec/s and libFuzzer's cov/ft at the end of the run, and the
# regions of core/src and shim-sim/src the corpus covers (`cargo fuzz coverage` +
# `llvm-cov report`; needs the nightly llvm-tools-preview component, installed when missing).
# Throughput numbers are for reports, never a gate: they swing with the machine's load.
set -euo pipefail

cd "$(dirname "$0")"
SECONDS_PER_TARGET=${SECONDS_PER_TARGET:-60}
read -r -a BUILD <<<"${FUZZ_BUILD--s none --no-trace-compares}"
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=(loop_ops adopt_close timers hammer); fi
# The libFuzzer options ci.sh gives single targets (see TARGET_OPTS there).
declare -A TARGET_OPTS=([tls_session]="-use_counters=0 -entropic=0")

rustup +nightly component list --installed | grep -q llvm-tools ||
    rustup +nightly component add llvm-tools-preview
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
llvm_cov=$(rustc +nightly --print sysroot)/lib/rustlib/$host/bin/llvm-cov
tag=$(printf '%s' "${BUILD[*]}" | tr -c 'a-z0-9' '-')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failed=0
echo "build: ${BUILD[*]}; ${SECONDS_PER_TARGET}s per target; $(date -u +%F) $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
for t in "${TARGETS[@]}"; do
    corpus=$work/corpus-$t
    mkdir -p "$corpus"
    cp seeds/"$t"/* "$corpus"/ 2>/dev/null || true
    read -r -a opts <<<"${TARGET_OPTS[$t]:-}"
    if ! cargo +nightly fuzz run "${BUILD[@]}" --target-dir "target/measure-$tag" "$t" \
        "$corpus" -- -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 "${opts[@]}" \
        >"$work/$t.log" 2>&1; then
        tail -60 "$work/$t.log"
        echo "$t: the run failed (a crash, or the build; see above): no measurement" >&2
        failed=1
        continue
    fi
    execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t.log")
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$work/$t.log" | tail -1)
    cargo +nightly fuzz coverage -s none "$t" "$corpus" >"$work/$t.cov.log" 2>&1
    bin=target/$host/coverage/$host/release/$t
    regions=$("$llvm_cov" report "$bin" -instr-profile="coverage/$t/coverage.profdata" |
        awk '$1 ~ /(^|\/)(core|shim-sim)\/src\// { total += $2; missed += $3 }
             END { printf "%d of %d", total - missed, total }')
    echo "$t: exec/s $execs; $cov; core + shim-sim regions covered: $regions"
done
exit "$failed"
