/* test_sqlite_writer.c -- store_sqlite_writer.c with a stand-in write function:
 * a batch's callback runs on the loop only after the write that holds it
 * returned, in submission order; batches waiting together are written as one
 * group, and a group that fails is retried batch by batch, so only the batch
 * that fails alone is answered -1; the loop's lock waits for a running write
 * and no write runs while the loop holds it; close calls back a write that was
 * running. (The SQLite side and the kill in a hung commit:
 * fault_storage_ack_durable.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "store_sqlite_writer.h"

#define MAXB 16

typedef struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int hold;                 /* the write waits while set (a slow commit) */
    int in_write;             /* a write is running */
    int writes_returned;      /* writes that returned */
    size_t group[MAXB];       /* size of each write call */
    int ncalls;
    store_batch *poison;      /* a write holding this batch fails */
    int fail_groups;          /* every write of more than one batch fails */
} fake;

typedef struct answer {
    store_batch *b;
    int rc;
    int returned_before;      /* fake.writes_returned when the callback ran */
} answer;

static fake F;
static answer A[MAXB];
static int nanswers;

static int fake_write(void *ctx, store_batch **b, size_t n, char *err, size_t errlen) {
    fake *f = ctx;
    pthread_mutex_lock(&f->mu);
    f->in_write = 1;
    pthread_cond_broadcast(&f->cv);
    while (f->hold) pthread_cond_wait(&f->cv, &f->mu);
    f->group[f->ncalls++] = n;
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (b[i] == f->poison) rc = -1;
    if (f->fail_groups && n > 1) rc = -1;
    f->in_write = 0;
    f->writes_returned++;
    pthread_mutex_unlock(&f->mu);
    if (rc) snprintf(err, errlen, "refused");
    return rc;
}

static void on_done(store_batch *b, int rc, const char *err, void *arg) {
    (void)arg;
    assert_true(rc == 0 || (err && *err));
    pthread_mutex_lock(&F.mu);
    A[nanswers++] = (answer){.b = b, .rc = rc, .returned_before = F.writes_returned};
    pthread_mutex_unlock(&F.mu);
}

static void reset(void) {
    memset(&F, 0, sizeof F);
    pthread_mutex_init(&F.mu, NULL);
    pthread_cond_init(&F.cv, NULL);
    memset(A, 0, sizeof A);
    nanswers = 0;
}

static void wait_in_write(void) {
    pthread_mutex_lock(&F.mu);
    while (!F.in_write) pthread_cond_wait(&F.cv, &F.mu);
    pthread_mutex_unlock(&F.mu);
}

static void release(void) {
    pthread_mutex_lock(&F.mu);
    F.hold = 0;
    pthread_cond_broadcast(&F.cv);
    pthread_mutex_unlock(&F.mu);
}

static void *release_thread(void *arg) {
    (void)arg;
    release();
    return NULL;
}

/* A writer on a fresh base; b[0] submitted and its write held, then b[1..n) queued behind it. */
static sqw *start_held(struct event_base **base, store_batch *b, int n) {
    reset();
    *base = event_base_new();
    sqw *w;
    assert_int_equal(sqw_open(*base, fake_write, NULL, &F, &w), 0);
    assert_non_null(w);
    F.hold = 1;
    sqw_submit(w, &b[0], on_done, NULL);
    wait_in_write();
    for (int i = 1; i < n; i++) sqw_submit(w, &b[i], on_done, NULL);
    return w;
}

/* Runs the loop until `want` callbacks ran. */
static void loop_until(struct event_base *base, int want) {
    for (int spins = 0; nanswers < want && spins < 100000; spins++) event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(nanswers, want);
}

/* Four batches: the first written alone (held), the three that waited meanwhile
 * as one group; each answered after its write returned, in order. */
static void test_group_and_order(void **state) {
    (void)state;
    struct event_base *base;
    store_batch b[4];
    sqw *w = start_held(&base, b, 4);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(nanswers, 0); /* nothing answered while the first write runs */
    release();
    loop_until(base, 4);
    assert_int_equal(F.ncalls, 2);
    assert_int_equal(F.group[0], 1);
    assert_int_equal(F.group[1], 3);
    for (int i = 0; i < 4; i++) {
        assert_ptr_equal(A[i].b, &b[i]);
        assert_int_equal(A[i].rc, 0);
        assert_true(A[i].returned_before >= (i == 0 ? 1 : 2)); /* its own write had returned */
    }
    long long commits, batches;
    sqw_counts(w, &commits, &batches);
    assert_int_equal(commits, 2);
    assert_int_equal(batches, 4);
    sqw_close(w);
    event_base_free(base);
}

/* A group with one batch the database refuses: tried again one by one, only
 * that batch is answered -1. */
static void test_group_failure_isolated(void **state) {
    (void)state;
    struct event_base *base;
    store_batch b[4];
    sqw *w = start_held(&base, b, 4);
    pthread_mutex_lock(&F.mu);
    F.poison = &b[2]; /* read by the writes still to come */
    pthread_mutex_unlock(&F.mu);
    release();
    loop_until(base, 4);
    assert_int_equal(F.ncalls, 5); /* b0; {b1,b2,b3} fails; b1, b2, b3 alone */
    assert_int_equal(F.group[1], 3);
    for (int i = 0; i < 4; i++) {
        assert_ptr_equal(A[i].b, &b[i]);
        assert_int_equal(A[i].rc, i == 2 ? -1 : 0);
    }
    long long commits, batches;
    sqw_counts(w, &commits, &batches);
    assert_int_equal(commits, 3); /* b0, b1, b3 */
    assert_int_equal(batches, 3);
    sqw_close(w);
    assert_int_equal(nanswers, 4); /* nobody answered twice, not even at close */
    event_base_free(base);
}

/* A group that fails only as a group (SQLITE_BUSY from another connection,
 * say): each batch tried alone commits, every one is answered 0, once. */
static void test_group_failure_retried_alone(void **state) {
    (void)state;
    struct event_base *base;
    store_batch b[4];
    sqw *w = start_held(&base, b, 4);
    pthread_mutex_lock(&F.mu);
    F.fail_groups = 1;
    pthread_mutex_unlock(&F.mu);
    release();
    loop_until(base, 4);
    assert_int_equal(F.ncalls, 5); /* b0; {b1,b2,b3} fails; b1, b2, b3 alone */
    for (int i = 0; i < 4; i++) {
        assert_ptr_equal(A[i].b, &b[i]);
        assert_int_equal(A[i].rc, 0);
        assert_int_equal(A[i].returned_before >= (i == 0 ? 1 : 2 + i), 1); /* after its own write */
    }
    long long commits, batches;
    sqw_counts(w, &commits, &batches);
    assert_int_equal(commits, 4);
    assert_int_equal(batches, 4);
    sqw_close(w);
    assert_int_equal(nanswers, 4);
    event_base_free(base);
}

/* How long the running write has held the connection, for /health: 0 when
 * none runs, growing while one is held; the bounded wait gives up on it. */
static void test_busy_and_timedlock(void **state) {
    (void)state;
    struct event_base *base;
    store_batch b[1];
    sqw *w = start_held(&base, b, 1);
    usleep(30000);
    assert_true(sqw_busy_ms(w) >= 30);
    assert_int_equal(sqw_timedlock(w, 20), 0); /* the held write keeps the connection */
    release();
    loop_until(base, 1);
    assert_int_equal(sqw_busy_ms(w), 0);
    assert_int_equal(sqw_timedlock(w, 20), 1);
    assert_int_equal(sqw_timedlock(w, 20), 1); /* nested, as sqw_lock */
    sqw_unlock(w);
    sqw_unlock(w);
    assert_int_equal(sqw_busy_ms(NULL), 0);
    sqw_close(w);
    event_base_free(base);
}

/* The loop's lock waits for the running write, and no write runs while the
 * loop holds it; close calls back the write that was running. */
static void test_lock_and_close(void **state) {
    (void)state;
    struct event_base *base;
    store_batch b[3];
    sqw *w = start_held(&base, b, 3);
    assert_int_equal(sqw_trylock(w), 0); /* a write runs: the connection is the writer's */
    release();
    sqw_lock(w); /* waits for b0's write (and maybe the group's) */
    sqw_lock(w); /* nested */
    pthread_mutex_lock(&F.mu);
    int running = F.in_write, returned = F.writes_returned;
    pthread_mutex_unlock(&F.mu);
    assert_int_equal(running, 0);
    assert_true(returned >= 1);
    sqw_unlock(w);
    sqw_unlock(w);
    loop_until(base, 3);
    assert_int_equal(sqw_trylock(w), 1);
    sqw_unlock(w);
    F.hold = 1;
    store_batch c;
    sqw_submit(w, &c, on_done, NULL);
    wait_in_write();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, release_thread, NULL), 0);
    sqw_close(w); /* joins after c's write; the loop never ran for it */
    pthread_join(t, NULL);
    assert_int_equal(nanswers, 4);
    assert_ptr_equal(A[3].b, &c);
    assert_int_equal(A[3].rc, 0);
    assert_int_equal(A[3].returned_before, F.writes_returned);
    event_base_free(base);
}

/* Without an event base: no thread, written inline, answered before submit returns. */
static void test_inline(void **state) {
    (void)state;
    reset();
    sqw *w = (sqw *)1;
    assert_int_equal(sqw_open(NULL, fake_write, NULL, &F, &w), 0);
    assert_null(w);
    store_batch b;
    sqw_submit_inline(fake_write, NULL, &F, &b, on_done, NULL);
    assert_int_equal(nanswers, 1);
    assert_int_equal(A[0].rc, 0);
    sqw_lock(NULL);
    sqw_unlock(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_and_order),
        cmocka_unit_test(test_group_failure_isolated),
        cmocka_unit_test(test_group_failure_retried_alone),
        cmocka_unit_test(test_busy_and_timedlock),
        cmocka_unit_test(test_lock_and_close),
        cmocka_unit_test(test_inline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
