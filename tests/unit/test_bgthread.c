/* Unit tests for lib/bgthread.c: the worker thread shared by the SQLite writer,
 * the WAL checkpointer and the spool syncer -- work handed over under its lock
 * is done, a stop wakes a sleeping worker and joins it, what the worker's loop
 * finishes before quitting is finished, a stop without a start does nothing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_getname_np */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "bgthread.h"

typedef struct counter {
    bgthread bg;
    int todo;      /* work handed over, under bg.mu */
    int done;      /* work done, under bg.mu */
    int drain;     /* finish todo before quitting */
    int saw_quit;  /* the loop ended because of bg.quit */
    char name[32]; /* the thread's name, as it saw it */
} counter;

static void *counter_main(void *arg) {
    counter *c = arg;
    pthread_getname_np(pthread_self(), c->name, sizeof c->name);
    bgthread_lock(&c->bg);
    for (;;) {
        while (!c->todo && !c->bg.quit) bgthread_wait(&c->bg);
        if (c->bg.quit && (!c->drain || !c->todo)) break;
        c->todo--;
        bgthread_unlock(&c->bg);
        /* the work, outside the lock */
        bgthread_lock(&c->bg);
        c->done++;
    }
    c->saw_quit = c->bg.quit;
    bgthread_unlock(&c->bg);
    return NULL;
}

static void counter_give(counter *c, int n) {
    bgthread_lock(&c->bg);
    c->todo += n;
    bgthread_wake(&c->bg);
    bgthread_unlock(&c->bg);
}

static int counter_done(counter *c) {
    bgthread_lock(&c->bg);
    int d = c->done;
    bgthread_unlock(&c->bg);
    return d;
}

static void test_work_then_stop(void **state) {
    (void)state;
    counter c = {0};
    bgthread_init(&c.bg);
    assert_int_equal(bgthread_start(&c.bg, "bg-test", counter_main, &c), 0);
    assert_int_equal(c.bg.started, 1);
    for (int i = 0; i < 100; i++) counter_give(&c, 1);
    while (counter_done(&c) < 100) sched_yield(); /* each hand-over woke the worker */
    bgthread_stop(&c.bg); /* the worker sleeps: the stop must wake it, or this hangs */
    assert_int_equal(c.bg.started, 0);
    assert_int_equal(c.done, 100);
    assert_int_equal(c.saw_quit, 1);
    assert_string_equal(c.name, "bg-test");
    bgthread_stop(&c.bg); /* a second stop does nothing */
    bgthread_destroy(&c.bg);
}

static void test_stop_lets_the_loop_finish(void **state) {
    (void)state;
    counter c = {.drain = 1};
    bgthread_init(&c.bg);
    bgthread_lock(&c.bg); /* the worker cannot take anything before the stop is asked */
    assert_int_equal(bgthread_start(&c.bg, NULL, counter_main, &c), 0);
    c.todo = 50;
    bgthread_unlock(&c.bg);
    bgthread_stop(&c.bg);
    assert_int_equal(c.done, 50); /* drained: the owner's loop decides what quit means */
    assert_int_equal(c.todo, 0);
    bgthread_destroy(&c.bg);
}

static void test_stop_without_start(void **state) {
    (void)state;
    bgthread t;
    bgthread_init(&t);
    assert_int_equal(t.started, 0);
    bgthread_stop(&t); /* no thread to join: returns at once */
    assert_int_equal(t.quit, 0);
    bgthread_destroy(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_work_then_stop),
        cmocka_unit_test(test_stop_lets_the_loop_finish),
        cmocka_unit_test(test_stop_without_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
