/* test_ha_url.c -- HOME_ASSISTANT_URL handling (ha_client_url): an HA base
 * URL becomes its WebSocket API URL, a WebSocket URL keeps its path.
 * (Was part of test_json_scan.c, which moved to tests/unit with lib/json_scan.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ha_client.h"

static void test_ha_url_forms(void **state) {
    (void)state;
    char out[256];
    assert_int_equal(ha_client_url("http://homeassistant.local:8123", out, sizeof out), 0);
    assert_string_equal(out, "ws://homeassistant.local:8123/api/websocket");
    assert_int_equal(ha_client_url("https://ha.example.org/", out, sizeof out), 0);
    assert_string_equal(out, "wss://ha.example.org/api/websocket");
    assert_int_equal(ha_client_url("http://10.0.0.2:8123/prefix/", out, sizeof out), 0);
    assert_string_equal(out, "ws://10.0.0.2:8123/prefix/api/websocket");
    assert_int_equal(ha_client_url("wss://ha:8123/api/websocket", out, sizeof out), 0);
    assert_string_equal(out, "wss://ha:8123/api/websocket");
    assert_int_equal(ha_client_url("ws://[::1]:8123", out, sizeof out), 0);
    assert_string_equal(out, "ws://[::1]:8123/api/websocket");
    assert_int_equal(ha_client_url("ftp://x", out, sizeof out), -1);
    assert_int_equal(ha_client_url("http://", out, sizeof out), -1);
    assert_int_equal(ha_client_url("http://x:8123", out, 10), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ha_url_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
