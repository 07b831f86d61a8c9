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
# What this script shares with run-windows.sh (the step record and summary, the header, export
# and compile checks, running a test, the echo server's checks) is in common.sh.
#
# Environment: CC, CXX, TEST_TIMEOUT (60), VALGRIND_TIMEOUT (900), VALGRIND_CONNECTIONS (500),
# USOCKETS_STRESS_CONNECTIONS (5000), USOCKETS_STRESS_SEED (1), CAPI_FEATURES (more cargo
# features of usockets-capi for both builds, passed on by capi/build.sh; default none):
#
#   CAPI_FEATURES=uring capi/tests/run.sh     the same tests with every loop on io_uring
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh" # capi, root, target_dir, src, WARN; pass, fail, summary, the checks
out="$target_dir/capi"
inc="$out/include"
lib="$out/lib"
bin="$out/tests"
CC="${CC:-cc}"
CXX="${CXX:-c++}"
TEST_TIMEOUT="${TEST_TIMEOUT:-60}"
VALGRIND_TIMEOUT="${VALGRIND_TIMEOUT:-900}"
VALGRIND_CONNECTIONS="${VALGRIND_CONNECTIONS:-500}"
LIBS_PRIVATE=(-lpthread -ldl -lm -lrt -lutil)
# For common.sh's compile and echo_server_start.
exe=""
link_static=("$lib/libusockets.a" "${LIBS_PRIVATE[@]}")
link_shared=(-L"$lib" -lusockets -Wl,-rpath,"$lib" -lpthread)
echo_server=("$bin/echo_server")
echo_server_wait=50
summary() { print_summary "capi tests" capi; }

# ---------------------------------------------------------------------------------------------
echo "==> 1. build"
if "$capi/build.sh"; then
    pass "build (capi/build.sh)"
    [ -n "${CAPI_FEATURES:-}" ] && note "built with CAPI_FEATURES=$CAPI_FEATURES"
else
    fail "build (capi/build.sh)"
    summary
    exit 1
fi
mkdir -p "$bin"

# ---------------------------------------------------------------------------------------------
echo "==> 2. header"
check_header "$CC" "$CXX" ""
mapfile -t funcs < <(header_functions)
mapfile -t contract < <(grep -oE '^SIG\(us_[a-z0-9_]+' "$src/compile/signatures.inc" | sed 's/^SIG(//' | sort -u)
if [ "${#funcs[@]}" -eq 85 ] && [ "$(printf '%s\n' "${funcs[@]}")" = "$(printf '%s\n' "${contract[@]}")" ]; then
    pass "header declares exactly the 83 contract functions + 2 non-upstream (${#funcs[@]})"
else
    fail "header declares ${#funcs[@]} functions; differences with the contract list:"
    diff <(printf '%s\n' "${funcs[@]}") <(printf '%s\n' "${contract[@]}") >&2
fi
so_syms="$(nm -D --defined-only "$lib/libusockets.so.0" 2>/dev/null | awk '$2 == "T" {print $3}')"
# readelf, not nm: the archive's objects carry LLVM bitcode (.llvmbc, from LTO and from std),
# and an nm that loads an older LLVM's linker plugin (llvm-14 on Debian 12) reports no symbols
# for them. readelf reads the ELF symbol tables only.
a_syms="$(readelf -sW "$lib/libusockets.a" 2>/dev/null |
    awk '$4 == "FUNC" && $5 == "GLOBAL" && $7 != "UND" {print $8}')"
check_exports libusockets.so "$so_syms" libusockets.a "$a_syms"
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
for f in "$src"/test_*.c; do
    compile "$(basename "$f" .c)" "$CC" -std=c11 "$f" static
done
for f in "$src"/test_*.cpp; do
    compile "$(basename "$f" .cpp)" "$CXX" -std=c++17 "$f" static
done
compile test_api_shared "$CC" -std=c11 "$src/test_api.c" shared
compile test_echo_shared "$CC" -std=c11 "$src/test_echo.c" shared
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
make_certs
export USOCKETS_TLS_DIR="$tls_dir"
run_native() { # test name
    # shellcheck disable=SC2046
    (cd "$bin" && timeout "$TEST_TIMEOUT" "./$1" $(test_args "$1"))
}
for t in "${tests[@]}"; do
    run_test "$t" run_native "$t"
done

# The C echo server with real peers: nc, then openssl s_client over TLS.
if [ -x "$bin/echo_server" ]; then
    echo_server_checks echo_server "" skip
fi

# Built with the `uring` feature, the library must really run on io_uring: the C echo server
# holds an io_uring descriptor and no epoll one (from /proc), then exits after one connection.
case ",${CAPI_FEATURES:-}," in
*,uring,*)
    echo "--- echo_server runs on io_uring (CAPI_FEATURES=$CAPI_FEATURES)"
    echo_server_start "$bin/echo_server_uring.out"
    kinds="$(find /proc/"$es_pid"/fd -mindepth 1 -exec readlink {} + 2> /dev/null |
        sed -n 's/^anon_inode:\[\(.*\)\]$/\1/p' | sort -u | tr '\n' ' ')"
    # --once: a connection opened and closed ends it.
    (exec 3<> "/dev/tcp/127.0.0.1/${es_port:-0}") 2> /dev/null || true
    echo_server_exit
    if [ -n "$es_port" ] && grep -qw io_uring <<< "$kinds" && ! grep -qw eventpoll <<< "$kinds" &&
        [ "$es_exit" -eq 0 ]; then
        pass "echo_server runs on io_uring (anonymous descriptors: ${kinds% })"
    else
        fail "echo_server on io_uring: port '${es_port}', anonymous descriptors '${kinds}', exit $es_exit"
    fi
    ;;
esac

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
            judge_exit "valgrind $t" $? "$VALGRIND_TIMEOUT"
        done
    fi
fi

summary
[ "$failures" -eq 0 ]
