/* test_poison.c -- issue 14 in enrichment: events that used to stop the
 * pipeline, through both readers (the jansson path, batch_build, and the
 * fast path, fastpath_build), and dead letters made upstream.
 *
 * Finding 1: validate.c cut a long entity id at 100 bytes with "%.100s",
 * which can split a UTF-8 character; json_pack of the dead letter then failed
 * and the whole batch got 503 "out of memory" forever. On the old code
 * batch_build returned -1 for the batch below (seen failing). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "delivery.h"
#include "fastpath.h"

static const char GOOD[] = "{\"event_type\":\"state_changed\",\"time_fired\":\"2024-01-01T00:00:00Z\","
                           "\"data\":{\"entity_id\":\"sensor.a\",\"new_state\":{\"state\":\"1\"}}}";

/* [good, {entity_id "a"*99 + "é" (101 bytes, cut at 100 = inside the é)}, good] */
static char *poison_batch(void) {
    char id[128];
    memset(id, 'a', 99);
    memcpy(id + 99, "\xC3\xA9", 3);
    char tm[80];
    memset(tm, '0', 63);
    memcpy(tm + 63, "\xC3\xA9", 3); /* a time of 65 bytes, cut at 64 = inside the é */
    char *t = malloc(2048);
    snprintf(t, 2048,
             "[%s,{\"event_type\":\"state_changed\",\"time_fired\":\"2024-01-01T00:00:01Z\",\"data\":{\"entity_id\":"
             "\"%s\",\"new_state\":{\"state\":\"1\"}}},"
             "{\"event_type\":\"state_changed\",\"time_fired\":\"%s\",\"data\":{\"entity_id\":"
             "\"sensor.b\",\"new_state\":{\"state\":\"1\"}}},%s]",
             GOOD, id, tm, GOOD);
    return t;
}

static void check_batch(const batch *b) {
    assert_int_equal(b->n, 4);
    assert_int_equal(b->nrecords, 2);
    assert_int_equal(json_array_size(b->rejected), 2);
    const char *err = json_string_value(json_object_get(json_array_get(b->rejected, 0), "error"));
    assert_non_null(err);
    assert_non_null(strstr(err, "is invalid"));
    /* the dead letters are valid JSON (jansson is strict about UTF-8) */
    char *dl = malloc(b->dead_letters.len + 3);
    snprintf(dl, b->dead_letters.len + 3, "[%s]", b->dead_letters.data);
    json_error_t e;
    json_t *j = json_loads(dl, 0, &e);
    if (!j) fail_msg("dead letters are not JSON: %s", e.text);
    assert_int_equal(json_array_size(j), 2);
    json_decref(j);
    free(dl);
}

static void test_utf8_cut_jansson_path(void **state) {
    (void)state;
    char *t = poison_batch();
    json_error_t e;
    json_t *events = json_loads(t, 0, &e);
    assert_non_null(events);
    batch b;
    assert_int_equal(batch_build(events, &b), 0); /* old code: -1 (json_pack failed) */
    check_batch(&b);
    batch_free(&b);
    json_decref(events);
    free(t);
}

static void test_utf8_cut_fast_path(void **state) {
    (void)state;
    char *t = poison_batch();
    batch b;
    int rc = fastpath_build(t, strlen(t), 10000, &b);
    assert_int_equal(rc, 0);
    check_batch(&b);
    batch_free(&b);
    free(t);
}

/* A dead letter made upstream (lib/delivery) becomes a dead letter here: its
 * reason, its source, its raw text; it is reported in "rejected". */
static void test_upstream_dead_letter(void **state) {
    (void)state;
    sbuf in;
    sbuf_init(&in);
    sbuf_addc(&in, '[');
    sbuf_adds(&in, GOOD);
    sbuf_addc(&in, ',');
    delivery_dead_letter(&in, "websocket-ingestion", "refused by x: HTTP 400: bad", "{\"a\":1e400}", 11);
    sbuf_addc(&in, ']');
    json_t *events = json_loads(in.data, 0, NULL);
    assert_non_null(events);
    batch b;
    assert_int_equal(batch_build(events, &b), 0);
    assert_int_equal(b.nrecords, 1);
    assert_int_equal(json_array_size(b.rejected), 1);
    json_t *dl = json_loadb(b.dead_letters.data, b.dead_letters.len, 0, NULL);
    assert_non_null(dl);
    assert_string_equal(json_string_value(json_object_get(dl, "error")), "refused by x: HTTP 400: bad");
    assert_string_equal(json_string_value(json_object_get(dl, "source")), "websocket-ingestion");
    assert_string_equal(json_string_value(json_object_get(dl, "event")), "{\"a\":1e400}");
    json_decref(dl);
    batch_free(&b);
    /* the fast path gives the same */
    batch b2;
    assert_int_equal(fastpath_build(in.data, in.len, 10000, &b2), 0);
    assert_int_equal(b2.nrecords, 1);
    assert_int_equal(json_array_size(b2.rejected), 1);
    batch_free(&b2);
    json_decref(events);
    sbuf_free(&in);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_cut_jansson_path),
        cmocka_unit_test(test_utf8_cut_fast_path),
        cmocka_unit_test(test_upstream_dead_letter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
