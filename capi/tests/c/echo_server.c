/* A C echo server on the library, for real peers (`nc`, `openssl s_client`):
 *
 *     echo_server [port] [--once] [--cert FILE --key FILE]
 *
 * Listens on every interface (port 0 = ephemeral), prints "listening on port N", echoes what it
 * receives and answers a half-close by closing. With --cert and --key it speaks TLS (ssl = 1;
 * a peer's close_notify or FIN closes the socket). With --once it stops listening after its
 * first connection closes, so us_loop_run returns and the program exits 0. */
#include "test_common.h"

static struct us_listen_socket_t *ls;
static int once;
static int ssl;

static struct us_socket_t *on_open(struct us_socket_t *s, int is_client, char *ip, int ip_len) {
    (void)is_client;
    (void)ip;
    (void)ip_len;
    return s;
}

static struct us_socket_t *on_data(struct us_socket_t *s, char *data, int len) {
    int n = us_socket_write(ssl, s, data, len, 0);
    if (n < len) fprintf(stderr, "echo_server: short write (%d of %d), dropping the rest\n", n, len);
    return s;
}

static struct us_socket_t *on_end(struct us_socket_t *s) { return us_socket_close(ssl, s, 0, NULL); }

static struct us_socket_t *on_close(struct us_socket_t *s, int code, void *reason) {
    (void)code;
    (void)reason;
    if (once && ls) {
        us_listen_socket_close(ssl, ls);
        ls = NULL;
    }
    return s;
}

int main(int argc, char **argv) {
    int port = 0;
    struct us_socket_context_options_t options = no_options();
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--once") == 0) once = 1;
        else if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc) options.cert_file_name = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) options.key_file_name = argv[++i];
        else port = atoi(argv[i]);
    }
    ssl = options.cert_file_name != NULL;
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* POSIX: a peer that resets must not kill us */
#endif
    struct us_loop_t *loop = us_create_loop(NULL, NULL, NULL, NULL, 0);
    CHECK(loop != NULL);
    struct us_socket_context_t *ctx = us_create_socket_context(ssl, loop, 0, options);
    if (!ctx) {
        fprintf(stderr, "echo_server: cannot create the context (certificate or key unusable?)\n");
        return 1;
    }
    us_socket_context_on_open(ssl, ctx, on_open);
    us_socket_context_on_data(ssl, ctx, on_data);
    us_socket_context_on_end(ssl, ctx, on_end);
    us_socket_context_on_close(ssl, ctx, on_close);
    ls = us_socket_context_listen(ssl, ctx, NULL, port, LIBUS_LISTEN_DEFAULT, 0);
    if (!ls) {
        fprintf(stderr, "echo_server: cannot listen on port %d\n", port);
        return 1;
    }
    printf("listening on port %d\n", us_socket_local_port(ssl, (struct us_socket_t *)ls));
    fflush(stdout);
    us_loop_run(loop);
    us_socket_context_free(ssl, ctx);
    us_loop_free(loop);
    return 0;
}
