/* test_influx_time.c -- findings 7 and 8 of issue 14 at unit level (the
 * integration side, against a real influxd, is test_influx_poison.sh):
 * which event times InfluxDB can hold, query bounds that saturate instead of
 * overflowing, and the duplicate check's ranges, which cover only the
 * batch's own times (before the fix: one range from the first to the last
 * time, years wide). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "event.h"
#include "influx_time.h"

#include <string.h>

static int64_t us_of(const char *t) {
    int64_t us;
    assert_int_equal(event_time_parse(t, &us), 0);
    return us;
}

static void test_time_range(void **state) {
    (void)state;
    char why[200];
    assert_int_equal(influx_time_check(us_of("2024-01-01T00:00:00Z"), why, sizeof why), 0);
    assert_int_equal(influx_time_check(us_of("1970-01-01T00:00:00Z"), why, sizeof why), 0);
    assert_int_equal(influx_time_check(us_of("2262-04-11T23:47:16.854774Z"), why, sizeof why), 0);
    assert_int_equal(influx_time_check(us_of("2262-04-11T23:47:16.854775Z"), why, sizeof why), -1);
    assert_int_equal(influx_time_check(us_of("2600-01-01T00:00:00Z"), why, sizeof why), -1);
    assert_non_null(strstr(why, "InfluxDB"));
    assert_int_equal(influx_time_check(-1, why, sizeof why), -1);
    /* the last storable microsecond, plus any ns offset, fits int64 */
    assert_true(INFLUX_TIME_MAX_US <= (INT64_MAX - 999) / 1000);
    assert_true((INFLUX_TIME_MAX_US + 1) > (INT64_MAX - 999) / 1000);
    assert_int_equal(influx_time_ns_sat(us_of("2300-01-01T00:00:00Z")), INT64_MAX);
    assert_int_equal(influx_time_ns_sat(-us_of("2300-01-01T00:00:00Z")), INT64_MIN);
    assert_int_equal(influx_time_ns_sat(1234), 1234000);
}

static void test_dup_ranges_bounded(void **state) {
    (void)state;
    /* a batch spanning ten years: ranges hug its own times */
    int64_t t[6] = {us_of("2030-01-01T00:00:00Z"), us_of("2020-01-01T00:00:00Z"),
                    us_of("2020-01-01T00:00:00.5Z"), us_of("2025-06-01T12:00:00Z"),
                    us_of("2020-01-01T00:00:01.2Z"), us_of("2030-01-01T00:00:00Z")};
    influx_us_range r[6];
    size_t n = influx_dup_ranges(t, 6, r);
    assert_int_equal(n, 3);
    int64_t covered = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(r[i].lo <= r[i].hi);
        covered += r[i].hi - r[i].lo;
        if (i) assert_true(r[i].lo > r[i - 1].hi + INFLUX_DUP_GAP_US);
    }
    assert_true(covered <= 2 * INFLUX_DUP_GAP_US); /* old code: ten years */
    assert_int_equal(r[0].lo, us_of("2020-01-01T00:00:00Z"));
    assert_int_equal(r[0].hi, us_of("2020-01-01T00:00:01.2Z"));
    assert_int_equal(r[2].lo, r[2].hi);
    assert_int_equal(influx_dup_ranges(t, 0, r), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_range),
        cmocka_unit_test(test_dup_ranges_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
