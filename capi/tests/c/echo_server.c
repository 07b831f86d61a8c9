/* A C echo server on the library, for real peers (`nc`):
 *
 *     echo_server [port] [--once]
 *
 * Listens on every interface (port 0 = ephemeral), prints "listening on port N", echoes what it
 * receives and answers a half-close by closing. With --once it stops listening after its first
 * connection closes, so us_loop_run returns and the program exits 0. */
#include "test_common.h"

static struct us_listen_socket_t *ls;
static int once;

static struct us_socket_t *on_open(struct us_socket_t *s, int is_client, char *ip, int ip_len) {
    (void)is_client;
    (void)ip;
    (void)ip_len;
    return s;
}

static struct us_socket_t *on_data(struct us_socket_t *s, char *data, int len) {
    int n = us_socket_write(0, s, data, len, 0);
    if (n < len) fprintf(stderr, "echo_server: short write (%d of %d), dropping the rest\n", n, len);
    return s;
}

static struct us_socket_t *on_end(struct us_socket_t *s) { return us_socket_close(0, s, 0, NULL); }

static struct us_socket_t *on_close(struct us_socket_t *s, int code, void *reason) {
    (void)code;
    (void)reason;
    if (once && ls) {
        us_listen_socket_close(0, ls);
        ls = NULL;
    }
    return s;
}

int main(int argc, char **argv) {
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--once") == 0) once = 1;
        else port = atoi(argv[i]);
    }
    signal(SIGPIPE, SIG_IGN);
    struct us_loop_t *loop = us_create_loop(NULL, NULL, NULL, NULL, 0);
    CHECK(loop != NULL);
    struct us_socket_context_t *ctx = us_create_socket_context(0, loop, 0, no_options());
    CHECK(ctx != NULL);
    us_socket_context_on_open(0, ctx, on_open);
    us_socket_context_on_data(0, ctx, on_data);
    us_socket_context_on_end(0, ctx, on_end);
    us_socket_context_on_close(0, ctx, on_close);
    ls = us_socket_context_listen(0, ctx, NULL, port, LIBUS_LISTEN_DEFAULT, 0);
    if (!ls) {
        fprintf(stderr, "echo_server: cannot listen on port %d\n", port);
        return 1;
    }
    printf("listening on port %d\n", us_socket_local_port(0, (struct us_socket_t *)ls));
    fflush(stdout);
    us_loop_run(loop);
    us_socket_context_free(0, ctx);
    us_loop_free(loop);
    return 0;
}
