/* test_influx_page.c -- the merged page of GET /api/v1/events on
 * INFLUXDB_SCHEMA=homeassistant (influx_page.c): rows of two measurements,
 * each answered newest first, become one newest-first page cut at
 * offset/limit, as one measurement would have answered it. The real-influxd
 * side (20 filter/paging answers equal to the homeiq schema's) is
 * tests/admin/test_storage_reads_influx_ha.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "influx_page.h"

#include <stdlib.h>
#include <string.h>

/* rows "a9", "a5", ... (measurement a, time 9, 5, ...) then "b8", ... as InfluxDB answers two series */
static void fill(store_rows *rows, influx_page *p, const char *spec) {
    for (const char *s = spec; *s; s += 2) {
        char *row = malloc(3);
        assert_non_null(row);
        memcpy(row, s, 2);
        row[2] = 0;
        assert_int_equal(store_rows_add(rows, row), 0);
        assert_int_equal(influx_page_note(p, s[1] - '0'), 0);
    }
}

static char *joined(const store_rows *rows) {
    static char out[64];
    out[0] = 0;
    for (size_t i = 0; i < rows->n; i++) strcat(out, rows->json[i]);
    return out;
}

static void cut(const char *spec, long offset, long limit, const char *want) {
    store_rows rows = {0};
    influx_page p = {0};
    fill(&rows, &p, spec);
    assert_int_equal(influx_page_cut(&p, &rows, offset, limit), 0);
    assert_string_equal(joined(&rows), want);
    influx_page_free(&p);
    store_rows_free(&rows);
}

static void test_merge(void **state) {
    (void)state;
    cut("a9a5a1b8b6b2", 0, 3, "a9b8b6");        /* newest first across both */
    cut("a9a5a1b8b6b2", 2, 3, "b6a5b2");        /* offset counts merged rows */
    cut("a9a5a1b8b6b2", 0, 100, "a9b8b6a5b2a1"); /* all */
    cut("a9a5a1b8b6b2", 6, 3, "");              /* past the end */
    cut("b8b6", 1, 5, "b6");                    /* one measurement answered nothing */
    cut("a7b7a3", 0, 2, "a7b7");                /* equal times keep the answer's order */
    cut("", 0, 10, "");
}

static void test_times_must_match_rows(void **state) {
    (void)state;
    store_rows rows = {0};
    influx_page p = {0};
    fill(&rows, &p, "a9a5");
    char *extra = strdup("x1");
    assert_int_equal(store_rows_add(&rows, extra), 0); /* a row without its time */
    assert_int_equal(influx_page_cut(&p, &rows, 0, 10), -1);
    influx_page_free(&p);
    store_rows_free(&rows);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_times_must_match_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
