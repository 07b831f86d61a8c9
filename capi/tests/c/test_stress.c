/* The hammer in C: N connections (argv[1], or $USOCKETS_STRESS_CONNECTIONS, default 5000) on one
 * loop with a seeded random plan per connection (argv[2] or $USOCKETS_STRESS_SEED, default 1).
 *
 *  - Growth: the first W = min(N, 1000) connections are opened and held open together, so more
 *    than 3 x 256 sockets (the library's storage chunk) exist at once; the client pointers and
 *    ext pointers of the first 64, taken before the growth, are then checked (same ext address,
 *    ext contents, context, ports) and used to start their traffic.
 *  - Every connection: the client sends its id, then 1-4 messages of random length (1 in 300
 *    is 8 MiB, so writes are short and on_writable runs on both sides); the server echoes, both
 *    check every byte (the stream content is a function of id and offset). A few messages are
 *    8 MiB, more than the kernel buffers take at once, so writes are short on both sides.
 *  - Adoption between contexts with different ext sizes: server sockets move from A (32 bytes
 *    of ext) to B (96) or C (16), some B -> C again; some client sockets from K (48) to K2 (200).
 *    The returned pointer is the one used afterwards.
 *  - Ends, by plan: client close with a code, client shutdown, server close with a code,
 *    server timeout, server shutdown, client abort in the middle of a message.
 *  - Ext contents (a header with magic and id, then a pattern derived from the id) are checked
 *    in every callback; on_open / on_close run once per socket; codes and reasons pass through;
 *    at the end opens == closes == N on both sides and no connect failed.
 */
#include "test_common.h"

#include <stdint.h>

enum { KIND_CLIENT = 1, KIND_SERVER = 2 };
enum { EXT_K = 48, EXT_K2 = 200, EXT_A = 32, EXT_B = 96, EXT_C = 16 };
enum { EARLY = 64, CONC = 256, BATCH = 100 };
/* A big message: more than loopback buffers take at once, so writes are short. */
#define BIG (8 * 1024 * 1024)

#define MAGIC_CLIENT 0xC11E47C1u
#define MAGIC_SERVER 0x5E7E75E7u

enum plan {
    P_CLIENT_CLOSE,
    P_CLIENT_SHUTDOWN,
    P_SERVER_CLOSE,
    P_SERVER_TIMEOUT,
    P_SERVER_SHUTDOWN,
    P_CLIENT_ABORT,
};

struct ctx_ext {
    int kind;
    int ext_size;
};

/* The first 16 bytes of every socket ext. */
struct hdr {
    uint32_t magic;
    uint32_t id;
    uint32_t hello_len;
    uint8_t hello[4];
};

struct conn {
    struct us_socket_t *client, *server;
    void *early_ext;
    int plan;
    int nmsgs, msg;
    uint32_t lens[4];
    uint64_t total;            /* sum of lens */
    uint64_t sent, target, recv; /* client stream */
    uint64_t srv_recv, srv_echoed;
    int client_opened, client_closed, server_opened, server_closed, server_acted;
    int client_code, server_code; /* expected close codes, 0 = library-initiated (0, NULL) */
};

static int N, W;
static struct conn *conns;
static struct us_loop_t *loop;
static struct us_socket_context_t *K, *K2, *A, *B, *C;
static struct us_listen_socket_t *ls;
static int port;
static int opened, client_opens, client_closes, server_opens, server_closes, hellos;
static int released, adoptions, timeouts, writables, short_writes, connect_errors;
static uint64_t bytes;
static int big_msgs;

static unsigned long long rng_state;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* The stream of connection id: byte o is table[(o + id * 7919) % PERIOD]. The table holds a
 * period plus the longest read, so any window of the stream is one contiguous slice. */
#define PERIOD 65521u
static unsigned char *table;
static void table_init(void) {
    size_t n = PERIOD + LIBUS_RECV_BUFFER_LENGTH + BIG;
    table = (unsigned char *)malloc(n);
    CHECK(table != NULL);
    for (size_t i = 0; i < n; i++) {
        size_t j = i % PERIOD;
        table[i] = (unsigned char)(j * 131u + (j >> 7) + (j >> 13));
    }
}
static const unsigned char *stream(uint32_t id, uint64_t from, size_t len) {
    CHECK(len <= (size_t)LIBUS_RECV_BUFFER_LENGTH + BIG);
    return table + (from + (uint64_t)id * 7919u) % PERIOD;
}
static int stream_ok(uint32_t id, uint64_t from, const char *data, int len) {
    return memcmp(data, stream(id, from, (size_t)len), (size_t)len) == 0;
}

/* The ext pattern after the header: side-specific, so a mixed-up ext is caught. */
static unsigned salt(int kind, uint32_t id) { return id * 2u + (unsigned)kind; }

static struct ctx_ext *cx_of(struct us_socket_t *s) {
    return (struct ctx_ext *)us_socket_context_ext(0, us_socket_context(0, s));
}

/* Checks a socket's ext against its context's kind and ext size; returns its header. */
static struct hdr *check_ext(struct us_socket_t *s) {
    struct ctx_ext *cx = cx_of(s);
    struct hdr *h = (struct hdr *)us_socket_ext(0, s);
    CHECK(IS_ALIGNED(h));
    size_t rest = (size_t)cx->ext_size - sizeof(struct hdr);
    if (cx->kind == KIND_SERVER && h->magic == 0) {
        /* An accepted socket before its hello: zeroed ext (but the hello bytes). */
        CHECK(h->id == 0 && h->hello_len < 4);
        CHECK(all_zero(h + 1, rest));
        return h;
    }
    CHECK_EQ(h->magic, cx->kind == KIND_CLIENT ? MAGIC_CLIENT : MAGIC_SERVER);
    CHECK(h->id < (uint32_t)N);
    CHECK(pattern_ok(h + 1, rest, salt(cx->kind, h->id)));
    struct conn *c = &conns[h->id];
    CHECK((cx->kind == KIND_CLIENT ? c->client : c->server) == s);
    return h;
}

/* Moves s to ctx with its ext size; checks the kept prefix, fills the rest. */
static struct us_socket_t *adopt(struct us_socket_t *s, struct us_socket_context_t *ctx) {
    struct ctx_ext *from = cx_of(s), *to = (struct ctx_ext *)us_socket_context_ext(0, ctx);
    struct hdr *h = (struct hdr *)us_socket_ext(0, s);
    uint32_t id = h->id;
    struct us_socket_t *ns = us_socket_context_adopt_socket(0, ctx, s, to->ext_size);
    CHECK(ns != NULL);
    CHECK(us_socket_context(0, ns) == ctx);
    CHECK_EQ(us_socket_is_closed(0, ns), 0);
    struct hdr *nh = (struct hdr *)us_socket_ext(0, ns);
    CHECK(IS_ALIGNED(nh));
    CHECK_EQ(nh->id, id);
    size_t keep = (size_t)(from->ext_size < to->ext_size ? from->ext_size : to->ext_size) - sizeof(struct hdr);
    CHECK(pattern_ok(nh + 1, keep, salt(from->kind, id)));
    pattern_fill(nh + 1, (size_t)to->ext_size - sizeof(struct hdr), salt(to->kind, id));
    if (from->kind == KIND_CLIENT) conns[id].client = ns;
    else conns[id].server = ns;
    adoptions++;
    return ns;
}

static void maybe_finish(void) {
    if (client_closes == N && server_closes == N && ls) {
        us_listen_socket_close(0, ls);
        ls = NULL;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Client                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static void start_connect(void) {
    uint32_t id = (uint32_t)opened++;
    struct us_socket_t *s = us_socket_context_connect(0, K, "127.0.0.1", port, NULL, 0, EXT_K);
    CHECK(s != NULL);
    struct hdr *h = (struct hdr *)us_socket_ext(0, s);
    h->magic = MAGIC_CLIENT;
    h->id = id;
    h->hello_len = 0;
    pattern_fill(h + 1, EXT_K - sizeof(struct hdr), salt(KIND_CLIENT, id));
    conns[id].client = s;
    if (id < EARLY) conns[id].early_ext = h;
}

/* Writes the client's pending stream bytes; returns 0 if the write was short. */
static int client_flush(struct us_socket_t *s, struct conn *c, uint32_t id) {
    while (c->sent < c->target) {
        size_t want = (size_t)(c->target - c->sent);
        if (want > BIG) want = BIG;
        int n = us_socket_write(0, s, (const char *)stream(id, c->sent, want), (int)want, 0);
        CHECK(n >= 0 && (size_t)n <= want);
        c->sent += (uint64_t)n;
        if ((size_t)n < want) {
            short_writes++;
            return 0;
        }
    }
    return 1;
}

static struct us_socket_t *client_close_with_code(struct us_socket_t *s, struct conn *c, uint32_t id) {
    c->client_code = 1000 + (int)(id % 1000);
    struct us_socket_t *r = us_socket_close(0, s, c->client_code, c);
    CHECK(r == s);
    CHECK(c->client_closed);
    CHECK_EQ(us_socket_is_closed(0, s), 1);
    CHECK_EQ(us_socket_write(0, s, "x", 1, 0), 0);
    /* The memory is still valid until the end of the iteration. */
    struct hdr *h = (struct hdr *)us_socket_ext(0, s);
    CHECK(h->magic == MAGIC_CLIENT && h->id == id);
    return s;
}

/* Starts message c->msg (or ends the connection if all were echoed). */
static struct us_socket_t *client_next(struct us_socket_t *s, struct conn *c, uint32_t id) {
    if (c->msg < c->nmsgs) {
        c->target += c->lens[c->msg];
        client_flush(s, c, id);
        if (c->plan == P_CLIENT_ABORT && c->msg == 1) return client_close_with_code(s, c, id);
        return s;
    }
    switch (c->plan) {
    case P_CLIENT_CLOSE:
        return client_close_with_code(s, c, id);
    case P_CLIENT_SHUTDOWN:
        us_socket_shutdown(0, s);
        CHECK_EQ(us_socket_is_shut_down(0, s), 1);
        CHECK_EQ(us_socket_write(0, s, "x", 1, 0), 0);
        return s;
    default:
        return s; /* the server ends it */
    }
}

static struct us_socket_t *client_open(struct us_socket_t *s, int is_client, char *ip, int ip_len) {
    CHECK_EQ(is_client, 1);
    CHECK(ip == NULL && ip_len == 0);
    struct hdr *h = check_ext(s);
    struct conn *c = &conns[h->id];
    CHECK(!c->client_opened);
    c->client_opened = 1;
    client_opens++;
    CHECK_EQ(us_socket_is_established(0, s), 1);
    CHECK_EQ(us_socket_remote_port(0, s), port);
    uint32_t id = h->id;
    if (id >= (uint32_t)W && id % 4 == 0) s = adopt(s, K2);
    uint32_t le = id;
    CHECK_EQ(us_socket_write(0, s, (const char *)&le, 4, 0), 4);
    if (id >= (uint32_t)W) return client_next(s, c, id);
    return s; /* held until the growth check */
}

static struct us_socket_t *client_data(struct us_socket_t *s, char *data, int len) {
    struct hdr *h = check_ext(s);
    uint32_t id = h->id;
    struct conn *c = &conns[id];
    CHECK(len > 0 && len <= LIBUS_RECV_BUFFER_LENGTH);
    CHECK(c->recv + (uint64_t)len <= c->sent);
    CHECK(stream_ok(id, c->recv, data, len));
    c->recv += (uint64_t)len;
    bytes += (uint64_t)len;
    if (c->recv == c->target) {
        c->msg++;
        return client_next(s, c, id);
    }
    return s;
}

static struct us_socket_t *client_writable(struct us_socket_t *s) {
    struct hdr *h = check_ext(s);
    writables++;
    client_flush(s, &conns[h->id], h->id);
    return s;
}

static struct us_socket_t *client_end(struct us_socket_t *s) {
    struct hdr *h = check_ext(s);
    struct conn *c = &conns[h->id];
    CHECK(c->plan == P_SERVER_CLOSE || c->plan == P_SERVER_TIMEOUT || c->plan == P_SERVER_SHUTDOWN);
    CHECK_EQ(c->recv, c->total); /* everything arrived before the FIN */
    CHECK_EQ(us_socket_is_shut_down(0, s), 0);
    return us_socket_close(0, s, 0, NULL);
}

static struct us_socket_t *client_close(struct us_socket_t *s, int code, void *reason) {
    struct hdr *h = check_ext(s);
    struct conn *c = &conns[h->id];
    CHECK(c->client_opened);
    CHECK(!c->client_closed);
    CHECK_EQ(us_socket_is_closed(0, s), 1);
    c->client_closed = 1;
    client_closes++;
    if (c->client_code) {
        CHECK_EQ(code, c->client_code);
        CHECK(reason == c);
    } else {
        CHECK_EQ(code, 0);
        CHECK(reason == NULL);
    }
    maybe_finish();
    return s;
}

static struct us_socket_t *client_connect_error(struct us_socket_t *s, int code) {
    fprintf(stderr, "connect error %d\n", code);
    connect_errors++;
    CHECK(0);
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Server                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static void server_flush(struct us_socket_t *s, struct conn *c, uint32_t id) {
    while (c->srv_echoed < c->srv_recv) {
        size_t want = (size_t)(c->srv_recv - c->srv_echoed);
        if (want > BIG) want = BIG;
        int n = us_socket_write(0, s, (const char *)stream(id, c->srv_echoed, want), (int)want, 0);
        CHECK(n >= 0 && (size_t)n <= want);
        c->srv_echoed += (uint64_t)n;
        if ((size_t)n < want) {
            short_writes++;
            return;
        }
    }
}

/* After the whole stream is echoed, the server's part of the plan. */
static struct us_socket_t *server_act(struct us_socket_t *s, struct conn *c, uint32_t id) {
    if (c->server_acted || c->srv_recv != c->total || c->srv_echoed != c->total) return s;
    switch (c->plan) {
    case P_SERVER_CLOSE: {
        c->server_acted = 1;
        c->server_code = 2000 + (int)(id % 1000);
        struct us_socket_t *r = us_socket_close(0, s, c->server_code, c);
        CHECK(r == s);
        CHECK(c->server_closed);
        CHECK_EQ(us_socket_is_closed(0, s), 1);
        return s;
    }
    case P_SERVER_TIMEOUT:
        c->server_acted = 1;
        us_socket_timeout(0, s, 1);
        return s;
    case P_SERVER_SHUTDOWN:
        c->server_acted = 1;
        us_socket_shutdown(0, s);
        CHECK_EQ(us_socket_is_shut_down(0, s), 1);
        return s;
    default:
        return s;
    }
}

static struct us_socket_t *server_open(struct us_socket_t *s, int is_client, char *ip, int ip_len) {
    CHECK_EQ(is_client, 0);
    CHECK(ip != NULL && (ip_len == 4 || ip_len == 16));
    CHECK(us_socket_context(0, s) == A);
    check_ext(s); /* zeroed */
    server_opens++;
    return s;
}

static struct us_socket_t *server_data(struct us_socket_t *s, char *data, int len) {
    struct hdr *h = check_ext(s);
    CHECK(len > 0 && len <= LIBUS_RECV_BUFFER_LENGTH);
    if (h->magic == 0) {
        while (h->hello_len < 4 && len > 0) {
            h->hello[h->hello_len++] = (uint8_t)*data++;
            len--;
        }
        if (h->hello_len < 4) return s;
        uint32_t id;
        memcpy(&id, h->hello, 4);
        CHECK(id < (uint32_t)N);
        struct conn *c = &conns[id];
        CHECK(!c->server_opened);
        c->server_opened = 1;
        c->server = s;
        h->magic = MAGIC_SERVER;
        h->id = id;
        pattern_fill(h + 1, EXT_A - sizeof(struct hdr), salt(KIND_SERVER, id));
        hellos++;
        if (id % 3 == 1) s = adopt(s, B);
        else if (id % 3 == 2) s = adopt(s, C);
        if (len == 0) return s;
        h = (struct hdr *)us_socket_ext(0, s);
    }
    uint32_t id = h->id;
    struct conn *c = &conns[id];
    CHECK(c->srv_recv + (uint64_t)len <= c->total);
    CHECK(stream_ok(id, c->srv_recv, data, len));
    c->srv_recv += (uint64_t)len;
    if (id % 6 == 1 && us_socket_context(0, s) == B && c->srv_recv >= c->lens[0]) s = adopt(s, C);
    server_flush(s, c, id);
    return server_act(s, c, id);
}

static struct us_socket_t *server_writable(struct us_socket_t *s) {
    struct hdr *h = check_ext(s);
    CHECK(h->magic == MAGIC_SERVER);
    writables++;
    struct conn *c = &conns[h->id];
    server_flush(s, c, h->id);
    return server_act(s, c, h->id);
}

static struct us_socket_t *server_timeout(struct us_socket_t *s) {
    struct hdr *h = check_ext(s);
    struct conn *c = &conns[h->id];
    CHECK_EQ(c->plan, P_SERVER_TIMEOUT);
    CHECK(c->server_acted);
    timeouts++;
    c->server_code = 3000 + (int)(h->id % 1000);
    return us_socket_close(0, s, c->server_code, c);
}

static struct us_socket_t *server_end(struct us_socket_t *s) {
    struct hdr *h = check_ext(s);
    struct conn *c = &conns[h->id];
    CHECK(h->magic == MAGIC_SERVER);
    CHECK(c->plan == P_CLIENT_CLOSE || c->plan == P_CLIENT_SHUTDOWN || c->plan == P_CLIENT_ABORT);
    CHECK_EQ(us_socket_is_shut_down(0, s), 0);
    if (c->plan != P_CLIENT_ABORT) CHECK_EQ(c->srv_recv, c->total);
    return us_socket_close(0, s, 0, NULL);
}

static struct us_socket_t *server_close(struct us_socket_t *s, int code, void *reason) {
    struct hdr *h = check_ext(s);
    CHECK(h->magic == MAGIC_SERVER); /* every client sends its hello before anything ends */
    struct conn *c = &conns[h->id];
    CHECK(c->server_opened);
    CHECK(!c->server_closed);
    c->server_closed = 1;
    server_closes++;
    if (c->server_code) {
        CHECK_EQ(code, c->server_code);
        CHECK(reason == c);
    } else {
        CHECK_EQ(code, 0);
        CHECK(reason == NULL);
    }
    maybe_finish();
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Loop                                                                                       */
/* ------------------------------------------------------------------------------------------ */

static void release_held(void) {
    /* More than 3 x 256 sockets exist now: the pointers taken first must still work. */
    int live = 0;
    for (int i = 0; i < W; i++) live += conns[i].client_opened && !conns[i].client_closed;
    CHECK_EQ(live, W);
    CHECK(2 * W > 3 * 256 || W == N);
    for (uint32_t id = 0; id < (uint32_t)W && id < EARLY; id++) {
        struct us_socket_t *s = conns[id].client;
        CHECK(us_socket_ext(0, s) == conns[id].early_ext);
        struct hdr *h = check_ext(s);
        CHECK_EQ(h->id, id);
        CHECK(us_socket_context(0, s) == K);
        CHECK_EQ(us_socket_is_closed(0, s), 0);
        CHECK_EQ(us_socket_remote_port(0, s), port);
        CHECK(us_socket_local_port(0, s) > 0);
    }
    released = 1;
    for (uint32_t id = 0; id < (uint32_t)W; id++) {
        struct conn *c = &conns[id];
        struct us_socket_t *s = client_next(c->client, c, id);
        (void)s;
    }
}

static void post(struct us_loop_t *l) {
    CHECK(l == loop);
    if (!released) {
        for (int i = 0; i < BATCH && opened < W; i++) start_connect();
        if (client_opens == W && hellos == W) release_held();
        return;
    }
    while (opened < N && opened - client_closes < CONC) start_connect();
}

static struct us_socket_context_t *make_ctx(struct us_socket_context_t *parent, int kind, int ext_size) {
    struct us_socket_context_t *ctx = parent ? us_create_child_socket_context(0, parent, sizeof(struct ctx_ext))
                                             : us_create_socket_context(0, loop, sizeof(struct ctx_ext), no_options());
    CHECK(ctx != NULL);
    struct ctx_ext *cx = (struct ctx_ext *)us_socket_context_ext(0, ctx);
    cx->kind = kind;
    cx->ext_size = ext_size;
    if (kind == KIND_CLIENT) {
        us_socket_context_on_open(0, ctx, client_open);
        us_socket_context_on_data(0, ctx, client_data);
        us_socket_context_on_writable(0, ctx, client_writable);
        us_socket_context_on_end(0, ctx, client_end);
        us_socket_context_on_close(0, ctx, client_close);
        us_socket_context_on_connect_error(0, ctx, client_connect_error);
    } else {
        us_socket_context_on_open(0, ctx, server_open);
        us_socket_context_on_data(0, ctx, server_data);
        us_socket_context_on_writable(0, ctx, server_writable);
        us_socket_context_on_timeout(0, ctx, server_timeout);
        us_socket_context_on_end(0, ctx, server_end);
        us_socket_context_on_close(0, ctx, server_close);
    }
    return ctx;
}

int main(int argc, char **argv) {
    const char *n_env = getenv("USOCKETS_STRESS_CONNECTIONS");
    const char *seed_env = getenv("USOCKETS_STRESS_SEED");
    N = argc > 1 ? atoi(argv[1]) : (n_env ? atoi(n_env) : 5000);
    unsigned long long seed = argc > 2 ? strtoull(argv[2], NULL, 10) : (seed_env ? strtoull(seed_env, NULL, 10) : 1);
    CHECK(N > 0);
    W = N < 1000 ? N : 1000;
    test_watchdog(55);
    raise_fd_limit(2L * (W > CONC ? W : CONC) + 64);

    rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
    conns = (struct conn *)calloc((size_t)N, sizeof(struct conn));
    CHECK(conns != NULL);
    table_init();
    int plan_count[6] = {0};
    for (int i = 0; i < N; i++) {
        struct conn *c = &conns[i];
        uint32_t r = rnd() % 100;
        c->plan = r < 25 ? P_CLIENT_CLOSE
                : r < 45 ? P_CLIENT_SHUTDOWN
                : r < 65 ? P_SERVER_CLOSE
                : r < 68 ? P_SERVER_TIMEOUT
                : r < 85 ? P_SERVER_SHUTDOWN
                         : P_CLIENT_ABORT;
        plan_count[c->plan]++;
        c->nmsgs = 1 + (int)(rnd() % 4);
        if (c->plan == P_CLIENT_ABORT && c->nmsgs < 2) c->nmsgs = 2;
        for (int m = 0; m < c->nmsgs; m++) {
            c->lens[m] = (rnd() % 300 == 0) ? BIG : 1 + rnd() % 4096;
            c->total += c->lens[m];
            if (c->lens[m] == BIG && c->plan != P_CLIENT_ABORT) big_msgs++;
        }
    }

    loop = us_create_loop(NULL, NULL, NULL, post, 0);
    CHECK(loop != NULL);
    K = make_ctx(NULL, KIND_CLIENT, EXT_K);
    K2 = make_ctx(K, KIND_CLIENT, EXT_K2);
    A = make_ctx(NULL, KIND_SERVER, EXT_A);
    B = make_ctx(A, KIND_SERVER, EXT_B);
    C = make_ctx(NULL, KIND_SERVER, EXT_C);

    ls = us_socket_context_listen(0, A, "127.0.0.1", 0, LIBUS_LISTEN_DEFAULT, EXT_A);
    CHECK(ls != NULL);
    port = us_socket_local_port(0, (struct us_socket_t *)ls);
    CHECK(port > 0);
    for (int i = 0; i < BATCH && opened < W; i++) start_connect();

    long long t0 = now_ms();
    us_loop_run(loop);
    long long took = now_ms() - t0;

    printf("test_stress: connections=%d seed=%llu held=%d opens_client=%d closes_client=%d opens_server=%d "
           "closes_server=%d connect_errors=%d adoptions=%d timeouts=%d writables=%d short_writes=%d bytes=%llu "
           "big=%d ms=%lld plans=%d/%d/%d/%d/%d/%d\n",
           N, seed, W, client_opens, client_closes, server_opens, server_closes, connect_errors, adoptions, timeouts,
           writables, short_writes, (unsigned long long)bytes, big_msgs, took, plan_count[0], plan_count[1], plan_count[2],
           plan_count[3], plan_count[4], plan_count[5]);
    CHECK(released);
    CHECK_EQ(opened, N);
    CHECK_EQ(client_opens, N);
    CHECK_EQ(client_closes, N);
    CHECK_EQ(server_opens, N);
    CHECK_EQ(server_closes, N);
    CHECK_EQ(hellos, N);
    CHECK_EQ(connect_errors, 0);
    CHECK_EQ(timeouts, plan_count[P_SERVER_TIMEOUT]);
    if (big_msgs > 0) CHECK(writables > 0);
    for (int i = 0; i < N; i++) {
        struct conn *c = &conns[i];
        CHECK(c->client_opened && c->client_closed && c->server_opened && c->server_closed);
        if (c->plan != P_CLIENT_ABORT) {
            CHECK_EQ(c->recv, c->total);
            CHECK_EQ(c->srv_recv, c->total);
        }
    }
    us_socket_context_free(0, K2);
    us_socket_context_free(0, K);
    us_socket_context_free(0, B);
    us_socket_context_free(0, A);
    us_socket_context_free(0, C);
    us_loop_free(loop);
    free(conns);
    free(table);
    printf("test_stress: ok\n");
    return 0;
}
