/* Shared helpers of the C and C++ tests: a CHECK macro, a watchdog, clocks, sleeping, the
 * test's own sockets and ext checks. Tests include only libusockets.h from the library, plus
 * the C library and POSIX, or on Windows (mingw, capi/tests/run-windows.sh) the C library,
 * Win32 and Winsock (libusockets.h includes winsock2.h there). */
#ifndef USOCKETS_CAPI_TEST_COMMON_H
#define USOCKETS_CAPI_TEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "libusockets.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _WIN32
#include <windows.h>
#include <ws2tcpip.h>
#else
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

/* Fails the test: prints file:line and the condition, exits 1. */
#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
            fflush(stderr);                                                           \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

/* CHECK with the two values printed (integers). */
#define CHECK_EQ(a, b)                                                                \
    do {                                                                              \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);               \
        if (check_a_ != check_b_) {                                                   \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n",      \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_);                  \
            fflush(stderr);                                                           \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

#define IS_ALIGNED(p) ((((uintptr_t)(p)) % LIBUS_EXT_ALIGNMENT) == 0)

static const char test_watchdog_msg[] = "watchdog: the test did not finish in time (a loop that never returns?)\n";

#ifdef _WIN32
/* No SIGALRM on Windows: a thread that sleeps, then ends the process. */
static DWORD WINAPI test_watchdog_thread(LPVOID seconds) {
    Sleep((DWORD)(uintptr_t)seconds * 1000);
    fputs(test_watchdog_msg, stderr);
    fflush(stderr);
    _exit(1);
}

/* Arms a watchdog of `seconds` (or $USOCKETS_TEST_ALARM) that fails the test if it hangs.
 * Also initialises Winsock for the test's own sockets (the library initialises it for its
 * own; a program using sockets itself calls WSAStartup, as here). */
static inline void test_watchdog(unsigned seconds) {
    const char *env = getenv("USOCKETS_TEST_ALARM");
    if (env && atoi(env) > 0) seconds = (unsigned)atoi(env);
    HANDLE h = CreateThread(NULL, 0, test_watchdog_thread, (LPVOID)(uintptr_t)seconds, 0, NULL);
    CHECK(h != NULL);
    CloseHandle(h);
    WSADATA wsa;
    CHECK(WSAStartup(MAKEWORD(2, 2), &wsa) == 0);
}

/* Monotonic milliseconds. */
static inline long long now_ms(void) {
    LARGE_INTEGER freq, now;
    QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    return (long long)(now.QuadPart / freq.QuadPart * 1000 + now.QuadPart % freq.QuadPart * 1000 / freq.QuadPart);
}

/* Sleeps `ms` milliseconds. */
static inline void test_sleep_ms(unsigned ms) { Sleep(ms); }

/* Windows has no descriptor limit to raise (the number of sockets is bounded by memory). */
static inline long raise_fd_limit(long need) { return need; }

/* Closes a socket the test made itself. */
static inline int test_close_socket(LIBUS_SOCKET_DESCRIPTOR fd) { return closesocket(fd); }

/* The code on_connect_error gets for a refused connection: the raw Winsock code. */
#define TEST_ECONNREFUSED WSAECONNREFUSED
/* The code on_connect_error gets for a name that does not resolve. */
#define TEST_ENAME WSAHOST_NOT_FOUND
#else
static inline void test_watchdog_fired(int sig) {
    (void)sig;
    if (write(2, test_watchdog_msg, sizeof(test_watchdog_msg) - 1) < 0) { /* nothing to do */ }
    _exit(1);
}

/* Arms a watchdog of `seconds` (or $USOCKETS_TEST_ALARM) that fails the test if it hangs. */
static inline void test_watchdog(unsigned seconds) {
    const char *env = getenv("USOCKETS_TEST_ALARM");
    if (env && atoi(env) > 0) seconds = (unsigned)atoi(env);
    signal(SIGALRM, test_watchdog_fired);
    alarm(seconds);
    /* A peer that resets must not kill us (the library sends with MSG_NOSIGNAL anyway). */
    signal(SIGPIPE, SIG_IGN);
}

/* Monotonic milliseconds. */
static inline long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps `ms` milliseconds. */
static inline void test_sleep_ms(unsigned ms) { usleep((useconds_t)ms * 1000); }

/* Raises the soft descriptor limit to at least `need` (up to the hard limit); returns the limit. */
static inline long raise_fd_limit(long need) {
    struct rlimit rl;
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if ((long)rl.rlim_cur < need) {
        rl.rlim_cur = (rl.rlim_max == RLIM_INFINITY || (long)rl.rlim_max > need) ? (rlim_t)need : rl.rlim_max;
        CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    }
    return (long)rl.rlim_cur;
}

/* Closes a socket the test made itself. */
static inline int test_close_socket(LIBUS_SOCKET_DESCRIPTOR fd) { return close(fd); }

/* The code on_connect_error gets for a refused connection: errno's. */
#define TEST_ECONNREFUSED ECONNREFUSED
/* The code on_connect_error gets for a name that does not resolve (documented in the header). */
#define TEST_ENAME ENXIO
#endif

/* Whether this machine has IPv6 (a probe socket). */
static inline int ipv6_available(void) {
    LIBUS_SOCKET_DESCRIPTOR fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd == LIBUS_SOCKET_ERROR) return 0;
    test_close_socket(fd);
    return 1;
}

/* Fills / checks `len` bytes with a pattern derived from `id`. */
static inline unsigned char pattern_byte(unsigned id, size_t i) {
    return (unsigned char)((id * 2654435761u + (unsigned)i * 40503u + (unsigned)(i >> 8)) >> 7);
}
static inline void pattern_fill(void *p, size_t len, unsigned id) {
    unsigned char *b = (unsigned char *)p;
    for (size_t i = 0; i < len; i++) b[i] = pattern_byte(id, i);
}
static inline int pattern_ok(const void *p, size_t len, unsigned id) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < len; i++)
        if (b[i] != pattern_byte(id, i)) return 0;
    return 1;
}
static inline int all_zero(const void *p, size_t len) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < len; i++)
        if (b[i]) return 0;
    return 1;
}

/* Default (all NULL) TLS options. */
static inline struct us_socket_context_options_t no_options(void) {
    struct us_socket_context_options_t o;
    memset(&o, 0, sizeof(o));
    return o;
}

#endif
