/* Shared helpers of the C and C++ tests: a CHECK macro, a watchdog, clocks and ext checks.
 * Tests include only libusockets.h from the library, plus the C library and POSIX. */
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
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

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

static inline void test_watchdog_fired(int sig) {
    static const char msg[] = "watchdog: the test did not finish in time (a loop that never returns?)\n";
    (void)sig;
    if (write(2, msg, sizeof(msg) - 1) < 0) { /* nothing to do */ }
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
