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

#include "event.h"
#include "lineproto.h"
#include "store.h"
#include "json_text.h"
#include "store_sqlite.h"
#include "store_text.h"
#include "json_scan.h"
#include "influx_points.h"
#include "influx_feed.h"
#include "sbuf.h"

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

/* Issue 15, session 7: the InfluxDB event point is built from the record's text
 * (record_fields + one walk), byte for byte the line the jansson-tree builder of
 * f4d3981 wrote for the same record (golden taken from that build): escaped
 * tags, an empty label and floor dropped, "-0", 2^53+1 and 1e3 as jansson reads
 * them, the attributes' canonical text -- whichever path prepared the batch. */
static const char influx_golden_line[] =
    "home_assistant_events,area_id=living\\ room,device_id=d\\=1,labels=\\,a\\,b\\ c\\,,platform=hue,devi"
    "ce_class=temperature,domain=sensor,entity_id=sensor.t\\,\\ \"x\",event_type=state_changed,home_id=ca"
    "bin,unit_of_measurement=°C event_id=\"8252d59b28835b8f3a827e3804e61999\",stored_at=\"2025-06-14T08:3"
    "3:22.000000Z\",record=\"{\\\"event_type\\\":\\\"state_changed\\\",\\\"entity_id\\\":\\\"sensor.t, \\\\\\\""
    "x\\\\\\\"\\\",\\\"domain\\\":\\\"sensor\\\",\\\"time_fired\\\":\\\"2025-06-14T08:33:20.218734Z\\\",\\\""
    "state\\\":\\\"22.5 °C\\\",\\\"value\\\":0,\\\"old_state\\\":\\\"a\\\\\\\\b\\\\nc\\\",\\\"old_value\\\""
    ":9007199254740993,\\\"duration_in_state\\\":1000.0,\\\"unit_of_measurement\\\":\\\"°C\\\",\\\"device"
    "_class\\\":\\\"temperature\\\",\\\"context_id\\\":\\\"c1\\\",\\\"context_parent_id\\\":null,\\\"cont"
    "ext_user_id\\\":\\\"u \\\\\\\"1\\\\\\\"\\\",\\\"attributes\\\":{\\\"z\\\":1,\\\"a\\\":[1,2.5,\\\"x,y"
    "\\\"],\\\"n\\\":{\\\"k\\\":\\\"v\\\"}},\\\"area_id\\\":\\\"living room\\\",\\\"device_id\\\":\\\"d=1"
    "\\\",\\\"floor_id\\\":\\\"\\\",\\\"labels\\\":[\\\"a\\\",\\\"\\\",\\\"b c\\\",1],\\\"platform\\\":\\\""
    "hue\\\"}\",state=\"22.5 °C\",value=0.0,old_state=\"a\\\\b\nc\",old_value=9007199254740992.0,duration"
    "_in_state=1000.0,context_id=\"c1\",context_user_id=\"u \\\"1\\\"\",attributes=\"{\\\"z\\\":1,\\\"a\\\""
    ":[1,2.5,\\\"x,y\\\"],\\\"n\\\":{\\\"k\\\":\\\"v\\\"}}\" 1749890000218734001\n";

static void influx_point_check(store_batch *b) {
    assert_int_equal(b->nitems, 1);
    assert_int_equal(b->items[0].status, STORE_ITEM_PENDING);
    const record_fields *f = store_item_fields(&b->items[0]);
    assert_non_null(f);
    sbuf s;
    sbuf_init(&s);
    influx_points_event(&s, &b->items[0], f, 1749890000218734001ull, "2025-06-14T08:33:22.000000Z", "cabin",
                        INFLUX_EVENT_FIELDS_FULL);
    assert_false(sbuf_failed(&s));
    assert_string_equal(s.data, influx_golden_line);
    /* INFLUXDB_EVENT_FIELDS=slim: the same line up to value, then the time -- the same tags, no copied field */
    char slim[sizeof influx_golden_line];
    const char *cut = strstr(influx_golden_line, ",old_state=");
    assert_non_null(cut);
    snprintf(slim, sizeof slim, "%.*s%s", (int)(cut - influx_golden_line), influx_golden_line,
             strrchr(influx_golden_line, ' '));
    sbuf_reset(&s);
    influx_points_event(&s, &b->items[0], f, 1749890000218734001ull, "2025-06-14T08:33:22.000000Z", "cabin",
                        INFLUX_EVENT_FIELDS_SLIM);
    assert_false(sbuf_failed(&s));
    assert_string_equal(s.data, slim);
    sbuf_free(&s);
    store_batch_free(b);
}

static void test_influx_point_text(void **st) {
    (void)st;
    const char *ev = "[{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.t, \\\"x\\\"\",\"domain\":\"sensor\","
        "\"time_fired\":\"2025-06-14T08:33:20.218734Z\",\"state\":\"22.5 \\u00b0C\",\"value\":-0,\"old_state\":\"a\\\\b\\nc\","
        "\"old_value\":9007199254740993,\"duration_in_state\":1e3,\"unit_of_measurement\":\"\\u00b0C\","
        "\"device_class\":\"temperature\",\"context_id\":\"c1\",\"context_parent_id\":null,\"context_user_id\":\"u \\\"1\\\"\","
        "\"attributes\":{\"z\":1,\"a\":[1,2.5,\"x,y\"],\"n\":{\"k\":\"v\"}},\"area_id\":\"living room\",\"device_id\":\"d=1\","
        "\"floor_id\":\"\",\"labels\":[\"a\",\"\",\"b c\",1],\"platform\":\"hue\"}]";
    store_batch b;
    assert_int_equal(store_text_prepare(ev, strlen(ev), 10000, &b), 0); /* the text path: no tree */
    assert_null(b.items[0].record);
    influx_point_check(&b);
    json_t *events = json_loads(ev, 0, NULL); /* the general path: a tree, read the same way */
    assert_non_null(events);
    assert_int_equal(store_batch_prepare(&b, events, NULL), 0);
    influx_point_check(&b);
    json_decref(events);
}

/* INFLUXDB_EVENT_FIELDS' values: exactly full and slim. */
static void test_influx_event_fields_parse(void **st) {
    (void)st;
    influx_event_fields f = INFLUX_EVENT_FIELDS_SLIM;
    assert_int_equal(influx_points_fields_parse("full", &f), 0);
    assert_int_equal(f, INFLUX_EVENT_FIELDS_FULL);
    assert_int_equal(influx_points_fields_parse("slim", &f), 0);
    assert_int_equal(f, INFLUX_EVENT_FIELDS_SLIM);
    assert_string_equal(influx_points_fields_name(f), "slim");
    assert_int_equal(influx_points_fields_parse("SLIM", &f), -1);
    assert_int_equal(influx_points_fields_parse("", &f), -1);
    assert_int_equal(influx_points_fields_parse(NULL, &f), -1);
    assert_int_equal(influx_points_fields_parse(INFLUX_EVENT_FIELDS_DEFAULT, &f), 0);
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

/* The general path as storage_api.c runs it (httpd_read_json's parse, with its
 * retry of an integer overflow as a real; dead letters; jansson tree, checks,
 * dump) for a body; 0, or -1 when the body itself is refused (400). */
static int general_prepare_len(const char *body, size_t len, store_batch *b, json_t **tree) {
    json_t *events, *dead = NULL;
    const char *err;
    json_error_t e;
    *tree = json_loadb(body, len, JSON_ALLOW_NUL, &e);
    if (!*tree && json_error_code(&e) == json_error_numeric_overflow)
        *tree = json_loadb(body, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
    if (!*tree) return -1;
    if (json_is_object(*tree)) dead = json_object_get(*tree, "dead_letters");
    if (dead && !json_is_array(dead)) return -1;
    if (dead && !json_object_get(*tree, "events")) events = json_array();
    else if (event_unpack_batch(*tree, &events, &err) != 0) return -1;
    int rc = store_batch_prepare(b, events, dead);
    json_decref(events);
    return rc;
}
static int general_prepare(const char *body, store_batch *b, json_t **tree) {
    return general_prepare_len(body, strlen(body), b, tree);
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
        /* the members the SQLite writer reads, noted during the walk = found by a walk of the stored text */
        record_fields scanned;
        assert_int_equal(record_fields_scan(&scanned, e->json, e->json_len), 0);
        assert_true(a->fields.noted);
        assert_memory_equal(a->fields.off, scanned.off, sizeof scanned.off);
        assert_memory_equal(a->fields.len, scanned.len, sizeof scanned.len);
    }
    store_batch_free(&t);
    store_batch_free(&g);
    json_decref(tree);
}

/* A spaced event with `runs` whitespace runs, all before the members the
 * SQLite writer reads (so their noted offsets move by every run): st_squeeze
 * maps up to 512 runs, more take the walk -- the same record either way. */
static char *spaced_event_body(int runs) {
    sbuf b;
    sbuf_init(&b);
    const char *head = "[{\"event_type\":\"state_changed\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"attributes\":{\"a\":[";
    sbuf_add(&b, head, strlen(head));
    for (int i = 0; i < runs; i++) sbuf_add(&b, i ? ", 1" : "1", i ? 3 : 1); /* runs - 1, one more after entity_id */
    sbuf_printf(&b, "]},\"entity_id\": \"sensor.g%d\",\"state\":\"on\",\"area_id\":\"k\",\"labels\":[\"x\"]}]", runs);
    assert_false(sbuf_failed(&b));
    return b.data;
}

/* Review F1: the scan's notes are bounded -- at most the body's bytes (or 256
 * events') and 8,192 events' -- and the events past the bound are walked,
 * giving the same records; a spaced event past 512 whitespace runs (F2) too. */
static void test_text_bounds(void **st) {
    (void)st;
    const int runs[] = {511, 512, 513, 600};
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        char *body = spaced_event_body(runs[i]);
        store_text_body tb;
        assert_int_equal(store_text_scan(body, strlen(body), 10000, &tb), 0);
        assert_int_equal(tb.nplain, 1); /* noted as plain: squeezed when it fits, else walked */
        store_text_body_free(&tb);
        text_same_as_general(body, 1);
        free(body);
    }
    /* 3,000 small events (~285 KB): notes for the first ~1,500 only; plain, spaced and walked events on both sides */
    sbuf b;
    sbuf_init(&b);
    sbuf_addc(&b, '[');
    for (int i = 0; i < 3000; i++)
        sbuf_printf(&b, "%s{\"event_type\":\"e\",\"time_fired\":\"2025-06-14T08:%02d:%02dZ\",\"entity_id\":\"s.a%d\"%s}",
                    i ? "," : "", i / 60 % 60, i % 60, i,
                    i % 7 == 3 ? ",\"state\": \"x\",\"attributes\":{\"a\": [1, 2]}" : i % 11 == 5 ? ",\"event_id\":\"d\"" : ",\"area_id\":\"k\"");
    sbuf_addc(&b, ']');
    assert_false(sbuf_failed(&b));
    store_text_body tb;
    assert_int_equal(store_text_scan(b.data, b.len, 10000, &tb), 0);
    assert_int_equal(tb.n, 3000);
    assert_true(tb.nnote >= 256 && tb.nnote < tb.n && tb.nnote <= b.len / 100); /* notes are ~184 bytes each */
    assert_true(tb.nplain > 0 && tb.nplain < tb.nnote);
    store_text_body_free(&tb);
    text_same_as_general(b.data, 1);
    sbuf_free(&b);
}

/* Issue 15: a body taken in pieces (store_text_scan, then ranges) gives the
 * items the whole body gives, and notes its dead letters for the last piece. */
static void test_text_pieces(void **st) {
    (void)st;
    const char *body = "{\"events\":[{\"event_type\":\"a\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"entity_id\":\"s.a\"},"
                       "{\"event_type\":\"b\",\"time_fired\":\"2025-06-14T08:33:21Z\",\"entity_id\":\"s.b\",\"x\" : 1.50},"
                       "{\"event_type\":\"c\",\"time_fired\":\"2025-06-14T08:33:22Z\",\"entity_id\":\"s.c\"},"
                       "{\"event_type\":\"d\",\"time_fired\":\"2025-06-14T08:33:23Z\",\"entity_id\":\"s.d\"}],"
                       "\"dead_letters\":[{\"error\":\"e\",\"event\":1},{\"error\":\"f\"}]}";
    store_text_body t;
    assert_int_equal(store_text_scan(body, strlen(body), 10000, &t), 0);
    assert_int_equal(t.n, 4);
    assert_int_equal(t.ndead, 2);
    assert_true(t.dead.len > 0 && body[t.dead.off] == '[' && body[t.dead.off + t.dead.len - 1] == ']');
    store_batch g;
    json_t *tree = NULL;
    assert_int_equal(general_prepare(body, &g, &tree), 0);
    const size_t cuts[] = {0, 1, 3, 4};
    for (size_t c = 0; c + 1 < sizeof cuts / sizeof *cuts; c++) {
        store_batch b;
        assert_int_equal(store_text_prepare_range(&t, cuts[c], cuts[c + 1], &b), 0);
        assert_int_equal(b.nitems, cuts[c + 1] - cuts[c]);
        for (size_t i = 0; i < b.nitems; i++) {
            const store_item *a = &b.items[i], *e = &g.items[cuts[c] + i];
            assert_int_equal(a->index, (int)i); /* the caller adds the range's start */
            assert_string_equal(a->json, e->json);
            assert_string_equal(a->event_id, e->event_id);
        }
        store_batch_free(&b);
    }
    store_batch_free(&g);
    json_decref(tree);
    store_text_body_free(&t);
    /* more events than MAX_BATCH, or a body that is not {"events":[...]} / an array: the general path */
    assert_int_equal(store_text_scan(body, strlen(body), 3, &t), 1);
    assert_int_equal(store_text_scan("{\"event_type\":\"a\"}", 18, 10000, &t), 1);
    assert_int_equal(store_text_scan("{\"events\":[],\"x\":1}", 20, 10000, &t), 1);
}

static void test_text_prepare(void **st) {
    (void)st;
    text_same_as_general("{\"events\":[{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.a\","
                         "\"time_fired\":\"2025-06-14T08:33:20.5+02:00\",\"value\":21.50,\"n\":-0,\"big\":123456789012345678,"
                         "\"e\":1E+2,\"f\":-0.0,\"g\":1e-400,\"h\":0.1,\"s\":\"a\\u00e9\\/\\ud83d\\ude00\\u001f\\b\\\"\\\\\","
                         "\"u\":\"\xc3\xa9\xf0\x9f\x8f\xa0\",\"attributes\":{\"x\":[1, 2.5 ,{},[],null,true,false],"
                         "\"k\\u0020\":\"v\"},\"domain\":\"custom\",\"event_id\":\"old\",\"stored_at\":\"old\","
                         "\"state\" : \"21.50\", \"state_class\":\"total\",\"area_id\":\"kitchen\",\"labels\":[ \"a\" , \"b\\u0020\" ],"
                         "\"device_id\":null,\"platform\":\"\\u0070\",\"entity_category\":\"config\"}],"
                         "\"dead_letters\":[]}",
                         1);
    text_same_as_general(" [ {\"event_id\":\"x\", \"event_type\":\"call_service\",\"time_fired\":\"2025-06-14T08:33:20Z\","
                         "\"context_id\":\"c\",\"data\":{\"domain\":\"light\"}}, {\"event_type\":\"e\",\"time_fired\":"
                         "\"2025-06-14T08:33:20Z\",\"entity_id\":null,\"stored_at\":1} ] ",
                         1);
    text_same_as_general("{\"events\":[]}", 1);
    /* issue 15: one body, each event its own way -- plain (built from the scan's notes), spaced, with a member
     * storage drops, with an escaped key (walked); multibyte ids and strings; spaces between the events only */
    const char *mixed = "{\"events\": [ {\"event_type\":\"state_changed\",\"entity_id\":\"sensor.k\xc3\xbc""che_\xf0\x9f\x8f\xa0\","
                        "\"time_fired\":\"2025-06-14T08:33:20Z\",\"state\":\"\xc3\xa9t\xc3\xa9\",\"value\":1.5,\"area_id\":\"k\","
                        "\"attributes\":{\"a\":[1,{\"state\":2}]},\"labels\":[\"x\"]} ,"
                        "{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.b\",\"time_fired\":\"2025-06-14T08:33:21Z\","
                        "\"state\": \"2\"},"
                        "{\"event_type\":\"e\",\"time_fired\":\"2025-06-14T08:33:22Z\",\"event_id\":\"x\",\"state_class\":\"total\"},"
                        "{\"event_type\":\"e\",\"time_fired\":\"2025-06-14T08:33:23Z\",\"st\\u0061te\":\"3\"},"
                        "{\"event_type\":\"call_service\",\"time_fired\":\"2025-06-14T08:33:24Z\",\"context_id\":\"c\\n\","
                        "\"data\":{\"entity_id\":\"light.a\"},\"platform\":null}]}";
    text_same_as_general(mixed, 1);
    store_text_body tb;
    assert_int_equal(store_text_scan(mixed, strlen(mixed), 10000, &tb), 0);
    assert_int_equal(tb.n, 5);
    assert_int_equal(tb.nplain, 3); /* the first, the spaced one (squeezed) and the last; the others walked */
    store_text_body_free(&tb);
    /* a wrong type in a plain-looking event, an overflowing real anywhere: declined as before */
    text_same_as_general("[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\"},"
                         "{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"state_class\":[]}]", 0);
    text_same_as_general("[{\"event_type\":\"x\",\"time_fired\":\"2025-06-14T08:33:20Z\",\"attributes\":{\"a\":1e400}}]", 0);
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


/* ---- generated records: the text path against the general path ---------------
 *
 * Records as enrichment sends them (and as a client may send them straight to
 * storage): every field storage checks, with valid and invalid types, strings
 * with every escape and raw UTF-8, numbers of every form, nested attributes,
 * unknown members, spacing after ':' and ',' (and before them, inside brackets)
 * at every level. The generator knows for each event what must happen:
 *   GEN_OK       the text path takes it, and must build the general path's bytes;
 *   GEN_DECLINE  the text path declines it; the general path stores it anyway;
 *   GEN_REJECT   the text path declines it; the general path dead-letters it;
 *   GEN_BAD      not JSON (or overflowing): the general path refuses the body (400).
 * Every event is checked alone against that, and every body as a whole. */
enum { GEN_OK, GEN_DECLINE, GEN_REJECT, GEN_BAD };

static unsigned long long srng = 0x9E3779B97F4A7C15ull;
static unsigned srnd(unsigned n) {
    srng ^= srng << 13;
    srng ^= srng >> 7;
    srng ^= srng << 17;
    return (unsigned)(srng % n);
}
#define SPICK(arr) (arr)[srnd(sizeof(arr) / sizeof(arr)[0])]
static int worst(int a, int b) { return a > b ? a : b; }

static const char *const g_strings[] = {
    "\"on\"", "\"21.5\"", "\"\"", "\"caf\xc3\xa9 \xf0\x9f\x8f\xa0\"", "\"\\u00e9t\\u00e9\"", "\"a\\/b\"",
    "\"\\ud83d\\ude00\"", "\"\\b\\f\\n\\r\\t\"", "\"\\\"q\\\"\"", "\"\\\\\"", "\"\\u001f\\u007f\"", "\"\\u2028\"",
    "\"\\u0041\\u00DF\"", "\"K\xc3\xbc""che\"", "\"mdi:thermometer\"", "\"01JXPS4SATTNZJ8RR616P54XFG\""};
static const char *const g_numbers[] = {"0", "-0", "21.5", "21.50", "1E+2", "1e-400", "0.1", "123456789012345678",
                                        "-123456789012345678", "1.7976931348623157e308", "5e-324", "2.5E-3", "-42",
                                        "7.0", "1e21", "0.30000000000000004", "1.5e300", "-0.0", "100", "3"};
static const char *const g_times[] = {"2025-06-14T08:33:20.218734Z", "2025-06-14T08:33:20Z",
                                      "2025-06-14T10:33:20.5+02:00", "2025-06-14T08:33:20.218734+00:00",
                                      "1970-01-01T00:00:00Z", "2025-03-30T01:30:00.123456789-05:30"};

/* A value for an unchecked member (attributes, data, unknown keys); depth left. */
static void gen_any(sbuf *o, int depth, int *cat);

static void gen_object(sbuf *o, int depth, int *cat) {
    unsigned n = srnd(5);
    sbuf_addc(o, '{');
    for (unsigned k = 0; k < n; k++) {
        if (k) sbuf_addc(o, ',');
        sbuf_printf(o, "\"k%u\":", k);
        gen_any(o, depth - 1, cat);
    }
    if (n && srnd(25) == 0) { /* a repeated key: jansson keeps the last */
        sbuf_adds(o, ",\"k0\":1");
        *cat = worst(*cat, GEN_DECLINE);
    }
    if (srnd(200) == 0) { /* more members than lib/json_scan's duplicate check tracks (256): declined */
        for (unsigned k = 0; k < 300; k++) sbuf_printf(o, "%s\"m%u\":%u", n || k ? "," : "", k, k);
        *cat = worst(*cat, GEN_DECLINE);
    }
    sbuf_addc(o, '}');
}

static void gen_any(sbuf *o, int depth, int *cat) {
    unsigned r = srnd(depth > 0 ? 14 : 10);
    if (srnd(300) == 0) { /* a \\u0000 in a value: jansson keeps it (JSON_ALLOW_NUL) */
        sbuf_adds(o, "\"a\\u0000b\"");
        *cat = worst(*cat, GEN_DECLINE);
        return;
    }
    if (srnd(300) == 0) { /* an integer beyond 18 digits: jansson reads it (as a real beyond int64) */
        sbuf_adds(o, srnd(2) ? "-1234567890123456789" : "98765432109876543210");
        *cat = worst(*cat, GEN_DECLINE);
        return;
    }
    if (srnd(400) == 0) { /* deeper than lib/json_scan reads (the general path's jansson goes to 2048) */
        for (int i = 0; i < JSCAN_MAX_DEPTH + 8; i++) sbuf_addc(o, '[');
        for (int i = 0; i < JSCAN_MAX_DEPTH + 8; i++) sbuf_addc(o, ']');
        *cat = worst(*cat, GEN_DECLINE);
        return;
    }
    if (srnd(500) == 0) { /* not JSON, or a real that overflows: the whole body is a 400 */
        static const char *const bad[] = {"\"\xc0\xaf\"", "\"tab\there\"", "\"\\ud800\"", "01", "1e999", "tru",
                                          "\"\\x\"", "[1,]"};
        sbuf_adds(o, SPICK(bad));
        *cat = GEN_BAD;
        return;
    }
    switch (r) {
    case 0: case 1: case 2: sbuf_adds(o, SPICK(g_strings)); break;
    case 3: case 4: case 5: sbuf_adds(o, SPICK(g_numbers)); break;
    case 6: sbuf_adds(o, "true"); break;
    case 7: sbuf_adds(o, "false"); break;
    case 8: sbuf_adds(o, "null"); break;
    case 9: sbuf_adds(o, srnd(2) ? "[]" : "{}"); break;
    case 10: case 11: gen_object(o, depth, cat); break;
    default: {
        unsigned n = srnd(4);
        sbuf_addc(o, '[');
        for (unsigned k = 0; k < n; k++) {
            if (k) sbuf_addc(o, ',');
            gen_any(o, depth - 1, cat);
        }
        sbuf_addc(o, ']');
    }
    }
}

/* A checked string member (state, origin, ...): string or null; rarely another type. */
static void gen_str_member(sbuf *o, const char *key, int *cat) {
    sbuf_printf(o, ",\"%s\":", key);
    unsigned r = srnd(240);
    if (r == 0) sbuf_adds(o, "5"), *cat = worst(*cat, GEN_REJECT);
    else if (r < 30) sbuf_adds(o, "null");
    else sbuf_adds(o, SPICK(g_strings));
}

static void gen_num_member(sbuf *o, const char *key, int *cat) {
    sbuf_printf(o, ",\"%s\":", key);
    unsigned r = srnd(240);
    if (r == 0) sbuf_adds(o, "\"1\""), *cat = worst(*cat, GEN_REJECT);
    else if (r == 1) sbuf_adds(o, "1234567890123456789"), *cat = worst(*cat, GEN_DECLINE);
    else if (r < 30) sbuf_adds(o, "null");
    else sbuf_adds(o, SPICK(g_numbers));
}

/* One record; returns its GEN_* category. */
static int gen_record(sbuf *o, unsigned i) {
    int cat = GEN_OK;
    unsigned t = srnd(10);
    const char *type = t < 6 ? "\"state_changed\"" : t < 8 ? "\"call_service\"" : t < 9 ? "\"automation_triggered\""
                                                                                         : "\"custom_\\u00e9vent\"";
    int sc = t < 6;
    sbuf_addc(o, '{');
    unsigned et = srnd(80);
    if (et == 0) sbuf_adds(o, "\"event_type\":\"\""), cat = GEN_REJECT;
    else if (et == 1) sbuf_adds(o, "\"event_type\":5"), cat = GEN_REJECT;
    else if (et == 2) sbuf_adds(o, "\"event_id\":\"x\""), cat = GEN_REJECT; /* no event_type at all */
    else sbuf_printf(o, "\"event_type\":%s", type);
    /* entity_id */
    unsigned e = srnd(40);
    if (e == 0) sbuf_adds(o, ",\"entity_id\":\"\""), cat = worst(cat, GEN_REJECT);
    else if (e == 1) sbuf_adds(o, ",\"entity_id\":5"), cat = worst(cat, GEN_REJECT);
    else if (e < 5) {
        if (e == 2) sbuf_adds(o, ",\"entity_id\":null");
        if (sc) cat = worst(cat, GEN_REJECT); /* state_changed needs one */
    } else if (e == 5) sbuf_printf(o, ",\"entity_id\":\"sensor.\\u006fbj_%u\"", i);
    else sbuf_printf(o, ",\"entity_id\":\"%s.obj_%u\"", sc ? "sensor" : "light", i);
    if (srnd(3)) sbuf_printf(o, ",\"domain\":%s", srnd(30) ? "\"sensor\"" : (cat = worst(cat, GEN_REJECT), "7"));
    gen_str_member(o, "object_id", &cat);
    /* time_fired */
    unsigned tf = srnd(60);
    if (tf == 0) sbuf_adds(o, ",\"time_fired\":\"yesterday\""), cat = worst(cat, GEN_REJECT);
    else if (tf == 1) sbuf_adds(o, ",\"time_fired\":null"), cat = worst(cat, GEN_REJECT);
    else if (tf == 2) cat = worst(cat, GEN_REJECT); /* missing */
    else {
        const char *tt = SPICK(g_times);
        int64_t us;
        assert_int_equal(event_time_parse(tt, &us), 0);
        sbuf_printf(o, ",\"time_fired\":\"%s\"", tt);
    }
    gen_str_member(o, "origin", &cat);
    unsigned c = srnd(40);
    if (c == 0) sbuf_adds(o, ",\"context_id\":5"), cat = worst(cat, GEN_REJECT);
    else if (c < 6) sbuf_adds(o, ",\"context_id\":null");
    else if (c < 38) sbuf_printf(o, ",\"context_id\":\"01JXPS4SATTNZJ8RR616P%05u\"", i % 100000);
    gen_str_member(o, "context_parent_id", &cat);
    gen_str_member(o, "context_user_id", &cat);
    if (sc) {
        gen_str_member(o, "state", &cat);
        gen_num_member(o, "value", &cat);
        gen_str_member(o, "old_state", &cat);
        gen_num_member(o, "old_value", &cat);
        gen_str_member(o, "unit_of_measurement", &cat);
        gen_str_member(o, "device_class", &cat);
        gen_str_member(o, "state_class", &cat);
        gen_str_member(o, "friendly_name", &cat);
        unsigned a = srnd(50);
        if (a == 0) sbuf_adds(o, ",\"attributes\":[]"), cat = worst(cat, GEN_REJECT);
        else if (a < 4) sbuf_adds(o, ",\"attributes\":null");
        else sbuf_adds(o, ",\"attributes\":"), gen_object(o, 4, &cat);
        gen_num_member(o, "duration_in_state", &cat);
        if (srnd(2)) sbuf_printf(o, ",\"state_changed\":%s", srnd(2) ? "true" : "false");
    } else {
        unsigned d = srnd(50);
        if (d == 0) sbuf_adds(o, ",\"data\":\"x\""), cat = worst(cat, GEN_REJECT);
        else sbuf_adds(o, ",\"data\":"), gen_object(o, 4, &cat);
    }
    if (srnd(2)) sbuf_printf(o, ",\"time_of_day\":\"morning\",\"weekday\":\"saturday\"");
    /* storage-owned members, dropped from the stored text */
    if (srnd(5) == 0) sbuf_adds(o, ",\"event_id\":\"0123456789abcdef0123456789abcdef\"");
    if (srnd(5) == 0) {
        sbuf_adds(o, ",\"stored_at\":");
        gen_any(o, 1, &cat);
    }
    if (et != 2 && srnd(60) == 0) sbuf_adds(o, ",\"event_id\":1,\"event_id\":2"), cat = worst(cat, GEN_DECLINE);
    for (unsigned k = srnd(3); k > 0; k--) {
        sbuf_printf(o, ",\"extra_%u\":", k);
        gen_any(o, 3, &cat);
    }
    if (srnd(60) == 0) sbuf_adds(o, ",\"extra_0\":1,\"extra_0\":[2]"), cat = worst(cat, GEN_DECLINE);
    sbuf_addc(o, '}');
    return cat;
}

static const char *const g_spaces[] = {" ", "  ", "\n", "\t", "\r\n  ", "\n\t\t"};

/* Copies in to o with whitespace after ':' and ',' (sometimes before them too)
 * and after '[' / '{', at every level; never inside strings. */
static void g_respace(sbuf *o, const char *in, size_t n) {
    int in_str = 0, esc = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (in_str) {
            sbuf_addc(o, c);
            if (esc) esc = 0;
            else if (c == '\\') esc = 1;
            else if (c == '"') in_str = 0;
            continue;
        }
        if (c == '"') in_str = 1;
        if ((c == ':' || c == ',' || c == ']' || c == '}') && srnd(4) == 0) sbuf_adds(o, SPICK(g_spaces));
        sbuf_addc(o, c);
        if ((c == ':' || c == ',' || c == '[' || c == '{') && srnd(3)) sbuf_adds(o, SPICK(g_spaces));
    }
}

static size_t g_ok, g_decline, g_reject, g_bad, g_bodies_text, g_bodies_declined, g_spaced_ok, g_multi_text, g_plain;

/* The body both ways, against the expectation: `want[i]` per event, `body_cat`
 * GEN_OK unless the body itself (dead letters) sends it to the general path. */
static void g_check(const char *body, size_t len, const int *want, size_t n, int body_cat) {
    int all = body_cat;
    for (size_t i = 0; i < n; i++) all = worst(all, want[i]);
    store_batch t, g;
    json_t *tree = NULL;
    int trc = store_text_prepare(body, len, 10000, &t);
    int grc = general_prepare_len(body, len, &g, &tree);
    if (all == GEN_BAD) {
        if (trc != 1 || grc != -1) fail_msg("want text 1 / general -1, got %d / %d: %.*s", trc, grc, (int)len, body);
        if (grc == 0) store_batch_free(&g);
        json_decref(tree);
        return;
    }
    if (grc != 0) fail_msg("the general path refused the body: %.*s", (int)len, body);
    assert_int_equal(g.nitems, n);
    for (size_t i = 0; i < n; i++) {
        int want_status = want[i] == GEN_REJECT ? STORE_ITEM_REJECTED : STORE_ITEM_PENDING;
        if ((int)g.items[i].status != want_status)
            fail_msg("event %zu: general path status %d, want %d (%s): %.*s", i, (int)g.items[i].status, want_status,
                     g.items[i].error ? g.items[i].error : "", (int)len, body);
    }
    if (all == GEN_OK) {
        if (trc != 0) fail_msg("the text path declined a plain body: %.*s", (int)len, body);
        g_bodies_text++;
        store_text_body tb; /* how many were built from the scan's notes alone (the rest walked) */
        assert_int_equal(store_text_scan(body, len, 10000, &tb), 0);
        g_plain += tb.nplain;
        store_text_body_free(&tb);
        if (n > 1) g_multi_text++;
        assert_int_equal(t.nitems, g.nitems);
        assert_int_equal(t.ndead, 0);
        for (size_t i = 0; i < t.nitems; i++) {
            const store_item *a = &t.items[i], *e = &g.items[i];
            assert_int_equal(a->status, STORE_ITEM_PENDING);
            assert_int_equal(a->index, e->index);
            if (a->json_len != e->json_len || memcmp(a->json, e->json, a->json_len) != 0)
                fail_msg("event %zu stored text differs\n text:    %s\n general: %s", i, a->json, e->json);
            assert_string_equal(a->event_id, e->event_id);
            assert_true(a->time_us == e->time_us);
            assert_string_equal(a->event_type, e->event_type);
            assert_string_equal(a->domain, e->domain);
            if (e->entity_id) assert_string_equal(a->entity_id, e->entity_id);
            else assert_null(a->entity_id);
            /* the writer's members, noted by the body's scan (plain events) or the walk = a walk of the stored text */
            record_fields scanned;
            assert_int_equal(record_fields_scan(&scanned, e->json, e->json_len), 0);
            assert_true(a->fields.noted);
            if (memcmp(a->fields.off, scanned.off, sizeof scanned.off) || memcmp(a->fields.len, scanned.len, sizeof scanned.len))
                fail_msg("event %zu: record fields differ: %s", i, e->json);
        }
        store_batch_free(&t);
    } else {
        if (trc != 1) fail_msg("the text path took a body it must decline (%d): %.*s", trc, (int)len, body);
        g_bodies_declined++;
    }
    store_batch_free(&g);
    json_decref(tree);
}

static void test_text_generated(void **st) {
    (void)st;
    unsigned id = 0;
    for (int round = 0; round < 400; round++) {
        int spaced = round % 3 == 1, clean = round % 4 >= 2; /* clean: every record valid and plain */
        unsigned form = srnd(6), n = 1 + srnd(20);
        int want[32], body_cat = GEN_OK;
        sbuf o;
        sbuf_init(&o);
        if (form == 0) sbuf_adds(&o, "[");
        else if (form == 1) sbuf_adds(&o, "{\"dead_letters\":[],\"events\":[");
        else sbuf_adds(&o, "{\"events\":[");
        for (unsigned k = 0; k < n; k++) {
            if (k) sbuf_addc(&o, ',');
            sbuf ev, sp;
            sbuf_init(&ev);
            sbuf_init(&sp);
            want[k] = gen_record(&ev, id++);
            while (clean && want[k] != GEN_OK) { /* clean rounds: only records the text path takes */
                sbuf_reset(&ev);
                want[k] = gen_record(&ev, id++);
            }
            const char *text = ev.data;
            size_t tl = ev.len;
            if (spaced) {
                g_respace(&sp, ev.data, ev.len);
                text = sp.data, tl = sp.len;
            }
            assert_false(sbuf_failed(&ev) || sbuf_failed(&sp));
            /* the event alone, as a one-element array */
            sbuf one;
            sbuf_init(&one);
            sbuf_addc(&one, '[');
            sbuf_add(&one, text, tl);
            sbuf_addc(&one, ']');
            g_check(one.data, one.len, &want[k], 1, GEN_OK);
            sbuf_free(&one);
            switch (want[k]) {
            case GEN_OK: g_ok++, g_spaced_ok += spaced; break;
            case GEN_DECLINE: g_decline++; break;
            case GEN_REJECT: g_reject++; break;
            default: g_bad++;
            }
            sbuf_add(&o, text, tl);
            sbuf_free(&ev);
            sbuf_free(&sp);
        }
        sbuf_addc(&o, ']');
        if (form == 3) sbuf_adds(&o, ",\"dead_letters\":[]");
        if (form == 4 && srnd(2)) { /* dead letters to store: the general path's */
            sbuf_adds(&o, ",\"dead_letters\":[{\"error\":\"bad\",\"event\":{\"a\":1},\"source\":\"enrichment-pipeline\"}]");
            body_cat = GEN_DECLINE;
        }
        if (form != 0) sbuf_addc(&o, '}');
        assert_false(sbuf_failed(&o));
        if (spaced) {
            sbuf sp;
            sbuf_init(&sp);
            sbuf_adds(&sp, SPICK(g_spaces));
            g_respace(&sp, o.data, o.len); /* spaced twice: also between the events */
            sbuf_adds(&sp, SPICK(g_spaces));
            g_check(sp.data, sp.len, want, n, body_cat);
            sbuf_free(&sp);
        } else {
            g_check(o.data, o.len, want, n, body_cat);
        }
        sbuf_free(&o);
    }
    print_message("generated records: %zu text path (%zu spaced), %zu declined but stored, %zu rejected, %zu not JSON; "
                  "bodies (single events included): %zu text path (%zu of several events), %zu general path\n",
                  g_ok, g_spaced_ok, g_decline, g_reject, g_bad, g_bodies_text, g_multi_text, g_bodies_declined);
    print_message("events built from the body scan's notes alone: %zu\n", g_plain);
    assert_true(g_plain >= 50); /* both ways compared: noted (compact, nothing dropped) and walked */
    assert_true(g_ok >= 2000);
    assert_true(g_spaced_ok >= 600);
    assert_true(g_decline >= 100);
    assert_true(g_reject >= 200);
    assert_true(g_bad >= 5);
    assert_true(g_multi_text >= 50);
}

/* influx_feed.h: a batch point's line, and both forms read back from a /query answer. */
typedef struct feed_seen {
    int n;
    int64_t seq[8];
    char ids[8][80], ent[8][80], dom[8][80], type[8][80], area[8][80], home[8][16];
} feed_seen;

static int feed_collect(const influx_feed_entry *e, void *arg) {
    feed_seen *s = arg;
    if (s->n >= 8) return -1;
    s->seq[s->n] = e->seq;
    snprintf(s->ids[s->n], 80, "%s", e->event_id);
    snprintf(s->ent[s->n], 80, "%s", e->entity_id ? e->entity_id : "-");
    snprintf(s->dom[s->n], 80, "%s", e->domain ? e->domain : "-");
    snprintf(s->type[s->n], 80, "%s", e->event_type ? e->event_type : "-");
    snprintf(s->area[s->n], 80, "%s", e->area ? e->area : "-");
    snprintf(s->home[s->n], 16, "%s", e->home ? e->home : "-");
    s->n++;
    return 0;
}

static int feed_rows(const influx_answer_row *row, void *arg) {
    void **a = arg;
    int64_t last;
    return influx_feed_row(row, *(int64_t *)a[1], *(int *)a[2], feed_collect, a[0], &last);
}

static void test_influx_feed(void **state) {
    (void)state;
    influx_feed_batch fb;
    influx_feed_batch_init(&fb);
    char id[3][65];
    for (int i = 0; i < 3; i++) memset(id[i], 'a' + i, 64), id[i][64] = '\0';
    influx_feed_entry e0 = {.seq = 100, .t_ns = 5, .event_id = id[0], .entity_id = "sensor.a", .domain = "sensor",
                            .event_type = "state_changed", .area = "living room"};
    influx_feed_entry e1 = {.seq = 101, .t_ns = 6, .event_id = id[1], .entity_id = "we\\ird\tid", .event_type = "x"};
    influx_feed_entry e2 = {.seq = 200, .t_ns = 7, .event_id = id[2], .entity_id = "light.b"};
    assert_int_equal(influx_feed_batch_add(&fb, &e0), 0);
    assert_int_equal(influx_feed_batch_add(&fb, &e1), 0);
    assert_int_equal(influx_feed_batch_add(&fb, &e2), 0); /* not consecutive: a second point */
    assert_int_equal((int)fb.npts, 2);
    sbuf line;
    sbuf_init(&line);
    influx_feed_batch_line(&fb, 0, "b", &line);
    char want[512];
    snprintf(want, sizeof want,
             "homeiq_feed,home_id=b e=\"%s\t5\tsensor.a\tsensor\tstate_changed\tliving room\n%s\t6\twe/ird id\t\tx\t\",n=2i "
             "100000\n", id[0], id[1]);
    assert_string_equal(line.data, want);
    sbuf_free(&line);
    /* an answer holding a per-event point (tags as columns) and the batch point just written, as influxd returns them */
    sbuf ans;
    sbuf_init(&ans);
    sbuf_printf(&ans, "{\"results\":[{\"statement_id\":0,\"series\":[{\"name\":\"homeiq_feed\",\"columns\":[\"time\","
                      "\"event_id\",\"t\",\"n\",\"e\",\"entity_id\",\"domain\",\"event_type\",\"area_id\",\"home_id\"],"
                      "\"values\":[[50000,\"%s\",4,null,null,\"sensor.old\",\"sensor\",\"state_changed\",null,null],"
                      "[100000,null,null,2,\"%s\\t5\\tsensor.a\\tsensor\\tstate_changed\\tliving room\\n%s\\t6\\tlight.x\\tlight\\tcall_service\\t\","
                      "null,null,null,null,\"b\"]]}]}]}", id[2], id[0], id[1]);
    feed_seen seen = {0};
    int64_t after = 0;
    int reverse = 0;
    void *args[3] = {&seen, &after, &reverse};
    char err[128];
    assert_int_equal(influx_answer_walk(ans.data, ans.len, -1, feed_rows, args, err, sizeof err), 0);
    assert_int_equal(seen.n, 3);
    assert_true(seen.seq[0] == 50 && seen.seq[1] == 100 && seen.seq[2] == 101);
    assert_string_equal(seen.ent[0], "sensor.old");
    assert_string_equal(seen.home[0], "-");
    assert_string_equal(seen.dom[0], "sensor");
    assert_string_equal(seen.type[0], "state_changed");
    assert_string_equal(seen.ids[1], id[0]);
    /* each column of a batch entry where the filters look for it (review-feed 9: a swap passed before) */
    assert_string_equal(seen.ent[1], "sensor.a");
    assert_string_equal(seen.dom[1], "sensor");
    assert_string_equal(seen.type[1], "state_changed");
    assert_string_equal(seen.area[1], "living room");
    assert_string_equal(seen.home[1], "b");
    assert_string_equal(seen.ids[2], id[1]);
    assert_string_equal(seen.ent[2], "light.x");
    assert_string_equal(seen.dom[2], "light");
    assert_string_equal(seen.type[2], "call_service");
    assert_string_equal(seen.home[2], "b");
    assert_string_equal(seen.area[2], "-");
    /* after= skips what is at or below it, inside a batch point too; reverse: newest first */
    seen = (feed_seen){0};
    after = 100;
    reverse = 1;
    assert_int_equal(influx_answer_walk(ans.data, ans.len, -1, feed_rows, args, err, sizeof err), 0);
    assert_int_equal(seen.n, 1);
    assert_true(seen.seq[0] == 101);
    sbuf_free(&ans);
    influx_feed_batch_free(&fb);
    /* a point's text stays within INFLUX_FEED_POINT_BYTES whatever its columns hold (review-feed 6: 400 bytes of
     * headroom let two 30 KB event_types share one point of 60,2xx bytes); the entries stay in order, each once */
    size_t big = 30000;
    char *type = malloc(big + 1);
    assert_non_null(type);
    memset(type, 't', big);
    type[big] = '\0';
    influx_feed_batch_init(&fb);
    for (int i = 0; i < 3; i++) {
        influx_feed_entry eb = {.seq = 300 + i, .t_ns = 9, .event_id = id[i], .entity_id = "sensor.big", .event_type = type};
        assert_int_equal(influx_feed_batch_add(&fb, &eb), 0);
    }
    assert_int_equal((int)fb.npts, 3);
    size_t n = 0;
    for (size_t k = 0; k < fb.npts; k++) {
        assert_true(fb.pts[k].len <= INFLUX_FEED_POINT_BYTES);
        assert_true(fb.pts[k].seq0 == 300 + (int64_t)n);
        assert_true(fb.text.data[fb.pts[k].off] == 'a' + (char)n);
        n += fb.pts[k].n;
    }
    assert_int_equal((int)n, 3);
    influx_feed_batch_free(&fb);
    free(type);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lineproto_tag),     cmocka_unit_test(test_lineproto_measurement),
        cmocka_unit_test(test_lineproto_field_string), cmocka_unit_test(test_influxql_string),
        cmocka_unit_test(test_json_exact),        cmocka_unit_test(test_filter_params),
        cmocka_unit_test(test_batch_prepare),     cmocka_unit_test(test_text_prepare),     cmocka_unit_test(test_text_generated),
        cmocka_unit_test(test_text_pieces),       cmocka_unit_test(test_text_bounds),       cmocka_unit_test(test_influx_point_text),
        cmocka_unit_test(test_influx_event_fields_parse),
        cmocka_unit_test(test_sqlite_store),        cmocka_unit_test(test_influx_feed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
