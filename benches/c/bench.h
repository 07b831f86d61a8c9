/* What the benchmark suite's C servers share: their arguments, the --requests budget, the
 * common callbacks, and a loop with one plain context listening on 127.0.0.1.
 *
 *     PROGRAM [--port P] [--requests N]
 *
 * bench_serve prints "listening on port N" and runs the loop. With --requests, bench_spend
 * (called by a program after handling a data event) exits 0 after the N-th one, printing
 *     iterations I events E bytes B
 * to stderr (loop iterations, data events and bytes received so far): callgrind runs at two
 * values of N give the cost of the requests in between, with start-up and exit cancelled out,
 * and the suite checks the message sizes the load meant. */
#ifndef BENCH_H
#define BENCH_H

#include <libusockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long long bench_budget = -1;
static struct us_loop_t *bench_loop;
static long long bench_events, bench_bytes;

/* Writes all of data or closes the socket: nothing queues the rest, so a client that does not
 * read what it asked for goes (as the Rust twins do). Returns the socket. */
static inline struct us_socket_t *bench_write_all(struct us_socket_t *s, const char *data, int len) {
    if (us_socket_write(0, s, data, len, 0) < len) return us_socket_close(0, s, 0, NULL);
    return s;
}

/* Counts a data event of len bytes. */
static inline void bench_count(int len) { bench_events++, bench_bytes += len; }

/* Exits 0 once the --requests budget is spent, printing the counts to stderr. */
static inline void bench_spend(void) {
    if (bench_budget > 0 && --bench_budget == 0) {
        fprintf(stderr, "iterations %lld events %lld bytes %lld\n",
                us_loop_iteration_number(bench_loop), bench_events, bench_bytes);
        exit(0);
    }
}

static struct us_socket_t *bench_on_open(struct us_socket_t *s, int is_client, char *ip, int ip_len) {
    (void)is_client, (void)ip, (void)ip_len;
    return s;
}
static struct us_socket_t *bench_close(struct us_socket_t *s) { return us_socket_close(0, s, 0, NULL); }
static struct us_socket_t *bench_on_close(struct us_socket_t *s, int code, void *reason) {
    (void)code, (void)reason;
    return s;
}
static struct us_socket_t *bench_on_writable(struct us_socket_t *s) { return s; }
static void bench_noop(struct us_loop_t *loop) { (void)loop; }

/* The callbacks a server sets; NULL ones get the common behaviour (open: nothing; end: close;
 * timeout: none set). */
struct bench_callbacks {
    struct us_socket_t *(*on_open)(struct us_socket_t *, int, char *, int);
    struct us_socket_t *(*on_data)(struct us_socket_t *, char *, int);
    struct us_socket_t *(*on_timeout)(struct us_socket_t *);
};

/* Parses the arguments, listens on 127.0.0.1 and runs the loop, with pre, post and wakeup
 * callbacks set (as uWebSockets sets them). Returns the exit status. */
static int bench_serve(const char *name, int argc, char **argv, struct bench_callbacks cbs) {
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--requests") == 0) bench_budget = atoll(argv[i + 1]);
    }
    signal(SIGPIPE, SIG_IGN);
    bench_loop = us_create_loop(NULL, bench_noop, bench_noop, bench_noop, 0);
    if (!bench_loop) {
        fprintf(stderr, "%s: cannot create the loop\n", name);
        return 1;
    }
    struct us_socket_context_options_t options;
    memset(&options, 0, sizeof(options));
    struct us_socket_context_t *ctx = us_create_socket_context(0, bench_loop, 0, options);
    if (!ctx) {
        fprintf(stderr, "%s: cannot create the context\n", name);
        return 1;
    }
    us_socket_context_on_open(0, ctx, cbs.on_open ? cbs.on_open : bench_on_open);
    us_socket_context_on_data(0, ctx, cbs.on_data);
    us_socket_context_on_writable(0, ctx, bench_on_writable);
    us_socket_context_on_end(0, ctx, bench_close);
    if (cbs.on_timeout) us_socket_context_on_timeout(0, ctx, cbs.on_timeout);
    us_socket_context_on_close(0, ctx, bench_on_close);
    struct us_listen_socket_t *ls = us_socket_context_listen(0, ctx, "127.0.0.1", port, 0, 0);
    if (!ls) {
        fprintf(stderr, "%s: cannot listen on port %d\n", name, port);
        return 1;
    }
    printf("listening on port %d\n", us_socket_local_port(0, (struct us_socket_t *)ls));
    fflush(stdout);
    us_loop_run(bench_loop);
    return 0;
}

#endif
