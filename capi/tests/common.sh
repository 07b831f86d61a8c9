# shellcheck shell=bash
# What capi/tests/run.sh (Linux) and capi/tests/run-windows.sh (mingw, under Wine) share:
# sourced by both, after their `set` line, with `here` (this folder) already set:
#
#   here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
#   source "$here/common.sh"
#
# It sets no shell option (each script keeps its own: run.sh `set -uo pipefail`, run-windows.sh
# `set -euo pipefail`) and every function here works under both.
#
# Sets: capi, root, target_dir (CARGO_TARGET_DIR, made absolute), src (capi/tests/c), WARN, the
# step record (results, failures) and tests (what compile built); make_certs sets tls_dir.
# The functions read what the script sets before calling them: inc, lib and bin (the layout's
# include/, lib/ and tests/ folders), exe (the programs' suffix: "" or .exe), link_static and
# link_shared (what a test links with, as compile's link mode says), show_compiler (1: the
# compile lines name the compiler), echo_server (the command that starts the echo server, run in
# $bin) and echo_server_wait (how long it may take to print its port, in tenths of a second), and
# the environment's TEST_TIMEOUT, USOCKETS_STRESS_CONNECTIONS and USOCKETS_STRESS_SEED.
# shellcheck disable=SC2154 # inc, lib, bin, ...: set by the sourcing script, as said above

capi="$(cd "$here/.." && pwd)"
root="$(cd "$capi/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
src="$here/c"
WARN=(-Wall -Wextra -Werror -pedantic)

# ---------------------------------------------------------------------------------------------
# The step record: one line a step (PASS, FAIL; NOTE and SKIP lines are not steps), printed as
# it happens and again by summary.
declare -a results=()
failures=0
pass() { results+=("PASS  $1"); echo "  PASS  $1"; }
fail() { results+=("FAIL  $1"); echo "  FAIL  $1" >&2; failures=$((failures + 1)); }
note() { results+=("NOTE  $1"); echo "  NOTE  $1"; }
# A step that could not run here (listed in the summary only, counted as passed).
skip() { results+=("SKIP  $1"); }

# The summary: every line of the record, then the count, then the plain closing line CI tools
# read ("NAME: N passed, M failed").
print_summary() { # title, name of the closing line
    local title="==================== $1: summary ====================" r steps=0
    for r in "${results[@]}"; do
        case "$r" in NOTE*) ;; *) steps=$((steps + 1)) ;; esac
    done
    echo
    echo "$title"
    for r in "${results[@]}"; do echo "  $r"; done
    printf -- '-%.0s' $(seq "${#title}")
    echo
    if [ "$failures" -eq 0 ]; then
        echo "  all $steps steps passed"
    else
        echo "  $failures of $steps steps FAILED"
    fi
    echo "$2: $((steps - failures)) passed, $failures failed"
}

# PASS or FAIL by a program's exit code: 0 passes, 124 is `timeout`'s (it ran out of time).
judge_exit() { # label, exit code, time limit (s), [time taken (s), shown]
    local label="$1" rc="$2" limit="$3" took="${4:+ ($4s)}"
    if [ "$rc" -eq 0 ]; then
        pass "$label$took"
    elif [ "$rc" -eq 124 ]; then
        fail "$label: timed out after ${limit}s"
    else
        fail "$label: exit code $rc$took"
    fi
}

# ---------------------------------------------------------------------------------------------
# Header checks: compile/header_c.c (C11) and header_cxx.cpp (C++17) compile with $WARN and
# check every signature against the contract; the header alone also compiles as C99 and C++11
# (no C11-only construct unguarded). LABEL (" with mingw") tells the lines apart.
check_header() { # C compiler, C++ compiler, label
    local cc="$1" cxx="$2" label="$3"
    if "$cc" -std=c11 "${WARN[@]}" -I"$inc" -I"$src/compile" -c "$src/compile/header_c.c" -o "$bin/header_c.o"; then
        pass "header compiles as C11$label (${WARN[*]}), signatures match the contract"
    else
        fail "header compiles as C11$label, signatures match the contract"
    fi
    if "$cxx" -std=c++17 "${WARN[@]}" -I"$inc" -I"$src/compile" -c "$src/compile/header_cxx.cpp" -o "$bin/header_cxx.o"; then
        pass "header compiles as C++17$label (${WARN[*]}), signatures match the contract"
    else
        fail "header compiles as C++17$label, signatures match the contract"
    fi
    if "$cc" -std=c99 "${WARN[@]}" -I"$inc" -x c -c - -o /dev/null <<< '#include "libusockets.h"
int main(void) { return LIBUS_SOCKET_READABLE - 1; }' &&
        "$cxx" -std=c++11 "${WARN[@]}" -I"$inc" -x c++ -c - -o /dev/null <<< '#include "libusockets.h"
int main() { return LIBUS_SOCKET_READABLE - 1; }'; then
        pass "header also compiles as C99 and C++11$label"
    else
        fail "header also compiles as C99 and C++11$label"
    fi
}

# The functions the header declares (prototypes start with WIN32_EXPORT), one a line, sorted:
# the first us_* identifier followed by "(" on each prototype's line.
header_functions() {
    grep -E '^WIN32_EXPORT' "$capi/include/libusockets.h" |
        sed -E 's/^[^(]*[^a-z0-9_](us_[a-z0-9_]+) *\(.*/\1/' | sort -u
}

# Both libraries define every function of the array funcs (the header's, from header_functions;
# more than 80 of them) and us_internal_timer_sweep, the upstream-internal function upstream's
# tests call (not in upstream's public header). SYMBOLS: the names a library exports, one a line.
check_exports() { # library 1, its symbols, library 2, its symbols
    local name1="$1" syms1="$2" name2="$3" syms2="$4" f
    local -a missing1=() missing2=()
    for f in "${funcs[@]}" us_internal_timer_sweep; do
        grep -qx "$f" <<< "$syms1" || missing1+=("$f")
        grep -qx "$f" <<< "$syms2" || missing2+=("$f")
    done
    if [ "${#funcs[@]}" -gt 80 ] && [ "${#missing1[@]}" -eq 0 ] && [ "${#missing2[@]}" -eq 0 ]; then
        pass "$name1 and $name2 export all ${#funcs[@]} functions"
    else
        fail "exports missing: $name1: ${missing1[*]:-none}; $name2: ${missing2[*]:-none}"
    fi
}

# ---------------------------------------------------------------------------------------------
# Compiles one test, with $WARN -O2 -g, into $bin/NAME$exe, linked as MODE says ($link_static or
# $link_shared); on success adds NAME to the array tests (what run_test runs). The compiler may
# carry arguments of its own (CC="ccache cc").
declare -a tests=()
compile() { # name, compiler, language standard (-std=...), source, link mode (static|shared)
    local name="$1" std="$3" source="$4" mode="$5" detail="$5"
    local -a cc link
    read -ra cc <<< "$2"
    if [ "$mode" = static ]; then
        link=("${link_static[@]}")
    else
        link=("${link_shared[@]}")
    fi
    [ "${show_compiler:-0}" = 1 ] && detail="$mode, $(basename "${cc[0]}") $std"
    if "${cc[@]}" "$std" "${WARN[@]}" -O2 -g -I"$inc" "$source" "${link[@]}" -o "$bin/$name$exe"; then
        pass "compile $name ($detail)"
        tests+=("$name")
    else
        fail "compile $name ($detail)"
    fi
}

# ---------------------------------------------------------------------------------------------
# The TLS test certificates, made now in $bin/tls (no private key is committed):
# capi/tests/make-certs.sh (a CA, server, other, client and rogue certificates, an encrypted
# key, DH parameters). Sets tls_dir.
make_certs() {
    tls_dir="$bin/tls"
    if ! command -v openssl > /dev/null; then
        fail "openssl is needed to make the TLS test certificates (apt-get install openssl)"
    elif "$here/make-certs.sh" "$tls_dir" > "$bin/make_certs.log" 2>&1; then
        pass "TLS test certificates made (openssl)"
    else
        cat "$bin/make_certs.log" >&2
        fail "making the TLS test certificates"
    fi
}

# The extra arguments of a test: test_stress's connections (CONNECTIONS, else
# $USOCKETS_STRESS_CONNECTIONS, 5000) and seed ($USOCKETS_STRESS_SEED, 1).
test_args() { # test name, [connections]
    case "$1" in
    test_stress) echo "${2:-${USOCKETS_STRESS_CONNECTIONS:-5000}} ${USOCKETS_STRESS_SEED:-1}" ;;
    *) echo "" ;;
    esac
}

# Runs one test with COMMAND (which runs it with `timeout $TEST_TIMEOUT` and returns its exit
# code), timed: "run NAME (Ns)" passes, any non-zero exit fails.
run_test() { # test name, command...
    local name="$1" start rc secs
    shift
    echo "--- $name"
    start=$(date +%s.%N)
    "$@" && rc=0 || rc=$?
    secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    judge_exit "run $name" "$rc" "$TEST_TIMEOUT" "$secs"
}

# ---------------------------------------------------------------------------------------------
# The C echo server with ARGS, for one peer: starts $echo_server in $bin (--once: it exits
# after its first connection closes) and sets es_pid and es_port (empty: it printed no port
# within $echo_server_wait tenths of a second, or it exited); echo_server_exit then waits up to
# 10 s for it to exit and sets es_exit (124: it had to be killed).
echo_server_start() { # output file, server arguments...
    local log="$1"
    shift
    (cd "$bin" && exec "${echo_server[@]}" 0 --once "$@") > "$log" 2>&1 &
    es_pid=$!
    es_port=""
    for _ in $(seq "$echo_server_wait"); do
        es_port="$(sed -n 's/^listening on port \([0-9]*\).*/\1/p' "$log")"
        [ -n "$es_port" ] && break
        kill -0 "$es_pid" 2> /dev/null || break
        sleep 0.1
    done
}
echo_server_exit() {
    es_exit=0
    for _ in $(seq 100); do kill -0 "$es_pid" 2> /dev/null || break; sleep 0.1; done
    if kill -0 "$es_pid" 2> /dev/null; then
        kill "$es_pid"
        es_exit=124
    fi
    wait "$es_pid" 2> /dev/null || es_exit=$?
}

# The C echo server (built, its name in the lines NAME) with real peers: it answers nc, then
# exits by itself (without nc: a SKIP line, or a FAIL with NO_NC=fail); then, with the TLS
# certificates, over TLS it answers openssl s_client, which verifies it (return code 0).
# PEER (" (Linux)") goes after "nc" in the PASS line.
echo_server_checks() { # name, peer label, no-nc (skip|fail)
    local name="$1" peer="$2" no_nc="$3" reply
    if command -v nc > /dev/null; then
        echo "--- $name + nc"
        echo_server_start "$bin/echo_server.out"
        reply="$(printf 'hello from nc\n' | timeout 10 nc -N 127.0.0.1 "${es_port:-0}" 2>&1)" || true
        echo_server_exit
        if [ "$reply" = "hello from nc" ] && [ "$es_exit" -eq 0 ]; then
            pass "$name answers nc$peer and exits"
        else
            fail "$name + nc: reply '${reply}', server exit $es_exit"
        fi
    elif [ "$no_nc" = fail ]; then
        fail "$name + nc: nc is not installed (apt-get install netcat-openbsd)"
    else
        skip "$name + nc (nc not installed)"
    fi

    if [ -f "$tls_dir/server.pem" ]; then
        echo "--- $name --cert --key + openssl s_client"
        # Relative to $bin, where it runs (Wine maps that to a drive path).
        echo_server_start "$bin/echo_server_tls.out" --cert tls/server.pem --key tls/server.key
        # The line goes out, the echo comes back; a second later stdin ends and s_client closes.
        reply="$( (printf 'hello from s_client\n'; sleep 1) |
            timeout 10 openssl s_client -connect "127.0.0.1:${es_port:-0}" -servername localhost \
                -CAfile "$tls_dir/ca.pem" -verify_return_error 2>&1)" || true
        echo_server_exit
        if grep -q '^hello from s_client$' <<< "$reply" && grep -q 'Verify return code: 0 (ok)' <<< "$reply" &&
            [ "$es_exit" -eq 0 ]; then
            pass "$name (ssl = 1) answers openssl s_client, verify return code 0, and exits"
        else
            printf '%s\n' "$reply" | tail -n 20 >&2
            fail "$name (ssl = 1) + openssl s_client: server exit $es_exit"
        fi
    fi
}
