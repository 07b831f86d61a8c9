#!/usr/bin/env bash
# Fuzzing in CI (called by .ci/run; see README.md):
#   1. installs the nightly toolchain and cargo-fuzz when missing;
#   2. copies the repository's sources to a scratch directory, applies planted-bug.patch there
#      (a deliberate double on_close in core/src/sweep.rs) and fails unless `adopt_close`, built
#      from that copy, finds the planted bug within PLANTED_SECONDS (60); the tree itself is
#      never changed, and a patch that no longer applies fails too;
#   3. runs every real target for FUZZ_SECONDS (60) from its committed seeds (seeds/<target>/)
#      with -print_final_stats=1, printing executions per second and coverage; a finding fails.
# `bash fuzz/ci.sh planted` does steps 1 and 2 only.
#
# Build flags come from FUZZ_BUILD, by default `-s none --no-trace-compares` (measure.sh uses the
# same): no AddressSanitizer, no comparison tracing. Everything the targets run is
# `#![forbid(unsafe_code)]` (core, shim-sim, the harness, the hammer) or std, so ASan has no
# memory accesses of ours to catch out (only its leak check is lost), while its traced shadow
# checks cut executions per second four- to fivefold; comparison tracing costs about half of
# what is left and, on these byte-decision inputs, reaches no more of core and shim-sim in 60 s
# (see "Throughput" in README.md). FUZZ_BUILD="" restores cargo-fuzz's defaults.
# Every corpus written here is a scratch directory: neither seeds/ nor corpus/ is touched.
set -euo pipefail

cd "$(dirname "$0")"
FUZZ_DIR=$PWD
ROOT=$(cd .. && pwd)

TARGETS=(loop_ops adopt_close timers hammer tls_server tls_session)
# libFuzzer options of single targets, after the common ones. tls_session: every run makes a TLS
# handshake, some 2,300 distinct edges, and libFuzzer's per-edge bookkeeping after each run was
# 40 % of its time; edges without hit-count buckets and without the entropic schedule's
# per-feature frequencies make it about 45 % faster, with the same coverage in 30 s
# (README.md, "Throughput").
declare -A TARGET_OPTS=([tls_session]="-use_counters=0 -entropic=0")
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
PLANTED_SECONDS=${PLANTED_SECONDS:-60}
PLANTED_TARGET=${PLANTED_TARGET:-adopt_close}
read -r -a BUILD <<<"${FUZZ_BUILD--s none --no-trace-compares}"
# One target directory per set of build flags, so that switching does not rebuild everything.
BUILD_TAG=$(printf '%s' "${BUILD[*]}" | tr -c 'a-z0-9' '-')
TARGET_DIR=$FUZZ_DIR/target/ci-$BUILD_TAG
PLANTED_PATCH=$FUZZ_DIR/planted-bug.patch
# What the planted bug's report must say (the harness's message for a second on_close).
PLANTED_REPORT='on_close for SocketId.*which is Closed'

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# GNU patch plants the bug in the scratch copy (it applies relative to the copy wherever it is;
# `git apply` would skip the paths of a copy that lies inside some repository).
if ! command -v patch >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq patch
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A corpus directory to write into, holding the committed seeds of target $1 (which stay
# untouched); empty for a target that has none (libFuzzer then starts from nothing).
scratch_corpus() {
    # A fresh directory each time: the planted-bug run and the real run of the same target must
    # not share what they grow.
    local dir
    dir=$(mktemp -d "$work/corpus-$1-XXXX")
    if [ -n "$(ls -A seeds/"$1" 2>/dev/null)" ]; then
        cp seeds/"$1"/* "$dir"/
    else
        echo "note: no seeds/$1/, so $1 starts from an empty corpus" >&2
    fi
    echo "$dir"
}

summary() {
    local log=$1
    local execs cov
    execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    echo "exec/s: ${execs:-?}  ${cov:-cov: ?}"
}

# Copies the repository's sources as they are in the working tree (tracked files and new ones
# git does not ignore: no build output, no fuzzing corpus) to directory $1. On CI's clean clone
# that is exactly the commit under test.
copy_sources() {
    local dest=$1
    mkdir -p "$dest"
    (
        cd "$ROOT"
        git ls-files -z --cached --others --exclude-standard |
            while IFS= read -r -d '' f; do
                # Skip files deleted in the working tree but still in the index.
                if [ -e "$f" ]; then printf '%s\0' "$f"; fi
            done |
            tar --null -T - -cf -
    ) | tar -xf - -C "$dest"
}

planted() {
    local t=$PLANTED_TARGET
    local src="$work/planted-src"
    local corpus log before
    before=$(sha256sum "$ROOT/core/src/sweep.rs")
    copy_sources "$src"
    if ! patch --dry-run --batch --forward --fuzz=0 -p1 -d "$src" <"$PLANTED_PATCH"; then
        echo "fuzz/planted-bug.patch no longer applies to core/src/sweep.rs: plant the same bug" \
            "in the current code and regenerate the patch (fuzz/README.md, \"The planted bug\")" >&2
        return 1
    fi
    patch --batch --forward --fuzz=0 --silent -p1 -d "$src" <"$PLANTED_PATCH"
    corpus=$(scratch_corpus "$t")
    log="$work/planted-$t.log"
    echo "--> $t with fuzz/planted-bug.patch applied to a copy, build flags: ${BUILD[*]}," \
        "${PLANTED_SECONDS}s"
    # The copy's own fuzz project, built into a target directory of this one (kept between
    # runs, so the dependencies are built once).
    local build=(--fuzz-dir "$src/fuzz" "${BUILD[@]}"
        --target-dir "$FUZZ_DIR/target/planted-$BUILD_TAG")
    cargo +nightly fuzz build "${build[@]}" "$t"
    local start=$SECONDS
    if cargo +nightly fuzz run "${build[@]}" "$t" "$corpus" -- \
        -max_total_time="$PLANTED_SECONDS" -print_final_stats=1 \
        -artifact_prefix="$work/planted-" >"$log" 2>&1; then
        tail -20 "$log"
        echo "the planted bug was NOT found in ${PLANTED_SECONDS}s" >&2
        return 1
    fi
    if ! grep -q "$PLANTED_REPORT" "$log"; then
        tail -60 "$log"
        echo "$t crashed with the planted bug, but not on it (see above)" >&2
        return 1
    fi
    echo "planted bug found after $((SECONDS - start))s:"
    grep -m1 "$PLANTED_REPORT" "$log"
    if [ "$(sha256sum "$ROOT/core/src/sweep.rs")" != "$before" ]; then
        echo "core/src/sweep.rs changed while the planted bug was fuzzed: only the copy may" >&2
        return 1
    fi
}

run_target() {
    local t=$1
    local corpus log
    corpus=$(scratch_corpus "$t")
    log="$work/$t.log"
    local opts
    read -r -a opts <<<"${TARGET_OPTS[$t]:-}"
    echo "--> $t, ${FUZZ_SECONDS}s ${opts[*]}"
    if ! cargo +nightly fuzz run "${BUILD[@]}" --target-dir "$TARGET_DIR" "$t" \
        "$corpus" -- -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 "${opts[@]}" \
        >"$log" 2>&1; then
        tail -80 "$log"
        echo "$t found a crash: minimise it and commit it as seeds/$t/regression-* (README.md)" >&2
        return 1
    fi
    echo "$t: $(summary "$log")"
}

planted
# `bash ci.sh planted`: only the planted-bug check.
if [ "${1:-}" = planted ]; then
    exit 0
fi
cargo +nightly fuzz build "${BUILD[@]}" --target-dir "$TARGET_DIR"
echo "targets built with: ${BUILD[*]}"
for t in "${TARGETS[@]}"; do
    run_target "$t"
done
