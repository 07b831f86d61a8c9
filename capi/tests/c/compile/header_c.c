/* Compile-only check (C11): libusockets.h compiles with -std=c11 -Wall -Wextra -Werror
 * -pedantic, its constants have the contract's values, and every function has exactly the
 * contract's signature (checked with _Generic, which needs exact type compatibility). */
#include "libusockets.h"
#include "libusockets.h" /* the include guard works */

/* The backend macro names the API variant: epoll's on Linux, kqueue's on the BSDs and Apple
 * systems, none on Windows (the IOCP backend is inside the library); never libuv's or
 * io_uring's. */
#if defined(__linux__) && !defined(LIBUS_USE_EPOLL)
#error "libusockets.h must define LIBUS_USE_EPOLL on Linux"
#endif
#if (defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) || \
     defined(__DragonFly__)) && !defined(LIBUS_USE_KQUEUE)
#error "libusockets.h must define LIBUS_USE_KQUEUE on the BSDs and Apple systems"
#endif
#if defined(_WIN32) && (defined(LIBUS_USE_EPOLL) || defined(LIBUS_USE_KQUEUE) || defined(LIBUS_USE_GCD) || \
                        defined(LIBUS_USE_ASIO))
#error "libusockets.h must define no backend macro on Windows"
#endif
#if defined(LIBUS_USE_LIBUV) || defined(LIBUS_USE_IO_URING)
#error "libusockets.h must never define LIBUS_USE_LIBUV or LIBUS_USE_IO_URING"
#endif

_Static_assert(LIBUS_RECV_BUFFER_LENGTH == 524288, "LIBUS_RECV_BUFFER_LENGTH");
_Static_assert(LIBUS_RECV_BUFFER_PADDING == 32, "LIBUS_RECV_BUFFER_PADDING");
_Static_assert(LIBUS_EXT_ALIGNMENT == 16, "LIBUS_EXT_ALIGNMENT");
_Static_assert(LIBUS_TIMEOUT_GRANULARITY == 4, "LIBUS_TIMEOUT_GRANULARITY");
_Static_assert(LIBUS_LISTEN_DEFAULT == 0, "LIBUS_LISTEN_DEFAULT");
_Static_assert(LIBUS_LISTEN_EXCLUSIVE_PORT == 1, "LIBUS_LISTEN_EXCLUSIVE_PORT");
_Static_assert(LIBUS_SOCKET_READABLE == 1, "LIBUS_SOCKET_READABLE");
_Static_assert(LIBUS_SOCKET_WRITABLE == 2, "LIBUS_SOCKET_WRITABLE");
#ifdef _WIN32
/* Winsock's SOCKET (UINT_PTR) and INVALID_SOCKET (~0). */
_Static_assert(LIBUS_SOCKET_ERROR == INVALID_SOCKET, "LIBUS_SOCKET_ERROR");
_Static_assert(sizeof(LIBUS_SOCKET_DESCRIPTOR) == sizeof(void *), "LIBUS_SOCKET_DESCRIPTOR is SOCKET");
_Static_assert(_Generic((LIBUS_SOCKET_DESCRIPTOR)0, SOCKET: 1, default: 0), "LIBUS_SOCKET_DESCRIPTOR is SOCKET");
_Static_assert((LIBUS_SOCKET_DESCRIPTOR)-1 > 0, "LIBUS_SOCKET_DESCRIPTOR is unsigned");
#else
_Static_assert(LIBUS_SOCKET_ERROR == -1, "LIBUS_SOCKET_ERROR");
_Static_assert(sizeof(LIBUS_SOCKET_DESCRIPTOR) == sizeof(int), "LIBUS_SOCKET_DESCRIPTOR is int");
_Static_assert(_Generic((LIBUS_SOCKET_DESCRIPTOR)0, int: 1, default: 0), "LIBUS_SOCKET_DESCRIPTOR is int");
#endif
#if defined(__LP64__) || defined(_WIN64)
_Static_assert(sizeof(struct us_socket_context_options_t) == 56, "options struct is 56 bytes");
_Static_assert(offsetof(struct us_socket_context_options_t, ssl_ciphers) == 40, "ssl_ciphers offset");
_Static_assert(offsetof(struct us_socket_context_options_t, ssl_prefer_low_memory_usage) == 48,
               "ssl_prefer_low_memory_usage offset");
#endif

/* WIN32_EXPORT is defined (empty on POSIX, __declspec(dllexport) on Windows). */
WIN32_EXPORT int header_c_export_check;
int header_c_export_check;

#define SIG(name, ret, params) \
    _Static_assert(_Generic(&name, ret(*) params: 1, default: 0), "signature of " #name);
#include "signatures.inc"

/* The typedef names work in C too, and are the struct types. */
_Static_assert(_Generic((us_socket_t *)0, struct us_socket_t *: 1, default: 0), "us_socket_t");
_Static_assert(_Generic((us_listen_socket_t *)0, struct us_listen_socket_t *: 1, default: 0), "us_listen_socket_t");

int main(void) {
    struct us_socket_context_options_t options = {0};
    (void)options;
    return 0;
}
