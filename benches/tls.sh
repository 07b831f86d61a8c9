#!/usr/bin/env bash
# Side-by-side TLS benchmark (never a CI gate): `echo_server --cert --key` against a tokio +
# tokio-rustls echo server on the same rustls 0.23 + ring, TLS 1.3 and certificate
# (`examples/tokio_tls_echo_server.rs`, current-thread runtime: one thread, like our loop). The
# `load` example drives each in turn with `--tls`: echo (CONNS connections, each sending a
# message of SIZE bytes and waiting for its echo, over and over) for each of SIZES, and
# handshake (HS_CONNS connections at a time, each a full handshake without resumption, one
# byte there and back, close). The certificate is made for the run by the `bench_cert` example
# (rcgen), so nothing but Rust is needed.
#
# For each run it prints ops/s (messages or handshakes), MB/s of payload for echo, the server's
# CPU use (utime + stime from /proc/PID/stat around the load) and ops per server CPU-second,
# then the ratios usockets/tokio. The load generator takes a core of its own and, doing as much
# crypto as the server or more (it verifies the certificate), often sets the pace: ops per
# server CPU-second is the figure to compare.
#
#   bash benches/tls.sh                          # 5 s per run
#   DURATION=10 CONNS=100 SIZES="64 4096 16384" HS_CONNS=32 bash benches/tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
CONNS=${CONNS:-50}
SIZES=${SIZES:-64 16384}
HS_CONNS=${HS_CONNS:-16}

cargo build --release --quiet --example echo_server --example tokio_tls_echo_server \
    --example load --example bench_cert
BIN=${CARGO_TARGET_DIR:-target}/release/examples
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
"$BIN/bench_cert" "$TMP"
TICK=$(getconf CLK_TCK)

# CPU ticks (user + system) PID has used so far.
ticks() {
    # Fields after the command name (which may hold spaces): utime and stime are the 12th and
    # 13th of them (the 14th and 15th of the line).
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# run SERVER LOAD_ARGS... -> prints "ops/s MB/s cpu_percent ops_per_cpu_second"
run() {
    local server=$1
    shift
    # Emptied here, not by the redirection below, which runs in the child: a stale port from
    # the previous server must not be read.
    : >"$TMP/port"
    "$BIN/$server" --port 0 --cert "$TMP/cert.pem" --key "$TMP/key.pem" >"$TMP/port" &
    local pid=$!
    local port=""
    for _ in $(seq 50); do
        port=$(sed -n 's/^listening on port //p' "$TMP/port")
        [ -n "$port" ] && break
        sleep 0.1
    done
    # run is called in a process substitution, whose children the EXIT trap does not see:
    # every way out of it stops the server.
    [ -n "$port" ] || { echo "$server did not start" >&2; kill "$pid" 2>/dev/null; exit 1; }
    local before after
    before=$(ticks "$pid")
    if ! "$BIN/load" --port "$port" --tls "$TMP/ca.pem" --duration "$DURATION" "$@" >"$TMP/load"; then
        echo "load against $server failed: $(grep '^summary:' "$TMP/load" || true)" >&2
        kill "$pid"
        exit 1
    fi
    after=$(ticks "$pid")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    grep '^summary:' "$TMP/load" | awk -v used="$((after - before))" -v tick="$TICK" '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        cpu = used / tick
        mb = ("mbps" in f) ? f["mbps"] : "-"
        per = (cpu > 0) ? f["requests"] / cpu : 0
        printf "%s %s %.0f %.0f\n", f["rps"], mb, 100 * cpu / f["seconds"], per }'
}

# row MODE SERVER OPS MBPS CPU PER_CPU
row() {
    printf '%-12s %-9s %10s %8s %8s %14s\n' "$@"
}

row mode server ops/s MB/s cpu% ops/cpu-s
compare() {
    local mode=$1
    shift
    read -r u_ops u_mb u_cpu u_per < <(run echo_server "$@")
    read -r t_ops t_mb t_cpu t_per < <(run tokio_tls_echo_server "$@")
    row "$mode" usockets "$u_ops" "$u_mb" "$u_cpu" "$u_per"
    row "$mode" tokio "$t_ops" "$t_mb" "$t_cpu" "$t_per"
    awk -v a="$u_ops" -v b="$t_ops" -v c="$u_per" -v d="$t_per" 'BEGIN {
        if (b > 0 && d > 0)
            printf "%-12s usockets/tokio: ops/s %.2f, ops per server CPU-second %.2f\n", "", a / b, c / d }'
}

for size in $SIZES; do
    compare "echo ${size}B" --mode echo --connections "$CONNS" --payload "$size"
done
compare handshake --mode handshake --connections "$HS_CONNS"
