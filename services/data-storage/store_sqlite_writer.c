/* store_sqlite_writer.c -- see store_sqlite_writer.h.
 *
 * Two mutexes: w->bg.mu (lib/bgthread.h) guards the queues (todo, done) and the thread's flags,
 * and is never held across SQLite; w->db_mu is the connection's lock, held by
 * the thread for one transaction or by the loop around its own use. The thread
 * reports each finished transaction by writing a byte to a pipe; the loop's
 * read event moves the done jobs' callbacks onto the loop, in order. */
#include "store_sqlite_writer.h"
#include "bgthread.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Batches committed together at most (storage_api.c keeps store_ops.pieces = 4 here). */
#define SQW_GROUP_MAX 8

typedef struct sqw_job {
    store_batch *b;
    store_write_cb cb;
    void *arg;
    int rc;
    char err[160];
    struct sqw_job *next;
} sqw_job;

struct sqw {
    sqw_write_fn write;
    sqw_after_fn after;
    void *ctx;
    struct event *done_ev;
    int pipe[2];
    bgthread bg;                /* the thread; bg.mu guards the fields below it (and bg.quit) */
    sqw_job *todo, **todo_tail;
    sqw_job *done, **done_tail;
    int closing;                /* sqw_close is answering what never started (loop only) */
    long long commits, batches;
    pthread_mutex_t db_mu;      /* the connection */
    _Atomic long long held_since_ms; /* CLOCK_MONOTONIC ms the thread took db_mu at, 0 when it holds none */
    int loop_depth;             /* the loop's nested sqw_lock calls (loop only) */
};

static void sqw_push(sqw_job ***tail, sqw_job *j) {
    j->next = NULL;
    **tail = j;
    *tail = &j->next;
}

/* Takes up to SQW_GROUP_MAX jobs from the front of todo. Called with w->bg.mu. */
static size_t sqw_take(sqw *w, sqw_job **group) {
    size_t n = 0;
    while (w->todo && n < SQW_GROUP_MAX) {
        group[n++] = w->todo;
        w->todo = w->todo->next;
    }
    if (!w->todo) w->todo_tail = &w->todo;
    return n;
}

static long long sqw_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One transaction of n jobs, on the thread; 1 when it committed. */
static int sqw_run(sqw *w, sqw_job **group, size_t n) {
    store_batch *b[SQW_GROUP_MAX];
    for (size_t i = 0; i < n; i++) b[i] = group[i]->b;
    char err[160] = "";
    pthread_mutex_lock(&w->db_mu);
    atomic_store(&w->held_since_ms, sqw_now_ms());
    int rc = w->write(w->ctx, b, n, err, sizeof err);
    atomic_store(&w->held_since_ms, 0);
    pthread_mutex_unlock(&w->db_mu);
    for (size_t i = 0; i < n; i++) {
        group[i]->rc = rc;
        memcpy(group[i]->err, err, sizeof err);
    }
    return rc == 0;
}

/* A group, committed together; if that fails, each batch alone, so one batch
 * the database refuses never fails the batches it happened to wait with.
 * Returns the transactions committed. */
static int sqw_run_group(sqw *w, sqw_job **group, size_t n) {
    if (sqw_run(w, group, n)) return 1;
    int commits = 0;
    for (size_t i = 0; n > 1 && i < n; i++) commits += sqw_run(w, group + i, 1);
    return commits;
}

static void *sqw_main(void *arg) {
    sqw *w = arg;
    sqw_job *group[SQW_GROUP_MAX];
    bgthread_lock(&w->bg);
    for (;;) {
        while (!w->todo && !w->bg.quit) bgthread_wait(&w->bg);
        if (w->bg.quit) break; /* what is still queued never started: sqw_close answers it */
        size_t n = sqw_take(w, group);
        bgthread_unlock(&w->bg);
        int commits = sqw_run_group(w, group, n);
        bgthread_lock(&w->bg);
        for (size_t i = 0; i < n; i++) {
            sqw_push(&w->done_tail, group[i]);
            w->batches += group[i]->rc == 0;
        }
        w->commits += commits;
        char byte = 1;
        if (write(w->pipe[1], &byte, 1) < 0 && errno != EAGAIN) log_warn("sqlite writer: cannot wake the loop");
    }
    bgthread_unlock(&w->bg);
    return NULL;
}

/* Calls back the jobs in list (the loop), each after `after` saw its result. */
static void sqw_deliver(sqw *w, sqw_job *list) {
    while (list) {
        sqw_job *j = list;
        list = j->next;
        if (w->after) w->after(w->ctx, j->rc);
        j->cb(j->b, j->rc, j->rc ? j->err : NULL, j->arg);
        free(j);
    }
}

static sqw_job *sqw_take_done(sqw *w) {
    bgthread_lock(&w->bg);
    sqw_job *list = w->done;
    w->done = NULL;
    w->done_tail = &w->done;
    bgthread_unlock(&w->bg);
    return list;
}

static void sqw_done_cb(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    sqw *w = arg;
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    sqw_deliver(w, sqw_take_done(w));
}

int sqw_open(struct event_base *base, sqw_write_fn write, sqw_after_fn after, void *ctx, sqw **out) {
    *out = NULL;
    if (!base) return 0;
    sqw *w = calloc(1, sizeof *w);
    if (!w) return -1;
    w->write = write;
    w->after = after;
    w->ctx = ctx;
    w->todo_tail = &w->todo;
    w->done_tail = &w->done;
    w->pipe[0] = w->pipe[1] = -1;
    bgthread_init(&w->bg);
    pthread_mutex_init(&w->db_mu, NULL);
    if (pipe2(w->pipe, O_CLOEXEC | O_NONBLOCK) != 0 ||
        !(w->done_ev = event_new(base, w->pipe[0], EV_READ | EV_PERSIST, sqw_done_cb, w)) ||
        event_add(w->done_ev, NULL) != 0 ||
        bgthread_start(&w->bg, "sqlite-writer", sqw_main, w) != 0) { /* name: top -H, bench/storage_burst.sh's split */
        log_error("sqlite writer: cannot start its thread");
        sqw_close(w);
        return -1;
    }
    *out = w;
    return 0;
}

void sqw_close(sqw *w) {
    if (!w) return;
    bgthread_stop(&w->bg); /* a running transaction finishes first */
    sqw_deliver(w, sqw_take_done(w)); /* committed (or failed) before the stop */
    for (sqw_job *j = w->todo; j; j = j->next) {
        j->rc = -1;
        snprintf(j->err, sizeof j->err, "shutting down");
    }
    sqw_job *never = w->todo;
    w->todo = NULL;
    w->todo_tail = &w->todo;
    w->closing = 1; /* a callback below that submits again is answered at once, not queued behind a stale tail */
    sqw_deliver(w, never);
    if (w->done_ev) event_free(w->done_ev);
    for (int i = 0; i < 2; i++)
        if (w->pipe[i] >= 0) close(w->pipe[i]);
    bgthread_destroy(&w->bg);
    pthread_mutex_destroy(&w->db_mu);
    free(w);
}

void sqw_submit_inline(sqw_write_fn write, sqw_after_fn after, void *ctx, store_batch *b, store_write_cb cb,
                       void *arg) {
    char err[160] = "";
    int rc = write(ctx, &b, 1, err, sizeof err);
    if (after) after(ctx, rc);
    cb(b, rc, rc ? err : NULL, arg);
}

void sqw_submit(sqw *w, store_batch *b, store_write_cb cb, void *arg) {
    if (w->closing) {
        cb(b, -1, "shutting down", arg);
        return;
    }
    sqw_job *j = calloc(1, sizeof *j);
    if (!j) {
        cb(b, -1, "out of memory", arg);
        return;
    }
    j->b = b;
    j->cb = cb;
    j->arg = arg;
    bgthread_lock(&w->bg);
    sqw_push(&w->todo_tail, j);
    bgthread_wake(&w->bg);
    bgthread_unlock(&w->bg);
}

void sqw_lock(sqw *w) {
    if (w && w->loop_depth++ == 0) pthread_mutex_lock(&w->db_mu);
}

void sqw_unlock(sqw *w) {
    if (w && --w->loop_depth == 0) pthread_mutex_unlock(&w->db_mu);
}

int sqw_trylock(sqw *w) {
    if (!w) return 1;
    if (w->loop_depth == 0 && pthread_mutex_trylock(&w->db_mu) != 0) return 0;
    w->loop_depth++;
    return 1;
}

int sqw_timedlock(sqw *w, long ms) {
    if (!w) return 1;
    if (w->loop_depth == 0) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until); /* pthread_mutex_timedlock's clock */
        until.tv_sec += ms / 1000;
        until.tv_nsec += (ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        if (pthread_mutex_timedlock(&w->db_mu, &until) != 0) return 0;
    }
    w->loop_depth++;
    return 1;
}

long long sqw_busy_ms(sqw *w) {
    if (!w) return 0;
    long long since = atomic_load(&w->held_since_ms);
    return since ? sqw_now_ms() - since : 0;
}

void sqw_counts(sqw *w, long long *commits, long long *batches) {
    *commits = *batches = 0;
    if (!w) return;
    bgthread_lock(&w->bg);
    *commits = w->commits;
    *batches = w->batches;
    bgthread_unlock(&w->bg);
}
