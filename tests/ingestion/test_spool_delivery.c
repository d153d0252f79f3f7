/* test_spool_delivery.c -- regressions of issue 14 in the spool: a batch is
 * bounded in bytes including its last record (finding 3), a read error never
 * skips a record (finding 4), records made durable by a segment rotation are
 * reported to the durable listener (finding 5), a record written at append
 * time (>= 1 MiB) wakes the written listener (finding 6). Real files, a real
 * libevent loop. (New file: tests/ingestion/test_spool.c belongs to the
 * issue-17 rework.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"

typedef struct fx {
    char dir[128];
    struct event_base *base;
    spool *sp;
    int written_calls, durable_calls;
    uint64_t durable_seq;
} fx;

static void on_written(void *arg) { ((fx *)arg)->written_calls++; }
static void on_durable(uint64_t seq, void *arg) {
    fx *f = arg;
    f->durable_calls++;
    f->durable_seq = seq;
}

static fx *fx_open(uint64_t segment_bytes, long fsync_ms) {
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/homeiq-spool-dlv.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->base = event_base_new();
    spool_opts o = {.dir = f->dir, .segment_bytes = segment_bytes, .fsync_ms = fsync_ms};
    assert_int_equal(spool_open(f->base, &o, &f->sp), 0);
    spool_set_listener(f->sp, on_written, on_durable, f);
    return f;
}

static void fx_close(fx *f) {
    spool_close(f->sp);
    event_base_free(f->base);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
}

static void run_ms(fx *f, int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
}

typedef struct got {
    uint64_t first, last;
    size_t n, bytes;
} got;

static void rec_cb(uint64_t seq, const char *data, size_t len, void *arg) {
    (void)data;
    got *g = arg;
    if (g->n == 0) g->first = seq;
    g->last = seq;
    g->n++;
    g->bytes += len;
}

/* A record of exactly len bytes: {"n":"xxx...x"} */
static void append_len(fx *f, size_t len) {
    char *b = malloc(len);
    memset(b, 'x', len);
    memcpy(b, "{\"n\":\"", 6);
    memcpy(b + len - 2, "\"}", 2);
    assert_int_equal(spool_append(f->sp, b, len, NULL), 0);
    free(b);
}

/* Finding 3: spool_read added records until the batch reached max_bytes, so
 * the last one could take it far past (records may be 64 MiB). Before the
 * fix: 3 records (1 + 3 * 401 = 1204 bytes of batch text for max 1000). */
static void test_batch_bounded_including_last_record(void **state) {
    (void)state;
    fx *f = fx_open(0, 10);
    for (int i = 0; i < 5; i++) append_len(f, 400);
    run_ms(f, 20);
    got g = {0};
    size_t n;
    assert_int_equal(spool_read(f->sp, 100, 1000, rec_cb, &g, &n), 0);
    assert_int_equal(n, 2);          /* "[" + 2 * (400 + 1) = 803 <= 1000; a third would be 1204 */
    assert_true(1 + g.bytes + g.n <= 1000);
    /* the record left out is read next, not skipped */
    got g2 = {0};
    assert_int_equal(spool_read(f->sp, 100, 1000, rec_cb, &g2, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(g2.first, g.last + 1);
    /* a single record larger than the bound is still read (alone): the caller decides */
    append_len(f, 3000);
    run_ms(f, 20);
    got g3 = {0};
    assert_int_equal(spool_read(f->sp, 100, 1000, rec_cb, &g3, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(g3.bytes, 400);
    got g4 = {0};
    assert_int_equal(spool_read(f->sp, 100, 1000, rec_cb, &g4, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(g4.bytes, 3000);
    fx_close(f);
}

/* Finding 4: a read that fails after handing over some records (here: the
 * next segment cannot be opened) used to return -1 with read_seq already
 * past them; the forwarder then dropped the partial batch and the next ack
 * passed the skipped records. Now: the records handed over are returned
 * (rc 0), the cursor is right after the last of them, and the rest comes
 * once the file can be read again. Before the fix spool_read returned -1
 * here (and the records it had handed over were gone from the cursor). */
static void test_read_error_skips_nothing(void **state) {
    (void)state;
    fx *f = fx_open(64 * 1024, 10); /* smallest segment: rotates every ~64 KiB */
    int total = 0;
    spool_stats st;
    do {
        append_len(f, 4000);
        total++;
        spool_get_stats(f->sp, &st);
    } while (st.segments < 3);
    run_ms(f, 30);
    /* hide the second segment */
    char seg2[300], hidden[320];
    {
        FILE *p;
        char cmd[300];
        snprintf(cmd, sizeof cmd, "ls %s/*.seg | sort | sed -n 2p", f->dir);
        p = popen(cmd, "r");
        assert_non_null(fgets(seg2, sizeof seg2, p));
        pclose(p);
        seg2[strcspn(seg2, "\n")] = '\0';
        snprintf(hidden, sizeof hidden, "%s.hidden", seg2);
        assert_int_equal(rename(seg2, hidden), 0);
    }
    got g = {0};
    size_t n = 0;
    int rc = spool_read(f->sp, 1000, 1u << 30, rec_cb, &g, &n);
    assert_int_equal(rc, 0);          /* before the fix: -1 */
    assert_true(n > 0);
    assert_int_equal(g.first, 0);
    assert_int_equal(g.last + 1, n);
    spool_get_stats(f->sp, &st);
    assert_int_equal(st.read_seq, n); /* the cursor ends where the last record handed over ends */
    /* still failing: nothing handed over, nothing skipped */
    got g2 = {0};
    assert_int_equal(spool_read(f->sp, 1000, 1u << 30, rec_cb, &g2, &n), -1);
    assert_int_equal(n, 0);
    spool_get_stats(f->sp, &st);
    assert_int_equal(st.read_seq, g.last + 1);
    /* the file is back: every remaining record, in order */
    assert_int_equal(rename(hidden, seg2), 0);
    got g3 = {0};
    uint64_t expect = g.last + 1;
    while (expect < (uint64_t)total) {
        got gi = {0};
        assert_int_equal(spool_read(f->sp, 1000, 1u << 30, rec_cb, &gi, &n), 0);
        assert_true(n > 0);
        assert_int_equal(gi.first, expect);
        expect = gi.last + 1;
        g3.n += gi.n;
    }
    assert_int_equal(g.n + g3.n, (size_t)total);
    fx_close(f);
}

/* spool_rewind: records handed over that the caller could not use (the
 * forwarder out of memory) are read again. */
static void test_rewind(void **state) {
    (void)state;
    fx *f = fx_open(0, 10);
    for (int i = 0; i < 10; i++) append_len(f, 100);
    run_ms(f, 20);
    got g = {0};
    size_t n;
    assert_int_equal(spool_read(f->sp, 4, 1u << 20, rec_cb, &g, &n), 0);
    assert_int_equal(n, 4);
    spool_rewind(f->sp, 2);
    got g2 = {0};
    assert_int_equal(spool_read(f->sp, 100, 1u << 20, rec_cb, &g2, &n), 0);
    assert_int_equal(g2.first, 2);
    assert_int_equal(n, 8);
    fx_close(f);
}

/* Finding 5: a rotation (here: the fully acknowledged last segment is closed
 * by spool_ack) fsyncs the records written so far without telling the
 * durable listener; a /forward caller waiting for them hung until some later
 * append. Before the fix durable_calls stayed 0 after the ack. */
static void test_rotation_reports_durable(void **state) {
    (void)state;
    fx *f = fx_open(64 * 1024, 200);
    for (int i = 0; i < 5; i++) append_len(f, 4000); /* >= a quarter of the segment */
    run_ms(f, 5);                                     /* written, not yet fsync'ed (200 ms) */
    assert_int_equal(f->durable_calls, 0);
    got g = {0};
    size_t n;
    assert_int_equal(spool_read(f->sp, 100, 1u << 20, rec_cb, &g, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(spool_ack(f->sp, 5), 0); /* rotates: fsync inside */
    spool_stats st;
    spool_get_stats(f->sp, &st);
    assert_int_equal(st.durable_seq, 5);
    run_ms(f, 400);                          /* past the group fsync tick */
    assert_true(f->durable_calls >= 1);
    assert_int_equal(f->durable_seq, 5);
    fx_close(f);
}

/* Finding 6: an append that fills the write buffer past 1 MiB is written at
 * once; the end-of-turn flush then saw nothing new and did not wake the
 * forwarder: the event waited for the next one. Before the fix
 * written_calls stayed 0. */
static void test_large_record_wakes_reader(void **state) {
    (void)state;
    fx *f = fx_open(0, 1000);
    append_len(f, (1u << 20) + 100);
    run_ms(f, 30);
    assert_true(f->written_calls >= 1);
    assert_int_equal(spool_readable(f->sp), 1);
    fx_close(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_bounded_including_last_record),
        cmocka_unit_test(test_read_error_skips_nothing),
        cmocka_unit_test(test_rewind),
        cmocka_unit_test(test_rotation_reports_durable),
        cmocka_unit_test(test_large_record_wakes_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
