#!/usr/bin/env bash
# Builds the echo firmware (release) and boots it in QEMU's LM3S6965 board (Cortex-M3). Passes
# only if QEMU exits 0 (the firmware's semihosting EXIT_SUCCESS) and the firmware printed its
# success line; then prints the flash and RAM the ELF uses.
#
# Needs rustup and, from Debian's packages, qemu-system-arm and binutils (readelf); run as root
# with apt-get, it installs whichever is missing. FIRMWARE_TIMEOUT (seconds, default 120)
# bounds the QEMU run.
set -euo pipefail

cd "$(dirname "$0")"

TARGET=thumbv7m-none-eabi
ELF=target/$TARGET/release/usockets-firmware-echo
TIMEOUT=${FIRMWARE_TIMEOUT:-120}
# memory.x: 256 KiB of flash, 64 KiB of RAM.
FLASH_SIZE=$((256 * 1024))
RAM_SIZE=$((64 * 1024))

# ---- tools -------------------------------------------------------------------------------
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
missing=()
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
command -v readelf >/dev/null || missing+=(binutils)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    else
        echo "run.sh: missing ${missing[*]}; install with: sudo apt-get install ${missing[*]}" >&2
        exit 2
    fi
fi

# ---- build and run -----------------------------------------------------------------------
cargo build --release

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "==> qemu-system-arm (lm3s6965evb, timeout ${TIMEOUT}s)"
# The runner of .cargo/config.toml, run directly so that `timeout` stops QEMU itself.
set +e
timeout "$TIMEOUT" qemu-system-arm -machine lm3s6965evb -cpu cortex-m3 -nographic \
    -semihosting-config enable=on,target=native -kernel "$ELF" </dev/null 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -eq 124 ]; then
    echo "run.sh: FAILED: QEMU still running after ${TIMEOUT}s" >&2
    exit 1
fi
if [ "$rc" -ne 0 ]; then
    echo "run.sh: FAILED: QEMU exited with $rc" >&2
    exit 1
fi
if ! grep -q '^firmware echo: [0-9]* bytes verified, [0-9]* loop iterations, [0-9]* ms' "$log"; then
    echo "run.sh: FAILED: QEMU exited 0 but the firmware printed no success line" >&2
    exit 1
fi

# ---- flash and RAM -----------------------------------------------------------------------
# Section sizes from the ELF's section headers (`[Nr] Name Type Addr Off Size ...`).
section() {
    local hex
    hex=$(readelf -S -W "$ELF" | sed -n 's/^ *\[ *[0-9]*\] //p' | awk -v s="$1" '$1 == s { print $5 }')
    echo $((16#${hex:-0}))
}
symbol() {
    local hex
    hex=$(readelf -s -W "$ELF" | awk -v s="$1" '$8 == s { print $2; exit }')
    echo $((16#${hex:-0}))
}
vt=$(section .vector_table)
text=$(section .text)
rodata=$(section .rodata)
data=$(section .data)
bss=$(section .bss)
uninit=$(section .uninit)
flash=$((vt + text + rodata + data))
ram=$((data + bss + uninit))
# cortex-m-rt's stack starts at the top of RAM and grows down towards the statics' end.
stack=$(($(symbol _stack_start) - $(symbol __sheap)))
echo
echo "flash: $flash B of $FLASH_SIZE ($((flash * 100 / FLASH_SIZE))%):" \
    ".vector_table $vt + .text $text + .rodata $rodata + .data $data (initial values)"
echo "RAM:   $ram B of $RAM_SIZE in statics ($((ram * 100 / RAM_SIZE))%):" \
    ".data $data + .bss $bss + .uninit $uninit; the stack has the other $stack B"
echo "largest statics:"
readelf -s -W -C "$ELF" | awk '$4 == "OBJECT" && $2 ~ /^2000/ { print $3, $8 }' | sort -n -r |
    head -n 5 | while read -r size name; do printf '  %6d  %s\n' "$size" "$name"; done
echo "PASS"
