/* test_storage_unit.c -- unit tests for data-storage's pure parts: line
 * protocol and InfluxQL escaping, exact JSON text, query-parameter
 * validation, batch preparation, and the SQLite backend on a temp file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lineproto.h"
#include "store.h"
#include "json_text.h"
#include "store_sqlite.h"
#include "store_text.h"

static char *lp(void (*fn)(sbuf *, const char *), const char *in) {
    sbuf b;
    sbuf_init(&b);
    fn(&b, in);
    return sbuf_take(&b, NULL);
}

#define EXPECT_LP(fn, in, want)          \
    do {                                 \
        char *got_ = lp(fn, in);         \
        assert_string_equal(got_, want); \
        free(got_);                      \
    } while (0)

static void test_lineproto_tag(void **st) {
    (void)st;
    EXPECT_LP(lineproto_tag, "sensor.temp", "sensor.temp");
    EXPECT_LP(lineproto_tag, "a,b=c d", "a\\,b\\=c\\ d");
    EXPECT_LP(lineproto_tag, "back\\slash", "back/slash");   /* 1.x keeps "\\" literally: tag form uses '/' */
    EXPECT_LP(lineproto_tag, "new\nline", "new\\ line");
    EXPECT_LP(lineproto_tag, "°C 😀", "°C\\ 😀");
    EXPECT_LP(lineproto_tag_form, "a,b\\c\nd", "a,b/c d");
}

static void test_lineproto_measurement(void **st) {
    (void)st;
    EXPECT_LP(lineproto_measurement, "home assistant,x=y", "home\\ assistant\\,x=y");
}

static void test_lineproto_field_string(void **st) {
    (void)st;
    sbuf b;
    sbuf_init(&b);
    const char in[] = "say \"hi\" \\ back\nslash, = ok";
    lineproto_field_string(&b, in, strlen(in));
    assert_string_equal(b.data, "\"say \\\"hi\\\" \\\\ back\nslash, = ok\"");
    sbuf_reset(&b);
    assert_int_equal(lineproto_field_float(&b, 21.3), 0);
    assert_string_equal(b.data, "21.3");
    sbuf_reset(&b);
    assert_int_equal(lineproto_field_float(&b, 3), 0);
    assert_string_equal(b.data, "3.0");
    sbuf_free(&b);
}

static void test_influxql_string(void **st) {
    (void)st;
    EXPECT_LP(influxql_string, "x' OR 1=1 --", "'x\\' OR 1=1 --'");
    EXPECT_LP(influxql_string, "ends\\", "'ends\\\\'");
    EXPECT_LP(influxql_string, "a\nb", "'a\\nb'");
    EXPECT_LP(influxql_ident, "homeiq \"test\"", "\"homeiq \\\"test\\\"\"");
}

static void test_json_exact(void **st) {
    (void)st;
    json_error_t e;
    const char *in = "{\"z\":1,\"a\":[0.1,21.3,2.5,1e300,3.0,-0.0],\"s\":\"°C 😀 \\\"q\\\" \\\\ \\n\\t\\u0001\"}";
    json_t *j = json_loads(in, 0, &e);
    assert_non_null(j);
    sbuf b;
    sbuf_init(&b);
    json_text_dump(j, &b);
    assert_string_equal(b.data, "{\"z\":1,\"a\":[0.1,21.3,2.5,1e+300,3.0,-0.0],\"s\":\"°C 😀 \\\"q\\\" \\\\ \\n\\t\\u0001\"}");
    json_t *back = json_loads(b.data, 0, &e);
    assert_true(json_equal(j, back));
    json_decref(back);
    json_decref(j);
    sbuf_free(&b);
}

static void test_filter_params(void **st) {
    (void)st;
    store_filter f;
    char err[256];
    store_filter_init(&f);
    assert_int_equal(f.limit, 100);
    assert_int_equal(store_filter_set(&f, "limit", "10000", err, sizeof err), 0);
    assert_int_equal(f.limit, 10000);
    const char *bad[][2] = {{"limit", "0"},     {"limit", "10001"},      {"limit", "1e3"}, {"limit", ""},
                            {"limit", "-5"},    {"offset", "-1"},        {"offset", "x"},  {"start", "today"},
                            {"end", "2025-02-30T00:00:00Z"}, {"entity_id", ""}, {"bogus", "1"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(store_filter_set(&f, bad[i][0], bad[i][1], err, sizeof err), -1);
        assert_int_equal(strncmp(err, bad[i][0], strlen(bad[i][0])), 0); /* names the parameter */
    }
    assert_int_equal(store_filter_set(&f, "start", "2025-06-14T10:00:00+02:00", err, sizeof err), 0);
    assert_int_equal(store_filter_set(&f, "end", "2025-06-14T08:00:00Z", err, sizeof err), 0);
    assert_true(f.has_start && f.has_end && f.start_us == f.end_us);
    assert_int_equal(store_filter_check(&f, err, sizeof err), 0);
    assert_int_equal(store_filter_set(&f, "end", "2025-06-14T07:59:59Z", err, sizeof err), 0);
    assert_int_equal(store_filter_check(&f, err, sizeof err), -1);
    assert_int_equal(strncmp(err, "start", 5), 0);
}

static json_t *load(const char *s) {
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    assert_non_null(j);
    return j;
}

static void test_batch_prepare(void **st) {
    (void)st;
    json_t *events = load("[{\"event_type\":\"state_changed\",\"entity_id\":\"light.k\",\"time_fired\":"
                          "\"2025-06-14T08:33:20.218734Z\",\"state\":\"on\",\"event_id\":\"old\",\"stored_at\":\"x\"},"
                          "{\"event_type\":\"state_changed\",\"state\":\"no entity\",\"time_fired\":\"2025-06-14T08:33:20Z\"},"
                          "42]");
    json_t *dead = load("[{\"error\":\"bad\",\"event\":{\"a\":1},\"source\":\"enrichment-pipeline\"},\"junk\"]");
    store_batch b;
    assert_int_equal(store_batch_prepare(&b, events, dead), 0);
    assert_int_equal(b.nitems, 3);
    assert_int_equal(b.items[0].status, STORE_ITEM_PENDING);
    assert_string_equal(b.items[0].domain, "light");
    assert_int_equal(strlen(b.items[0].event_id), 32);
    assert_null(strstr(b.items[0].json, "event_id")); /* storage-owned keys stripped */
    assert_int_equal(b.items[1].status, STORE_ITEM_REJECTED);
    assert_int_equal(b.items[2].status, STORE_ITEM_REJECTED);
    assert_int_equal(b.ndead, 4);   /* 2 rejects + 2 given (one invalid, kept anyway) */
    assert_string_equal(b.dead[2].source, "enrichment-pipeline");
    assert_string_equal(b.dead[2].raw, "{\"a\":1}");
    assert_string_equal(b.dead[3].raw, "\"junk\"");

    store_rows r = {0};
    assert_int_equal(store_rows_add_event(&r, b.items[0].json, b.items[0].json_len, b.items[0].event_id, 0), 0);
    json_t *row = load(r.json[0]);
    assert_string_equal(json_string_value(json_object_get(row, "stored_at")), "1970-01-01T00:00:00.000000Z");
    assert_string_equal(json_string_value(json_object_get(row, "state")), "on");
    json_decref(row);
    store_rows_free(&r);
    store_batch_free(&b);
    json_decref(events);
    json_decref(dead);
}

typedef struct cb_result {
    int rc;
    size_t n;
    char first[4096];
} cb_result;

static void write_cb(store_batch *b, int rc, const char *err, void *arg) {
    (void)b, (void)err;
    ((cb_result *)arg)->rc = rc;
}

static void rows_cb(const store_rows *rows, int rc, const char *err, void *arg) {
    (void)err;
    cb_result *r = arg;
    r->rc = rc;
    r->n = rows->n;
    snprintf(r->first, sizeof r->first, "%s", rows->n ? rows->json[0] : "");
}

static void test_sqlite_store(void **st) {
    (void)st;
    char dir[] = "/tmp/homeiq-unit.XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/events.db", dir);
    store *s;
    assert_int_equal(store_sqlite_open_path(path, 1000, &s), 0);
    json_t *events = load("[{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.a\",\"time_fired\":\"2025-06-14T08:00:00Z\",\"state\":\"1\"},"
                          "{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.b\",\"time_fired\":\"2025-06-14T09:00:00Z\",\"state\":\"2\"},"
                          "{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.a\",\"time_fired\":\"2025-06-14T08:00:00Z\",\"state\":\"1\"}]");
    store_batch b;
    cb_result r = {0};
    assert_int_equal(store_batch_prepare(&b, events, NULL), 0);
    s->ops->write_batch(s, &b, write_cb, &r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(b.stored, 2);
    assert_int_equal(b.duplicates, 1);
    store_batch_free(&b);
    assert_int_equal(store_batch_prepare(&b, events, NULL), 0);
    s->ops->write_batch(s, &b, write_cb, &r);
    assert_int_equal(b.stored, 0);
    assert_int_equal(b.duplicates, 3);
    store_batch_free(&b);

    store_filter f;
    store_filter_init(&f);
    s->ops->query(s, &f, rows_cb, &r);
    assert_int_equal(r.n, 2);
    assert_non_null(strstr(r.first, "sensor.b")); /* newest first */
    f.entity_id = "sensor.a";
    s->ops->query(s, &f, rows_cb, &r);
    assert_int_equal(r.n, 1);
    f.entity_id = "x' OR 1=1";
    s->ops->query(s, &f, rows_cb, &r);
    assert_int_equal(r.n, 0);
    s->ops->close(s);

    /* reopening keeps the data and the schema version */
    assert_int_equal(store_sqlite_open_path(path, 1000, &s), 0);
    f.entity_id = NULL;
    s->ops->query(s, &f, rows_cb, &r);
    assert_int_equal(r.n, 2);
    s->ops->close(s);
    json_decref(events);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The general path (jansson tree, checks, dump) for a body; 0 or -1. */
static int general_prepare(const char *body, store_batch *b, json_t **tree) {
    json_t *events;
    const char *err;
    *tree = json_loads(body, JSON_ALLOW_NUL, NULL);
    if (!*tree || event_unpack_batch(*tree, &events, &err) != 0) return -1;
    int rc = store_batch_prepare(b, events, NULL);
    json_decref(events);
    return rc;
}

/* store_text_prepare() gives exactly the general path's batch, or declines. */
static void text_same_as_general(const char *body, int expect_fast) {
    store_batch t, g;
    json_t *tree = NULL;
    int rc = store_text_prepare(body, strlen(body), 10000, &t);
    if (!expect_fast) {
        assert_int_equal(rc, 1);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(general_prepare(body, &g, &tree), 0);
    assert_int_equal(t.nitems, g.nitems);
    for (size_t i = 0; i < t.nitems; i++) {
        const store_item *a = &t.items[i], *e = &g.items[i];
        assert_int_equal(e->status, STORE_ITEM_PENDING);
        assert_int_equal(a->status, STORE_ITEM_PENDING);
        assert_int_equal(a->index, e->index);
        assert_int_equal(a->json_len, e->json_len);
        assert_string_equal(a->json, e->json);
        assert_string_equal(a->event_id, e->event_id);
        assert_true(a->time_us == e->time_us);
        assert_string_equal(a->event_type, e->event_type);
        assert_string_equal(a->domain, e->domain);
        if (e->entity_id) assert_string_equal(a->entity_id, e->entity_id);
        else assert_null(a->entity_id);
    }
    store_batch_free(&t);
    store_batch_free(&g);
    json_decref(tree);
}

static void test_text_prepare(void **st) {
    (void)st;
    text_same_as_general("{\"events\":[{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.a\","
                         "\"time_fired\":\"2025-06-14T08:33:20.5+02:00\",\"value\":21.50,\"n\":-0,\"big\":123456789012345678,"
                         "\"e\":1E+2,\"f\":-0.0,\"g\":1e-400,\"h\":0.1,\"s\":\"a\\u00e9\\/\\ud83d\\ude00\\u001f\\b\\\"\\\\\","
                         "\"u\":\"\xc3\xa9\xf0\x9f\x8f\xa0\",\"attributes\":{\"x\":[1, 2.5 ,{},[],null,true,false],"
                         "\"k\\u0020\":\"v\"},\"domain\":\"custom\",\"event_id\":\"old\",\"stored_at\":\"old\"}],"
                         "\"dead_letters\":[]}",
                         1);
    text_same_as_general(" [ {\"event_id\":\"x\", \"event_type\":\"call_service\",\"time_fired\":\"2025-06-14T08:33:20Z\","
                         "\"context_id\":\"c\",\"data\":{\"domain\":\"light\"}}, {\"event_type\":\"e\",\"time_fired\":"
                         "\"2025-06-14T08:33:20Z\",\"entity_id\":null,\"stored_at\":1} ] ",
                         1);
    text_same_as_general("{\"events\":[]}", 1);
    /* declined: the general path owns these */
    const char *decline[] = {
        "", "{}", "{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\"}", "[1]", "[{}]",
        "{\"events\":[],\"dead_letters\":[{\"error\":\"x\"}]}", "{\"events\":[],\"other\":1}",
        "[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"a\":1,\"a\":2}]",
        "[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"a\":\"\\u0000\"}]",
        "[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"a\":1234567890123456789}]",
        "[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"a\":1e999}]",
        "[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"a\":01}]",
        "[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"a\":\"\\ud800\"}]",
        "[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"a\":\"\xc0\xaf\"}]",
        "[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"a\":\"\t\"}]",
        "[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"a\":tru}]",
        "[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\"}] x",
        "[{\"event_type\":\"\",\"time_fired\":\"2025-06-14T08:33:20Z\"}]",
        "[{\"event_type\":\"x\",\"time_fired\":\"yesterday\"}]",
        "[{\"event_type\":\"state_changed\",\"time_fired\":\"2025-06-14T08:33:20Z\"}]",
        "[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"entity_id\":\"\"}]",
        "[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"state\":1}]",
        "[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"value\":\"1\"}]",
        "[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"attributes\":[]}]",
        "[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"event_id\":1,\"event_id\":2}]",
        "[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\"},]",
        "[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\"}",
    };
    for (size_t i = 0; i < sizeof decline / sizeof *decline; i++) text_same_as_general(decline[i], 0);
    store_batch b;
    assert_int_equal(store_text_prepare("[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\"},"
                                        "{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:21Z\"}]",
                                        strlen("[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\"},"
                                               "{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:21Z\"}]"),
                                        1, &b),
                     1); /* over MAX_BATCH: the general path answers 400 */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lineproto_tag),     cmocka_unit_test(test_lineproto_measurement),
        cmocka_unit_test(test_lineproto_field_string), cmocka_unit_test(test_influxql_string),
        cmocka_unit_test(test_json_exact),        cmocka_unit_test(test_filter_params),
        cmocka_unit_test(test_batch_prepare),     cmocka_unit_test(test_text_prepare),     cmocka_unit_test(test_sqlite_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
