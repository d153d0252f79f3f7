/* Unit tests for lib/url.c: the URL split shared by the HTTP and WebSocket clients. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

static void test_split(void **state) {
    (void)state;
    url_parts u;
    assert_int_equal(url_split("http://127.0.0.1:8004/api/v1/events?limit=1#x", "http", "https", &u), 0);
    assert_int_equal(u.tls, 0);
    assert_int_equal(u.port, 8004);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.target_len, strlen("/api/v1/events?limit=1"));
    assert_memory_equal(u.target, "/api/v1/events?limit=1", u.target_len);
    assert_int_equal(url_target_needs_slash(&u), 0);

    assert_int_equal(url_split("WSS://[::1]/api/websocket", "ws", "wss", &u), 0);
    assert_int_equal(u.tls, 1);
    assert_int_equal(u.ipv6, 1);
    assert_int_equal(u.port, 443);
    assert_string_equal(u.host, "::1");

    assert_int_equal(url_split("https://example.org", "http", "https", &u), 0);
    assert_int_equal(u.port, 443);
    assert_int_equal(url_target_needs_slash(&u), 1);
    assert_int_equal(url_split("http://h?q=1", "http", "https", &u), 0);
    assert_int_equal(url_target_needs_slash(&u), 1);

    const char *bad[] = {"ftp://h/", "http:/h", "http://", "http://:80/", "http://h:0/", "http://h:99999/",
                         "http://h:x/", "http://[::1/", "http://h/a b", "httpx://h/", NULL};
    for (int i = 0; bad[i]; i++) assert_int_equal(url_split(bad[i], "http", "https", &u), -1);
    assert_int_equal(url_split(NULL, "http", "https", &u), -1);
}

/* One '/' between base and path, however many either side brought. */
static void test_join(void **state) {
    (void)state;
    static const char *const cases[][3] = {
        {"http://127.0.0.1:8004/", "/api/v1/events", "http://127.0.0.1:8004/api/v1/events"},
        {"http://h:1/prefix", "health", "http://h:1/prefix/health"},
        {"http://h//", "//health", "http://h/health"},
        {"http://h", "/api/v1/events?limit=1", "http://h/api/v1/events?limit=1"},
        {"http://h/", "", "http://h"},
        {"http://h", "", "http://h"},
        {"", "x", "/x"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *u = url_join(cases[i][0], cases[i][1]);
        assert_non_null(u);
        assert_string_equal(u, cases[i][2]);
        free(u);
    }
    assert_int_equal(url_trim_len("http://h///", 11), 8);
    assert_int_equal(url_trim_len("///", 3), 0);
}

/* The services' names and URL variables, one list for every program that lists them. */
static void test_services(void **state) {
    (void)state;
    assert_string_equal(url_service_name(URL_INGESTION), "websocket-ingestion");
    assert_string_equal(url_service_env(URL_INGESTION), "WEBSOCKET_INGESTION_URL");
    assert_string_equal(url_service_name(URL_ENRICHMENT), "enrichment-pipeline");
    assert_string_equal(url_service_env(URL_ENRICHMENT), "ENRICHMENT_PIPELINE_URL");
    assert_string_equal(url_service_name(URL_STORAGE), "data-storage");
    assert_string_equal(url_service_env(URL_STORAGE), "DATA_STORAGE_URL");
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_split), cmocka_unit_test(test_join),
                                       cmocka_unit_test(test_services)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
