/* test_json_strict.c -- finding 2 of issue 14: lib/json_scan accepted text
 * that jansson (every other reader: enrichment, storage) refuses: 1e400, a
 * lone \ud800, \u0000 in a key. Such an event from HA was spooled, then every
 * batch holding it got 400 forever. jscan_strict must refuse exactly what
 * jansson refuses (as lib/httpd reads: JSON_ALLOW_NUL, big integers as
 * reals) and accept the rest; this checks both readers on the same inputs
 * (the fuzz harness tests/fuzz/fuzz_json_scan.c does it on arbitrary ones).
 * On the old code the first three inputs pass jscan_validate, which is what
 * ingestion used, while jansson refuses them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "json_scan.h"

/* lib/httpd's reading: refuse, or re-read with big integers as reals. */
static int jansson_accepts(const char *t) {
    json_error_t e;
    json_t *v = json_loads(t, JSON_ALLOW_NUL | JSON_DECODE_ANY, &e);
    if (!v && json_error_code(&e) == json_error_numeric_overflow)
        v = json_loads(t, JSON_ALLOW_NUL | JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &e);
    json_decref(v);
    return v != NULL;
}

static void check(const char *t, int expect_ok, const char *why_part) {
    size_t pos = 0;
    const char *why = NULL;
    int rc = jscan_strict(t, strlen(t), &pos, &why);
    if ((rc == 0) != expect_ok || jansson_accepts(t) != expect_ok)
        fail_msg("%s: jscan_strict %d, jansson %d, expected %d", t, rc, jansson_accepts(t), expect_ok);
    if (!expect_ok && why_part && (!why || !strstr(why, why_part))) fail_msg("%s: reason '%s'", t, why ? why : "(null)");
}

static void test_refused_like_jansson(void **state) {
    (void)state;
    /* the three of the finding: valid JSON, refused by jansson */
    assert_int_equal(jscan_validate("{\"a\":1e400}", 11, NULL), 0);
    check("{\"a\":1e400}", 0, "too large");
    check("{\"a\":-1e400}", 0, "too large");
    check("{\"a\":\"x\\ud800\"}", 0, "surrogate");
    check("{\"a\":\"\\ud800x\"}", 0, "surrogate");
    check("{\"a\":\"\\udc00\"}", 0, "surrogate");
    check("{\"a\":\"\\ud800\\u0041\"}", 0, "surrogate");
    check("{\"\\u0000\":1}", 0, "key");
    check("{\"k\\u0000\":1}", 0, "key");
    check("[1e309]", 0, "too large");
    static char big[400];
    memset(big, '9', 350);
    big[350] = '\0';
    check(big, 0, "too large"); /* an integer beyond any double */
    check("[99999e305]", 0, "too large");       /* short exponent, long integer part */
    check("[99999.5e+305]", 0, "too large");
}

static void test_accepted_like_jansson(void **state) {
    (void)state;
    check("{\"a\":1e300}", 1, NULL);
    check("{\"a\":1e-400}", 1, NULL);                 /* underflow to 0 is fine */
    check("{\"a\":\"\\ud83d\\ude00\"}", 1, NULL);     /* a pair */
    check("{\"a\":\"\\u0000\"}", 1, NULL);            /* NUL in a value: JSON_ALLOW_NUL */
    check("{\"a\":123456789012345678901234567890}", 1, NULL); /* read as a real */
    check("{\"a\":1.7976931348623157e308}", 1, NULL);
    check("[0.0001e309, 1e308, 9.5e-999, 12345.678]", 1, NULL); /* only the first two near the edge */
    check("[\"\\ud800\\udc00\",{\"\\u00e9\":null}]", 1, NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_like_jansson),
        cmocka_unit_test(test_accepted_like_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
