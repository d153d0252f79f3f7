/* test_backfill.c -- unit tests of the pieces of the history backfill that have
 * rules of their own: one history row -> one HA-shaped state_changed event
 * (backfill_row_event), and the high-water mark (hwm.c): it only moves to
 * durable times, is held during a backfill, survives a restart. The whole flow
 * runs against the simulator in tests/e2e/test_e2e_backfill.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfill.h"
#include "event.h"
#include "hwm.h"
#include "sbuf.h"

static json_t *row_event(const char *row, const char *prev, int64_t *t, char **state_text) {
    sbuf ev, st;
    sbuf_init(&ev);
    sbuf_init(&st);
    int rc = backfill_row_event("sensor.x", 8, row, strlen(row), prev, &ev, &st, t);
    json_t *j = rc == 0 ? json_loadb(ev.data, ev.len, 0, NULL) : NULL;
    if (rc == 0) assert_non_null(j);
    if (state_text) *state_text = rc == 0 ? strdup(st.data) : NULL;
    sbuf_free(&ev);
    sbuf_free(&st);
    return j;
}

static const char *jget(json_t *j, const char *path) {
    /* "a.b.c" */
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = j;
    for (char *k = strtok(buf, "."); k && cur; k = strtok(NULL, ".")) cur = json_object_get(cur, k);
    return json_string_value(cur);
}

static void test_row_event(void **state) {
    (void)state;
    int64_t t;
    char *st1 = NULL;
    /* lu only (lc equal): the float is HA's raw time.time(); its microsecond is CPython's */
    json_t *e = row_event("{\"s\":\"21.5\",\"a\":{\"unit_of_measurement\":\"\\u00b0C\",\"v\":20.9},\"lu\":1796006037.4313815}",
                          NULL, &t, &st1);
    assert_non_null(e);
    assert_true(t == 1796006037431381);
    assert_string_equal(jget(e, "event_type"), "state_changed");
    assert_string_equal(jget(e, "origin"), "HOMEIQ_BACKFILL");
    assert_string_equal(jget(e, "time_fired"), "2026-11-30T02:33:57.431381+00:00");
    assert_string_equal(jget(e, "data.entity_id"), "sensor.x");
    assert_string_equal(jget(e, "data.new_state.state"), "21.5");
    assert_string_equal(jget(e, "data.new_state.last_updated"), "2026-11-30T02:33:57.431381+00:00");
    assert_string_equal(jget(e, "data.new_state.last_changed"), "2026-11-30T02:33:57.431381+00:00");
    assert_string_equal(jget(e, "data.new_state.last_reported"), "2026-11-30T02:33:57.431381+00:00");
    assert_true(json_is_null(json_object_get(json_object_get(e, "data"), "old_state")));
    assert_null(json_object_get(e, "context"));
    /* attributes are copied byte for byte (20.9 stays 20.9, the escape stays) */
    assert_non_null(strstr(st1, "{\"unit_of_measurement\":\"\\u00b0C\",\"v\":20.9}"));
    json_decref(e);

    /* lc differs (attribute-only change); the previous row becomes old_state */
    e = row_event("{\"s\":\"21.5\",\"a\":{},\"lu\":1749890000.218734,\"lc\":1749889000.5}", st1, &t, NULL);
    assert_non_null(e);
    assert_true(t == 1749890000218734);
    assert_string_equal(jget(e, "data.new_state.last_changed"), "2025-06-14T08:16:40.500000+00:00");
    assert_string_equal(jget(e, "data.old_state.state"), "21.5");
    assert_string_equal(jget(e, "data.old_state.last_updated"), "2026-11-30T02:33:57.431381+00:00");
    json_decref(e);
    /* the identity of the backfilled event is the live event's */
    char a[EVENT_ID_LEN], b[EVENT_ID_LEN];
    assert_int_equal(event_identity_parts("state_changed", "sensor.x", "2025-06-14T08:33:20.218734+00:00",
                                          "01JXPS4SATTNZJ8RR616P54XFG", a), 0);
    assert_int_equal(event_identity_state_changed("sensor.x", t, b), 0);
    assert_string_equal(a, b);

    /* rows that are not HA's: no event */
    assert_null(row_event("{\"s\":5,\"lu\":1749890000.2}", NULL, &t, NULL));
    assert_null(row_event("{\"s\":\"on\"}", NULL, &t, NULL));
    assert_null(row_event("{\"s\":\"on\",\"lu\":\"x\"}", NULL, &t, NULL));
    assert_null(row_event("{\"s\":\"on\",\"lu\":-5}", NULL, &t, NULL));
    assert_null(row_event("{\"s\":\"on\",\"a\":[],\"lu\":1749890000.2}", NULL, &t, NULL));
    assert_null(row_event("[1]", NULL, &t, NULL));
    free(st1);
}

static void test_hwm(void **state) {
    (void)state;
    char dir[] = "/tmp/homeiq-hwm-XXXXXX";
    assert_non_null(mkdtemp(dir));
    hwm *h;
    assert_int_equal(hwm_open(dir, "ws://ha:8123/api/websocket", &h), 0);
    assert_true(hwm_get(h) == 0);
    hwm_seen(h, 10, 1000); /* record 9 at t=1000 */
    hwm_durable(h, 5);     /* not durable yet */
    assert_true(hwm_get(h) == 0);
    hwm_durable(h, 10);
    assert_true(hwm_get(h) == 1000);
    /* held: live events do not move it, even when durable */
    hwm_hold(h);
    hwm_seen(h, 20, 5000);
    hwm_durable(h, 20);
    assert_true(hwm_get(h) == 1000);
    /* complete: the later of the backfill's end and the live events seen meanwhile */
    hwm_complete(h, 25, 3000);
    hwm_durable(h, 24);
    assert_true(hwm_get(h) == 1000);
    hwm_durable(h, 25);
    assert_true(hwm_get(h) == 5000);
    /* never backwards */
    hwm_seen(h, 26, 4000);
    hwm_durable(h, 30);
    assert_true(hwm_get(h) == 5000);
    hwm_close(h);
    /* survives a restart; another HA instance has its own */
    assert_int_equal(hwm_open(dir, "ws://ha:8123/api/websocket", &h), 0);
    assert_true(hwm_get(h) == 5000);
    hwm_close(h);
    assert_int_equal(hwm_open(dir, "ws://other:8123/api/websocket", &h), 0);
    assert_true(hwm_get(h) == 0);
    hwm_close(h);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_row_event), cmocka_unit_test(test_hwm)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
