#!/usr/bin/env bash
# Builds the C library for Windows (x86_64-pc-windows-gnu, on usockets-shim-windows: IOCP) with
# mingw-w64 and runs the C and C++ tests of the C ABI under Wine (wine/runner.sh).
#
#   capi/tests/run-windows.sh
#
# Steps:
#   1. cargo build --profile c-release -p usockets-capi --target x86_64-pc-windows-gnu, with TLS
#      (ring's C and assembly cross-compile with x86_64-w64-mingw32-gcc), laid out in
#      $CARGO_TARGET_DIR/capi-windows/: include/libusockets.h, lib/libusockets.a (static),
#      bin/usockets.dll with its import library lib/libusockets.dll.a (made with dlltool from
#      the DLL's exports; cargo names the DLL usockets_capi.dll) and lib/usockets.def.
#   2. Header and library checks: compile/header_c.c (C11) and header_cxx.cpp (C++17) compile
#      with mingw, -Wall -Wextra -Werror -pedantic (signatures, SOCKET and INVALID_SOCKET, no
#      backend macro on _WIN32); the header alone as C99 and C++11; usockets.dll and
#      libusockets.a export every function of the header (and us_internal_timer_sweep);
#      usockets.dll needs only system DLLs (no libgcc, libwinpthread or libstdc++ DLL).
#   3. Compiles, all with -Wall -Wextra -Werror -pedantic, linked statically (-static: no mingw
#      runtime DLL) against libusockets.a and the system libraries Rust's std needs:
#        * every capi/tests/c/test_*.c with x86_64-w64-mingw32-gcc -std=c11: test_api,
#          test_echo, test_poll (a loopback TCP pair stands in for each pipe: a Windows poll
#          watches sockets only), test_stress, test_timers, test_tls, test_wakeup (mingw-w64's
#          winpthreads); none is POSIX-only any more (SKIP_TESTS lists any that would be);
#        * echo_server.c, for the real-peer checks of step 4;
#        * test_api and test_echo again against usockets.dll (through libusockets.dll.a);
#        * compile/uws_style_windows.cpp with x86_64-w64-mingw32-g++ -std=c++17: the header as
#          uWebSockets uses it, with mingw's default (win32 thread model) g++;
#        * test_cxx.cpp with x86_64-w64-mingw32-g++-posix -std=c++17: it needs std::thread and
#          std::mutex, which the win32-thread-model g++ 12 of Debian 12 lacks (the -posix one
#          comes in the same g++-mingw-w64-x86-64 package).
#   4. Makes the TLS test certificates (capi/tests/make-certs.sh; openssl required) and runs
#      every program under Wine with `timeout $TEST_TIMEOUT` (any non-zero exit fails; the
#      TLS ones get USOCKETS_TLS_DIR); then the Windows echo_server with real Linux peers: nc,
#      and over TLS openssl s_client (verify return code 0).
#   5. The no-TLS build (--no-default-features, its header with LIBUS_NO_SSL): test_echo with
#      its ssl = 1 round as plain TCP.
# Under Wine 8.0 test_api's unix-socket round trip cannot run: Wine's Winsock has no AF_UNIX
# (socket(AF_UNIX, ...) fails with WSAEAFNOSUPPORT, 10047, where Windows 10 1803 and later
# have it). The shim declares that, and test_api asserts the declared behaviour instead: a
# unix listen is refused cleanly (NULL). The summary lists it as a NOTE. Everything else runs.
#
# What this script shares with run.sh (the step record and summary, the header, export and
# compile checks, running a test, the echo server's checks) is in common.sh.
#
# Environment: CARGO, CARGO_TARGET_DIR (default target/), TEST_TIMEOUT (120 s per program;
# the programs' own watchdogs, USOCKETS_TEST_ALARM, default to 10 s less under Wine),
# USOCKETS_STRESS_CONNECTIONS (5000), USOCKETS_STRESS_SEED (1), WIN_CC, WIN_CXX, WIN_CXX_THREADS
# (the three mingw compilers above), and wine/runner.sh's USOCKETS_WINEPREFIX.
# Needs: rustup target add x86_64-pc-windows-gnu; apt-get install gcc-mingw-w64-x86-64
# g++-mingw-w64-x86-64 wine wine64 openssl netcat-openbsd (a missing tool fails its step).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh" # capi, root, target_dir, src, WARN; pass, fail, summary, the checks
runner="$root/wine/runner.sh"
cargo="${CARGO:-cargo}"
triple=x86_64-pc-windows-gnu
rel="$target_dir/$triple/c-release"
out="$target_dir/capi-windows"
inc="$out/include"
lib="$out/lib"
bin="$out/tests"
WIN_CC="${WIN_CC:-x86_64-w64-mingw32-gcc}"
WIN_CXX="${WIN_CXX:-x86_64-w64-mingw32-g++}"
WIN_CXX_THREADS="${WIN_CXX_THREADS:-x86_64-w64-mingw32-g++-posix}"
DLLTOOL=x86_64-w64-mingw32-dlltool
OBJDUMP=x86_64-w64-mingw32-objdump
TEST_TIMEOUT="${TEST_TIMEOUT:-120}"
# What Rust's std inside libusockets.a needs from Windows, as printed by
#   cargo rustc --profile c-release -p usockets-capi --target x86_64-pc-windows-gnu \
#       --crate-type staticlib -- --print native-static-libs
# (crypt32, ncrypt and secur32, which TLS's platform roots use, come as raw-dylib imports inside
# the archive). -lpthread: winpthreads, for test_wakeup and the -posix g++'s libstdc++.
WIN_LIBS=(-lbcrypt -ladvapi32 -lkernel32 -lntdll -luserenv -lws2_32 -ldbghelp -lpthread)
# Tests that cannot be built for Windows, with the reason (none at present).
declare -A SKIP_TESTS=()
# For common.sh's compile and echo_server_start. Statically linked: no mingw runtime DLL.
exe=.exe
link_static=("$lib/libusockets.a" "${WIN_LIBS[@]}" -static)
# The tests' own sockets (test_common.h) need Winsock; the library comes from the DLL.
link_shared=("$lib/libusockets.dll.a" -lws2_32 -static-libgcc)
show_compiler=1
echo_server=("$runner" ./echo_server.exe)
echo_server_wait=300 # the first Wine start may take a while
summary() { print_summary "capi Windows tests (Wine)" capi-windows; }

for tool in "$cargo" "$WIN_CC" "$WIN_CXX" "$WIN_CXX_THREADS" "$DLLTOOL" "$OBJDUMP" wine openssl timeout; do
    command -v "$tool" > /dev/null || {
        echo "run-windows.sh: $tool not found (apt-get install gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 wine wine64 openssl)" >&2
        exit 127
    }
done

# ---------------------------------------------------------------------------------------------
echo "==> 1. build ($triple, c-release, TLS)"
if (cd "$root" && "$cargo" build --profile c-release -p usockets-capi --target "$triple"); then
    pass "build: cargo build --profile c-release -p usockets-capi --target $triple"
else
    fail "build: cargo build --profile c-release -p usockets-capi --target $triple"
    summary
    exit 1
fi
for f in libusockets_capi.a usockets_capi.dll libusockets_capi.dll.a; do
    [ -f "$rel/$f" ] || { fail "build: missing $rel/$f"; summary; exit 1; }
done
rm -rf "$out"
mkdir -p "$inc" "$lib" "$out/bin" "$bin"
cp -f "$capi/include/libusockets.h" "$inc/libusockets.h"
cp -f "$rel/libusockets_capi.a" "$lib/libusockets.a"
cp -f "$rel/usockets_capi.dll" "$out/bin/usockets.dll"

# The DLL's exported names (its export table).
dll_exports() {
    "$OBJDUMP" -p "$1" | sed -n '/^\[Ordinal\/Name Pointer\] Table/,/^$/p' |
        sed -n 's/^[[:space:]]*\[ *[0-9]*\] \(.*\)$/\1/p' | sort -u
}
# The functions an archive defines (external, in a section). objdump, not nm: the objects
# carry LLVM bitcode (.llvmbc), on which an nm with an older LLVM plugin reports no symbols.
archive_functions() {
    "$OBJDUMP" -t "$1" 2> /dev/null | grep -E '\(sec +[1-9][0-9]*\).*\(ty +20\)\(scl +2\)' |
        awk '{print $NF}' | sort -u
}
mapfile -t exports < <(dll_exports "$out/bin/usockets.dll")
# The import library names the DLL by its installed name, usockets.dll.
{
    echo "LIBRARY usockets.dll"
    echo "EXPORTS"
    printf '    %s\n' "${exports[@]}"
} > "$lib/usockets.def"
if [ "${#exports[@]}" -gt 0 ] &&
    "$DLLTOOL" --dllname usockets.dll --def "$lib/usockets.def" --output-lib "$lib/libusockets.dll.a"; then
    pass "layout: $out (libusockets.a, usockets.dll, libusockets.dll.a from ${#exports[@]} exports)"
else
    fail "layout: the import library for usockets.dll (dlltool)"
fi

# ---------------------------------------------------------------------------------------------
echo "==> 2. header and library"
check_header "$WIN_CC" "$WIN_CXX" " with mingw"
# The functions the header declares, plus the upstream-internal one upstream's tests call
# (check_exports checks it in any case; here it also counts in the PASS line).
mapfile -t funcs < <(header_functions)
funcs+=(us_internal_timer_sweep)
a_syms="$(archive_functions "$lib/libusockets.a")"
dll_syms="$(printf '%s\n' "${exports[@]}")"
check_exports usockets.dll "$dll_syms" libusockets.a "$a_syms"
mapfile -t dll_deps < <("$OBJDUMP" -p "$out/bin/usockets.dll" | sed -n 's/^[[:space:]]*DLL Name: //p' | sort -fu)
foreign=()
for d in "${dll_deps[@]}"; do
    case "${d,,}" in
    lib*.dll) foreign+=("$d") ;; # libgcc_s_seh-1, libwinpthread-1, libstdc++-6 ...
    esac
done
if [ "${#dll_deps[@]}" -gt 0 ] && [ "${#foreign[@]}" -eq 0 ]; then
    pass "usockets.dll needs only system DLLs (${dll_deps[*]})"
else
    fail "usockets.dll needs non-system DLLs: ${foreign[*]:-?}"
fi

# ---------------------------------------------------------------------------------------------
echo "==> 3. compile the tests"
for f in "$src"/test_*.c; do
    name="$(basename "$f" .c)"
    if [ -n "${SKIP_TESTS[$name]:-}" ]; then
        note "$name: ${SKIP_TESTS[$name]}"
        continue
    fi
    compile "$name" "$WIN_CC" -std=c11 "$f" static
done
compile uws_style_windows "$WIN_CXX" -std=c++17 "$src/compile/uws_style_windows.cpp" static
compile test_cxx "$WIN_CXX_THREADS" -std=c++17 "$src/test_cxx.cpp" static
compile test_api_shared "$WIN_CC" -std=c11 "$src/test_api.c" shared
compile test_echo_shared "$WIN_CC" -std=c11 "$src/test_echo.c" shared
cp -f "$out/bin/usockets.dll" "$bin/usockets.dll" # found beside the program, as on Windows
# (Not `objdump | grep -q`: under pipefail, grep's early exit would fail objdump with SIGPIPE.)
if [ -f "$bin/test_api_shared.exe" ] &&
    grep -q 'DLL Name: usockets.dll' <<< "$("$OBJDUMP" -p "$bin/test_api_shared.exe")"; then
    pass "test_api_shared imports usockets.dll"
else
    fail "test_api_shared does not import usockets.dll"
fi
if "$WIN_CC" -std=c11 "${WARN[@]}" -O2 -g -I"$inc" "$src/echo_server.c" "$lib/libusockets.a" "${WIN_LIBS[@]}" -static \
    -o "$bin/echo_server.exe"; then
    pass "compile echo_server (static)"
else
    fail "compile echo_server (static)"
fi

# ---------------------------------------------------------------------------------------------
echo "==> 4. run under Wine (timeout ${TEST_TIMEOUT}s each)"
make_certs
# Relative to the programs' directory, their working directory: Wine maps it to a drive path.
export USOCKETS_TLS_DIR=tls
# The programs' own watchdogs (test_common.h: 55 s for test_stress, which is about 4 s on Linux)
# are set for a native run; under Wine every socket call is a round trip to wineserver and
# test_stress's 5,000 connections and 330 MB take 45-60 s on a 2-core machine, so a busy CI
# host tripped the watchdog with no hang at all. Here the watchdog gives way to TEST_TIMEOUT:
# it still ends a hung program, with its message, 10 s before `timeout` would.
export USOCKETS_TEST_ALARM="${USOCKETS_TEST_ALARM:-$((TEST_TIMEOUT > 20 ? TEST_TIMEOUT - 10 : TEST_TIMEOUT))}"
run_wine() { # test name; its output also goes to $bin/NAME.log
    # shellcheck disable=SC2046
    (cd "$bin" && timeout "$TEST_TIMEOUT" "$runner" "./$1.exe" $(test_args "$1")) 2>&1 | tee "$bin/$1.log"
    return "${PIPESTATUS[0]}"
}
for t in "${tests[@]}"; do
    run_test "$t" run_wine "$t"
    while IFS= read -r line; do
        line="${line%$'\r'}"
        note "$t: ${line#*: }"
    done < <(grep 'no AF_UNIX' "$bin/$t.log" || true)
done

# The Windows echo server with real Linux peers: nc, then openssl s_client over TLS.
if [ -f "$bin/echo_server.exe" ]; then
    echo_server_checks echo_server.exe " (Linux)" fail
fi

# ---------------------------------------------------------------------------------------------
echo "==> 5. the no-TLS build: LIBUS_NO_SSL, test_echo's ssl = 1 round as plain TCP"
no_tls="$target_dir/capi-windows-no-tls"
set +e
(
    set -e
    cd "$root"
    "$cargo" build --profile c-release -p usockets-capi --target "$triple" --no-default-features
    rm -rf "$no_tls"
    mkdir -p "$no_tls/include" "$no_tls/lib"
    cp -f "$rel/libusockets_capi.a" "$no_tls/lib/libusockets.a"
    sed 's|^/\* #define LIBUS_NO_SSL \*/$|#define LIBUS_NO_SSL|' "$capi/include/libusockets.h" \
        > "$no_tls/include/libusockets.h"
    grep -qx '#define LIBUS_NO_SSL' "$no_tls/include/libusockets.h"
    "$WIN_CC" -std=c11 "${WARN[@]}" -O2 -g -I"$no_tls/include" "$src/test_echo.c" \
        "$no_tls/lib/libusockets.a" "${WIN_LIBS[@]}" -static -o "$bin/test_echo_no_tls.exe"
    cd "$bin"
    timeout "$TEST_TIMEOUT" "$runner" ./test_echo_no_tls.exe
) > "$bin/no_tls.log" 2>&1
rc=$?
set -e
if [ "$rc" -eq 0 ] && grep -q 'test_echo: ssl=1 ok' "$bin/no_tls.log"; then
    pass "no-TLS build: LIBUS_NO_SSL, test_echo with ssl = 1 as plain TCP"
else
    tail -n 20 "$bin/no_tls.log" >&2
    fail "no-TLS build (see $bin/no_tls.log)"
fi

echo
echo "Link a Windows program against it (mingw, static library):"
echo "  x86_64-w64-mingw32-gcc app.c -I$inc $lib/libusockets.a ${WIN_LIBS[*]} -static"
echo "or against usockets.dll (put it beside the program):"
echo "  x86_64-w64-mingw32-gcc app.c -I$inc $lib/libusockets.dll.a"
summary
[ "$failures" -eq 0 ]
