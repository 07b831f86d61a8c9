/* The echo workload of the benchmark suite, on the C ABI: every data event is written back
 * as it came (the load sends 12-byte messages, one in flight per connection).
 *
 *     echo [--port P] [--requests N]
 *
 * Prints "listening on port N" and serves; with --requests it exits 0 right after echoing the
 * N-th data event (see fixed_response.c for why), printing to stderr
 *     iterations I events E bytes B
 * (loop iterations, data events and bytes received so far). */
#include <libusockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long long budget = -1;
static struct us_loop_t *loop;
/* Data events and bytes received: printed at exit with the loop's iteration count, for the
 * benchmark suite (instructions per iteration; message sizes as the load meant them). */
static long long events, bytes;

/* Exits 0 once the --requests budget is spent, printing the counts to stderr. */
static void spend(void) {
    if (budget > 0 && --budget == 0) {
        fprintf(stderr, "iterations %lld events %lld bytes %lld\n", us_loop_iteration_number(loop),
                events, bytes);
        exit(0);
    }
}

static struct us_socket_t *on_open(struct us_socket_t *s, int is_client, char *ip, int ip_len) {
    (void)is_client, (void)ip, (void)ip_len;
    return s;
}

static struct us_socket_t *on_data(struct us_socket_t *s, char *data, int len) {
    events++, bytes += len;
    us_socket_write(0, s, data, len, 0);
    spend();
    return s;
}

static struct us_socket_t *on_end(struct us_socket_t *s) { return us_socket_close(0, s, 0, NULL); }
static struct us_socket_t *on_close(struct us_socket_t *s, int code, void *reason) {
    (void)code, (void)reason;
    return s;
}
static struct us_socket_t *on_writable(struct us_socket_t *s) { return s; }

static void noop(struct us_loop_t *loop) { (void)loop; }

int main(int argc, char **argv) {
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--requests") == 0) budget = atoll(argv[i + 1]);
    }
    signal(SIGPIPE, SIG_IGN);
    loop = us_create_loop(NULL, noop, noop, noop, 0);
    struct us_socket_context_options_t options;
    memset(&options, 0, sizeof(options));
    struct us_socket_context_t *ctx = us_create_socket_context(0, loop, 0, options);
    us_socket_context_on_open(0, ctx, on_open);
    us_socket_context_on_data(0, ctx, on_data);
    us_socket_context_on_writable(0, ctx, on_writable);
    us_socket_context_on_end(0, ctx, on_end);
    us_socket_context_on_close(0, ctx, on_close);
    struct us_listen_socket_t *ls = us_socket_context_listen(0, ctx, "127.0.0.1", port, 0, 0);
    if (!ls) {
        fprintf(stderr, "echo: cannot listen on port %d\n", port);
        return 1;
    }
    printf("listening on port %d\n", us_socket_local_port(0, (struct us_socket_t *)ls));
    fflush(stdout);
    us_loop_run(loop);
    return 0;
}
