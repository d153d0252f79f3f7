/* test_delivery.c -- lib/delivery: the outcome table (the one place that says
 * which answers are retried, refused or suspect), backoff bounds, and the
 * dead letter: valid JSON that jansson reads back whatever the raw bytes
 * (invalid UTF-8, NUL, quotes, huge), truncated with its size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"

static void test_classify(void **state) {
    (void)state;
    assert_int_equal(delivery_classify(200, NULL, 10), DELIVERY_STORED);
    assert_int_equal(delivery_classify(503, NULL, 10), DELIVERY_RETRY);
    assert_int_equal(delivery_classify(500, NULL, 10), DELIVERY_RETRY);
    assert_int_equal(delivery_classify(502, NULL, 10), DELIVERY_RETRY);
    assert_int_equal(delivery_classify(201, NULL, 10), DELIVERY_RETRY);
    assert_int_equal(delivery_classify(301, NULL, 10), DELIVERY_RETRY);
    assert_int_equal(delivery_classify(408, NULL, 10), DELIVERY_RETRY);
    assert_int_equal(delivery_classify(429, NULL, 10), DELIVERY_RETRY);
    assert_int_equal(delivery_classify(400, NULL, 10), DELIVERY_REFUSED);
    assert_int_equal(delivery_classify(404, NULL, 10), DELIVERY_REFUSED);
    assert_int_equal(delivery_classify(413, NULL, 10), DELIVERY_REFUSED);
    assert_int_equal(delivery_classify(422, NULL, 10), DELIVERY_REFUSED);
    /* transport errors: about the peer -> retry; a cut after a large body -> suspect */
    assert_int_equal(delivery_classify(0, "failed to connect to 127.0.0.1 port 1: Connection refused", 50u << 20),
                     DELIVERY_RETRY);
    assert_int_equal(delivery_classify(0, "timeout", 50u << 20), DELIVERY_RETRY);
    assert_int_equal(delivery_classify(0, "connection to h port 1 timed out after 5000 ms", 50u << 20), DELIVERY_RETRY);
    assert_int_equal(delivery_classify(0, "cancelled", 50u << 20), DELIVERY_RETRY);
    assert_int_equal(delivery_classify(0, "connection closed before the response", 1000), DELIVERY_RETRY);
    assert_int_equal(delivery_classify(0, "connection closed before the response", DELIVERY_BIG_BODY),
                     DELIVERY_SUSPECT);
    assert_int_equal(delivery_classify(0, "connection error", 20u << 20), DELIVERY_SUSPECT);
    assert_int_equal(delivery_answer_status(DELIVERY_STORED), 200);
    assert_int_equal(delivery_answer_status(DELIVERY_RETRY), 503);
    assert_int_equal(delivery_answer_status(DELIVERY_REFUSED), 422);
    /* what a server answers maps back to the same outcome */
    assert_int_equal(delivery_classify(delivery_answer_status(DELIVERY_REFUSED), NULL, 1), DELIVERY_REFUSED);
    assert_int_equal(delivery_classify(delivery_answer_status(DELIVERY_RETRY), NULL, 1), DELIVERY_RETRY);
}

/* The digest sees every byte of a long body (words in lanes, then the tail) and its length. */
static void test_digest_every_byte(void **state) {
    (void)state;
    static char a[1003], b[1003];
    memset(a, 'x', sizeof a);
    uint64_t d = delivery_body_digest(a, sizeof a);
    for (size_t i = 0; i < sizeof a; i++) {
        memcpy(b, a, sizeof a);
        b[i] = 'y';
        assert_true(delivery_body_digest(b, sizeof b) != d);
    }
    assert_true(delivery_body_digest(a, sizeof a - 1) != d);
    assert_true(delivery_body_digest(a, sizeof a) == d);
}

/* A cut body is retried; only the DELIVERY_SUSPECT_TRIES-th cut of the same
 * bytes while the peer was healthy refuses it; cuts while the peer was down,
 * other bodies, and a success in between do not count towards it. */
static void test_cut_strikes(void **state) {
    (void)state;
    static delivery_cuts t; /* zero = empty */
    const char a[] = "body A", b[] = "body B";
    uint64_t da = delivery_body_digest(a, sizeof a), db = delivery_body_digest(b, sizeof b);
    assert_true(da != db);
    assert_true(delivery_body_digest(a, sizeof a) == da);
    for (int i = 0; i < 10; i++) assert_int_equal(delivery_cut(&t, da, sizeof a, 0), DELIVERY_RETRY);
    for (int i = 1; i < DELIVERY_SUSPECT_TRIES; i++) {
        assert_int_equal(delivery_cut(&t, da, sizeof a, 1), DELIVERY_RETRY);
        assert_int_equal(delivery_cut(&t, db, sizeof b, 1), DELIVERY_RETRY);
        assert_int_equal(delivery_cut(&t, da, sizeof a, 0), DELIVERY_RETRY);
    }
    assert_int_equal(delivery_cut(&t, da, sizeof a, 1), DELIVERY_REFUSED);
    /* refused bodies are forgotten: the count starts again */
    assert_int_equal(delivery_cut(&t, da, sizeof a, 1), DELIVERY_RETRY);
    /* stored in between: forgotten too */
    delivery_cut_clear(&t, db, sizeof b);
    assert_int_equal(delivery_cut(&t, db, sizeof b, 1), DELIVERY_RETRY);
    /* same digest, other length: another body */
    for (int i = 1; i < DELIVERY_SUSPECT_TRIES; i++) assert_int_equal(delivery_cut(&t, da, sizeof a + 1, 1), DELIVERY_RETRY);
    assert_int_equal(delivery_cut(&t, da, sizeof a + 1, 1), DELIVERY_REFUSED);
    /* more distinct bodies than slots: still bounded, never a crash */
    for (uint64_t d = 1; d < 3 * DELIVERY_CUT_SLOTS; d++)
        assert_int_equal(delivery_cut(&t, d, 1u << 20, 1), DELIVERY_RETRY);
}

static void test_backoff(void **state) {
    (void)state;
    for (int i = 1; i < 40; i++) {
        long d = delivery_backoff_ms(i, 100, 5000);
        assert_true(d >= 80 && d <= 6000);
    }
    assert_true(delivery_backoff_ms(1, 100, 5000) <= 120);
    assert_true(delivery_backoff_ms(30, 100, 5000) >= 4000);
}

static json_t *dead_letter(const char *raw, size_t len) {
    sbuf b;
    sbuf_init(&b);
    delivery_dead_letter(&b, "websocket-ingestion", "refused: \"bad\" \xC3\xA9", raw, len);
    assert_false(sbuf_failed(&b));
    json_error_t e;
    json_t *j = json_loadb(b.data, b.len, 0, &e); /* strictest jansson: no NUL, UTF-8 */
    if (!j) fail_msg("dead letter is not JSON (%s): %.200s", e.text, b.data);
    sbuf_free(&b);
    return j;
}

static void test_dead_letter_any_bytes(void **state) {
    (void)state;
    const char raw[] = "{\"a\":\"\xFF\xC3(\x00\\ud800\",\"b\":1e400}";
    json_t *j = dead_letter(raw, sizeof raw - 1);
    assert_string_equal(json_string_value(json_object_get(j, "event_type")), DELIVERY_DEAD_TYPE);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "refused: \"bad\" \xC3\xA9");
    assert_int_equal(json_integer_value(json_object_get(j, "event_bytes")), sizeof raw - 1);
    assert_true(json_is_false(json_object_get(j, "event_truncated")));
    const char *ev = json_string_value(json_object_get(j, "event"));
    assert_non_null(strstr(ev, "\\ud800\",\"b\":1e400}"));
    assert_non_null(strstr(ev, "\xEF\xBF\xBD")); /* invalid bytes and NUL replaced */
    json_decref(j);
    for (unsigned seed = 1; seed < 300; seed++) { /* random bytes always give valid JSON */
        char buf[64];
        srand(seed);
        size_t n = (size_t)(rand() % 64);
        for (size_t i = 0; i < n; i++) buf[i] = (char)(rand() & 0xFF);
        json_decref(dead_letter(buf, n));
    }
}

static void test_dead_letter_truncated(void **state) {
    (void)state;
    size_t n = 5u << 20;
    char *raw = malloc(n);
    memset(raw, 'x', n);
    raw[DELIVERY_DEAD_RAW_MAX - 1] = '\xC3'; /* a character cut by the limit is left out whole */
    raw[DELIVERY_DEAD_RAW_MAX] = '\xA9';
    json_t *j = dead_letter(raw, n);
    assert_int_equal(json_integer_value(json_object_get(j, "event_bytes")), n);
    assert_true(json_is_true(json_object_get(j, "event_truncated")));
    assert_int_equal(json_string_length(json_object_get(j, "event")), DELIVERY_DEAD_RAW_MAX - 1);
    json_decref(j);
    free(raw);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_cut_strikes),
        cmocka_unit_test(test_digest_every_byte),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_dead_letter_any_bytes),
        cmocka_unit_test(test_dead_letter_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
