/* test_clickhouse_sql.c -- the ClickHouse text helpers every reader shares
 * (clickhouse_sql.h): the JSONEachRow line reader and the WHERE-equals term. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "clickhouse_sql.h"

typedef struct rows_seen {
    int n;
    long long sum;
    int fail_at; /* 1-based row at which the callback fails, 0 = never */
} rows_seen;

static int count_row(void *ctx, json_t *row) {
    rows_seen *s = ctx;
    s->n++;
    s->sum += json_integer_value(json_object_get(row, "v"));
    return s->n == s->fail_at ? 1 : 0;
}

static void test_json_lines(void **state) {
    (void)state;
    const char *body = "{\"v\":1}\n\n{\"v\":20}\n{\"v\":300}"; /* an empty line, no final newline */
    rows_seen s = {0};
    assert_int_equal(ch_json_lines(body, strlen(body), count_row, &s), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.sum, 321);

    s = (rows_seen){0};
    assert_int_equal(ch_json_lines("", 0, count_row, &s), 0);
    assert_int_equal(s.n, 0);

    const char *bad = "{\"v\":1}\n{\"v\":\n{\"v\":3}\n";
    s = (rows_seen){0};
    assert_int_equal(ch_json_lines(bad, strlen(bad), count_row, &s), -1);
    assert_int_equal(s.n, 1); /* stops at the unreadable line */

    s = (rows_seen){.fail_at = 2};
    assert_int_equal(ch_json_lines(body, strlen(body), count_row, &s), -1);
    assert_int_equal(s.n, 2); /* stops where the callback fails */
}

static void test_where_eq(void **state) {
    (void)state;
    sbuf b;
    sbuf_init(&b);
    ch_where_eq(&b, "home_id", NULL);
    assert_int_equal(b.len, 0);
    ch_where_eq(&b, "entity_id", "it's \\ here");
    assert_string_equal(b.data, " AND entity_id = 'it\\'s \\\\ here'");
    sbuf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_json_lines), cmocka_unit_test(test_where_eq)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
