/* An echo server and client in C on one loop, run with ssl = 0, and also with ssl = 1 when the
 * library is built without TLS (LIBUS_NO_SSL: ssl = 1 is plain TCP; TLS is test_tls's):
 *
 *  1. echo + half-close: msg_more + flush, write2, the on_data padding, on_open arguments,
 *     ports and addresses, client shutdown -> server on_end -> server writes "bye" and closes
 *     with a code and reason -> the client gets "bye", then on_close(0, NULL); the closed
 *     socket's memory is still valid; us_loop_run returns once the last socket and the listen
 *     socket are gone.
 *  2. bulk: 16 MiB through a server that pauses reading (a socket cast to a poll) and resumes
 *     from a timer: short writes and on_writable on the client, content checked byte by byte.
 *  3. connect refused: on_connect_error with ECONNREFUSED (on Windows WSAECONNREFUSED), no
 *     on_open, no on_close.
 */
#include "test_common.h"

static const unsigned char V4MAPPED_LOOPBACK[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
static const unsigned char V4_LOOPBACK[4] = {127, 0, 0, 1};

/* Checks the address an accepted socket reports (listener on host NULL: dual-stack). */
static void check_accepted_ip(const char *ip, int ip_len) {
    if (ipv6_available()) {
        CHECK_EQ(ip_len, 16);
        CHECK(memcmp(ip, V4MAPPED_LOOPBACK, 16) == 0);
    } else {
        CHECK_EQ(ip_len, 4);
        CHECK(memcmp(ip, V4_LOOPBACK, 4) == 0);
    }
}

#define SERVER_MAGIC 0x5e17e5u
#define CLIENT_MAGIC 0xc11e47u

/* Socket ext of both sides. */
struct conn {
    unsigned magic;
    int remote_port;
    long long received;  /* bytes received (bulk) */
    long long sent;      /* bytes sent (bulk) */
    int paused;
};

/* Context ext: which round and side. */
struct ctx_ext {
    int ssl;
    int is_server;
};

/* ------------------------------------------------------------------------------------------ */
/* Round 1: echo + half-close                                                                 */
/* ------------------------------------------------------------------------------------------ */

static struct {
    int ssl;
    struct us_loop_t *loop;
    struct us_socket_context_t *server_ctx, *client_ctx;
    struct us_listen_socket_t *ls;
    int port;
    struct us_socket_t *client;   /* as returned by connect */
    int client_local_port;
    char echo[256];
    int echo_len;
    char tail[64]; /* what the client got after the echo ("bye") */
    int tail_len;
    int server_opens, client_opens, server_closes, client_closes, server_ends, client_ends;
    int server_data_calls;
    int reason_marker;
    int post_calls;
} E;

static const char HELLO[] = "hello ";
static const char HDR[] = "HDR:";
static const char PAYLOAD[] = "payload of write2";

static int expected_echo_len(void) { return (int)(strlen(HELLO) + strlen(HDR) + strlen(PAYLOAD)); }

static struct us_socket_t *e_server_open(struct us_socket_t *s, int is_client, char *ip, int ip_len) {
    struct conn *c = (struct conn *)us_socket_ext(E.ssl, s);
    CHECK_EQ(is_client, 0);
    CHECK(IS_ALIGNED(c));
    CHECK(all_zero(c, sizeof(*c))); /* accepted sockets get zeroed ext */
    check_accepted_ip(ip, ip_len);
    CHECK(us_socket_context(E.ssl, s) == E.server_ctx);
    CHECK_EQ(us_socket_is_established(E.ssl, s), 1);
    CHECK_EQ(us_socket_is_closed(E.ssl, s), 0);
    CHECK_EQ(us_socket_is_shut_down(E.ssl, s), 0);
    CHECK_EQ(us_socket_local_port(E.ssl, s), E.port);

    /* us_socket_remote_address gives the same bytes; a too small buffer gives length 0. */
    char buf[16];
    int len = sizeof(buf);
    us_socket_remote_address(E.ssl, s, buf, &len);
    CHECK_EQ(len, ip_len);
    CHECK(memcmp(buf, ip, (size_t)len) == 0);
    char small[2];
    int small_len = sizeof(small);
    us_socket_remote_address(E.ssl, s, small, &small_len);
    CHECK_EQ(small_len, 0);

    c->magic = SERVER_MAGIC;
    c->remote_port = us_socket_remote_port(E.ssl, s);
    CHECK(c->remote_port > 0);
    E.server_opens++;
    return s;
}

static struct us_socket_t *e_server_data(struct us_socket_t *s, char *data, int len) {
    struct conn *c = (struct conn *)us_socket_ext(E.ssl, s);
    CHECK_EQ(c->magic, SERVER_MAGIC);
    CHECK(len > 0 && len <= LIBUS_RECV_BUFFER_LENGTH);
    /* The client's local port is known once it is open; it is the server's remote port. */
    CHECK_EQ(c->remote_port, E.client_local_port);
    E.server_data_calls++;
    CHECK_EQ(us_socket_write(E.ssl, s, data, len, 0), len);
    /* The buffer is ours: 32 writable bytes before and after, and the data itself. */
    memset(data - LIBUS_RECV_BUFFER_PADDING, 0xAB, LIBUS_RECV_BUFFER_PADDING);
    memset(data + len, 0xCD, LIBUS_RECV_BUFFER_PADDING);
    memset(data, 0xEF, (size_t)len);
    return s;
}

static struct us_socket_t *e_server_end(struct us_socket_t *s) {
    struct conn *c = (struct conn *)us_socket_ext(E.ssl, s);
    CHECK_EQ(c->magic, SERVER_MAGIC);
    CHECK_EQ(E.echo_len, expected_echo_len()); /* the client shut down after the full echo */
    CHECK_EQ(us_socket_is_shut_down(E.ssl, s), 0); /* our write side is still open */
    CHECK_EQ(us_socket_is_closed(E.ssl, s), 0);
    E.server_ends++;
    CHECK_EQ(us_socket_write(E.ssl, s, "bye", 3, 0), 3);

    int closes_before = E.server_closes;
    struct us_socket_t *r = us_socket_close(E.ssl, s, 4242, &E.reason_marker);
    CHECK(r == s); /* on_close's return value */
    CHECK_EQ(E.server_closes, closes_before + 1); /* on_close ran synchronously */
    /* The memory stays valid until the end of the iteration. */
    CHECK_EQ(us_socket_is_closed(E.ssl, s), 1);
    CHECK_EQ(c->magic, SERVER_MAGIC);
    CHECK_EQ(us_socket_write(E.ssl, s, "x", 1, 0), 0);
    CHECK_EQ(us_socket_write2(E.ssl, s, "x", 1, "y", 1), 0);
    /* Closing again does nothing. */
    CHECK(us_socket_close(E.ssl, s, 1, NULL) == s);
    CHECK_EQ(E.server_closes, closes_before + 1);
    return s;
}

static struct us_socket_t *e_server_close(struct us_socket_t *s, int code, void *reason) {
    struct conn *c = (struct conn *)us_socket_ext(E.ssl, s);
    CHECK_EQ(c->magic, SERVER_MAGIC);
    CHECK_EQ(code, 4242);
    CHECK(reason == &E.reason_marker);
    CHECK_EQ(us_socket_is_closed(E.ssl, s), 1);
    E.server_closes++;
    return s;
}

static struct us_socket_t *e_client_open(struct us_socket_t *s, int is_client, char *ip, int ip_len) {
    struct conn *c = (struct conn *)us_socket_ext(E.ssl, s);
    CHECK(s == E.client);
    CHECK_EQ(is_client, 1);
    CHECK(ip == NULL);
    CHECK_EQ(ip_len, 0);
    CHECK_EQ(c->magic, CLIENT_MAGIC); /* set right after connect returned */
    CHECK_EQ(us_socket_is_established(E.ssl, s), 1);
    CHECK(us_socket_context(E.ssl, s) == E.client_ctx);
    CHECK_EQ(us_socket_remote_port(E.ssl, s), E.port);
    E.client_local_port = us_socket_local_port(E.ssl, s);
    CHECK(E.client_local_port > 0 && E.client_local_port != E.port);
    /* The client connected to 127.0.0.1: 4 raw bytes. */
    char buf[16];
    int len = sizeof(buf);
    us_socket_remote_address(E.ssl, s, buf, &len);
    CHECK_EQ(len, 4);
    CHECK(memcmp(buf, V4_LOOPBACK, 4) == 0);
    E.client_opens++;

    /* "hello " held with msg_more, then flushed; then a gathered write. */
    CHECK_EQ(us_socket_write(E.ssl, s, HELLO, (int)strlen(HELLO), 1), (int)strlen(HELLO));
    us_socket_flush(E.ssl, s);
    CHECK_EQ(us_socket_write2(E.ssl, s, HDR, (int)strlen(HDR), PAYLOAD, (int)strlen(PAYLOAD)),
             (int)(strlen(HDR) + strlen(PAYLOAD)));
    return s;
}

static struct us_socket_t *e_client_data(struct us_socket_t *s, char *data, int len) {
    struct conn *c = (struct conn *)us_socket_ext(E.ssl, s);
    CHECK_EQ(c->magic, CLIENT_MAGIC);
    CHECK(len > 0);
    if (E.echo_len < expected_echo_len()) {
        int take = len;
        if (E.echo_len + take > expected_echo_len()) take = expected_echo_len() - E.echo_len;
        memcpy(E.echo + E.echo_len, data, (size_t)take);
        E.echo_len += take;
        data += take;
        len -= take;
        if (E.echo_len == expected_echo_len()) {
            char want[256];
            snprintf(want, sizeof(want), "%s%s%s", HELLO, HDR, PAYLOAD);
            CHECK(memcmp(E.echo, want, (size_t)E.echo_len) == 0);
            /* Half-close: FIN to the server, our read side stays open. */
            us_socket_shutdown(E.ssl, s);
            CHECK_EQ(us_socket_is_shut_down(E.ssl, s), 1);
            us_socket_shutdown(E.ssl, s); /* idempotent */
            CHECK_EQ(us_socket_is_shut_down(E.ssl, s), 1);
            CHECK_EQ(us_socket_is_closed(E.ssl, s), 0);
            CHECK_EQ(us_socket_write(E.ssl, s, "late", 4, 0), 0); /* shut down: 0 */
        }
    }
    if (len > 0) {
        CHECK(E.tail_len + len <= (int)sizeof(E.tail));
        memcpy(E.tail + E.tail_len, data, (size_t)len);
        E.tail_len += len;
    }
    return s;
}

static struct us_socket_t *e_client_end(struct us_socket_t *s) {
    /* We shut down first, so the server's FIN must close us, not reach on_end. */
    (void)s;
    E.client_ends++;
    return s;
}

static struct us_socket_t *e_client_close(struct us_socket_t *s, int code, void *reason) {
    struct conn *c = (struct conn *)us_socket_ext(E.ssl, s);
    CHECK_EQ(c->magic, CLIENT_MAGIC);
    /* Library-initiated close: 0 and NULL. */
    CHECK_EQ(code, 0);
    CHECK(reason == NULL);
    /* The server's last bytes arrived before the close. */
    CHECK_EQ(E.tail_len, 3);
    CHECK(memcmp(E.tail, "bye", 3) == 0);
    E.client_closes++;
    /* The last socket is gone: stop listening, so us_loop_run returns. */
    us_listen_socket_close(E.ssl, E.ls);
    return s;
}

static struct us_socket_t *e_connect_error(struct us_socket_t *s, int code) {
    (void)s;
    fprintf(stderr, "unexpected connect error %d\n", code);
    CHECK(0);
    return s;
}

static void e_post(struct us_loop_t *loop) {
    CHECK(loop == E.loop);
    E.post_calls++;
}

static void round_echo(int ssl) {
    memset(&E, 0, sizeof(E));
    E.ssl = ssl;
    E.loop = us_create_loop(NULL, NULL, NULL, e_post, 0);
    CHECK(E.loop != NULL);

    E.server_ctx = us_create_socket_context(ssl, E.loop, sizeof(struct ctx_ext), no_options());
    E.client_ctx = us_create_socket_context(ssl, E.loop, sizeof(struct ctx_ext), no_options());
    CHECK(E.server_ctx && E.client_ctx && E.server_ctx != E.client_ctx);
    CHECK(us_socket_context_loop(ssl, E.server_ctx) == E.loop);

    us_socket_context_on_open(ssl, E.server_ctx, e_server_open);
    us_socket_context_on_data(ssl, E.server_ctx, e_server_data);
    us_socket_context_on_end(ssl, E.server_ctx, e_server_end);
    us_socket_context_on_close(ssl, E.server_ctx, e_server_close);

    us_socket_context_on_open(ssl, E.client_ctx, e_client_open);
    us_socket_context_on_data(ssl, E.client_ctx, e_client_data);
    us_socket_context_on_end(ssl, E.client_ctx, e_client_end);
    us_socket_context_on_close(ssl, E.client_ctx, e_client_close);
    us_socket_context_on_connect_error(ssl, E.client_ctx, e_connect_error);

    E.ls = us_socket_context_listen(ssl, E.server_ctx, NULL, 0, LIBUS_LISTEN_DEFAULT, sizeof(struct conn));
    CHECK(E.ls != NULL);
    E.port = us_socket_local_port(ssl, (struct us_socket_t *)E.ls);
    CHECK(E.port > 0 && E.port < 65536);

    E.client = us_socket_context_connect(ssl, E.client_ctx, "127.0.0.1", E.port, NULL, 0, sizeof(struct conn));
    CHECK(E.client != NULL);
    struct conn *c = (struct conn *)us_socket_ext(ssl, E.client);
    CHECK(IS_ALIGNED(c));
    c->magic = CLIENT_MAGIC;
    CHECK_EQ(us_socket_is_established(ssl, E.client), 0); /* pending until on_open */

    us_loop_run(E.loop); /* returns once the sockets and the listen socket are gone */

    CHECK_EQ(E.server_opens, 1);
    CHECK_EQ(E.client_opens, 1);
    CHECK_EQ(E.server_ends, 1);
    CHECK_EQ(E.client_ends, 0);
    CHECK_EQ(E.server_closes, 1);
    CHECK_EQ(E.client_closes, 1);
    CHECK(E.server_data_calls >= 1);
    CHECK(E.post_calls >= 2);

    us_socket_context_free(ssl, E.server_ctx);
    us_socket_context_free(ssl, E.client_ctx);
    us_loop_free(E.loop);
}

/* ------------------------------------------------------------------------------------------ */
/* Round 2: bulk transfer with pause/resume and on_writable                                   */
/* ------------------------------------------------------------------------------------------ */

#define BULK_TOTAL (16 << 20) /* more than loopback buffers hold while paused */

static struct {
    int ssl;
    struct us_loop_t *loop;
    struct us_socket_context_t *server_ctx, *client_ctx;
    struct us_listen_socket_t *ls;
    struct us_socket_t *server;
    struct us_timer_t *resume_timer;
    char *src; /* BULK_TOTAL bytes of pattern */
    int writables, short_writes, pauses, resumes, resumed;
    int server_closes, client_closes, server_ends;
    int max_len;
} B;

static struct us_socket_t *b_client_write_more(struct us_socket_t *s) {
    struct conn *c = (struct conn *)us_socket_ext(B.ssl, s);
    while (c->sent < BULK_TOTAL) {
        int chunk = (int)(BULK_TOTAL - c->sent);
        int n = us_socket_write(B.ssl, s, B.src + c->sent, chunk, 0);
        CHECK(n >= 0 && n <= chunk);
        c->sent += n;
        if (n < chunk) {
            B.short_writes++;
            return s; /* on_writable continues */
        }
    }
    /* All sent: close; the server sees EOF (on_end) after the last byte. */
    return us_socket_close(B.ssl, s, 0, NULL);
}

static struct us_socket_t *b_client_open(struct us_socket_t *s, int is_client, char *ip, int ip_len) {
    (void)ip;
    (void)ip_len;
    CHECK_EQ(is_client, 1);
    return b_client_write_more(s);
}

static struct us_socket_t *b_client_writable(struct us_socket_t *s) {
    struct conn *c = (struct conn *)us_socket_ext(B.ssl, s);
    CHECK_EQ(c->magic, CLIENT_MAGIC);
    CHECK(c->sent < BULK_TOTAL); /* only after a short write */
    B.writables++;
    return b_client_write_more(s);
}

static struct us_socket_t *b_client_close(struct us_socket_t *s, int code, void *reason) {
    CHECK_EQ(code, 0);
    CHECK(reason == NULL);
    B.client_closes++;
    return s;
}

static void b_resume(struct us_timer_t *t) {
    struct us_poll_t *p = (struct us_poll_t *)B.server;
    CHECK(us_timer_loop(t) == B.loop);
    CHECK_EQ(us_poll_events(p), 0);
    us_poll_change(p, B.loop, LIBUS_SOCKET_READABLE);
    CHECK_EQ(us_poll_events(p) & LIBUS_SOCKET_READABLE, LIBUS_SOCKET_READABLE);
    B.resumes++;
    B.resumed = 1;
    us_timer_close(t);
    B.resume_timer = NULL;
}

static struct us_socket_t *b_server_open(struct us_socket_t *s, int is_client, char *ip, int ip_len) {
    (void)ip;
    (void)ip_len;
    CHECK_EQ(is_client, 0);
    struct conn *c = (struct conn *)us_socket_ext(B.ssl, s);
    c->magic = SERVER_MAGIC;
    B.server = s;
    /* The socket's poll view: readable interest, the socket's descriptor. */
    struct us_poll_t *p = (struct us_poll_t *)s;
    CHECK(us_poll_events(p) & LIBUS_SOCKET_READABLE);
    CHECK(us_poll_fd(p) != LIBUS_SOCKET_ERROR);
    CHECK(us_socket_get_native_handle(B.ssl, s) == (B.ssl ? NULL : (void *)(intptr_t)us_poll_fd(p)));
    return s;
}

static struct us_socket_t *b_server_data(struct us_socket_t *s, char *data, int len) {
    struct conn *c = (struct conn *)us_socket_ext(B.ssl, s);
    CHECK_EQ(c->magic, SERVER_MAGIC);
    CHECK(len > 0 && len <= LIBUS_RECV_BUFFER_LENGTH);
    CHECK(c->received + len <= BULK_TOTAL);
    CHECK(memcmp(data, B.src + c->received, (size_t)len) == 0);
    c->received += len;
    if (len > B.max_len) B.max_len = len;
    if (B.pauses == 0 && c->received >= 4096) {
        /* Pause reading (uWS's pause): the client's writes fill up and become short. */
        struct us_poll_t *p = (struct us_poll_t *)s;
        us_poll_change(p, B.loop, 0);
        CHECK_EQ(us_poll_events(p), 0);
        B.pauses++;
        B.resume_timer = us_create_timer(B.loop, 0, 0);
        CHECK(B.resume_timer != NULL);
        us_timer_set(B.resume_timer, b_resume, 300, 0);
    }
    return s;
}

static struct us_socket_t *b_server_end(struct us_socket_t *s) {
    struct conn *c = (struct conn *)us_socket_ext(B.ssl, s);
    CHECK_EQ(c->received, BULK_TOTAL); /* every byte before the EOF */
    B.server_ends++;
    return us_socket_close(B.ssl, s, 0, NULL);
}

static struct us_socket_t *b_server_close(struct us_socket_t *s, int code, void *reason) {
    (void)code;
    (void)reason;
    B.server_closes++;
    us_listen_socket_close(B.ssl, B.ls);
    return s;
}

static void round_bulk(int ssl) {
    memset(&B, 0, sizeof(B));
    B.ssl = ssl;
    B.src = (char *)malloc(BULK_TOTAL);
    CHECK(B.src != NULL);
    pattern_fill(B.src, BULK_TOTAL, 77);
    B.loop = us_create_loop(NULL, NULL, NULL, NULL, 0);
    CHECK(B.loop != NULL);
    B.server_ctx = us_create_socket_context(ssl, B.loop, 0, no_options());
    B.client_ctx = us_create_socket_context(ssl, B.loop, 0, no_options());
    CHECK(B.server_ctx && B.client_ctx);
    us_socket_context_on_open(ssl, B.server_ctx, b_server_open);
    us_socket_context_on_data(ssl, B.server_ctx, b_server_data);
    us_socket_context_on_end(ssl, B.server_ctx, b_server_end);
    us_socket_context_on_close(ssl, B.server_ctx, b_server_close);
    us_socket_context_on_open(ssl, B.client_ctx, b_client_open);
    us_socket_context_on_writable(ssl, B.client_ctx, b_client_writable);
    us_socket_context_on_close(ssl, B.client_ctx, b_client_close);
    us_socket_context_on_connect_error(ssl, B.client_ctx, e_connect_error);

    B.ls = us_socket_context_listen(ssl, B.server_ctx, "127.0.0.1", 0, LIBUS_LISTEN_DEFAULT, sizeof(struct conn));
    CHECK(B.ls != NULL);
    int port = us_socket_local_port(ssl, (struct us_socket_t *)B.ls);
    CHECK(port > 0);
    struct us_socket_t *cs = us_socket_context_connect(ssl, B.client_ctx, "127.0.0.1", port, NULL, 0, sizeof(struct conn));
    CHECK(cs != NULL);
    ((struct conn *)us_socket_ext(ssl, cs))->magic = CLIENT_MAGIC;

    us_loop_run(B.loop);

    CHECK_EQ(B.pauses, 1);
    CHECK_EQ(B.resumes, 1);
    CHECK(B.short_writes >= 1);
    CHECK(B.writables >= 1);
    CHECK_EQ(B.server_ends, 1);
    CHECK_EQ(B.server_closes, 1);
    CHECK_EQ(B.client_closes, 1);
    CHECK(B.max_len > 0 && B.max_len <= LIBUS_RECV_BUFFER_LENGTH);

    us_socket_context_free(ssl, B.server_ctx);
    us_socket_context_free(ssl, B.client_ctx);
    us_loop_free(B.loop);
    free(B.src);
}

/* ------------------------------------------------------------------------------------------ */
/* Round 3: connect refused                                                                   */
/* ------------------------------------------------------------------------------------------ */

static struct {
    int ssl;
    struct us_socket_t *client;
    int errors, code, opens, closes;
} R;

static struct us_socket_t *r_open(struct us_socket_t *s, int is_client, char *ip, int ip_len) {
    (void)is_client;
    (void)ip;
    (void)ip_len;
    R.opens++;
    return s;
}

static struct us_socket_t *r_close(struct us_socket_t *s, int code, void *reason) {
    (void)code;
    (void)reason;
    R.closes++;
    return s;
}

static struct us_socket_t *r_error(struct us_socket_t *s, int code) {
    CHECK(s == R.client);
    CHECK_EQ(*(unsigned *)us_socket_ext(R.ssl, s), CLIENT_MAGIC);
    R.errors++;
    R.code = code;
    return s;
}

static void round_refused(int ssl) {
    memset(&R, 0, sizeof(R));
    R.ssl = ssl;
    struct us_loop_t *loop = us_create_loop(NULL, NULL, NULL, NULL, 0);
    CHECK(loop != NULL);
    struct us_socket_context_t *ctx = us_create_socket_context(ssl, loop, 0, no_options());
    CHECK(ctx != NULL);
    us_socket_context_on_open(ssl, ctx, r_open);
    us_socket_context_on_close(ssl, ctx, r_close);
    us_socket_context_on_connect_error(ssl, ctx, r_error);

    /* A port nobody listens on: listen on an ephemeral one, then close it before running. */
    struct us_listen_socket_t *ls = us_socket_context_listen(ssl, ctx, "127.0.0.1", 0, LIBUS_LISTEN_EXCLUSIVE_PORT, 0);
    CHECK(ls != NULL);
    int port = us_socket_local_port(ssl, (struct us_socket_t *)ls);
    CHECK(port > 0);
    us_listen_socket_close(ssl, ls);

    R.client = us_socket_context_connect(ssl, ctx, "127.0.0.1", port, NULL, 0, 16);
    CHECK(R.client != NULL); /* the refusal arrives through on_connect_error, never as NULL */
    *(unsigned *)us_socket_ext(ssl, R.client) = CLIENT_MAGIC;
    CHECK_EQ(us_socket_is_established(ssl, R.client), 0);

    us_loop_run(loop); /* returns once the failed socket is gone */

    CHECK_EQ(R.errors, 1);
    CHECK_EQ(R.code, TEST_ECONNREFUSED);
    CHECK_EQ(R.opens, 0);
    CHECK_EQ(R.closes, 0);
    us_socket_context_free(ssl, ctx);
    us_loop_free(loop);
}

int main(void) {
    test_watchdog(50);
#ifdef LIBUS_NO_SSL
    const int last_ssl = 1; /* ssl = 1 is plain TCP in this build: the same rounds must pass */
#else
    const int last_ssl = 0;
#endif
    for (int ssl = 0; ssl <= last_ssl; ssl++) {
        round_echo(ssl);
        round_bulk(ssl);
        round_refused(ssl);
        printf("test_echo: ssl=%d ok\n", ssl);
    }
    printf("test_echo: ok\n");
    return 0;
}
