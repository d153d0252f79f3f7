/* test_influx_recent.c -- the duplicate check's memory (influx_recent.c) at unit
 * level: what it covers (the horizon) after the start probe, after a failed
 * write and after a generation is evicted, and that it only ever claims points
 * it was told were stored. The integration side (re-posts, restarts, a write
 * whose answer is lost) is storage_suite_influxdb and storage_influx_summary
 * against a real influxd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "influx_recent.h"

#include <stdio.h>
#include <string.h>

/* ids vary in their first 16 digits (the set's key), as real event ids do */
static void id_of(int i, char id[33]) { snprintf(id, 33, "%016x%016x", i, i); }

static void stored(influx_recent *r, int i, uint64_t ns) {
    char id[33];
    id_of(i, id);
    influx_recent_sending(r, ns);
    assert_int_equal(influx_recent_stored(r, influx_set_id_key(id), id, ns), 0);
}

static int has(influx_recent *r, int i) {
    char id[33];
    id_of(i, id);
    return influx_recent_has_id(r, influx_set_id_key(id), id);
}

/* Before the probe nothing is covered and nothing is remembered. */
static void test_unknown_until_probed(void **state) {
    (void)state;
    influx_recent *r = influx_recent_new();
    assert_non_null(r);
    assert_true(influx_recent_needs_probe(r));
    assert_false(influx_recent_covers(r, 1000));
    stored(r, 1, 1000000);
    assert_false(has(r, 1)); /* not kept: the horizon was unknown */
    char sql[128];
    influx_recent_probe_sql(sql, sizeof sql, "\"home_assistant_events\"");
    assert_string_equal(sql, "SELECT last(event_id) FROM \"home_assistant_events\"");
    /* the newest stored point is at 5,000,000 ns; and 1,000,000 was sent before the probe */
    influx_recent_probed(r, 1, 5000000);
    assert_false(influx_recent_needs_probe(r));
    assert_false(influx_recent_covers(r, 5000));     /* its microsecond holds a point memory never saw */
    assert_true(influx_recent_covers(r, 5001));
    influx_recent_free(r);
}

/* An empty database: everything is covered; stored points are found by id and time. */
static void test_empty_database(void **state) {
    (void)state;
    influx_recent *r = influx_recent_new();
    influx_recent_probed(r, 0, 0);
    assert_true(influx_recent_covers(r, 0));
    assert_true(influx_recent_covers(r, 1700000000000000LL));
    stored(r, 7, 1700000000000000123ULL);
    assert_true(has(r, 7));
    assert_false(has(r, 8));
    assert_true(influx_recent_has_time(r, 1700000000000000123ULL));
    assert_false(influx_recent_has_time(r, 1700000000000000124ULL));
    influx_recent_free(r);
}

/* A failed write: memory is dropped and the horizon moves above every time sent. */
static void test_failed_write(void **state) {
    (void)state;
    influx_recent *r = influx_recent_new();
    influx_recent_probed(r, 0, 0);
    stored(r, 1, 2000000);
    unsigned long long e = influx_recent_epoch(r);
    influx_recent_sending(r, 9000500); /* sent, then the write failed */
    assert_true(influx_recent_epoch(r) == e); /* learning and sending forget nothing */
    influx_recent_failed(r);
    assert_true(influx_recent_epoch(r) != e); /* a check planned before it plans again (review inflight-1 F5) */
    e = influx_recent_epoch(r);
    assert_false(has(r, 1));
    assert_false(influx_recent_covers(r, 2000));
    assert_false(influx_recent_covers(r, 9000)); /* the failed write's microsecond */
    assert_true(influx_recent_covers(r, 9001));
    assert_false(influx_recent_needs_probe(r));
    /* the database is gone: probe again */
    influx_recent_reset(r);
    assert_true(influx_recent_epoch(r) != e);
    assert_true(influx_recent_needs_probe(r));
    assert_false(influx_recent_covers(r, 9001));
    influx_recent_free(r);
}

/* Two generations: the oldest is dropped and the horizon raised past it. */
static void test_eviction(void **state) {
    (void)state;
    influx_recent *r = influx_recent_new();
    influx_recent_probed(r, 0, 0);
    int n = 2 * INFLUX_RECENT_GEN + 1;
    unsigned long long e = influx_recent_epoch(r);
    for (int i = 0; i < 2 * INFLUX_RECENT_GEN; i++) stored(r, i, (uint64_t)(i + 1) * 1000);
    assert_true(influx_recent_epoch(r) == e); /* two generations full, none dropped yet */
    stored(r, n - 1, (uint64_t)n * 1000);
    assert_true(influx_recent_epoch(r) != e); /* the first generation dropped: forgotten */
    assert_false(has(r, 0));                              /* first generation dropped */
    assert_false(has(r, INFLUX_RECENT_GEN - 1));
    assert_true(has(r, INFLUX_RECENT_GEN));               /* second kept */
    assert_true(has(r, n - 1));
    assert_false(influx_recent_covers(r, INFLUX_RECENT_GEN)); /* the dropped one's last microsecond */
    assert_true(influx_recent_covers(r, INFLUX_RECENT_GEN + 1));
    influx_recent_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_until_probed),
        cmocka_unit_test(test_empty_database),
        cmocka_unit_test(test_failed_write),
        cmocka_unit_test(test_eviction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
