/* TLS through the C ABI (ssl = 1), with certificates capi/tests/run.sh makes with openssl in
 * $USOCKETS_TLS_DIR (see make_certs there):
 *
 *  1. echo: a client verifying the server (CA file, host "localhost": chain and name) writes
 *     during the handshake (msg_more, then write2); the server echoes; the client's shutdown
 *     sends close_notify, which closes the server socket: no on_end on either side.
 *  2. bulk: 4 MiB client -> server through short writes and on_writable, byte for byte.
 *  3. adoption: the server adopts its socket into a child context mid-connection; the session
 *     goes on (the child shares the parent's TLS configuration).
 *  4. verification: a certificate for another name, or from an untrusted issuer, closes the
 *     client without a byte either way; without a CA file the client does not verify
 *     (upstream's behaviour) and talks.
 *  5. mutual TLS: a server with a CA file talks to a client presenting a certificate of that
 *     CA, and to no client without one.
 *  6. server names: entries with user data, wildcards, find and remove; on_server_name adding
 *     the missing name during the handshake; a server with no certificate at all fails each
 *     handshake cleanly.
 *  7. options: missing files, a wrong passphrase, a non-DH file as DH parameters and a cipher
 *     list selecting nothing give NULL; an encrypted key with its passphrase, DH parameters
 *     and a cipher list work; us_internal_timer_sweep fires nothing that is not due.
 */
#include "test_common.h"

#ifdef LIBUS_NO_SSL
#error "test_tls needs a build with TLS"
#endif

/* Upstream-internal, exported for upstream's peer_verify_test. */
void us_internal_timer_sweep(struct us_loop_t *loop);

static const char *tls_dir;

/* "$USOCKETS_TLS_DIR/name", one buffer per name, kept for the whole run (options hold it). */
static const char *file(const char *name) {
    static char names[32][64], paths[32][512];
    static int n;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return paths[i];
    CHECK(n < 32 && strlen(name) < sizeof(names[0]));
    strcpy(names[n], name);
    snprintf(paths[n], sizeof(paths[n]), "%s/%s", tls_dir, name);
    return paths[n++];
}

static struct us_socket_context_options_t server_options(const char *cert, const char *key) {
    struct us_socket_context_options_t o = no_options();
    o.cert_file_name = file(cert);
    o.key_file_name = file(key);
    return o;
}

/* ------------------------------------------------------------------------------------------ */
/* One conversation: the client writes MESSAGE, the server echoes, the client shuts down.      */
/* ------------------------------------------------------------------------------------------ */

static const char HELLO[] = "hello over TLS, ";
static const char HDR[] = "header|";
static const char PAYLOAD[] = "payload";
#define MESSAGE_LEN ((int)(sizeof(HELLO) - 1 + sizeof(HDR) - 1 + sizeof(PAYLOAD) - 1))

struct conv {
    struct us_loop_t *loop;
    struct us_socket_context_t *server_ctx, *client_ctx, *child_ctx;
    struct us_listen_socket_t *ls;
    long long bulk;             /* bytes of the bulk round (0: the echo conversation) */
    long long sent;             /* bulk bytes the client wrote */
    char server_rx[256], client_rx[256];
    int server_rx_len, client_rx_len;
    long long server_bulk;      /* bulk bytes the server got, checked */
    int server_opens, server_closes, server_ends, client_opens, client_closes, client_ends;
    int child_data, adopt, writables, short_writes, connect_errors;
    void *name_user;            /* us_socket_server_name_userdata on the server's first data */
};
static struct conv C;

static unsigned char bulk_byte(long long i) { return (unsigned char)((i * 7 + (i >> 13)) & 0xff); }

static struct us_socket_t *s_open(struct us_socket_t *s, int is_client, char *ip, int ip_len) {
    (void)ip;
    (void)ip_len;
    CHECK_EQ(is_client, 0);
    CHECK(us_socket_get_native_handle(1, s) == NULL); /* no OpenSSL SSL * to hand out */
    C.server_opens++;
    return s;
}

static struct us_socket_t *s_data(struct us_socket_t *s, char *data, int len) {
    CHECK(len > 0);
    if (C.server_rx_len == 0 && C.server_bulk == 0) C.name_user = us_socket_server_name_userdata(1, s);
    if (C.bulk) {
        for (int i = 0; i < len; i++) CHECK_EQ((unsigned char)data[i], bulk_byte(C.server_bulk + i));
        C.server_bulk += len;
        return s;
    }
    CHECK(C.server_rx_len + len <= (int)sizeof(C.server_rx));
    memcpy(C.server_rx + C.server_rx_len, data, (size_t)len);
    C.server_rx_len += len;
    CHECK_EQ(us_socket_write(1, s, data, len, 0), len);
    if (C.adopt && us_socket_context(1, s) == C.server_ctx) {
        /* Mid-connection, as uWebSockets' upgrade does: the session moves along. */
        struct us_socket_t *moved = us_socket_context_adopt_socket(1, C.child_ctx, s, 16);
        CHECK(moved != NULL);
        CHECK(us_socket_context(1, moved) == C.child_ctx);
        return moved;
    }
    return s;
}

static struct us_socket_t *child_data(struct us_socket_t *s, char *data, int len) {
    C.child_data++;
    return s_data(s, data, len);
}

static struct us_socket_t *s_end(struct us_socket_t *s) {
    C.server_ends++;
    return s;
}

static struct us_socket_t *s_close(struct us_socket_t *s, int code, void *reason) {
    (void)code;
    (void)reason;
    C.server_closes++;
    return s;
}

static void client_write_bulk(struct us_socket_t *s) {
    static char chunk[65536];
    while (C.sent < C.bulk) {
        int n = (int)((C.bulk - C.sent) < (long long)sizeof(chunk) ? (C.bulk - C.sent) : (long long)sizeof(chunk));
        for (int i = 0; i < n; i++) chunk[i] = (char)bulk_byte(C.sent + i);
        int w = us_socket_write(1, s, chunk, n, 0);
        CHECK(w >= 0 && w <= n);
        C.sent += w;
        if (w < n) {
            C.short_writes++;
            return; /* on_writable follows */
        }
    }
    us_socket_shutdown(1, s);
}

static struct us_socket_t *c_open(struct us_socket_t *s, int is_client, char *ip, int ip_len) {
    (void)ip;
    (void)ip_len;
    CHECK_EQ(is_client, 1);
    C.client_opens++;
    if (C.bulk) {
        client_write_bulk(s);
        return s;
    }
    /* Written while the handshake runs: held, then sent when it ends. */
    CHECK_EQ(us_socket_write(1, s, HELLO, (int)strlen(HELLO), 1), (int)strlen(HELLO));
    CHECK_EQ(us_socket_write2(1, s, HDR, (int)strlen(HDR), PAYLOAD, (int)strlen(PAYLOAD)),
             (int)(strlen(HDR) + strlen(PAYLOAD)));
    return s;
}

static struct us_socket_t *c_writable(struct us_socket_t *s) {
    C.writables++;
    if (C.bulk && C.sent < C.bulk) client_write_bulk(s);
    return s;
}

static struct us_socket_t *c_data(struct us_socket_t *s, char *data, int len) {
    CHECK(len > 0);
    CHECK(C.client_rx_len + len <= (int)sizeof(C.client_rx));
    memcpy(C.client_rx + C.client_rx_len, data, (size_t)len);
    C.client_rx_len += len;
    if (C.client_rx_len == MESSAGE_LEN) {
        us_socket_shutdown(1, s); /* close_notify */
        CHECK_EQ(us_socket_is_shut_down(1, s), 1);
    }
    return s;
}

static struct us_socket_t *c_end(struct us_socket_t *s) {
    C.client_ends++;
    return s;
}

static struct us_socket_t *c_close(struct us_socket_t *s, int code, void *reason) {
    (void)code;
    (void)reason;
    C.client_closes++;
    /* The client is the last to go: stop listening, so us_loop_run returns. */
    if (C.ls) us_listen_socket_close(1, C.ls);
    C.ls = NULL;
    return s;
}

static struct us_socket_t *c_connect_error(struct us_socket_t *s, int code) {
    fprintf(stderr, "test_tls: connect error %d\n", code);
    C.connect_errors++;
    if (C.ls) us_listen_socket_close(1, C.ls);
    C.ls = NULL;
    return s;
}

static void set_callbacks(struct us_socket_context_t *server, struct us_socket_context_t *client) {
    us_socket_context_on_open(1, server, s_open);
    us_socket_context_on_data(1, server, s_data);
    us_socket_context_on_end(1, server, s_end);
    us_socket_context_on_close(1, server, s_close);
    us_socket_context_on_open(1, client, c_open);
    us_socket_context_on_data(1, client, c_data);
    us_socket_context_on_writable(1, client, c_writable);
    us_socket_context_on_end(1, client, c_end);
    us_socket_context_on_close(1, client, c_close);
    us_socket_context_on_connect_error(1, client, c_connect_error);
}

/* Makes the loop and both contexts; `server_setup` may add server names before listening. */
static void conv_begin(struct us_socket_context_options_t so, struct us_socket_context_options_t co) {
    memset(&C, 0, sizeof(C));
    C.loop = us_create_loop(NULL, NULL, NULL, NULL, 0);
    CHECK(C.loop != NULL);
    C.server_ctx = us_create_socket_context(1, C.loop, 0, so);
    CHECK(C.server_ctx != NULL);
    C.client_ctx = us_create_socket_context(1, C.loop, 0, co);
    CHECK(C.client_ctx != NULL);
    set_callbacks(C.server_ctx, C.client_ctx);
}

/* Listens, connects the client to `host`, runs the loop until every socket is gone. */
static void conv_run(const char *host) {
    C.ls = us_socket_context_listen(1, C.server_ctx, NULL, 0, LIBUS_LISTEN_DEFAULT, 16);
    CHECK(C.ls != NULL);
    int port = us_socket_local_port(1, (struct us_socket_t *)C.ls);
    CHECK(port > 0);
    struct us_socket_t *cs = us_socket_context_connect(1, C.client_ctx, host, port, NULL, 0, 16);
    CHECK(cs != NULL);
    us_loop_run(C.loop);
    CHECK_EQ(C.connect_errors, 0);
    CHECK_EQ(C.client_closes, 1);
    CHECK_EQ(C.server_ends, 0); /* TLS: a FIN or close_notify closes, never on_end */
    CHECK_EQ(C.client_ends, 0);
}

static void conv_end(void) {
    if (C.child_ctx) us_socket_context_free(1, C.child_ctx);
    us_socket_context_free(1, C.server_ctx);
    us_socket_context_free(1, C.client_ctx);
    us_loop_free(C.loop);
}

static void expect_echo(void) {
    char want[256];
    snprintf(want, sizeof(want), "%s%s%s", HELLO, HDR, PAYLOAD);
    CHECK_EQ(C.server_rx_len, MESSAGE_LEN);
    CHECK(memcmp(C.server_rx, want, (size_t)MESSAGE_LEN) == 0);
    CHECK_EQ(C.client_rx_len, MESSAGE_LEN);
    CHECK(memcmp(C.client_rx, want, (size_t)MESSAGE_LEN) == 0);
    CHECK_EQ(C.server_closes, 1);
}

static void expect_silence(void) {
    CHECK_EQ(C.server_rx_len, 0);
    CHECK_EQ(C.client_rx_len, 0);
}

static struct us_socket_context_options_t verifying_client(void) {
    struct us_socket_context_options_t o = no_options();
    o.ca_file_name = file("ca.pem");
    return o;
}

/* ------------------------------------------------------------------------------------------ */

static void round_echo(void) {
    conv_begin(server_options("server.pem", "server.key"), verifying_client());
    conv_run("localhost");
    expect_echo();
    CHECK_EQ(C.server_opens, 1);
    CHECK_EQ(C.client_opens, 1);
    conv_end();
}

static void round_bulk(void) {
    conv_begin(server_options("server.pem", "server.key"), verifying_client());
    C.bulk = 4 << 20;
    conv_run("localhost");
    CHECK_EQ(C.sent, C.bulk);
    CHECK_EQ(C.server_bulk, C.bulk);
    CHECK(C.short_writes >= 1);
    CHECK(C.writables >= 1);
    conv_end();
}

static void round_adopt(void) {
    conv_begin(server_options("server.pem", "server.key"), verifying_client());
    C.child_ctx = us_create_child_socket_context(1, C.server_ctx, 8);
    CHECK(C.child_ctx != NULL);
    us_socket_context_on_data(1, C.child_ctx, child_data);
    us_socket_context_on_close(1, C.child_ctx, s_close);
    us_socket_context_on_end(1, C.child_ctx, s_end);
    C.adopt = 1;
    conv_run("localhost");
    expect_echo();
    conv_end();
}

static void round_verification(void) {
    /* The certificate names other.test only. */
    conv_begin(server_options("other.pem", "other.key"), verifying_client());
    conv_run("localhost");
    expect_silence();
    conv_end();
    /* Signed by nobody the client trusts. */
    conv_begin(server_options("rogue.pem", "rogue.key"), verifying_client());
    conv_run("localhost");
    expect_silence();
    conv_end();
    /* No CA file: no verification, as upstream; the rogue server is talked to. */
    conv_begin(server_options("rogue.pem", "rogue.key"), no_options());
    conv_run("127.0.0.1");
    expect_echo();
    conv_end();
    /* The non-upstream switch: no CA file, but the platform's roots (which do not include
     * our test CA): the server is refused. */
    conv_begin(server_options("server.pem", "server.key"), no_options());
    if (us_socket_context_verify_platform_roots(1, C.client_ctx) == 0) {
        conv_run("localhost");
        expect_silence();
    } else {
        fprintf(stderr, "test_tls: no platform roots on this machine\n");
        CHECK(0);
    }
    conv_end();
    CHECK_EQ(us_socket_context_verify_platform_roots(0, NULL), -1);
}

static void round_mutual(void) {
    struct us_socket_context_options_t so = server_options("server.pem", "server.key");
    so.ca_file_name = file("ca.pem");
    struct us_socket_context_options_t co = verifying_client();
    co.cert_file_name = file("client.pem");
    co.key_file_name = file("client.key");
    conv_begin(so, co);
    conv_run("localhost");
    expect_echo();
    conv_end();
    /* A client without a certificate gets nothing through. */
    conv_begin(so, verifying_client());
    conv_run("localhost");
    CHECK_EQ(C.server_rx_len, 0);
    conv_end();
    /* A client certificate from an issuer the server does not trust: nothing either. */
    co.cert_file_name = file("rogue.pem");
    co.key_file_name = file("rogue.key");
    conv_begin(so, co);
    conv_run("localhost");
    CHECK_EQ(C.server_rx_len, 0);
    conv_end();
}

static int marker_exact, marker_wild, marker_added;
static int missing_calls;

static void on_missing_name(struct us_socket_context_t *ctx, const char *hostname) {
    missing_calls++;
    CHECK(ctx == C.server_ctx);
    CHECK(strcmp(hostname, "localhost") == 0);
    us_socket_context_add_server_name(1, ctx, "localhost", server_options("server.pem", "server.key"), &marker_added);
}

static void round_server_names(void) {
    /* A server with no default certificate, only names. */
    conv_begin(no_options(), verifying_client());
    us_socket_context_add_server_name(1, C.server_ctx, "localhost", server_options("server.pem", "server.key"), &marker_exact);
    us_socket_context_add_server_name(1, C.server_ctx, "*.example.test", server_options("other.pem", "other.key"), &marker_wild);
    CHECK(us_socket_context_find_server_name_userdata(1, C.server_ctx, "localhost") == &marker_exact);
    CHECK(us_socket_context_find_server_name_userdata(1, C.server_ctx, "a.example.test") == &marker_wild);
    CHECK(us_socket_context_find_server_name_userdata(1, C.server_ctx, "*.example.test") == &marker_wild);
    CHECK(us_socket_context_find_server_name_userdata(1, C.server_ctx, "a.b.example.test") == NULL);
    CHECK(us_socket_context_find_server_name_userdata(0, C.server_ctx, "localhost") == NULL);
    conv_run("localhost");
    expect_echo();
    CHECK(C.name_user == &marker_exact);
    conv_end();

    /* The name is missing until on_server_name adds it, during the handshake. */
    conv_begin(no_options(), verifying_client());
    us_socket_context_on_server_name(1, C.server_ctx, on_missing_name);
    us_socket_context_add_server_name(1, C.server_ctx, "*.example.test", server_options("other.pem", "other.key"), &marker_wild);
    us_socket_context_remove_server_name(1, C.server_ctx, "*.example.test");
    CHECK(us_socket_context_find_server_name_userdata(1, C.server_ctx, "a.example.test") == NULL);
    conv_run("localhost");
    expect_echo();
    CHECK_EQ(missing_calls, 1);
    CHECK(C.name_user == &marker_added);
    conv_end();

    /* No certificate at all: each handshake fails, cleanly. */
    conv_begin(no_options(), verifying_client());
    conv_run("localhost");
    expect_silence();
    CHECK_EQ(C.server_closes, 1);
    conv_end();
}

static void round_options(void) {
    struct us_loop_t *loop = us_create_loop(NULL, NULL, NULL, NULL, 0);
    CHECK(loop != NULL);
    struct us_socket_context_options_t o;

    o = server_options("server.pem", "missing.key");
    CHECK(us_create_socket_context(1, loop, 0, o) == NULL);
    o = server_options("missing.pem", "server.key");
    CHECK(us_create_socket_context(1, loop, 0, o) == NULL);
    o = no_options();
    o.cert_file_name = file("server.pem"); /* without its key */
    CHECK(us_create_socket_context(1, loop, 0, o) == NULL);
    o = server_options("server.pem", "other.key"); /* not this certificate's key */
    CHECK(us_create_socket_context(1, loop, 0, o) == NULL);
    o = no_options();
    o.ca_file_name = file("missing-ca.pem");
    CHECK(us_create_socket_context(1, loop, 0, o) == NULL);
    /* ssl = 0 reads no option: the same options make a plain context. */
    struct us_socket_context_t *plain = us_create_socket_context(0, loop, 0, o);
    CHECK(plain != NULL);
    us_socket_context_free(0, plain);

    o = server_options("server.pem", "server-encrypted.key");
    CHECK(us_create_socket_context(1, loop, 0, o) == NULL); /* no passphrase */
    o.passphrase = "not the passphrase";
    CHECK(us_create_socket_context(1, loop, 0, o) == NULL);
    o.passphrase = "test passphrase";
    struct us_socket_context_t *enc = us_create_socket_context(1, loop, 0, o);
    CHECK(enc != NULL);
    us_socket_context_free(1, enc);

    o = server_options("server.pem", "server.key");
    o.dh_params_file_name = file("ca.pem"); /* not DH parameters */
    CHECK(us_create_socket_context(1, loop, 0, o) == NULL);
    o.dh_params_file_name = file("dh.pem");
    struct us_socket_context_t *dh = us_create_socket_context(1, loop, 0, o);
    CHECK(dh != NULL);
    us_socket_context_free(1, dh);

    o = server_options("server.pem", "server.key");
    o.ssl_ciphers = "eNULL:RC4"; /* selects nothing rustls has */
    CHECK(us_create_socket_context(1, loop, 0, o) == NULL);
    o.ssl_ciphers = "ECDHE+AESGCM:!aNULL:!MD5";
    o.ssl_prefer_low_memory_usage = 1;
    struct us_socket_context_t *ciphers = us_create_socket_context(1, loop, 0, o);
    CHECK(ciphers != NULL);
    us_socket_context_free(1, ciphers);

    us_internal_timer_sweep(loop); /* nothing is due; must not crash on an idle loop */
    us_internal_timer_sweep(NULL);
    us_loop_free(loop);

    /* The encrypted key serves a real handshake, with a cipher list and low-memory mode. */
    o = server_options("server.pem", "server-encrypted.key");
    o.passphrase = "test passphrase";
    o.ssl_ciphers = "HIGH:!aNULL:!MD5";
    o.ssl_prefer_low_memory_usage = 1;
    conv_begin(o, verifying_client());
    conv_run("localhost");
    expect_echo();
    conv_end();
}

int main(void) {
    test_watchdog(50);
    tls_dir = getenv("USOCKETS_TLS_DIR");
    if (!tls_dir) {
        fprintf(stderr, "test_tls: set USOCKETS_TLS_DIR to the certificates capi/tests/run.sh makes\n");
        return 1;
    }
    round_echo();
    printf("test_tls: echo ok\n");
    round_bulk();
    printf("test_tls: bulk ok\n");
    round_adopt();
    printf("test_tls: adopt ok\n");
    round_verification();
    printf("test_tls: verification ok\n");
    round_mutual();
    printf("test_tls: mutual ok\n");
    round_server_names();
    printf("test_tls: server names ok\n");
    round_options();
    printf("test_tls: options ok\n");
    return 0;
}
