/* Timers: ext and loop, repeating timers closed from inside their own callback, one-shot
 * timers re-armed from their callback, disarming (0, 0), a timer closing another that is due in
 * the same iteration, fallthrough timers not keeping us_loop_run alive, and many timers never
 * firing early. */
#include "test_common.h"

static struct us_loop_t *loop;

/* 1. repeating, closed inside its callback after 5 calls */
static struct us_timer_t *rep;
static int rep_calls;
static long long rep_start, rep_first, rep_last;

static void rep_cb(struct us_timer_t *t) {
    CHECK(t == rep);
    CHECK(us_timer_loop(t) == loop);
    CHECK(pattern_ok(us_timer_ext(t), 40, 5));
    long long now = now_ms();
    if (rep_calls == 0) rep_first = now;
    rep_last = now;
    if (++rep_calls == 5) {
        us_timer_close(t); /* uWS's UpgradeAsync does this */
        rep = NULL;
    }
}

static void test_repeat(void) {
    loop = us_create_loop(NULL, NULL, NULL, NULL, 0);
    CHECK(loop != NULL);
    rep = us_create_timer(loop, 0, 40);
    CHECK(rep != NULL);
    CHECK(us_timer_loop(rep) == loop);
    void *ext = us_timer_ext(rep);
    CHECK(ext != NULL && IS_ALIGNED(ext));
    pattern_fill(ext, 40, 5);
    rep_start = now_ms();
    us_timer_set(rep, rep_cb, 30, 10);
    us_loop_run(loop); /* returns once the only non-fallthrough timer is closed */
    CHECK_EQ(rep_calls, 5);
    CHECK(rep == NULL);
    CHECK(rep_first - rep_start >= 29);     /* not early (1 ms clock rounding) */
    CHECK(rep_last - rep_start >= 30 + 40 - 1);
    CHECK(now_ms() - rep_start < 2000);
    us_loop_free(loop);
}

/* 2. one-shot, re-armed from its callback with another callback; disarm; closing another timer
 *    that is due in the same iteration */
static struct us_timer_t *once, *disarmed, *a, *b;
static int once_calls, second_calls, disarmed_calls, ab_calls;

static void disarmed_cb(struct us_timer_t *t) {
    (void)t;
    disarmed_calls++;
}

static void second_cb(struct us_timer_t *t) {
    CHECK(t == once);
    second_calls++;
    us_timer_close(t);
    once = NULL;
    us_timer_close(disarmed); /* it never fired, and keeps the loop alive until closed */
    disarmed = NULL;
}

static void once_cb(struct us_timer_t *t) {
    CHECK(t == once);
    once_calls++;
    us_timer_set(t, second_cb, 20, 0);
}

static void ab_cb(struct us_timer_t *t) {
    /* Both are due together; whichever runs first closes the other, which must not run. */
    ab_calls++;
    struct us_timer_t *other = (t == a) ? b : a;
    CHECK(other != NULL);
    us_timer_close(other);
    us_timer_close(t);
    a = b = NULL;
}

static void test_oneshot(void) {
    loop = us_create_loop(NULL, NULL, NULL, NULL, 0);
    CHECK(loop != NULL);
    once = us_create_timer(loop, 0, 0);
    disarmed = us_create_timer(loop, 0, 0);
    a = us_create_timer(loop, 0, 0);
    b = us_create_timer(loop, 0, 0);
    CHECK(once && disarmed && a && b);
    us_timer_set(once, once_cb, 10, 0);
    us_timer_set(disarmed, disarmed_cb, 5, 0);
    us_timer_set(disarmed, disarmed_cb, 0, 0); /* disarm */
    us_timer_set(a, ab_cb, 15, 0);
    us_timer_set(b, ab_cb, 15, 0);
    test_sleep_ms(20); /* both a and b are due at the first wait */
    us_loop_run(loop);
    CHECK_EQ(once_calls, 1);
    CHECK_EQ(second_calls, 1);
    CHECK_EQ(disarmed_calls, 0);
    CHECK_EQ(ab_calls, 1);
    us_loop_free(loop);
}

/* 3. fallthrough timers do not keep the loop alive */
static struct us_timer_t *ft, *keep;
static int ft_calls, keep_calls;

static void ft_cb(struct us_timer_t *t) {
    CHECK(t == ft);
    ft_calls++;
}

static void keep_cb(struct us_timer_t *t) {
    keep_calls++;
    us_timer_close(t);
    keep = NULL;
}

static void test_fallthrough(void) {
    loop = us_create_loop(NULL, NULL, NULL, NULL, 0);
    CHECK(loop != NULL);
    ft = us_create_timer(loop, 1, 8);
    CHECK(ft != NULL);
    CHECK(IS_ALIGNED(us_timer_ext(ft)));

    /* Only a fallthrough timer (armed far away): us_loop_run returns at once. */
    us_timer_set(ft, ft_cb, 10000, 10000);
    long long t0 = now_ms();
    us_loop_run(loop);
    CHECK(now_ms() - t0 < 1000);
    CHECK_EQ(ft_calls, 0);

    /* With a non-fallthrough timer: the fallthrough one fires meanwhile, and run returns once
     * the non-fallthrough one is closed. */
    us_timer_set(ft, ft_cb, 5, 5);
    keep = us_create_timer(loop, 0, 0);
    CHECK(keep != NULL);
    us_timer_set(keep, keep_cb, 100, 0);
    t0 = now_ms();
    us_loop_run(loop);
    long long took = now_ms() - t0;
    CHECK_EQ(keep_calls, 1);
    CHECK(took >= 99 && took < 2000);
    CHECK(ft_calls >= 3);
    us_timer_close(ft); /* outside the loop */
    us_loop_free(loop);
}

/* 4. many timers, each fires once and never early */
#define MANY 64
static struct us_timer_t *many[MANY];
static int many_delay[MANY];
static long long many_start;
static int many_fired;

static void many_cb(struct us_timer_t *t) {
    int i = *(int *)us_timer_ext(t);
    CHECK(i >= 0 && i < MANY && many[i] == t);
    CHECK(now_ms() - many_start >= many_delay[i] - 1);
    many[i] = NULL;
    many_fired++;
    us_timer_close(t);
}

static void test_many(void) {
    loop = us_create_loop(NULL, NULL, NULL, NULL, 0);
    CHECK(loop != NULL);
    srand(7);
    many_start = now_ms();
    for (int i = 0; i < MANY; i++) {
        many[i] = us_create_timer(loop, 0, sizeof(int));
        CHECK(many[i] != NULL);
        *(int *)us_timer_ext(many[i]) = i;
        many_delay[i] = 1 + rand() % 150;
        us_timer_set(many[i], many_cb, many_delay[i], 0);
    }
    us_loop_run(loop);
    CHECK_EQ(many_fired, MANY);
    us_loop_free(loop);
}

int main(void) {
    test_watchdog(50);
    test_repeat();
    test_oneshot();
    test_fallthrough();
    test_many();
    printf("test_timers: ok\n");
    return 0;
}
