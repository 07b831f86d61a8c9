#!/usr/bin/env bash
# Side-by-side HTTP benchmark (never a CI gate): the usockets `http_server` example and a plain
# mio server sharing the same parser and response bytes (`mio_http_server`), both driven by the
# `load` example in the same run, non-pipelined and pipelined x16. Prints requests/s, the ratio,
# and syscalls per request for each server, counted with
# `perf stat -e 'syscalls:sys_enter_*' -p PID` (needs perf with syscall tracepoints).
#
#   bash benches/http.sh                 # 5 s per run, 100 connections
#   DURATION=10 CONNS=200 bash benches/http.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
CONNS=${CONNS:-100}
EVENTS='syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_sendto,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_sendmsg,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_ctl'

cargo build --release --quiet --example http_server --example mio_http_server --example load
BIN=target/release/examples
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT

have_perf=1
perf stat -e syscalls:sys_enter_epoll_wait -x, -- true >/dev/null 2>&1 || have_perf=0
[ "$have_perf" = 1 ] || echo "perf with syscall tracepoints unavailable: syscall counts skipped" >&2

# run SERVER PIPELINE -> prints "rps recv_per_req send_per_req wait_per_req ctl_per_req"
run() {
    local server=$1 pipeline=$2
    "$BIN/$server" --port 0 >"$TMP/port" &
    local pid=$!
    local port=""
    for _ in $(seq 50); do
        port=$(sed -n 's/^listening on port //p' "$TMP/port")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { echo "$server did not start" >&2; exit 1; }
    local perf_pid=""
    if [ "$have_perf" = 1 ]; then
        perf stat -e "$EVENTS" -x, -o "$TMP/perf" -p "$pid" &
        perf_pid=$!
        sleep 0.2
    fi
    "$BIN/load" --port "$port" --connections "$CONNS" --pipeline "$pipeline" --duration "$DURATION" >"$TMP/load"
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid"
        wait "$perf_pid" 2>/dev/null || true
    fi
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    local summary requests rps
    summary=$(grep '^summary:' "$TMP/load")
    requests=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$summary")
    rps=$(sed -n 's/.*rps=\([0-9.]*\).*/\1/p' <<<"$summary")
    if [ "$have_perf" = 1 ]; then
        awk -F, -v req="$requests" -v rps="$rps" '
            $3 ~ /sys_enter_(recvfrom|read)$/ { recv += $1 }
            $3 ~ /sys_enter_(sendto|write|writev|sendmsg)$/ { send += $1 }
            $3 ~ /sys_enter_epoll_(p)?wait$/ { wait += $1 }
            $3 ~ /sys_enter_epoll_ctl$/ { ctl += $1 }
            END { printf "%s %.3f %.3f %.3f %.4f\n", rps, recv/req, send/req, wait/req, ctl/req }' "$TMP/perf"
    else
        echo "$rps - - - -"
    fi
}

printf '%-10s %-16s %12s %10s %10s %12s %12s\n' pipeline server req/s recv/req send/req wait/req ctl/req
for pipeline in 1 16; do
    read -r u_rps u_recv u_send u_wait u_ctl < <(run http_server "$pipeline")
    read -r m_rps m_recv m_send m_wait m_ctl < <(run mio_http_server "$pipeline")
    printf '%-10s %-16s %12s %10s %10s %12s %12s\n' "$pipeline" usockets "$u_rps" "$u_recv" "$u_send" "$u_wait" "$u_ctl"
    printf '%-10s %-16s %12s %10s %10s %12s %12s\n' "$pipeline" mio "$m_rps" "$m_recv" "$m_send" "$m_wait" "$m_ctl"
    awk -v a="$u_rps" -v b="$m_rps" 'BEGIN { if (b > 0) printf "%-10s usockets/mio requests/s ratio: %.2f\n", "", a / b }'
done
