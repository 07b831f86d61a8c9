#!/usr/bin/env bash
# Cargo's runner for x86_64-pc-windows-gnu (.cargo/config.toml): runs a Windows program under
# Wine, so `cargo test --target x86_64-pc-windows-gnu` and `cargo run --target ...` work here.
#
#   wine/runner.sh PROGRAM.exe [ARGS...]
#
# * A Wine prefix of our own, made once and reused: $USOCKETS_WINEPREFIX, or
#   ${TMPDIR:-/tmp}/usockets-wine-$UID. It never touches ~/.wine.
# * WINEDEBUG=-all (Wine's own chatter off), WINEDLLOVERRIDES="mscoree,mshtml=" (no prompt to
#   install Mono or Gecko when the prefix is made).
# * bcryptprimitives.dll, built from wine/processprng.c with mingw, is put beside the program
#   and in the prefix's system32 (for the programs a test starts from elsewhere): Wine 8.0
#   lacks ProcessPrng, which Rust's std calls at start (see that file). Test tooling only;
#   Windows has the real DLL.
# Needs `wine` (Debian: wine, wine64) and x86_64-w64-mingw32-gcc (gcc-mingw-w64-x86-64); fails
# loudly without them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 1 ] || { echo "usage: $0 PROGRAM.exe [ARGS...]" >&2; exit 2; }
program=$1
shift

for tool in wine x86_64-w64-mingw32-gcc; do
    command -v "$tool" >/dev/null || {
        echo "wine/runner.sh: $tool not found (apt-get install wine wine64 gcc-mingw-w64-x86-64)" >&2
        exit 127
    }
done

export WINEPREFIX=${USOCKETS_WINEPREFIX:-${TMPDIR:-/tmp}/usockets-wine-$(id -u)}
export WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml=${WINEDLLOVERRIDES:+;$WINEDLLOVERRIDES}"

# The stub DLL, rebuilt when its source is newer, is put beside the program and in the
# prefix's system32, where the programs a test starts (an example, from another directory)
# find it too. Built and copied under temporary names and renamed, so that parallel runs never
# see half a file.
place_dll() { # destination
    if [ ! -f "$1" ] || [ "$here/processprng.c" -nt "$1" ]; then
        local tmp
        tmp=$(mktemp "$1.XXXXXX")
        x86_64-w64-mingw32-gcc -shared -O2 -s -o "$tmp" "$here/processprng.c" -ladvapi32
        mv -f "$tmp" "$1"
    fi
}
place_dll "$(dirname "$program")/bcryptprimitives.dll"

# The prefix is made once (wineboot), under a lock so that parallel first runs wait for it.
mkdir -p "$(dirname "$WINEPREFIX")"
(
    flock 9
    if [ ! -f "$WINEPREFIX/system.reg" ]; then
        wineboot --init >/dev/null 2>&1
        wineserver --wait
    fi
    place_dll "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
) 9>"$WINEPREFIX.lock"

exec wine "$program" "$@"
