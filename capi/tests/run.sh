#!/usr/bin/env bash
# Builds the C library and runs the C and C++ tests of the C ABI.
#
#   capi/tests/run.sh                 build, header checks, compile, run, coverage
#   VALGRIND=1 capi/tests/run.sh      also run every test under valgrind (memcheck)
#
# Steps:
#   1. capi/build.sh (cargo build --profile c-release -p usockets-capi, lays out target/capi/).
#   2. Header checks: capi/tests/c/compile/header_c.c (C11) and header_cxx.cpp (C++17) compile
#      with -Wall -Wextra -Werror -pedantic and check every signature against the contract;
#      the header declares exactly the functions of compile/signatures.inc; both libraries
#      export every one of them.
#   3. Every test in capi/tests/c/ (test_*.c with cc -std=c11, test_*.cpp with c++ -std=c++17,
#      both -Wall -Wextra -Werror -pedantic) against target/capi/lib/libusockets.a; test_api and
#      test_echo also against libusockets.so (rpath).
#   4. Makes the TLS test certificates (openssl; required), runs each test with `timeout 60`
#      (any non-zero exit fails), the C echo server with nc and, over TLS, with openssl s_client
#      (verify return code 0), and the no-TLS build (capi/build.sh --no-tls: LIBUS_NO_SSL in its
#      header, test_echo's ssl = 1 round as plain TCP).
#   5. Coverage: every function declared in the header is called in some test of capi/tests/c/.
#   6. With VALGRIND=1: every test under valgrind --error-exitcode=1 --leak-check=full
#      --errors-for-leak-kinds=definite,indirect (no suppressions but test_tls's two for ring's
#      AES-GCM assembly, explained in valgrind-tls.supp; the stress test with
#      $VALGRIND_CONNECTIONS connections, default 500).
#
# Environment: CC, CXX, TEST_TIMEOUT (60), VALGRIND_TIMEOUT (900), VALGRIND_CONNECTIONS (500),
# USOCKETS_STRESS_CONNECTIONS (5000), USOCKETS_STRESS_SEED (1).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
capi="$(cd "$here/.." && pwd)"
root="$(cd "$capi/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
out="$target_dir/capi"
bin="$out/tests"
src="$here/c"
CC="${CC:-cc}"
CXX="${CXX:-c++}"
TEST_TIMEOUT="${TEST_TIMEOUT:-60}"
VALGRIND_TIMEOUT="${VALGRIND_TIMEOUT:-900}"
VALGRIND_CONNECTIONS="${VALGRIND_CONNECTIONS:-500}"
WARN=(-Wall -Wextra -Werror -pedantic)
LIBS_PRIVATE=(-lpthread -ldl -lm -lrt -lutil)

declare -a results=()
failures=0
pass() { results+=("PASS  $1"); echo "  PASS  $1"; }
fail() { results+=("FAIL  $1"); echo "  FAIL  $1" >&2; failures=$((failures + 1)); }

summary() {
    echo
    echo "==================== capi tests: summary ===================="
    for r in "${results[@]}"; do echo "  $r"; done
    echo "-------------------------------------------------------------"
    if [ "$failures" -eq 0 ]; then
        echo "  all ${#results[@]} steps passed"
    else
        echo "  $failures of ${#results[@]} steps FAILED"
    fi
    # The plain closing line CI tools read.
    echo "capi: $(( ${#results[@]} - failures )) passed, $failures failed"
}

# ---------------------------------------------------------------------------------------------
echo "==> 1. build"
if "$capi/build.sh"; then
    pass "build (capi/build.sh)"
else
    fail "build (capi/build.sh)"
    summary
    exit 1
fi
mkdir -p "$bin"
inc="$out/include"
lib="$out/lib"

# ---------------------------------------------------------------------------------------------
echo "==> 2. header"
if "$CC" -std=c11 "${WARN[@]}" -I"$inc" -I"$src/compile" -c "$src/compile/header_c.c" -o "$bin/header_c.o"; then
    pass "header compiles as C11 (-Wall -Wextra -Werror -pedantic), signatures match the contract"
else
    fail "header compiles as C11, signatures match the contract"
fi
if "$CXX" -std=c++17 "${WARN[@]}" -I"$inc" -I"$src/compile" -c "$src/compile/header_cxx.cpp" -o "$bin/header_cxx.o"; then
    pass "header compiles as C++17 (-Wall -Wextra -Werror -pedantic), signatures match the contract"
else
    fail "header compiles as C++17, signatures match the contract"
fi
# Also with -std=c99 / gnu89-free C and older C++: no C11-only construct unguarded.
if "$CC" -std=c99 "${WARN[@]}" -I"$inc" -x c -c - -o /dev/null <<< '#include "libusockets.h"
int main(void) { return LIBUS_SOCKET_READABLE - 1; }' &&
   "$CXX" -std=c++11 "${WARN[@]}" -I"$inc" -x c++ -c - -o /dev/null <<< '#include "libusockets.h"
int main() { return LIBUS_SOCKET_READABLE - 1; }'; then
    pass "header also compiles as C99 and C++11"
else
    fail "header also compiles as C99 and C++11"
fi

# The functions the header declares (prototypes start with WIN32_EXPORT).
header_functions() {
    # One name per prototype: the first us_* identifier followed by "(" on the line.
    grep -E '^WIN32_EXPORT' "$capi/include/libusockets.h" |
        sed -E 's/^[^(]*[^a-z0-9_](us_[a-z0-9_]+) *\(.*/\1/' | sort -u
}
mapfile -t funcs < <(header_functions)
mapfile -t contract < <(grep -oE '^SIG\(us_[a-z0-9_]+' "$src/compile/signatures.inc" | sed 's/^SIG(//' | sort -u)
if [ "${#funcs[@]}" -eq 85 ] && [ "$(printf '%s\n' "${funcs[@]}")" = "$(printf '%s\n' "${contract[@]}")" ]; then
    pass "header declares exactly the 83 contract functions + 2 non-upstream (${#funcs[@]})"
else
    fail "header declares ${#funcs[@]} functions; differences with the contract list:"
    diff <(printf '%s\n' "${funcs[@]}") <(printf '%s\n' "${contract[@]}") >&2
fi
missing_so=()
missing_a=()
so_syms="$(nm -D --defined-only "$lib/libusockets.so.0" 2>/dev/null | awk '$2 == "T" {print $3}')"
# readelf, not nm: the archive's objects carry LLVM bitcode (.llvmbc, from LTO and from std),
# and an nm that loads an older LLVM's linker plugin (llvm-14 on Debian 12) reports no symbols
# for them. readelf reads the ELF symbol tables only.
a_syms="$(readelf -sW "$lib/libusockets.a" 2>/dev/null |
    awk '$4 == "FUNC" && $5 == "GLOBAL" && $7 != "UND" {print $8}')"
# Plus the upstream-internal function upstream's tests call (not in upstream's public header).
for f in "${funcs[@]}" us_internal_timer_sweep; do
    grep -qx "$f" <<< "$so_syms" || missing_so+=("$f")
    grep -qx "$f" <<< "$a_syms" || missing_a+=("$f")
done
if [ "${#missing_so[@]}" -eq 0 ] && [ "${#missing_a[@]}" -eq 0 ]; then
    pass "libusockets.so and libusockets.a export all ${#funcs[@]} functions"
else
    fail "exports missing: .so: ${missing_so[*]:-none}; .a: ${missing_a[*]:-none}"
fi
soname="$(readelf -d "$lib/libusockets.so.0" 2>/dev/null | sed -n 's/.*SONAME.*\[\(.*\)\].*/\1/p')"
if [ "$soname" = "libusockets.so.0" ]; then
    pass "SONAME is libusockets.so.0"
else
    fail "SONAME is '${soname:-missing}', expected libusockets.so.0"
fi
if PKG_CONFIG_PATH="$lib/pkgconfig" pkg-config --exists libusockets 2>/dev/null &&
   [ "$(PKG_CONFIG_PATH="$lib/pkgconfig" pkg-config --variable=prefix libusockets)" = "$out" ]; then
    pass "pkg-config finds libusockets (prefix $out)"
else
    fail "pkg-config libusockets (pkg-config missing or libusockets.pc wrong)"
fi

# ---------------------------------------------------------------------------------------------
echo "==> 3. compile the tests"
declare -a tests=()
compile() { # name, compiler+std, source, link mode (static|shared)
    local name="$1" mode="$4"
    local -a cc=($2)
    local link=()
    if [ "$mode" = static ]; then
        link=("$lib/libusockets.a" "${LIBS_PRIVATE[@]}")
    else
        link=(-L"$lib" -lusockets -Wl,-rpath,"$lib" -lpthread)
    fi
    if "${cc[@]}" "${WARN[@]}" -O2 -g -I"$inc" "$3" "${link[@]}" -o "$bin/$name"; then
        pass "compile $name ($mode)"
        tests+=("$name")
    else
        fail "compile $name ($mode)"
    fi
}
for f in "$src"/test_*.c; do
    compile "$(basename "$f" .c)" "$CC -std=c11" "$f" static
done
for f in "$src"/test_*.cpp; do
    compile "$(basename "$f" .cpp)" "$CXX -std=c++17" "$f" static
done
compile test_api_shared "$CC -std=c11" "$src/test_api.c" shared
compile test_echo_shared "$CC -std=c11" "$src/test_echo.c" shared
if "$CC" -std=c11 "${WARN[@]}" -O2 -g -I"$inc" "$src/echo_server.c" "$lib/libusockets.a" "${LIBS_PRIVATE[@]}" \
    -o "$bin/echo_server"; then
    pass "compile echo_server (static)"
else
    fail "compile echo_server (static)"
fi
if [ -e "$bin/test_api_shared" ] && readelf -d "$bin/test_api_shared" | grep -q 'NEEDED.*\[libusockets.so.0\]'; then
    pass "test_api_shared links libusockets.so.0 (by its SONAME)"
else
    fail "test_api_shared does not depend on libusockets.so.0"
fi

# ---------------------------------------------------------------------------------------------
echo "==> 4. run the tests (timeout ${TEST_TIMEOUT}s each)"
# Certificates for test_tls and the TLS echo_server, made now (no private key is committed):
# capi/tests/make-certs.sh (a CA, server, other, client and rogue certificates, an encrypted
# key, DH parameters).
tls_dir="$bin/tls"
if ! command -v openssl > /dev/null; then
    fail "openssl is needed to make the TLS test certificates (apt-get install openssl)"
elif "$here/make-certs.sh" "$tls_dir" > "$bin/make_certs.log" 2>&1; then
    pass "TLS test certificates made (openssl)"
else
    cat "$bin/make_certs.log" >&2
    fail "making the TLS test certificates"
fi
export USOCKETS_TLS_DIR="$tls_dir"
test_args() { # extra arguments of a test
    case "$1" in
    test_stress) echo "${2:-${USOCKETS_STRESS_CONNECTIONS:-5000}} ${USOCKETS_STRESS_SEED:-1}" ;;
    *) echo "" ;;
    esac
}
for t in "${tests[@]}"; do
    echo "--- $t"
    start=$(date +%s.%N)
    # shellcheck disable=SC2046
    (cd "$bin" && timeout "$TEST_TIMEOUT" "./$t" $(test_args "$t"))
    rc=$?
    secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    if [ $rc -eq 0 ]; then
        pass "run $t (${secs}s)"
    elif [ $rc -eq 124 ]; then
        fail "run $t: timed out after ${TEST_TIMEOUT}s"
    else
        fail "run $t: exit code $rc (${secs}s)"
    fi
done

# The C echo server with ARGS, for one peer: starts it (--once: it exits after its first
# connection closes) and sets es_pid and es_port; echo_server_exit then waits up to 10 s for it
# to exit and sets es_exit (124: it had to be killed).
echo_server_start() { # output file, server arguments...
    local out="$1"
    shift
    "$bin/echo_server" 0 --once "$@" > "$out" 2>&1 &
    es_pid=$!
    es_port=""
    for _ in $(seq 50); do
        es_port="$(sed -n 's/^listening on port //p' "$out")"
        [ -n "$es_port" ] && break
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

# The C echo server answers a real peer (nc), then exits by itself.
if [ -x "$bin/echo_server" ] && command -v nc > /dev/null; then
    echo "--- echo_server + nc"
    echo_server_start "$bin/echo_server.out"
    reply="$(printf 'hello from nc\n' | timeout 10 nc -N 127.0.0.1 "${es_port:-0}" 2>&1)"
    echo_server_exit
    if [ "$reply" = "hello from nc" ] && [ "$es_exit" -eq 0 ]; then
        pass "echo_server answers nc and exits"
    else
        fail "echo_server + nc: reply '${reply}', server exit $es_exit"
    fi
elif [ -x "$bin/echo_server" ]; then
    results+=("SKIP  echo_server + nc (nc not installed)")
fi

# The C echo server over TLS answers openssl s_client, which verifies it (return code 0).
if [ -x "$bin/echo_server" ] && [ -f "$tls_dir/server.pem" ]; then
    echo "--- echo_server --cert --key + openssl s_client"
    echo_server_start "$bin/echo_server_tls.out" --cert "$tls_dir/server.pem" --key "$tls_dir/server.key"
    # The line goes out, the echo comes back; a second later stdin ends and s_client closes.
    reply="$( (printf 'hello from s_client\n'; sleep 1) |
        timeout 10 openssl s_client -connect "127.0.0.1:${es_port:-0}" -servername localhost \
            -CAfile "$tls_dir/ca.pem" -verify_return_error 2>&1)"
    echo_server_exit
    if grep -q '^hello from s_client$' <<< "$reply" && grep -q 'Verify return code: 0 (ok)' <<< "$reply" &&
        [ "$es_exit" -eq 0 ]; then
        pass "echo_server (ssl = 1) answers openssl s_client, verify return code 0, and exits"
    else
        printf '%s\n' "$reply" | tail -n 20 >&2
        fail "echo_server (ssl = 1) + openssl s_client: server exit $es_exit"
    fi
fi

# The no-TLS build: its header defines LIBUS_NO_SSL, and test_echo's ssl = 1 round runs as
# plain TCP against it.
echo "--- no-TLS build (capi/build.sh --no-tls)"
no_tls="$target_dir/capi-no-tls"
if "$capi/build.sh" --no-tls > "$bin/build_no_tls.log" 2>&1 &&
    grep -qx '#define LIBUS_NO_SSL' "$no_tls/include/libusockets.h" &&
    ! grep -qx '#define LIBUS_NO_SSL' "$inc/libusockets.h" &&
    "$CC" -std=c11 "${WARN[@]}" -O2 -g -I"$no_tls/include" "$src/test_echo.c" \
        "$no_tls/lib/libusockets.a" "${LIBS_PRIVATE[@]}" -o "$bin/test_echo_no_tls" &&
    (cd "$bin" && timeout "$TEST_TIMEOUT" ./test_echo_no_tls); then
    pass "no-TLS build: LIBUS_NO_SSL defined (only there), test_echo with ssl = 1 as plain TCP"
else
    tail -n 20 "$bin/build_no_tls.log" >&2
    fail "no-TLS build (see $bin/build_no_tls.log)"
fi

# ---------------------------------------------------------------------------------------------
echo "==> 5. coverage: every header function is called by some test in capi/tests/c/"
uncovered=()
shopt -s nullglob
test_sources=("$src"/*.c "$src"/*.cpp)
for f in "${funcs[@]}"; do
    grep -qE "(^|[^a-zA-Z0-9_])$f *\(" "${test_sources[@]}" || uncovered+=("$f")
done
if [ "${#uncovered[@]}" -eq 0 ]; then
    pass "coverage: all ${#funcs[@]} header functions are called by the tests"
else
    fail "coverage: not called by any test: ${uncovered[*]}"
fi

# ---------------------------------------------------------------------------------------------
if [ "${VALGRIND:-0}" = 1 ]; then
    echo "==> 6. valgrind (timeout ${VALGRIND_TIMEOUT}s each)"
    if ! command -v valgrind > /dev/null; then
        fail "valgrind requested but not installed"
    else
        for t in "${tests[@]}"; do
            echo "--- valgrind $t"
            # shellcheck disable=SC2046
            # test_tls only: ring's AES-GCM assembly gives memcheck's known false positive
            # (see the file); every other test runs with no suppression.
            supp=()
            [ "$t" = test_tls ] && supp=(--suppressions="$here/valgrind-tls.supp")
            (cd "$bin" && USOCKETS_TEST_ALARM=$((VALGRIND_TIMEOUT - 10)) timeout "$VALGRIND_TIMEOUT" \
                valgrind -q "${supp[@]}" --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
                "./$t" $(test_args "$t" "$VALGRIND_CONNECTIONS"))
            rc=$?
            if [ $rc -eq 0 ]; then
                pass "valgrind $t"
            elif [ $rc -eq 124 ]; then
                fail "valgrind $t: timed out after ${VALGRIND_TIMEOUT}s"
            else
                fail "valgrind $t: exit code $rc"
            fi
        done
    fi
fi

summary
[ "$failures" -eq 0 ]
