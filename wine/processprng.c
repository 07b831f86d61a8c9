/*
 * Test tooling only: a stand-in for bcryptprimitives.dll under Wine 8.0 (Debian 12).
 *
 * Rust's std on Windows (since 1.78) draws its random numbers (HashMap keys) from
 * ProcessPrng in bcryptprimitives.dll. Wine 8.0 has no such DLL, so every Rust program
 * exits at start under it (exit code 53). wine/runner.sh builds this file with mingw and puts
 * the DLL beside the program it runs. It is never shipped and never used on Windows, which
 * has the real DLL.
 */
#include <windows.h>

/* RtlGenRandom: advapi32's export under its real name. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Same contract as Windows' ProcessPrng: fill `len` bytes, always succeed (TRUE). */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
