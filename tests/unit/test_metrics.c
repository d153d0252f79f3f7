/* Unit tests for lib/metrics.c: Prometheus text exposition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static double forty_two(void *arg) {
    (void)arg;
    return 42;
}

/* occurrences NEEDLE in TEXT */
static int count_of(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void test_render(void **state) {
    (void)state;
    metric *c1 = metrics_counter("homeiq_events_total", "Events.", "reason=\"a\"");
    metric *c2 = metrics_counter("homeiq_events_total", "Events.", "reason=\"b\"");
    metrics_gauge("homeiq_other", "Other.", NULL);
    metrics_gauge_fn("homeiq_fn", "Computed.", NULL, forty_two, NULL);
    double b[] = {0.1, 1};
    metric *h = metrics_histogram("homeiq_latency_seconds", "Latency.", NULL, b, 2);
    metrics_add(c1, 2);
    metrics_add(c2, 1.5);
    metrics_observe(h, 0.05);
    metrics_observe(h, 0.5);
    metrics_observe(h, 5);
    size_t len;
    char *text = metrics_render(&len);
    assert_int_equal(strlen(text), len);
    assert_non_null(strstr(text, "# TYPE homeiq_events_total counter\nhomeiq_events_total{reason=\"a\"} 2\n"
                                 "homeiq_events_total{reason=\"b\"} 1.5\n"));
    assert_non_null(strstr(text, "homeiq_fn 42\n"));
    assert_non_null(strstr(text, "homeiq_latency_seconds_bucket{le=\"0.1\"} 1\n"));
    assert_non_null(strstr(text, "homeiq_latency_seconds_bucket{le=\"1\"} 2\n"));
    assert_non_null(strstr(text, "homeiq_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(text, "homeiq_latency_seconds_count 3\n"));
    /* HELP/TYPE once per metric name, however many label sets it has, and
     * before its first sample. */
    static const char *names[] = {"homeiq_events_total", "homeiq_other", "homeiq_fn", "homeiq_latency_seconds"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char help[96], type[96], sample[96];
        snprintf(help, sizeof help, "# HELP %s ", names[i]);
        snprintf(type, sizeof type, "# TYPE %s ", names[i]);
        snprintf(sample, sizeof sample, "\n%s", names[i]);
        assert_int_equal(count_of(text, help), 1);
        assert_int_equal(count_of(text, type), 1);
        assert_true(strstr(text, type) < strstr(text, sample));
    }
    assert_int_equal(count_of(text, "# HELP "), 4);
    assert_int_equal(count_of(text, "# TYPE "), 4);
    free(text);
    metrics_free_all();
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_render)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
