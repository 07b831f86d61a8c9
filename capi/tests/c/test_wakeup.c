/* us_wakeup_loop from another thread (pthread; on Windows mingw-w64's winpthreads): wakes a loop blocked in its wait, wakeup_cb runs
 * on the loop's thread, wakeups may coalesce but none is lost (the last one is always seen);
 * also a wakeup from the loop thread itself (in pre_cb), and the loop ext. */
#include "test_common.h"

#include <pthread.h>
#include <stdatomic.h>

#define WAKES 200

static struct us_loop_t *loop;
static pthread_t loop_thread;
static atomic_int posted;
static int seen_max, wakeup_calls, pre_calls, self_woken;
static struct us_timer_t *keepalive;
static long long first_wake_at, thread_started_at;

static void wakeup_cb(struct us_loop_t *l) {
    CHECK(l == loop);
    CHECK(pthread_equal(pthread_self(), loop_thread));
    CHECK(pattern_ok(us_loop_ext(l), 64, 3));
    wakeup_calls++;
    int p = atomic_load(&posted);
    CHECK(p >= seen_max);
    seen_max = p;
    if (p == 0) {
        self_woken++;
        return;
    }
    if (first_wake_at == 0) first_wake_at = now_ms();
    if (p == WAKES && keepalive) {
        us_timer_close(keepalive);
        keepalive = NULL;
    }
}

static void pre_cb(struct us_loop_t *l) {
    CHECK(l == loop);
    if (pre_calls++ == 0) us_wakeup_loop(l); /* from the loop thread itself */
}

static void never_cb(struct us_timer_t *t) {
    (void)t;
    fprintf(stderr, "the keep-alive timer fired: wakeups were lost\n");
    CHECK(0);
}

static void *waker_main(void *arg) {
    (void)arg;
    test_sleep_ms(200); /* the loop is blocked in its wait by now */
    thread_started_at = now_ms();
    for (int i = 1; i <= WAKES; i++) {
        atomic_store(&posted, i);
        us_wakeup_loop(loop);
        if (i % 50 == 0) test_sleep_ms(1);
    }
    return NULL;
}

int main(void) {
    test_watchdog(50);
    loop_thread = pthread_self();
    loop = us_create_loop(NULL, wakeup_cb, pre_cb, NULL, 64);
    CHECK(loop != NULL);
    void *ext = us_loop_ext(loop);
    CHECK(ext != NULL && IS_ALIGNED(ext));
    pattern_fill(ext, 64, 3);

    keepalive = us_create_timer(loop, 0, 0);
    CHECK(keepalive != NULL);
    us_timer_set(keepalive, never_cb, 20000, 0);

    pthread_t th;
    CHECK(pthread_create(&th, NULL, waker_main, NULL) == 0);
    long long t0 = now_ms();
    us_loop_run(loop); /* returns when wakeup_cb has seen the last wakeup and closed the timer */
    long long took = now_ms() - t0;
    CHECK(pthread_join(th, NULL) == 0);

    CHECK_EQ(seen_max, WAKES);
    CHECK_EQ(self_woken, 1);
    CHECK(wakeup_calls >= 2 && wakeup_calls <= WAKES + 1);
    CHECK(first_wake_at - thread_started_at < 1000); /* the blocked wait was interrupted */
    CHECK(took < 10000);
    CHECK(pattern_ok(us_loop_ext(loop), 64, 3));
    us_loop_free(loop);
    printf("test_wakeup: ok (%d wakeup calls for %d wakeups)\n", wakeup_calls, WAKES);
    return 0;
}
