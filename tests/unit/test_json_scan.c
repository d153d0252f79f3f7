/* test_json_scan.c -- unit tests of lib/json_scan, the validating JSON scanner
 * that extracts HA's "event" member byte for byte (with the other lib tests;
 * HOME_ASSISTANT_URL handling is tests/ingestion/test_ha_url.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "json_scan.h"

static int valid(const char *s) { return jscan_validate(s, strlen(s), NULL) == 0; }

static void test_validate_accepts_json(void **state) {
    (void)state;
    const char *ok[] = {
        "{}", "[]", " {\"a\" : [1, -2.5e+3, 0, 0.1, true, false, null, \"x\"]} ", "\"\\u00e9\\n\\\"\"",
        "{\"s\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x8f\xa0\"}", "123", "[[[[{}]]]]", "{\"a\":{\"b\":{\"c\":[]}}}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (!valid(ok[i])) fail_msg("rejected: %s", ok[i]);
    }
}

static void test_validate_rejects_bad_json(void **state) {
    (void)state;
    const char *bad[] = {
        "", "{", "{\"a\":}", "{\"a\":1,}", "[1,]", "{a:1}", "[01]", "[1.]", "[.5]", "[-]", "[1e]", "tru",
        "[\"\\x\"]", "[\"\\u12g4\"]", "[\"a\nb\"]", "{\"a\":1} x", "[\"\xff\"]", "[\"\xc0\xaf\"]",
        "[\"\xed\xa0\x80\"]", "[\"\xe2\x82\"]", "{\"a\" 1}", "[1 2]", "NaN",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (valid(bad[i])) fail_msg("accepted: %s", bad[i]);
    }
    char deep[2000];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 1000);
    assert_int_equal(jscan_validate(deep, sizeof deep, NULL), -1); /* deeper than JSCAN_MAX_DEPTH */
    size_t pos = 0;
    assert_int_equal(jscan_validate("{\"a\":1,}", 8, &pos), -1);
    assert_int_equal(pos, 7);
}

typedef struct members {
    char keys[8][16];
    char vals[8][128];
    int n;
} members;

static int member_cb(const char *k, size_t kl, const char *v, size_t vl, void *arg) {
    members *m = arg;
    snprintf(m->keys[m->n], sizeof m->keys[0], "%.*s", (int)kl, k);
    snprintf(m->vals[m->n], sizeof m->vals[0], "%.*s", (int)vl, v);
    m->n++;
    return 0;
}

static void test_object_members_are_exact_spans(void **state) {
    (void)state;
    const char *msg = "{\"type\":\"event\", \"event\" : {\"event_type\":\"state_changed\",\"data\":{\"x\":[1,{\"y\":\"}\"}]}} ,\"id\":5}";
    members m = {0};
    assert_int_equal(jscan_object(msg, strlen(msg), member_cb, &m), 0);
    assert_int_equal(m.n, 3);
    assert_string_equal(m.keys[0], "type");
    assert_string_equal(m.vals[0], "\"event\"");
    assert_string_equal(m.keys[1], "event");
    assert_string_equal(m.vals[1], "{\"event_type\":\"state_changed\",\"data\":{\"x\":[1,{\"y\":\"}\"}]}}");
    assert_string_equal(m.keys[2], "id");
    assert_string_equal(m.vals[2], "5");
    members m2 = {0};
    assert_int_equal(jscan_object("[1]", 3, member_cb, &m2), -1);
    assert_int_equal(jscan_object("{\"a\":1", 6, member_cb, &m2), -1);
}

static int count_cb(const char *v, size_t vl, void *arg) {
    (void)v;
    (void)vl;
    (*(int *)arg)++;
    return 0;
}

static void test_array_elements(void **state) {
    (void)state;
    const char *frame = "[{\"id\":1,\"type\":\"event\",\"event\":{}}, {\"id\":1,\"type\":\"event\",\"event\":{\"a\":\"]\"}}]";
    int n = 0;
    assert_int_equal(jscan_array(frame, strlen(frame), count_cb, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(jscan_first("  [", 3), '[');
    assert_int_equal(jscan_first("   ", 3), '\0');
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_accepts_json),
        cmocka_unit_test(test_validate_rejects_bad_json),
        cmocka_unit_test(test_object_members_are_exact_spans),
        cmocka_unit_test(test_array_elements),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
