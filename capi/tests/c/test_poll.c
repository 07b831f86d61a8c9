/* Raw polls on pipes (us_create_poll + us_poll_init + us_poll_set_ready_callback +
 * us_poll_start): readable and writable readiness, ext and us_poll_resize (prefix kept, the
 * callback gets the new pointer), us_poll_change, hang-up reported as error = 1, us_poll_stop
 * dropping readiness pending in the same iteration, fallthrough polls not keeping the loop
 * alive, and a non-fallthrough poll keeping it alive until freed.
 *
 * On Windows a poll watches sockets only (the IOCP backend polls through AFD), so a connected
 * loopback TCP pair stands in for each pipe, and the hang-up is an abortive close (a reset,
 * which the library reports as error = 1; a graceful close is a FIN, which is only readable
 * there, as on a POSIX socket). */
#include "test_common.h"

#ifdef _WIN32
/* A pipe: a connected, non-blocking loopback TCP pair ([0] reads, [1] writes). */
static int make_pipe(LIBUS_SOCKET_DESCRIPTOR fds[2]) {
    SOCKET l = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(l != INVALID_SOCKET);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int len = sizeof(a);
    CHECK(bind(l, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(listen(l, 1) == 0);
    CHECK(getsockname(l, (struct sockaddr *)&a, &len) == 0);
    fds[1] = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fds[1] != INVALID_SOCKET);
    CHECK(connect(fds[1], (struct sockaddr *)&a, sizeof(a)) == 0);
    fds[0] = accept(l, NULL, NULL);
    CHECK(fds[0] != INVALID_SOCKET);
    closesocket(l);
    u_long on = 1;
    CHECK(ioctlsocket(fds[0], FIONBIO, &on) == 0 && ioctlsocket(fds[1], FIONBIO, &on) == 0);
    return 0;
}
static long pipe_write(LIBUS_SOCKET_DESCRIPTOR fd, const char *b, int n) { return send(fd, b, n, 0); }
static long pipe_read(LIBUS_SOCKET_DESCRIPTOR fd, char *b, int n) { return recv(fd, b, n, 0); }
static void pipe_close(LIBUS_SOCKET_DESCRIPTOR fd) { closesocket(fd); }
/* Closes the write end so that the read end hangs up: an abortive close (RST). */
static void pipe_hang_up(LIBUS_SOCKET_DESCRIPTOR fd) {
    struct linger lg = {1, 0};
    CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, (const char *)&lg, sizeof(lg)) == 0);
    closesocket(fd);
}
#else
#include <fcntl.h>

static int make_pipe(int fds[2]) { return pipe2(fds, O_NONBLOCK | O_CLOEXEC); }
static long pipe_write(int fd, const char *b, int n) { return (long)write(fd, b, (size_t)n); }
static long pipe_read(int fd, char *b, int n) { return (long)read(fd, b, (size_t)n); }
static void pipe_close(int fd) { close(fd); }
/* Closes the write end: the read end hangs up. */
static void pipe_hang_up(int fd) { close(fd); }
#endif

static struct us_loop_t *loop;

/* ------------------------------------------------------------------------------------------ */
/* 1. read end: readable, resize, hang-up                                                     */
/* ------------------------------------------------------------------------------------------ */
static LIBUS_SOCKET_DESCRIPTOR fds[2];
static struct us_poll_t *rp;     /* current pointer of the read-end poll */
static struct us_poll_t *wp;     /* write-end poll (fallthrough) */
static struct us_timer_t *writer;
static int reads, hangups, writables, writer_calls;
static size_t rp_ext = 24;

static void writer_cb(struct us_timer_t *t) {
    (void)t;
    writer_calls++;
    if (writer_calls <= 2) {
        CHECK_EQ(pipe_write(fds[1], "ping", 4), 4);
    } else {
        /* Hang-up of the read end: stop and free the write-end poll, close the write end. */
        us_poll_stop(wp, loop);
        us_poll_free(wp, loop);
        wp = NULL;
        pipe_hang_up(fds[1]);
        us_timer_close(t);
        writer = NULL;
    }
}

static void read_cb(struct us_poll_t *p, int events, int error) {
    CHECK(p == rp); /* the current address, also after a resize */
    CHECK(pattern_ok(us_poll_ext(p), rp_ext, 11));
    CHECK(us_poll_fd(p) == fds[0]);
    if (error) {
        /* The write end is closed. */
        CHECK(writer == NULL);
        hangups++;
        us_poll_stop(p, loop);
        us_poll_free(p, loop); /* the last non-fallthrough thing: us_loop_run returns */
        rp = NULL;
        pipe_close(fds[0]);
        return;
    }
    CHECK(events & LIBUS_SOCKET_READABLE);
    CHECK(!(events & LIBUS_SOCKET_WRITABLE)); /* not asked for */
    char buf[16];
    long n = pipe_read(fds[0], buf, sizeof(buf));
    if (n == 0) { /* EOF seen as readable before the hang-up flag: the next call has error */
        return;
    }
    CHECK_EQ(n, 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    reads++;
    if (reads == 1) {
        /* Grow the ext: the poll may move; the prefix is kept. */
        struct us_poll_t *np = us_poll_resize(p, loop, 4096);
        CHECK(np != NULL);
        CHECK(pattern_ok(us_poll_ext(np), rp_ext, 11));
        CHECK(IS_ALIGNED(us_poll_ext(np)));
        rp = np;
        pattern_fill(us_poll_ext(np), 4096, 11);
        rp_ext = 4096;
        CHECK_EQ(us_poll_events(np), LIBUS_SOCKET_READABLE);
        CHECK(us_poll_fd(np) == fds[0]);
        us_poll_change(np, loop, LIBUS_SOCKET_READABLE); /* unchanged: a no-op */
        CHECK_EQ(us_poll_events(np), LIBUS_SOCKET_READABLE);
    }
}

static void write_cb(struct us_poll_t *p, int events, int error) {
    CHECK(p == wp);
    CHECK_EQ(error, 0);
    CHECK(events & LIBUS_SOCKET_WRITABLE);
    writables++;
    /* Once is enough: stop asking. */
    us_poll_change(p, loop, 0);
    CHECK_EQ(us_poll_events(p), 0);
}

static void test_pipe(void) {
    loop = us_create_loop(NULL, NULL, NULL, NULL, 0);
    CHECK(loop != NULL);
    CHECK(make_pipe(fds) == 0);

    rp = us_create_poll(loop, 0, (unsigned)rp_ext);
    CHECK(rp != NULL);
    CHECK(IS_ALIGNED(us_poll_ext(rp)));
    pattern_fill(us_poll_ext(rp), rp_ext, 11);
    us_poll_init(rp, fds[0], 0);
    CHECK(us_poll_fd(rp) == fds[0]);
    us_poll_set_ready_callback(rp, read_cb);
    us_poll_start(rp, loop, LIBUS_SOCKET_READABLE);
    CHECK_EQ(us_poll_events(rp), LIBUS_SOCKET_READABLE);

    wp = us_create_poll(loop, 1, 0);
    CHECK(wp != NULL);
    us_poll_init(wp, fds[1], 0);
    us_poll_set_ready_callback(wp, write_cb);
    us_poll_start(wp, loop, LIBUS_SOCKET_WRITABLE);
    CHECK_EQ(us_poll_events(wp), LIBUS_SOCKET_WRITABLE);

    writer = us_create_timer(loop, 1, 0); /* fallthrough: the read poll keeps the loop alive */
    CHECK(writer != NULL);
    us_timer_set(writer, writer_cb, 20, 20);

    us_loop_run(loop); /* returns when the read poll is freed */

    CHECK_EQ(reads, 2);
    CHECK_EQ(hangups, 1);
    CHECK_EQ(writables, 1);
    CHECK(rp == NULL && wp == NULL && writer == NULL);
    us_loop_free(loop);
}

/* ------------------------------------------------------------------------------------------ */
/* 2. us_poll_stop drops readiness pending in the same iteration                               */
/* ------------------------------------------------------------------------------------------ */
static LIBUS_SOCKET_DESCRIPTOR pa[2], pb[2];
static struct us_poll_t *polla, *pollb;
static int stop_calls;

static void stop_cb(struct us_poll_t *p, int events, int error) {
    CHECK_EQ(error, 0);
    CHECK(events & LIBUS_SOCKET_READABLE);
    stop_calls++;
    /* Both pipes were readable at the same wait; the other one must not be called now. */
    struct us_poll_t *other = (p == polla) ? pollb : polla;
    CHECK(other != NULL);
    us_poll_stop(other, loop);
    us_poll_free(other, loop);
    us_poll_stop(p, loop);
    us_poll_free(p, loop);
    polla = pollb = NULL;
}

static void test_stop_pending(void) {
    loop = us_create_loop(NULL, NULL, NULL, NULL, 0);
    CHECK(loop != NULL);
    CHECK(make_pipe(pa) == 0 && make_pipe(pb) == 0);
    polla = us_create_poll(loop, 0, 0);
    pollb = us_create_poll(loop, 0, 0);
    CHECK(polla && pollb);
    us_poll_init(polla, pa[0], 0);
    us_poll_init(pollb, pb[0], 0);
    us_poll_set_ready_callback(polla, stop_cb);
    us_poll_set_ready_callback(pollb, stop_cb);
    us_poll_start(polla, loop, LIBUS_SOCKET_READABLE);
    us_poll_start(pollb, loop, LIBUS_SOCKET_READABLE);
    CHECK_EQ(pipe_write(pa[1], "a", 1), 1);
    CHECK_EQ(pipe_write(pb[1], "b", 1), 1);
    us_loop_run(loop);
    CHECK_EQ(stop_calls, 1);
    pipe_close(pa[0]); pipe_close(pa[1]); pipe_close(pb[0]); pipe_close(pb[1]);
    us_loop_free(loop);
}

/* ------------------------------------------------------------------------------------------ */
/* 3. a fallthrough poll alone does not keep the loop alive; a non-fallthrough one does       */
/* ------------------------------------------------------------------------------------------ */
static struct us_poll_t *keep;
static LIBUS_SOCKET_DESCRIPTOR pc[2];
static int keep_calls;

static void keep_cb(struct us_poll_t *p, int events, int error) {
    (void)events;
    (void)error;
    keep_calls++;
    us_poll_stop(p, loop);
    us_poll_free(p, loop);
    keep = NULL;
}

static void freer_cb(struct us_timer_t *t) {
    CHECK_EQ(pipe_write(pc[1], "x", 1), 1); /* wakes the kept poll, which frees itself */
    us_timer_close(t);
}

static void test_liveness(void) {
    loop = us_create_loop(NULL, NULL, NULL, NULL, 0);
    CHECK(loop != NULL);
    CHECK(make_pipe(pc) == 0);

    struct us_poll_t *ft = us_create_poll(loop, 1, 0);
    CHECK(ft != NULL);
    us_poll_init(ft, pc[0], 0);
    us_poll_set_ready_callback(ft, keep_cb);
    us_poll_start(ft, loop, LIBUS_SOCKET_READABLE);
    long long t0 = now_ms();
    us_loop_run(loop); /* nothing keeps it alive */
    CHECK(now_ms() - t0 < 1000);
    CHECK_EQ(keep_calls, 0);
    us_poll_stop(ft, loop);
    us_poll_free(ft, loop);

    /* A non-fallthrough poll created but freed before running does not count either. */
    struct us_poll_t *gone = us_create_poll(loop, 0, 0);
    CHECK(gone != NULL);
    us_poll_free(gone, loop);

    keep = us_create_poll(loop, 0, 0);
    CHECK(keep != NULL);
    us_poll_init(keep, pc[0], 0);
    us_poll_set_ready_callback(keep, keep_cb);
    us_poll_start(keep, loop, LIBUS_SOCKET_READABLE);
    struct us_timer_t *freer = us_create_timer(loop, 1, 0);
    CHECK(freer != NULL);
    us_timer_set(freer, freer_cb, 200, 0);
    t0 = now_ms();
    us_loop_run(loop); /* kept alive by the poll until it frees itself */
    CHECK(now_ms() - t0 >= 199);
    CHECK_EQ(keep_calls, 1);
    CHECK(keep == NULL);
    pipe_close(pc[0]);
    pipe_close(pc[1]);
    us_loop_free(loop);
}

int main(void) {
    test_watchdog(50);
    test_pipe();
    test_stop_pending();
    test_liveness();
    printf("test_poll: ok\n");
    return 0;
}
