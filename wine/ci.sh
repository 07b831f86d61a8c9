#!/usr/bin/env bash
# The Windows stage of CI (called by .ci/run; see wine/README.md): builds the Windows target
# with mingw and runs its suites under Wine. Correctness only: nothing is timed or benchmarked
# under Wine (it is ~50x slower per socket call).
#
#   1. installs what it needs when missing: the x86_64-pc-windows-gnu and -msvc targets, mingw
#      (gcc-mingw-w64-x86-64, g++-mingw-w64-x86-64), Wine (wine, wine64), netcat-openbsd and
#      openssl (the C TLS test's certificates and s_client);
#   2. `cargo check --target x86_64-pc-windows-msvc` of the Rust crates that build no C (most
#      Windows users build for msvc; nothing links here), and fails if ring (C) shows up there;
#   3. clippy -D warnings on the Windows crates for x86_64-pc-windows-gnu, and the shim's docs;
#   4. builds every example for x86_64-pc-windows-gnu;
#   5. under Wine (wine/runner.sh is cargo's runner for that target): shim-windows' unit tests
#      and the whole conformance suite, the TLS echo over loopback (tests/echo.rs, `loopback`),
#      and the hammer with 1000 connections (tests/hammer_windows.rs);
#   6. the Windows echo_server under Wine answers `nc` from the Linux side: 1 MiB echoed byte
#      for byte, then FIN answered with FIN;
#   7. the C ABI: capi/tests/run-windows.sh (C tests built with mingw, run under Wine; a C++
#      program in uWebSockets' style compiled against the header).
set -euo pipefail

cd "$(dirname "$0")/.."
GNU=x86_64-pc-windows-gnu
MSVC=x86_64-pc-windows-msvc

step() { echo "--- $*"; }

# A Wine prefix of this run's own (wine/runner.sh makes it on first use), removed at the end
# with whatever Wine left running in it.
prefix_dir=$(mktemp -d)
export USOCKETS_WINEPREFIX=$prefix_dir/prefix
cleanup() {
    WINEPREFIX=$USOCKETS_WINEPREFIX wineserver -k 2>/dev/null || true
    rm -rf "$prefix_dir"
}
trap cleanup EXIT

install() {
    rustup target add "$GNU" "$MSVC"
    local missing=()
    command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
    command -v x86_64-w64-mingw32-g++ >/dev/null || missing+=(g++-mingw-w64-x86-64)
    command -v wine >/dev/null || missing+=(wine wine64)
    dpkg -s netcat-openbsd >/dev/null 2>&1 || missing+=(netcat-openbsd)
    command -v openssl >/dev/null || missing+=(openssl)
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi
}

msvc_check() {
    local crates=(-p usockets-core -p usockets-shim-windows -p usockets-conformance -p usockets)
    if cargo tree "${crates[@]}" -p usockets-capi --target "$MSVC" --no-default-features \
        -e normal,build --prefix none | grep -q '^ring v'; then
        echo "windows: ring (C code) is in what the msvc check compiles" >&2
        return 1
    fi
    cargo check --target "$MSVC" -p usockets-shim-windows --tests
    cargo check --target "$MSVC" -p usockets-core -p usockets-conformance
    cargo check --target "$MSVC" -p usockets --no-default-features --lib
    cargo check --target "$MSVC" -p usockets-capi --no-default-features
}

echo_over_nc() {
    local exe=${CARGO_TARGET_DIR:-target}/$GNU/debug/examples/echo_server.exe
    local work out port pid
    work=$(mktemp -d)
    out=$work/server.out
    wine/runner.sh "$exe" --port 0 >"$out" 2>"$work/server.err" &
    pid=$!
    for _ in $(seq 1 120); do
        port=$(sed -n 's/^listening on port \([0-9]*\).*/\1/p' "$out")
        [ -n "$port" ] && break
        sleep 0.5
    done
    if [ -z "${port:-}" ]; then
        echo "echo_server under Wine printed no port:" >&2
        cat "$out" "$work/server.err" >&2
        kill "$pid" 2>/dev/null || true
        return 1
    fi
    head -c 1048576 /dev/urandom >"$work/in"
    # -N: shut down our side at the end of the input; the server answers FIN with the rest of
    # its echo, then FIN, which ends nc.
    timeout 120 nc -N 127.0.0.1 "$port" <"$work/in" >"$work/got"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if ! cmp "$work/in" "$work/got"; then
        echo "echo_server under Wine: the echo differs ($(stat -c %s "$work/got") of 1048576 bytes)" >&2
        return 1
    fi
    echo "echo_server under Wine echoed 1 MiB to nc byte for byte on port $port"
    rm -rf "$work"
}

step install; install
step "cargo check --target $MSVC"; msvc_check
step "clippy --target $GNU"
cargo clippy --target "$GNU" -p usockets-shim-windows -p usockets-conformance --all-targets -- -D warnings
cargo clippy --target "$GNU" -p usockets --lib --examples --test hammer_windows -- -D warnings
cargo clippy --target "$GNU" -p usockets-tls --test echo -- -D warnings
cargo clippy --target "$GNU" -p usockets-capi --all-targets -- -D warnings
step "rustdoc for $GNU"
RUSTDOCFLAGS="-D warnings" cargo doc --target "$GNU" -p usockets-shim-windows --no-deps
step "build the examples for $GNU"; cargo build --target "$GNU" --examples
step "shim-windows: unit tests and the conformance suite, under Wine"
cargo test --target "$GNU" -p usockets-shim-windows
step "TLS over shim-windows, under Wine"; cargo test --target "$GNU" -p usockets-tls --test echo loopback
step "hammer, 1000 connections, under Wine"; cargo test --target "$GNU" --test hammer_windows
step "echo_server under Wine, nc from Linux"; echo_over_nc
step "C ABI under Wine"; bash capi/tests/run-windows.sh
