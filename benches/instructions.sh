#!/usr/bin/env bash
# Callgrind instructions per request of the C ABI hot path, deterministic enough to gate on.
#
#   bash benches/instructions.sh                 # fixed response and echo, prints both
#   bash benches/instructions.sh --max 560       # fails if fixed response exceeds 560
#
# Method: the server (benches/c/fixed_response.c or echo.c, statically linked against the
# no-TLS C library) runs under callgrind and exits right after its N-th data event; the load
# (wrk, or the `load` example for echo) runs outside valgrind with 10 connections. Two runs,
# N1 and N2 requests, give (Ir(N2) - Ir(N1)) / (N2 - N1): start-up, connection set-up and
# exit cancel out. Instruction counts do not depend on the machine's speed, only on how many
# events each loop iteration batches, which a saturating load keeps steady (a few percent).
#
# Needs valgrind, wrk and a C compiler: it fails (never skips) without them. Environment:
# N1, N2 (default 1000, 6000), WORKLOADS ("fixed echo" or one of them).
set -euo pipefail
cd "$(dirname "$0")/.."

max=""
if [ "${1:-}" = "--max" ]; then
    max=${2:?--max needs a number}
fi
N1=${N1:-1000}
N2=${N2:-6000}
WORKLOADS=${WORKLOADS:-fixed echo}
for tool in valgrind wrk cc; do
    command -v "$tool" >/dev/null || { echo "instructions.sh: $tool is missing" >&2; exit 1; }
done

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
capi/build.sh --no-tls >/dev/null
case " $WORKLOADS " in *" echo "*) cargo build --release --quiet --example load ;; esac
lib="$target_dir/capi-no-tls"
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
for prog in fixed_response echo; do
    cc -O2 -o "$tmp/$prog" "benches/c/$prog.c" -I"$lib/include" "$lib/lib/libusockets.a" \
        -lpthread -ldl -lm
done

# total_ir PROG N LOAD... : instructions of PROG serving N data events under LOAD ({PORT} in
# LOAD is replaced by the server's port).
total_ir() {
    local prog=$1 n=$2
    shift 2
    local out="$tmp/cg.$prog.$n"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$tmp/$prog" --port 0 --requests "$n" \
        >"$tmp/port" 2>"$tmp/valgrind.log" &
    local pid=$! port=""
    for _ in $(seq 200); do
        port=$(sed -n 's/^listening on port //p' "$tmp/port")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { echo "$prog did not start" >&2; cat "$tmp/valgrind.log" >&2; exit 1; }
    local load=("${@//\{PORT\}/$port}")
    "${load[@]}" >"$tmp/load.log" 2>&1 &
    local lpid=$!
    wait "$pid" || { echo "$prog failed" >&2; cat "$tmp/valgrind.log" >&2; exit 1; }
    kill "$lpid" 2>/dev/null || true
    wait "$lpid" 2>/dev/null || true
    local ir
    ir=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$out")
    [ -n "$ir" ] || { echo "no callgrind totals for $prog" >&2; exit 1; }
    echo "$ir"
}

# per_request PROG LOAD... : prints instructions per request.
per_request() {
    local prog=$1
    shift
    local a b
    a=$(total_ir "$prog" "$N1" "$@")
    b=$(total_ir "$prog" "$N2" "$@")
    echo $(((b - a) / (N2 - N1)))
}

status=0
for w in $WORKLOADS; do
    case "$w" in
    fixed)
        fixed=$(per_request fixed_response wrk -c10 -t1 -d600s "http://127.0.0.1:{PORT}/")
        echo "C ABI fixed 89-byte response, 10 connections: $fixed instructions per request"
        if [ -n "$max" ] && [ "$fixed" -gt "$max" ]; then
            echo "instructions.sh: $fixed > $max instructions per request: the hot path regressed" >&2
            status=1
        fi
        ;;
    echo)
        echo_ir=$(per_request echo "$target_dir/release/examples/load" --port "{PORT}" \
            --mode echo --payload 12 --connections 10 --duration 600)
        echo "C ABI echo of 12-byte messages, 10 connections: $echo_ir instructions per message"
        ;;
    *)
        echo "instructions.sh: unknown workload $w" >&2
        exit 2
        ;;
    esac
done
exit "$status"
