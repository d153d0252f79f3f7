/* test_influx_answer.c -- the /query answer walker (influx_answer.c) and the
 * id/time set of the duplicate check (influx_set.c) at unit level. The answers
 * below have the shapes a real influxd 1.6 sends with chunked=true (one JSON
 * document per chunk, newline-separated); the integration side is every
 * InfluxDB test that reads through a real influxd (storage_suite_influxdb,
 * storage_stats_influx, storage_reads_influxdb). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "influx_answer.h"
#include "influx_set.h"

#include <stdio.h>
#include <string.h>

typedef struct seen {
    int n, fail_at;
    char text[1024];
} seen;

/* Records "stmt:tag:event_id@time;" for each row. */
static int record_row(const influx_answer_row *row, void *arg) {
    seen *s = arg;
    if (s->fail_at && s->n + 1 == s->fail_at) return -1;
    const char *id = influx_answer_str(row, "event_id");
    const char *tag = json_string_value(json_object_get(row->tags, "entity_id"));
    size_t len = strlen(s->text);
    snprintf(s->text + len, sizeof s->text - len, "%d:%s:%s@%lld;", row->stmt, tag ? tag : "-", id ? id : "-",
             (long long)influx_answer_time(row));
    s->n++;
    return 0;
}

static int walk(const char *body, int tolerate, seen *s, char *err) {
    return influx_answer_walk(body, strlen(body), tolerate, record_row, s, err, 256);
}

static void test_chunked_documents(void **state) {
    (void)state;
    const char *body =
        "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"m\",\"columns\":[\"time\",\"event_id\"],"
        "\"values\":[[5,\"a\"],[6,\"b\"]],\"partial\":true}],\"partial\":true}]}\n"
        "\r\n {\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"m\",\"tags\":{\"entity_id\":\"x.y\"},"
        "\"columns\":[\"time\",\"event_id\"],\"values\":[[7,\"c\"]]}]},"
        "{\"statement_id\":1,\"series\":[{\"name\":\"m\",\"columns\":[\"event_id\"],\"values\":[[\"d\"]]}]}]}\n";
    seen s = {0};
    char err[256] = "";
    assert_int_equal(walk(body, -1, &s, err), 0);
    assert_string_equal(s.text, "0:-:a@5;0:-:b@6;0:x.y:c@7;1:-:d@0;");
    /* an empty body and one without series are empty answers */
    memset(&s, 0, sizeof s);
    assert_int_equal(walk("", -1, &s, err), 0);
    assert_int_equal(walk("{\"results\":[{\"statement_id\":0}]}\n", -1, &s, err), 0);
    assert_int_equal(s.n, 0);
}

static void test_errors(void **state) {
    (void)state;
    seen s = {0};
    char err[256] = "";
    /* nothing written yet: empty, in a statement or for the whole request */
    assert_int_equal(walk("{\"results\":[{\"statement_id\":0,\"error\":\"database not found: home_assistant\"}]}", -1,
                          &s, err),
                     0);
    assert_int_equal(walk("{\"error\":\"database not found: x\"}", -1, &s, err), 0);
    /* any other error fails the walk, and the rows after it are not delivered */
    const char *bad = "{\"results\":[{\"statement_id\":0,\"error\":\"error parsing query: found X\"},"
                      "{\"statement_id\":1,\"series\":[{\"columns\":[\"event_id\"],\"values\":[[\"z\"]]}]}]}";
    assert_int_equal(walk(bad, -1, &s, err), -1);
    assert_string_equal(err, "influxdb: error parsing query: found X");
    assert_int_equal(s.n, 0);
    assert_int_equal(walk("{\"error\":\"authorization failed\"}", -1, &s, err), -1);
    assert_string_equal(err, "influxdb: authorization failed");
    /* the tolerated statement may fail; the others still count */
    assert_int_equal(walk(bad, 0, &s, err), 0);
    assert_string_equal(s.text, "1:-:z@0;");
    assert_int_equal(walk(bad, 1, &s, err), -1);
    /* not JSON */
    assert_int_equal(walk("{\"results\":[]}\n<html>", -1, &s, err), -1);
    assert_non_null(strstr(err, "unreadable answer from InfluxDB"));
    /* the row callback fails: out of memory */
    memset(&s, 0, sizeof s);
    s.fail_at = 2;
    assert_int_equal(walk("{\"results\":[{\"series\":[{\"columns\":[\"event_id\"],\"values\":[[\"a\"],[\"b\"]]}]}]}", -1,
                          &s, err),
                     -1);
    assert_string_equal(err, "out of memory");
    assert_int_equal(s.n, 1);
}

static void test_columns(void **state) {
    (void)state;
    json_t *cols = json_pack("[s,s,s]", "time", "event_id", "value");
    json_t *vals = json_pack("[i,n,f]", 12, 1.5);
    influx_answer_row row = {.columns = cols, .values = vals};
    assert_int_equal(influx_answer_col(cols, "value"), 2);
    assert_int_equal(influx_answer_col(cols, "nope"), -1);
    assert_null(influx_answer_str(&row, "event_id")); /* null */
    assert_null(influx_answer_str(&row, "nope"));
    assert_int_equal(influx_answer_time(&row), 12);
    assert_true(json_is_real(influx_answer_get(&row, "value")));
    json_decref(cols);
    json_decref(vals);
}

static void test_set(void **state) {
    (void)state;
    influx_set ids = {0}, times = {0};
    const char *a = "0123456789abcdef0123456789abcdef", *b = "0123456789abcdefffffffffffffffff";
    /* same first 16 digits: same key, told apart by the id */
    assert_int_equal(influx_set_id_key(a), influx_set_id_key(b));
    assert_int_equal(influx_set_put(&ids, influx_set_id_key(a), a), 0);
    assert_int_equal(influx_set_put(&ids, influx_set_id_key(b), b), 0);
    assert_int_equal(influx_set_put(&ids, influx_set_id_key(a), a), 1);
    assert_int_equal(ids.n, 2);
    /* bare keys, through several grows; 0 is never a key */
    for (uint64_t t = 0; t < 5000; t++) {
        assert_int_not_equal(influx_set_mix(t), 0);
        assert_int_equal(influx_set_put(&times, influx_set_mix(t), NULL), 0);
    }
    for (uint64_t t = 0; t < 5000; t++) assert_int_equal(influx_set_put(&times, influx_set_mix(t), NULL), 1);
    assert_int_equal(times.n, 5000);
    assert_true(times.cap >= 10000);
    influx_set_free(&ids);
    influx_set_free(&times);
    assert_null(times.keys);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked_documents),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_columns),
        cmocka_unit_test(test_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
