#!/usr/bin/env bash
# Builds the C library of usockets-rs and lays it out like an installed C library:
#
#   target/capi/include/libusockets.h
#   target/capi/lib/libusockets.a
#   target/capi/lib/libusockets.so.0        (SONAME libusockets.so.0)
#   target/capi/lib/libusockets.so -> libusockets.so.0
#   target/capi/lib/pkgconfig/libusockets.pc
#
# Usage: capi/build.sh [--no-tls]   (from anywhere; CARGO and CARGO_TARGET_DIR are honoured)
#
# --no-tls builds without TLS (the crate without its `tls` feature) into target/capi-no-tls/,
# whose header defines LIBUS_NO_SSL: ssl = 1 is plain TCP there, as upstream's default build.
#
# CAPI_FEATURES: more cargo features of usockets-capi, comma-separated (default none), added to
# both builds; e.g. CAPI_FEATURES=uring runs every loop on io_uring (Linux). The header and the
# layout are the same.
set -euo pipefail

no_tls=0
[ "${1:-}" = "--no-tls" ] && no_tls=1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
cargo="${CARGO:-cargo}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
out="$target_dir/capi"
features=()
if [ "$no_tls" -eq 1 ]; then
    out="$target_dir/capi-no-tls"
    features=(--no-default-features)
fi
if [ -n "${CAPI_FEATURES:-}" ]; then
    features+=(--features "$CAPI_FEATURES")
fi

# The c-release profile: release (fat LTO) with panic=abort (see the workspace Cargo.toml).
echo "==> cargo build --profile c-release -p usockets-capi ${features[*]:-}"
(cd "$root" && "$cargo" build --profile c-release -p usockets-capi "${features[@]}")

rel="$target_dir/c-release"
for f in "$rel/libusockets_capi.a" "$rel/libusockets_capi.so"; do
    [ -f "$f" ] || { echo "build.sh: missing $f" >&2; exit 1; }
done

mkdir -p "$out/lib/pkgconfig" "$out/include"
cp -f "$rel/libusockets_capi.a" "$out/lib/libusockets.a"
cp -f "$rel/libusockets_capi.so" "$out/lib/libusockets.so.0"
ln -sfn libusockets.so.0 "$out/lib/libusockets.so"
if [ "$no_tls" -eq 1 ]; then
    sed 's|^/\* #define LIBUS_NO_SSL \*/$|#define LIBUS_NO_SSL|' "$here/include/libusockets.h" \
        > "$out/include/libusockets.h"
    grep -qx '#define LIBUS_NO_SSL' "$out/include/libusockets.h" ||
        { echo "build.sh: could not define LIBUS_NO_SSL in the header" >&2; exit 1; }
else
    cp -f "$here/include/libusockets.h" "$out/include/libusockets.h"
fi

version="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$here/Cargo.toml" | head -n1)"
sed -e "s|@PREFIX@|$out|g" -e "s|@VERSION@|${version:-0.0.0}|g" \
    "$here/libusockets.pc.in" > "$out/lib/pkgconfig/libusockets.pc"

if command -v readelf > /dev/null; then
    soname="$(readelf -d "$out/lib/libusockets.so.0" | sed -n 's/.*SONAME.*\[\(.*\)\].*/\1/p')"
    if [ "$soname" != "libusockets.so.0" ]; then
        echo "build.sh: warning: SONAME of libusockets.so.0 is '${soname:-none}'" >&2
    fi
fi

echo "==> built into $out"
echo "Compile and link a C program against it (static library):"
echo "  cc app.c -I$out/include $out/lib/libusockets.a -lpthread -ldl -lm -lrt -lutil"
echo "or, with the shared library (or via pkg-config):"
echo "  cc app.c -I$out/include -L$out/lib -lusockets -Wl,-rpath,$out/lib"
echo "  PKG_CONFIG_PATH=$out/lib/pkgconfig cc app.c \$(pkg-config --cflags --libs libusockets)"
