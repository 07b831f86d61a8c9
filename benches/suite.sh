#!/usr/bin/env bash
# The benchmark suite of issue 13 (never a CI gate): measures, in one run, every figure the
# issue sets a target for, and prints each against its target (required / stretch).
#
#   bash benches/suite.sh                  # everything: a few minutes (two cargo builds first)
#   QUICK=1 bash benches/suite.sh          # a smoke run: smaller N, one round, 2 s runs
#   ONLY="callgrind size" bash benches/suite.sh    # some sections: callgrind idle size cpu uring
#   ONLY=gate MAX=600 bash benches/suite.sh        # CI: C ABI fixed response only, fails > MAX
#
# 1. callgrind: instructions per request. The server runs under `valgrind --tool=callgrind`
#    with `--requests N` (it exits right after its N-th data event) while a load process, not
#    under valgrind, drives it with 10 connections; (Ir(N2) - Ir(N1)) / (N2 - N1) from the
#    `totals:` lines of two runs (N1, N2), so start-up, connection set-up and exit cancel out.
#    Workloads: an 89-byte fixed response per data event with a 30 s timeout re-armed
#    (benches/c/fixed_response.c, examples/fixed_response.rs; wrk), and an echo of 12-byte
#    messages, one in flight per connection (benches/c/echo.c, examples/bench_echo.rs; the
#    `load` example). The servers print their loop's iteration count, data events and bytes at
#    exit: the suite checks that every echo event was 12 bytes, and divides the instructions
#    the library spends outside the C user callbacks (total Ir minus the inclusive Ir of the
#    functions of fixed_response.c and bench.h that the library calls: on_open, on_data,
#    bench_close, ..., bench_noop, with the us_* calls they make) by the loop iterations
#    between the two runs. Two more runs with one connection (about one event per iteration)
#    split that figure into a fixed cost per iteration and a cost per event (outside = a + b *
#    events per iteration).
#    The `gate` section (CI's hot-path stage, not part of the default run) measures the C ABI
#    fixed response alone and exits 1 if it costs more than MAX instructions per request.
# 2. idle: bytes per idle connection. A client (python3) opens 5,000 connections to
#    examples/idle_server.rs, then to benches/c/idle.c; the server's VmRSS (/proc/PID/status)
#    after a warm-up, at 1,000 and at 5,000 connections gives (rss5000 - rss1000) / 4000. Then
#    the first 4,950 opened are closed, and the suite reports how much of what the 5,000 added
#    the server gave back. The issue's targets are for plain sockets on epoll; the same run of
#    idle_server on io_uring (`--shim uring`) and over TLS 1.3 (the client completes each
#    handshake; certificate from the bench_cert example) reports their own figures.
# 3. size: the no-TLS C library statically linked into benches/c/fixed_response.c (a stand-in
#    for uWebSockets' HelloWorld) with -Wl,--gc-sections as capi/README.md says (and without,
#    for comparison), stripped, and a C hello world; the TLS build for information.
# 4. cpu: requests per server CPU-second, http_server against mio_http_server and
#    tokio_http_server (same parser and response bytes, checked byte for byte first). Server on
#    cpu 0, `load --mode http --connections 10` on cpu 1 (taskset), DURATION seconds each,
#    servers interleaved, RUNS rounds; CPU time is utime + stime from /proc/PID/stat around the
#    load. Prints the median per server and the ratios.
# 5. uring: the io_uring shim against the epoll shim, mio and tokio, on three workloads with
#    100 connections: HTTP non-pipelined (`load --mode http --pipeline 1`), HTTP pipelined x16
#    (`--pipeline 16`) and echo of 64-byte messages (`load --mode echo --payload 64`). HTTP
#    servers: `http_server --shim epoll`, `http_server --shim uring`, mio_http_server and
#    tokio_http_server (their answers checked byte for byte first, as in cpu); echo servers:
#    `echo_server --shim epoll`, `echo_server --shim uring`, `mio_http_server --echo` and
#    `tokio_http_server --echo` (the load checks every echoed byte and fails on a mismatch).
#    Measured as cpu does (server on cpu 0, load on cpu 1, DURATION seconds, utime + stime),
#    the four servers interleaved per workload, RUNS rounds. Prints the medians of requests per
#    server CPU-second and of requests per second, and the ratios of the medians uring/epoll
#    (target on non-pipelined HTTP: >= 1.05 required, >= 1.15 stretch), uring/mio, uring/tokio.
#
# Needs valgrind (with callgrind_annotate), wrk, cc, strip, python3 and taskset: a section
# whose tool is missing fails, and any measurement error makes the script exit non-zero.
# Builds what it needs (cargo build --release, capi/build.sh; CARGO_TARGET_DIR is honoured),
# under nice. Knobs: QUICK, ONLY, N1, N2 (callgrind request counts), DURATION, RUNS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    N1=${N1:-500} N2=${N2:-2500} DURATION=${DURATION:-2} RUNS=${RUNS:-1}
else
    N1=${N1:-2000} N2=${N2:-12000} DURATION=${DURATION:-5} RUNS=${RUNS:-3}
fi
ONLY=${ONLY:-callgrind idle size cpu uring}
for section in $ONLY; do
    case "$section" in
        callgrind | idle | size | cpu | uring) ;;
        gate) [ -n "${MAX:-}" ] || { echo "suite.sh: error: the gate needs MAX" >&2; exit 2; } ;;
        *) echo "suite.sh: error: unknown section '$section' in ONLY (callgrind idle size cpu uring gate)" >&2; exit 2 ;;
    esac
done
CONNS=10
# The uring section's connections.
URING_CONNS=100
IDLE_LOW=1000
IDLE_HIGH=5000
IDLE_KEEP=50
# Seconds a process may take to do its part before the suite gives up on it.
PATIENCE=600

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
export CARGO_TARGET_DIR="$TARGET_DIR"
BIN="$TARGET_DIR/release/examples"
CAPI="$TARGET_DIR/capi-no-tls"
CAPI_TLS="$TARGET_DIR/capi"
CLIBS=(-lpthread -ldl -lm -lrt -lutil)

TMP=$(mktemp -d)
STARTED=()
cleanup() {
    local pid
    for pid in "${STARTED[@]}" $(jobs -p); do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "suite.sh: error: $*" >&2
    exit 1
}

say() {
    echo "$*" >&2
}

# need SECTION TOOL...: fails unless every tool is on the PATH.
need() {
    local section=$1 tool
    shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$section needs $tool, which is not installed"
    done
}

wanted() {
    case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac
}

# The table: one row per figure.
ROWS=()
# row FIGURE OURS TARGET MET
row() {
    ROWS+=("$(printf '%-52s %20s  %-18s %s' "$1" "$2" "$3" "$4")")
    say "    $1: $2"
}

# verdict VALUE REQUIRED STRETCH: "yes (stretch)", "yes" or "no" (lower is better).
verdict() {
    awk -v v="$1" -v r="$2" -v s="$3" 'BEGIN {
        if (v <= s) print "yes (stretch)"; else if (v <= r) print "yes"; else print "no" }'
}

# target_row FIGURE VALUE REQUIRED STRETCH [UNIT]
target_row() {
    row "$1" "$2" "<=$3 / <=$4${5:+ $5}" "$(verdict "$2" "$3" "$4")"
}

# verdict_min VALUE REQUIRED STRETCH: as verdict, where higher is better.
verdict_min() {
    awk -v v="$1" -v r="$2" -v s="$3" 'BEGIN {
        if (v >= s) print "yes (stretch)"; else if (v >= r) print "yes"; else print "no" }'
}

# min_target_row FIGURE VALUE REQUIRED STRETCH: a row whose target is a minimum.
min_target_row() {
    row "$1" "$2" ">=$3 / >=$4" "$(verdict_min "$2" "$3" "$4")"
}

# alive PID: the process exists and is not a zombie.
alive() {
    [ -r "/proc/$1/stat" ] && ! sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'
}

# wait_port PID FILE: sets PORT once FILE holds "listening on port N"; fails if PID dies or
# takes longer than PATIENCE seconds.
wait_port() {
    local pid=$1 file=$2 i
    PORT=""
    for ((i = 0; i < PATIENCE * 10; i++)); do
        PORT=$(sed -n 's/^listening on port //p' "$file")
        [ -n "$PORT" ] && return 0
        alive "$pid" || {
            cat "$file" >&2
            die "$(basename "$file"): the server exited before listening"
        }
        sleep 0.1
    done
    die "$(basename "$file"): the server did not print its port in $PATIENCE s"
}

# wait_exit PID: waits up to PATIENCE seconds for PID to exit; returns its status (124 if it
# is still running).
wait_exit() {
    local pid=$1 i
    for ((i = 0; i < PATIENCE * 10; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    alive "$pid" && return 124
    wait "$pid"
}

stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
echo "# usockets-rs benchmark suite ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
echo "machine: $(nproc) cpus, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), Linux $(uname -r)"
echo "rustc:   $(rustc -V)"
echo "cc:      $(cc --version 2>/dev/null | head -n1)"
echo "knobs:   QUICK=$QUICK N1=$N1 N2=$N2 DURATION=$DURATION RUNS=$RUNS ONLY=\"$ONLY\""
echo

# ---------------------------------------------------------------------------------------------
say "==> building"
examples=()
wanted callgrind && examples+=(--example fixed_response --example bench_echo --example load)
wanted idle && examples+=(--example idle_server --example bench_cert)
wanted cpu && examples+=(--example http_server --example mio_http_server
    --example tokio_http_server --example load)
wanted uring && examples+=(--example http_server --example echo_server --example mio_http_server
    --example tokio_http_server --example load)
if [ ${#examples[@]} -gt 0 ]; then
    nice cargo build --release --quiet "${examples[@]}" || die "cargo build failed"
fi
if wanted callgrind || wanted idle || wanted size || wanted gate; then
    need "the C ABI" cc
    nice capi/build.sh --no-tls >"$TMP/capi.log" 2>&1 || {
        cat "$TMP/capi.log" >&2
        die "capi/build.sh --no-tls failed"
    }
fi
# cc_build NAME SOURCE [FLAGS...]: links SOURCE statically against the no-TLS library.
cc_build() {
    local name=$1 src=$2
    shift 2
    cc -O2 "$@" "$src" -I"$CAPI/include" "$CAPI/lib/libusockets.a" "${CLIBS[@]}" \
        -o "$TMP/$name" || die "cc $src failed"
}

# ---------------------------------------------------------------------------------------------
# cg_run NAME N LOAD CONNECTIONS SERVER...: runs SERVER --port 0 --requests N under callgrind,
# driven by LOAD (wrk or echo) over CONNECTIONS connections. Sets IR (the totals line), ITER,
# EVENTS, BYTES (the server's counts at exit) and CG (the callgrind output file).
cg_run() {
    local name=$1 n=$2 load=$3 conns=$4
    shift 4
    CG="$TMP/cg.${name// /_}.$conns.$n"
    : >"$CG.stdout"
    valgrind --tool=callgrind --callgrind-out-file="$CG" "$@" --port 0 --requests "$n" \
        >"$CG.stdout" 2>"$CG.stderr" &
    local server=$!
    STARTED+=("$server")
    wait_port "$server" "$CG.stdout"
    case "$load" in
        wrk) wrk -c"$conns" -t1 -d"${PATIENCE}s" "http://127.0.0.1:$PORT/" >"$CG.load" 2>&1 & ;;
        echo) "$BIN/load" --port "$PORT" --mode echo --payload 12 --connections "$conns" \
            --duration "$PATIENCE" >"$CG.load" 2>&1 & ;;
    esac
    local driver=$!
    STARTED+=("$driver")
    local status=0
    wait_exit "$server" || status=$?
    if [ "$status" != 0 ]; then
        cat "$CG.stderr" "$CG.load" >&2
        die "$name under callgrind (N=$n): status $status (124: did not finish in $PATIENCE s)"
    fi
    stop "$driver"
    IR=$(awk '/^totals:/ { print $2 }' "$CG")
    [ -n "$IR" ] || die "$CG has no totals line"
    ITER="" EVENTS="" BYTES=""
    read -r ITER EVENTS BYTES < <(sed -n 's/^iterations \([0-9]*\) events \([0-9]*\) bytes \([0-9]*\)$/\1 \2 \3/p' "$CG.stderr") || true
    [ "${EVENTS:-}" = "$n" ] || die "$name (N=$n) reported ${EVENTS:-no} data events"
}

# user_ir FILE: the inclusive Ir of the C user callbacks of fixed_response.c in FILE.
user_ir() {
    callgrind_annotate --inclusive=yes --threshold=100 "$1" | awk '
        $0 ~ /:(on_open|on_data|bench_on_open|bench_close|bench_on_close|bench_on_writable|bench_noop) \[/ {
            gsub(",", "", $1); sum += $1; n++ }
        END { if (n == 0) exit 1; print sum }'
}

# per_request NAME LOAD CONNECTIONS SERVER...: runs N1 and N2, sets PER (Ir per request) and
# EPI (data events per loop iteration), and keeps both runs in RUN1 and RUN2 (Ir, iterations,
# file). For echo it checks that every data event was one 12-byte message.
per_request() {
    local name=$1 load=$2 conns=$3
    shift 3
    say "  $name, $conns connection(s): N=$N1, then N=$N2"
    cg_run "$name" "$N1" "$load" "$conns" "$@"
    RUN1=("$IR" "$ITER" "$CG")
    local bytes1=$BYTES
    cg_run "$name" "$N2" "$load" "$conns" "$@"
    RUN2=("$IR" "$ITER" "$CG")
    if [ "$load" = echo ]; then
        [ "$bytes1" = $((12 * N1)) ] && [ "$BYTES" = $((12 * N2)) ] ||
            die "$name: data events were not all 12 bytes ($bytes1 bytes in $N1, $BYTES in $N2)"
    fi
    PER=$(awk -v a="${RUN1[0]}" -v b="${RUN2[0]}" -v n1="$N1" -v n2="$N2" \
        'BEGIN { printf "%.1f", (b - a) / (n2 - n1) }')
    EPI=$(awk -v a="${RUN1[1]}" -v b="${RUN2[1]}" -v n1="$N1" -v n2="$N2" \
        'BEGIN { printf "%.2f", (n2 - n1) / (b - a) }')
}

# outside: from RUN1 and RUN2 (C fixed response), the Ir the library spends outside the user
# callbacks between the two runs; sets OUT_ITER (per loop iteration) and OUT_REQ (per request).
outside() {
    local u1 u2
    u1=$(user_ir "${RUN1[2]}") || die "no user callbacks in ${RUN1[2]}"
    u2=$(user_ir "${RUN2[2]}") || die "no user callbacks in ${RUN2[2]}"
    read -r OUT_ITER OUT_REQ < <(awk -v t1="${RUN1[0]}" -v t2="${RUN2[0]}" -v u1="$u1" \
        -v u2="$u2" -v i1="${RUN1[1]}" -v i2="${RUN2[1]}" -v n1="$N1" -v n2="$N2" 'BEGIN {
        d = (t2 - u2) - (t1 - u1); printf "%.1f %.1f\n", d / (i2 - i1), d / (n2 - n1) }')
}

if wanted gate; then
    say "==> gate: C ABI fixed response at most $MAX instructions per request (N1=$N1, N2=$N2)"
    need gate valgrind wrk cc
    cc_build fixed_response_g benches/c/fixed_response.c
    per_request "C ABI fixed response" wrk "$CONNS" "$TMP/fixed_response_g"
    row "C ABI fixed response: Ir per request" "$PER" "<=$MAX" \
        "$(awk -v p="$PER" -v m="$MAX" 'BEGIN { print (p <= m) ? "yes" : "no" }')"
    awk -v p="$PER" -v m="$MAX" 'BEGIN { exit !(p <= m) }' ||
        die "the hot path regressed: $PER instructions per request, more than $MAX"
fi

if wanted callgrind; then
    say "==> 1. callgrind: instructions per request (N1=$N1, N2=$N2)"
    need callgrind valgrind callgrind_annotate wrk cc
    cc_build fixed_response_g benches/c/fixed_response.c -g
    cc_build echo_g benches/c/echo.c -g

    per_request "C ABI fixed response" wrk "$CONNS" "$TMP/fixed_response_g"
    target_row "C ABI fixed response: Ir per request" "$PER" 300 145
    # Everything the library does that the user did not ask for: total Ir minus the inclusive
    # Ir of the user's callbacks (with the us_* calls they make), per loop iteration.
    outside
    out10=$OUT_ITER epi10=$EPI
    row "C ABI: Ir per loop iteration outside user callbacks" "$OUT_ITER" "-" "-"
    row "  data events per loop iteration" "$EPI" "-" "-"
    row "  Ir outside user callbacks per request" "$OUT_REQ" "-" "-"
    # The same with one connection (about one event per iteration): the two runs split the
    # figure into a fixed cost per iteration and a cost per event, O = a + b * events.
    per_request "C ABI fixed response" wrk 1 "$TMP/fixed_response_g"
    outside
    row "  1 connection: Ir per request" "$PER" "-" "-"
    row "  1 connection: data events per loop iteration" "$EPI" "-" "-"
    row "  1 connection: Ir per iteration outside callbacks" "$OUT_ITER" "-" "-"
    read -r per_iter per_event < <(awk -v o1="$OUT_ITER" -v e1="$EPI" -v o10="$out10" \
        -v e10="$epi10" 'BEGIN { b = (o10 - o1) / (e10 - e1); printf "%.1f %.1f\n", o1 - b * e1, b }')
    # The issue's per-iteration target is this fixed part (upstream: ~31): the 10-connection
    # figure above also holds the ~9 events of each iteration.
    target_row "  split: fixed Ir per iteration (outside callbacks)" "$per_iter" 80 40
    row "  split: Ir per data event (outside callbacks)" "$per_event" "-" "-"

    per_request "C ABI echo 12 B" echo "$CONNS" "$TMP/echo_g"
    target_row "C ABI echo 12 B: Ir per message" "$PER" 300 150
    per_request "Rust API fixed response" wrk "$CONNS" "$BIN/fixed_response"
    target_row "Rust API fixed response: Ir per request" "$PER" 250 130
    per_request "Rust API echo 12 B" echo "$CONNS" "$BIN/bench_echo"
    target_row "Rust API echo 12 B: Ir per message" "$PER" 300 150
fi

# ---------------------------------------------------------------------------------------------
# The idle client: opens, pokes and closes connections on command (one per line on stdin:
# "open N", "poke N" sends one byte on each of the last N, "close N" closes the first N still
# open), answering "ok OPEN" after each. With a CA file after the port it speaks TLS, and a
# connection counts as open once its handshake is done.
IDLE_CLIENT='
import resource, socket, ssl, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
port = int(sys.argv[1])
tls = ssl.create_default_context(cafile=sys.argv[2]) if len(sys.argv) > 2 else None
def connect():
    c = socket.create_connection(("127.0.0.1", port))
    return tls.wrap_socket(c, server_hostname="localhost") if tls else c
conns = []
for line in sys.stdin:
    cmd, n = line.split()
    n = int(n)
    if cmd == "open":
        for _ in range(n):
            conns.append(connect())
    elif cmd == "poke":
        for c in conns[-n:]:
            c.sendall(b"x")
    elif cmd == "close":
        for c in conns[:n]:
            c.close()
        del conns[:n]
    print("ok", len(conns), flush=True)
'

fds() {
    local n
    n=$(ls "/proc/$1/fd" 2>/dev/null | wc -l) || true
    echo "$n"
}

rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# client COMMAND: sends COMMAND to the idle client and waits for its answer.
client() {
    echo "$1" >&"${CLIENT[1]}" || die "the idle client is gone"
    local reply
    read -r -t "$PATIENCE" reply <&"${CLIENT[0]}" || die "the idle client did not answer '$1'"
    [ "${reply%% *}" = ok ] || die "the idle client answered '$reply' to '$1'"
}

# settle PID FDS: waits until the server holds exactly FDS descriptors (it accepted or closed
# every connection), then a moment for the loop to finish its iteration.
settle() {
    local pid=$1 want=$2 i
    for ((i = 0; i < PATIENCE * 10; i++)); do
        [ "$(fds "$pid")" = "$want" ] && {
            sleep 0.5
            return 0
        }
        alive "$pid" || die "the idle server died"
        sleep 0.1
    done
    die "the idle server holds $(fds "$pid") descriptors, not $want"
}

# idle_run NAME KIND SERVER...: the RSS figures for one server. KIND: plain (held to the
# issue's targets), uring or tls (each reports its own figure; tls clients trust $TMP/ca.pem).
idle_run() {
    local name=$1 kind=$2
    shift 2
    : >"$TMP/idle.$name"
    "$@" --port 0 >"$TMP/idle.$name" 2>&1 &
    local server=$!
    STARTED+=("$server")
    wait_port "$server" "$TMP/idle.$name"
    sleep 0.3
    local base
    base=$(fds "$server")
    local ca=()
    [ "$kind" = tls ] && ca=("$TMP/ca.pem")
    coproc CLIENT { python3 -c "$IDLE_CLIENT" "$PORT" "${ca[@]}"; }
    STARTED+=("$CLIENT_PID")
    # Warm-up: a few connections that send a byte and go, so the receive path has run.
    client "open 16"
    client "poke 16"
    settle "$server" $((base + 16))
    client "close 16"
    settle "$server" "$base"
    local rss0 rss1 rss5 rss_after
    rss0=$(rss_kb "$server")
    client "open $IDLE_LOW"
    settle "$server" $((base + IDLE_LOW))
    rss1=$(rss_kb "$server")
    client "open $((IDLE_HIGH - IDLE_LOW))"
    settle "$server" $((base + IDLE_HIGH))
    rss5=$(rss_kb "$server")
    client "close $((IDLE_HIGH - IDLE_KEEP))"
    settle "$server" $((base + IDLE_KEEP))
    rss_after=$(rss_kb "$server")
    local to_client=${CLIENT[1]}
    exec {to_client}>&-
    wait "$CLIENT_PID" 2>/dev/null || true
    stop "$server"
    say "    $name VmRSS (kB): $rss0 after warm-up, $rss1 at $IDLE_LOW, $rss5 at $IDLE_HIGH, $rss_after after closing $((IDLE_HIGH - IDLE_KEEP))"
    local slope
    slope=$(awk -v a="$rss1" -v b="$rss5" -v n=$((IDLE_HIGH - IDLE_LOW)) 'BEGIN { printf "%.1f", (b - a) * 1024 / n }')
    if [ "$kind" = plain ]; then
        target_row "$name: bytes per idle connection (RSS slope)" "$slope" 96 64
    else
        row "$name: bytes per idle connection (RSS slope)" "$slope" "- (own figure)" "-"
    fi
    row "  $name: VmRSS kB at 0 / $IDLE_LOW / $IDLE_HIGH / $IDLE_KEEP left" "$rss0/$rss1/$rss5/$rss_after" "-" "-"
    local back
    back=$(awk -v z="$rss0" -v h="$rss5" -v a="$rss_after" 'BEGIN {
        if (h > z) printf "%.0f", 100 * (h - a) / (h - z); else print 0 }')
    if [ "$kind" = plain ]; then
        row "  $name: RSS given back, first $((IDLE_HIGH - IDLE_KEEP)) closed" "$back %" ">=50 %" \
            "$([ "$back" -ge 50 ] && echo yes || echo no)"
    else
        row "  $name: RSS given back, first $((IDLE_HIGH - IDLE_KEEP)) closed" "$back %" "-" "-"
    fi
}

if wanted idle; then
    say "==> 2. idle: bytes per idle connection ($IDLE_LOW -> $IDLE_HIGH connections)"
    need idle python3 cc
    [ "$(ulimit -n)" -ge $((IDLE_HIGH + 100)) ] ||
        die "idle needs a descriptor limit above $((IDLE_HIGH + 100)) (ulimit -n is $(ulimit -n))"
    cc_build idle benches/c/idle.c
    idle_run "Rust API" plain "$BIN/idle_server" --idle-timeout 0
    slot=$(sed -n 's/^socket slot: \([0-9]*\) bytes$/\1/p' "$TMP/idle.Rust API")
    [ -n "$slot" ] || die "idle_server did not print its socket slot size"
    target_row "  Rust API: socket slot (the arena's accounting)" "$slot" 96 64
    idle_run "C ABI" plain "$TMP/idle"
    # The issue's targets are for plain sockets on epoll; io_uring and TLS report their own.
    idle_run "Rust API, io_uring" uring "$BIN/idle_server" --idle-timeout 0 --shim uring
    "$BIN/bench_cert" "$TMP" >/dev/null || die "bench_cert failed"
    idle_run "Rust API, TLS 1.3" tls "$BIN/idle_server" --idle-timeout 0 \
        --cert "$TMP/cert.pem" --key "$TMP/key.pem"
fi

# ---------------------------------------------------------------------------------------------
if wanted size; then
    say "==> 3. size: stripped static binaries"
    need size cc strip
    printf '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n' >"$TMP/hello.c"
    cc -O2 "$TMP/hello.c" -o "$TMP/hello" || die "cc hello.c failed"
    # As capi/README.md says to link statically (pkg-config --static): with --gc-sections.
    cc_build fixed_response_s benches/c/fixed_response.c -Wl,--gc-sections
    cc_build fixed_response_nogc benches/c/fixed_response.c
    strip "$TMP/hello" "$TMP/fixed_response_s" "$TMP/fixed_response_nogc"
    kb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.0f", b / 1024 }'; }
    target_row "fixed_response.c + libusockets.a (no TLS), KB" "$(kb "$TMP/fixed_response_s")" 500 250
    row "  C hello world, KB" "$(kb "$TMP/hello")" "-" "-"
    row "  the library's share (the difference), KB" \
        $(($(kb "$TMP/fixed_response_s") - $(kb "$TMP/hello"))) "-" "-"
    row "  linked without --gc-sections, KB" "$(kb "$TMP/fixed_response_nogc")" "-" "-"
    nice capi/build.sh >"$TMP/capi-tls.log" 2>&1 || {
        cat "$TMP/capi-tls.log" >&2
        die "capi/build.sh (TLS) failed"
    }
    cc -O2 benches/c/fixed_response.c -I"$CAPI_TLS/include" "$CAPI_TLS/lib/libusockets.a" \
        "${CLIBS[@]}" -Wl,--gc-sections -o "$TMP/fixed_response_tls" ||
        die "cc fixed_response.c (TLS) failed"
    strip "$TMP/fixed_response_tls"
    row "  the same with the TLS build, KB" "$(kb "$TMP/fixed_response_tls")" "-" "-"
fi

# ---------------------------------------------------------------------------------------------
TICK=$(getconf CLK_TCK)

# CPU ticks (user + system) PID has used so far: the 14th and 15th fields of its stat line,
# the 12th and 13th after the command name (which may hold spaces).
ticks() {
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# start_server "NAME [ARGS...]": starts examples/NAME --port 0 ARGS on cpu 0 (one word, the
# command line split at spaces); sets SERVER and PORT.
start_server() {
    local -a cmd
    read -ra cmd <<<"$1"
    local out="$TMP/cpu.${1// /_}"
    : >"$out"
    taskset -c 0 "$BIN/${cmd[0]}" --port 0 "${cmd[@]:1}" >"$out" 2>&1 &
    SERVER=$!
    STARTED+=("$SERVER")
    wait_port "$SERVER" "$out"
}

# exchange PORT FILE: one request (the load's), the raw answer into FILE.
exchange() {
    local fd
    exec {fd}<>"/dev/tcp/127.0.0.1/$1" || die "cannot connect to port $1"
    printf 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n' >&"$fd"
    timeout 5 dd bs=65536 count=1 status=none <&"$fd" >"$2" || die "no answer from port $1"
    exec {fd}>&-
}

# cpu_run "NAME [ARGS...]" [LOAD_ARGS...]: one DURATION-second load on cpu 1 (LOAD_ARGS, by
# default `--mode http --connections CONNS`) against the server on cpu 0; sets PER, requests
# per server CPU-second, and RPS, requests per second (the load's figure).
cpu_run() {
    local server=$1 log="$TMP/load.${1// /_}"
    shift
    [ $# -gt 0 ] || set -- --mode http --connections "$CONNS"
    start_server "$server"
    local before after
    before=$(ticks "$SERVER")
    taskset -c 1 "$BIN/load" --port "$PORT" "$@" --duration "$DURATION" >"$log" 2>&1 || {
        cat "$log" >&2
        die "load $* against $server failed"
    }
    after=$(ticks "$SERVER")
    stop "$SERVER"
    local requests
    requests=$(sed -n 's/^summary: requests=\([0-9]*\) .*/\1/p' "$log")
    RPS=$(sed -n 's/^summary: .* rps=\([0-9]*\) .*/\1/p' "$log")
    if [ -z "$requests" ] || [ -z "$RPS" ]; then
        die "no summary from the load against $server"
    fi
    [ "$after" -gt "$before" ] || die "$server used no CPU time"
    PER=$(awk -v r="$requests" -v t=$((after - before)) -v hz="$TICK" 'BEGIN { printf "%.0f", r / (t / hz) }')
}

median() {
    tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END {
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

if wanted cpu; then
    say "==> 4. cpu: requests per server CPU-second ($RUNS rounds of $DURATION s, $CONNS connections)"
    need cpu taskset
    [ "$(nproc)" -ge 2 ] || die "cpu needs 2 cpus (server on cpu 0, load on cpu 1)"
    servers=(http_server mio_http_server tokio_http_server)
    for s in "${servers[@]}"; do
        start_server "$s"
        exchange "$PORT" "$TMP/answer.$s"
        stop "$SERVER"
        grep -q '^HTTP/1.1 200 OK' "$TMP/answer.$s" || die "$s did not answer 200 OK"
        cmp -s "$TMP/answer.http_server" "$TMP/answer.$s" ||
            die "$s answers differently from http_server"
    done
    say "    the three answer byte for byte the same ($(stat -c %s "$TMP/answer.http_server") bytes)"
    declare -A per=()
    for ((r = 1; r <= RUNS; r++)); do
        for s in "${servers[@]}"; do
            cpu_run "$s"
            per[$s]="${per[$s]:-} $PER"
            say "    round $r: $s $PER requests per CPU-second"
        done
    done
    ours=$(median <<<"${per[http_server]}")
    mio=$(median <<<"${per[mio_http_server]}")
    tokio=$(median <<<"${per[tokio_http_server]}")
    row "http_server (usockets): requests per CPU-second" "$ours" "-" "-"
    row "mio_http_server: requests per CPU-second" "$mio" "-" "-"
    row "tokio_http_server: requests per CPU-second" "$tokio" "-" "-"
    row "  ratio usockets/mio" "$(awk -v a="$ours" -v b="$mio" 'BEGIN { printf "%.2f", a / b }')" "-" "-"
    row "  ratio usockets/tokio" "$(awk -v a="$ours" -v b="$tokio" 'BEGIN { printf "%.2f", a / b }')" "-" "-"
fi

# ---------------------------------------------------------------------------------------------
# ratio A B [DECIMALS]: A / B, with DECIMALS (3) decimals.
ratio() {
    awk -v a="$1" -v b="$2" -v d="${3:-3}" 'BEGIN { printf "%." d "f", a / b }'
}

# uring_workload TITLE TARGET EPOLL URING MIO TOKIO LOAD_ARGS...: RUNS rounds of the four
# servers ("NAME [ARGS...]" each) in turn under `load LOAD_ARGS`; rows of the medians and of
# their ratios. TARGET yes: uring/epoll in requests per CPU-second has the issue's target.
uring_workload() {
    local title=$1 target=$2
    local servers=("$3" "$4" "$5" "$6")
    shift 6
    say "  $title: load $*"
    local -A per=() rps=()
    local r s i
    for ((r = 1; r <= RUNS; r++)); do
        for s in "${servers[@]}"; do
            cpu_run "$s" "$@"
            per[$s]="${per[$s]:-} $PER"
            rps[$s]="${rps[$s]:-} $RPS"
            say "    round $r: $s: $PER requests per CPU-second, $RPS requests/s"
        done
    done
    local -a mper=() mrps=()
    for i in 0 1 2 3; do
        mper[i]=$(median <<<"${per[${servers[i]}]}")
        mrps[i]=$(median <<<"${rps[${servers[i]}]}")
    done
    row "$title" "req/CPU-s / req/s" "-" "-"
    for i in 0 1 2 3; do
        row "  ${servers[i]}" "${mper[i]} / ${mrps[i]}" "-" "-"
    done
    local cpu_ratio
    cpu_ratio=$(ratio "${mper[1]}" "${mper[0]}")
    if [ "$target" = yes ]; then
        min_target_row "  ratio uring/epoll, requests per CPU-second" "$cpu_ratio" 1.05 1.15
    else
        row "  ratio uring/epoll, requests per CPU-second" "$cpu_ratio" "-" "-"
    fi
    row "  ratio uring/mio / uring/tokio, per CPU-second" \
        "$(ratio "${mper[1]}" "${mper[2]}") / $(ratio "${mper[1]}" "${mper[3]}")" "-" "-"
    local rps_ratios
    rps_ratios="$(ratio "${mrps[1]}" "${mrps[0]}" 2) / $(ratio "${mrps[1]}" "${mrps[2]}" 2)"
    rps_ratios+=" / $(ratio "${mrps[1]}" "${mrps[3]}" 2)"
    row "  ratio uring/epoll / mio / tokio, requests/s" "$rps_ratios" "-" "-"
}

if wanted uring; then
    say "==> 5. uring: io_uring against epoll, mio and tokio ($RUNS rounds of $DURATION s, $URING_CONNS connections)"
    need uring taskset
    [ "$(nproc)" -ge 2 ] || die "uring needs 2 cpus (server on cpu 0, load on cpu 1)"
    http_servers=("http_server --shim epoll" "http_server --shim uring" mio_http_server
        tokio_http_server)
    echo_servers=("echo_server --shim epoll" "echo_server --shim uring" "mio_http_server --echo"
        "tokio_http_server --echo")
    for s in "${http_servers[@]}"; do
        start_server "$s"
        exchange "$PORT" "$TMP/answer.${s// /_}"
        stop "$SERVER"
        grep -q '^HTTP/1.1 200 OK' "$TMP/answer.${s// /_}" || die "$s did not answer 200 OK"
        cmp -s "$TMP/answer.${http_servers[0]// /_}" "$TMP/answer.${s// /_}" ||
            die "$s answers differently from ${http_servers[0]}"
    done
    say "    the four HTTP servers answer byte for byte the same ($(stat -c %s "$TMP/answer.${http_servers[0]// /_}") bytes); the echo load checks every byte"
    uring_workload "uring, HTTP x1, $URING_CONNS conns" yes "${http_servers[@]}" \
        --mode http --connections "$URING_CONNS" --pipeline 1
    uring_workload "uring, HTTP pipelined x16, $URING_CONNS conns" no "${http_servers[@]}" \
        --mode http --connections "$URING_CONNS" --pipeline 16
    uring_workload "uring, echo 64 B, $URING_CONNS conns" no "${echo_servers[@]}" \
        --mode echo --payload 64 --connections "$URING_CONNS"
fi

# ---------------------------------------------------------------------------------------------
printf '%-52s %20s  %-18s %s\n' figure ours "target req/stretch" met?
printf '%s\n' "${ROWS[@]}"
