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
# Environment: CARGO, CARGO_TARGET_DIR (default target/), TEST_TIMEOUT (120 s per program),
# USOCKETS_STRESS_CONNECTIONS (5000), USOCKETS_STRESS_SEED (1), WIN_CC, WIN_CXX, WIN_CXX_THREADS
# (the three mingw compilers above), and wine/runner.sh's USOCKETS_WINEPREFIX.
# Needs: rustup target add x86_64-pc-windows-gnu; apt-get install gcc-mingw-w64-x86-64
# g++-mingw-w64-x86-64 wine wine64 openssl netcat-openbsd (a missing tool fails its step).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
capi="$(cd "$here/.." && pwd)"
root="$(cd "$capi/.." && pwd)"
runner="$root/wine/runner.sh"
cargo="${CARGO:-cargo}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
triple=x86_64-pc-windows-gnu
rel="$target_dir/$triple/c-release"
out="$target_dir/capi-windows"
inc="$out/include"
lib="$out/lib"
bin="$out/tests"
src="$here/c"
WIN_CC="${WIN_CC:-x86_64-w64-mingw32-gcc}"
WIN_CXX="${WIN_CXX:-x86_64-w64-mingw32-g++}"
WIN_CXX_THREADS="${WIN_CXX_THREADS:-x86_64-w64-mingw32-g++-posix}"
DLLTOOL=x86_64-w64-mingw32-dlltool
OBJDUMP=x86_64-w64-mingw32-objdump
TEST_TIMEOUT="${TEST_TIMEOUT:-120}"
WARN=(-Wall -Wextra -Werror -pedantic)
# What Rust's std inside libusockets.a needs from Windows, as printed by
#   cargo rustc --profile c-release -p usockets-capi --target x86_64-pc-windows-gnu \
#       --crate-type staticlib -- --print native-static-libs
# (crypt32, ncrypt and secur32, which TLS's platform roots use, come as raw-dylib imports inside
# the archive). -lpthread: winpthreads, for test_wakeup and the -posix g++'s libstdc++.
WIN_LIBS=(-lbcrypt -ladvapi32 -lkernel32 -lntdll -luserenv -lws2_32 -ldbghelp -lpthread)
# Tests that cannot be built for Windows, with the reason (none at present).
declare -A SKIP_TESTS=()

declare -a results=()
failures=0
pass() { results+=("PASS  $1"); echo "  PASS  $1"; }
fail() { results+=("FAIL  $1"); echo "  FAIL  $1" >&2; failures=$((failures + 1)); }
note() { results+=("NOTE  $1"); echo "  NOTE  $1"; }

summary() {
    echo
    echo "================ capi Windows tests (Wine): summary ================"
    for r in "${results[@]}"; do echo "  $r"; done
    echo "--------------------------------------------------------------------"
    if [ "$failures" -eq 0 ]; then
        echo "  all steps passed"
    else
        echo "  $failures step(s) FAILED"
    fi
    echo "capi-windows: $(printf '%s\n' "${results[@]}" | grep -c '^PASS') passed, $failures failed"
}

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
if "$WIN_CC" -std=c11 "${WARN[@]}" -I"$inc" -I"$src/compile" -c "$src/compile/header_c.c" -o "$bin/header_c.o"; then
    pass "header compiles as C11 with mingw (-pedantic), signatures match the contract"
else
    fail "header compiles as C11 with mingw, signatures match the contract"
fi
if "$WIN_CXX" -std=c++17 "${WARN[@]}" -I"$inc" -I"$src/compile" -c "$src/compile/header_cxx.cpp" -o "$bin/header_cxx.o"; then
    pass "header compiles as C++17 with mingw (-pedantic), signatures match the contract"
else
    fail "header compiles as C++17 with mingw, signatures match the contract"
fi
if "$WIN_CC" -std=c99 "${WARN[@]}" -I"$inc" -x c -c - -o /dev/null <<< '#include "libusockets.h"
int main(void) { return LIBUS_SOCKET_READABLE - 1; }' &&
    "$WIN_CXX" -std=c++11 "${WARN[@]}" -I"$inc" -x c++ -c - -o /dev/null <<< '#include "libusockets.h"
int main() { return LIBUS_SOCKET_READABLE - 1; }'; then
    pass "header also compiles as C99 and C++11 with mingw"
else
    fail "header also compiles as C99 and C++11 with mingw"
fi

# The functions the header declares (prototypes start with WIN32_EXPORT), plus the
# upstream-internal one upstream's tests call.
mapfile -t funcs < <(grep -E '^WIN32_EXPORT' "$capi/include/libusockets.h" |
    sed -E 's/^[^(]*[^a-z0-9_](us_[a-z0-9_]+) *\(.*/\1/' | sort -u)
funcs+=(us_internal_timer_sweep)
a_syms="$(archive_functions "$lib/libusockets.a")"
dll_syms="$(printf '%s\n' "${exports[@]}")"
missing_dll=()
missing_a=()
for f in "${funcs[@]}"; do
    grep -qx "$f" <<< "$dll_syms" || missing_dll+=("$f")
    grep -qx "$f" <<< "$a_syms" || missing_a+=("$f")
done
if [ "${#funcs[@]}" -gt 80 ] && [ "${#missing_dll[@]}" -eq 0 ] && [ "${#missing_a[@]}" -eq 0 ]; then
    pass "usockets.dll and libusockets.a export all ${#funcs[@]} functions"
else
    fail "exports missing: usockets.dll: ${missing_dll[*]:-none}; libusockets.a: ${missing_a[*]:-none}"
fi
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
declare -a tests=()
compile() { # name, compiler, std, source, link mode (static|shared)
    local name="$1" cc="$2" std="$3" source="$4" mode="$5"
    local link=()
    if [ "$mode" = static ]; then
        link=("$lib/libusockets.a" "${WIN_LIBS[@]}" -static)
    else
        # The tests' own sockets (test_common.h) need Winsock; the library comes from the DLL.
        link=("$lib/libusockets.dll.a" -lws2_32 -static-libgcc)
    fi
    if "$cc" "$std" "${WARN[@]}" -O2 -g -I"$inc" "$source" "${link[@]}" -o "$bin/$name.exe"; then
        pass "compile $name ($mode, $(basename "$cc") $std)"
        tests+=("$name")
    else
        fail "compile $name ($mode, $(basename "$cc") $std)"
    fi
}
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
tls_dir="$bin/tls"
if "$here/make-certs.sh" "$tls_dir" > "$bin/make_certs.log" 2>&1; then
    pass "TLS test certificates made (openssl)"
else
    cat "$bin/make_certs.log" >&2
    fail "making the TLS test certificates"
fi
# Relative to the programs' directory, their working directory: Wine maps it to a drive path.
export USOCKETS_TLS_DIR=tls
test_args() { # extra arguments of a test
    case "$1" in
    test_stress) echo "${USOCKETS_STRESS_CONNECTIONS:-5000} ${USOCKETS_STRESS_SEED:-1}" ;;
    *) echo "" ;;
    esac
}
for t in "${tests[@]}"; do
    echo "--- $t"
    start=$(date +%s.%N)
    set +e
    # shellcheck disable=SC2046
    (cd "$bin" && timeout "$TEST_TIMEOUT" "$runner" "./$t.exe" $(test_args "$t")) 2>&1 | tee "$bin/$t.log"
    rc=${PIPESTATUS[0]}
    set -e
    secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    if [ "$rc" -eq 0 ]; then
        pass "run $t (${secs}s)"
    elif [ "$rc" -eq 124 ]; then
        fail "run $t: timed out after ${TEST_TIMEOUT}s"
    else
        fail "run $t: exit code $rc (${secs}s)"
    fi
    while IFS= read -r line; do
        line="${line%$'\r'}"
        note "$t: ${line#*: }"
    done < <(grep 'no AF_UNIX' "$bin/$t.log" || true)
done

# The Windows echo server with ARGS, for one Linux peer: started under Wine (--once: it exits
# after its first connection closes); sets es_pid and es_port. echo_server_exit waits up to
# 10 s for it to exit and sets es_exit (124: it had to be killed).
echo_server_start() { # output file, server arguments...
    local log="$1"
    shift
    (cd "$bin" && exec "$runner" ./echo_server.exe 0 --once "$@") > "$log" 2>&1 &
    es_pid=$!
    es_port=""
    for _ in $(seq 300); do # the first Wine start may take a while
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

if [ -f "$bin/echo_server.exe" ] && command -v nc > /dev/null; then
    echo "--- echo_server.exe + nc"
    echo_server_start "$bin/echo_server.out"
    set +e
    reply="$(printf 'hello from nc\n' | timeout 10 nc -N 127.0.0.1 "${es_port:-0}" 2>&1)"
    set -e
    echo_server_exit
    if [ "$reply" = "hello from nc" ] && [ "$es_exit" -eq 0 ]; then
        pass "echo_server.exe answers nc (Linux) and exits"
    else
        fail "echo_server.exe + nc: reply '${reply}', server exit $es_exit"
    fi
elif [ -f "$bin/echo_server.exe" ]; then
    fail "echo_server.exe + nc: nc is not installed (apt-get install netcat-openbsd)"
fi

if [ -f "$bin/echo_server.exe" ] && [ -f "$tls_dir/server.pem" ]; then
    echo "--- echo_server.exe --cert --key + openssl s_client"
    echo_server_start "$bin/echo_server_tls.out" --cert tls/server.pem --key tls/server.key
    # The line goes out, the echo comes back; a second later stdin ends and s_client closes.
    set +e
    reply="$( (printf 'hello from s_client\n'; sleep 1) |
        timeout 10 openssl s_client -connect "127.0.0.1:${es_port:-0}" -servername localhost \
            -CAfile "$tls_dir/ca.pem" -verify_return_error 2>&1)"
    set -e
    echo_server_exit
    if grep -q '^hello from s_client$' <<< "$reply" && grep -q 'Verify return code: 0 (ok)' <<< "$reply" &&
        [ "$es_exit" -eq 0 ]; then
        pass "echo_server.exe (ssl = 1) answers openssl s_client, verify return code 0, and exits"
    else
        printf '%s\n' "$reply" | tail -n 20 >&2
        fail "echo_server.exe (ssl = 1) + openssl s_client: server exit $es_exit"
    fi
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
