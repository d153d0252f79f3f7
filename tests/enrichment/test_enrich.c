/* test_enrich.c -- unit tests for every enrichment rule of the
 * enrichment-pipeline (numbers, binary states, entity ids, times, time zones,
 * duration_in_state, state_changed, the three input shapes, every example
 * event of ha-websocket-protocol.md §2, the edge cases the integration tests
 * also post, and the batch <-> storage index mapping).
 * The example/expected JSON lives in data/ so the integration tests check the
 * very same expectations against what data-storage returns. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "event.h"
#include "enrich.h"
#include "storage_client.h"
#include "normalize.h"
#include "timeofday.h"
#include "validate.h"

static void set_tz(const char *tz) {
    setenv("TZ", tz, 1);
    tzset();
}

static json_t *load_data(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", ENRICH_TEST_DATA, name);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j) fail_msg("%s: %s (line %d)", path, e.text, e.line);
    return j;
}

static json_t *parse(const char *text) {
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j) fail_msg("bad test JSON: %s: %s", text, e.text);
    return j;
}

/* Every key of `expect` must equal the record's (absent == null; numbers
 * compared with a relative tolerance of 1e-12). */
static void check_fields(const char *name, const json_t *record, const json_t *expect) {
    const char *key;
    json_t *want;
    json_object_foreach((json_t *)expect, key, want) {
        json_t *got = json_object_get(record, key);
        json_t *null = json_null();
        if (!got) got = null;
        int ok;
        if (json_is_number(want)) {
            double w = json_number_value(want), g = json_number_value(got);
            ok = json_is_real(got) && fabs(w - g) <= 1e-12 * fmax(1.0, fabs(w));
        } else {
            ok = json_equal(want, got);
        }
        if (!ok) {
            char *ws = json_dumps(want, JSON_ENCODE_ANY), *gs = json_dumps(got, JSON_ENCODE_ANY);
            print_error("%s: field %s: want %s, got %s\n", name, key, ws, gs);
            free(ws), free(gs);
            fail();
        }
    }
}

static json_t *enrich_ok(const char *text) {
    json_t *in = parse(text), *rec = NULL;
    enrich_reject rej;
    int rc = enrich_event(in, &rec, &rej);
    if (rc != 0) fail_msg("rejected (%s): %s -- %s", enrich_reason_label(rej.reason), rej.message, text);
    json_decref(in);
    return rec;
}

static enrich_reason enrich_bad(const char *text) {
    json_t *in = parse(text), *rec = NULL;
    enrich_reject rej;
    int rc = enrich_event(in, &rec, &rej);
    json_decref(in);
    assert_int_equal(rc, -1);
    assert_null(rec);
    assert_true(rej.message[0] != '\0');
    return rej.reason;
}

/* ---- numbers: Python float() for finite values ------------------------- */

static void test_numbers_valid(void **state) {
    (void)state;
    static const struct { const char *in; double want; } ok[] = {
        {"21.5", 21.5}, {"-3", -3}, {"1e3", 1000}, {"1E3", 1000}, {" 5 ", 5}, {"\t7\n", 7}, {"+4", 4},
        {".5", 0.5}, {"5.", 5}, {"-0", 0}, {"1_000", 1000}, {"1_000.000_1", 1000.0001}, {"2.5e-3", 0.0025},
        {"1e1_0", 1e10}, {"0022.9", 22.9}, {"1e-400", 0}, {"62.0", 62},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        double d = -999;
        if (normalize_number(ok[i].in, strlen(ok[i].in), &d) != 0) fail_msg("\"%s\" should be a number", ok[i].in);
        assert_true(fabs(d - ok[i].want) < 1e-12);
    }
}

static void test_numbers_invalid(void **state) {
    (void)state;
    static const char *const bad[] = {
        "", " ", "nan", "NaN", "inf", "-inf", "Infinity", "21,5", "0x10", "1e999", "-1e999", "1_", "_1", "1__0",
        "1_.5", "1._5", "e3", "1e", "1e+", ".", "+", "- 1", "5 kWh", "on", "unknown", "unavailable", "1.2.3", "٣",
        "1 2",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double d;
        if (normalize_number(bad[i], strlen(bad[i]), &d) == 0) fail_msg("\"%s\" must not be a number", bad[i]);
    }
    double d;
    assert_int_equal(normalize_number("5\0" "1", 3, &d), -1); /* embedded NUL */
}

/* Decimal states are read without strtod when that is exact (normalize.c,
 * Clinger's case): the double must be strtod's, bit for bit, on both sides of
 * every limit (15 significant digits, 22 decimals, leading zeros, signs). */
static void test_numbers_exact(void **state) {
    (void)state;
    static const char *const edge[] = {
        "-0", "0.0", "-0.000", "+0", "999999999999999", "9999999999999999", "99999999999999999",
        "0.1", "0.3", "0.7", "1.1", "2.675", "1.005", "123456789012345.6", "12345678901234.56",
        "0.0000000000000000000001", "0.00000000000000000000001", "1234567890.0000000000001",
        "000000000000000000000000001.5", "9007199254740993", "4.35", "0.000123456789012345",
        "-22.9", "1250.5", "70.4", "62.0", "8.589973e9",
    };
    unsigned seed = 12345;
    char buf[64];
    for (size_t i = 0; i < sizeof edge / sizeof edge[0] + 200000; i++) {
        const char *in = buf;
        if (i < sizeof edge / sizeof edge[0]) {
            in = edge[i];
        } else { /* sign, up to 17 integer digits, up to 25 decimals, leading zeros */
            size_t n = 0;
            seed = seed * 1103515245u + 12345u;
            if (seed >> 30 == 1) buf[n++] = '-';
            int ni = (int)(seed >> 8) % 18, nf = (int)(seed >> 16) % 26;
            if (ni == 0 && nf == 0) ni = 1;
            for (int k = 0; k < ni; k++) seed = seed * 1103515245u + 12345u, buf[n++] = (char)('0' + (seed >> 16) % 10);
            if (nf) buf[n++] = '.';
            for (int k = 0; k < nf; k++) seed = seed * 1103515245u + 12345u, buf[n++] = (char)('0' + (seed >> 16) % 10);
            buf[n] = '\0';
        }
        double got = -999, want = strtod(in, NULL);
        if (normalize_number(in, strlen(in), &got) != 0) fail_msg("\"%s\" should be a number", in);
        if (memcmp(&got, &want, sizeof got) != 0) fail_msg("\"%s\": %.17g, strtod says %.17g", in, got, want);
    }
}

/* ---- binary states ----------------------------------------------------- */

static void test_binary_states(void **state) {
    (void)state;
    static const struct { const char *in; double want; } ok[] = {
        {"on", 1}, {"off", 0}, {"open", 1}, {"closed", 0}, {"home", 1}, {"not_home", 0},
        {"locked", 1}, {"unlocked", 0}, {"above_horizon", 1}, {"below_horizon", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        double d = -1;
        assert_int_equal(normalize_binary(ok[i].in, strlen(ok[i].in), &d), 0);
        assert_true(d == ok[i].want);
    }
    static const char *const no[] = {"On", "ON", "true", "false", "unknown", "unavailable", "opening", "closing",
                                     "jammed", "detected", "clear", "heat", "", "on "};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        double d;
        if (normalize_binary(no[i], strlen(no[i]), &d) == 0) fail_msg("\"%s\" must not be binary", no[i]);
    }
    double d;
    assert_int_equal(normalize_value("1", 1, &d), 0);
    assert_true(d == 1);
    assert_int_equal(normalize_value("off", 3, &d), 0);
    assert_true(d == 0);
}

/* ---- entity ids (HA's valid_entity_id) -------------------------------- */

static void test_entity_ids(void **state) {
    (void)state;
    static const char *const ok[] = {"sensor.x", "binary_sensor.kitchen_motion", "sensor.living_room_temperature",
                                     "a1.b2", "sensor.0", "switch.in_meeting", "zone.home_2"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t dl;
        const char *why = NULL;
        if (validate_entity_id(ok[i], strlen(ok[i]), &dl, &why) != 0) fail_msg("%s: %s", ok[i], why);
        assert_int_equal(dl, strchr(ok[i], '.') - ok[i]);
    }
    static const char *const bad[] = {"", "sensor", "sensor.", ".x", "Sensor.x", "sensor.X", "sensor.a.b",
                                      "sensor.a__b", "sen__sor.x", "_sensor.x", "sensor_.x", "sensor._x",
                                      "sensor.x_", "sensor.a-b", "sensor.a b", "sensor.é", "sensor..x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t dl;
        const char *why = NULL;
        if (validate_entity_id(bad[i], strlen(bad[i]), &dl, &why) == 0) fail_msg("\"%s\" must be invalid", bad[i]);
        assert_non_null(why);
    }
    char longid[300];
    memset(longid, 'a', sizeof longid);
    memcpy(longid, "sensor.", 7);
    size_t dl;
    const char *why;
    assert_int_equal(validate_entity_id(longid, 255, &dl, &why), 0);
    assert_int_equal(validate_entity_id(longid, 256, &dl, &why), -1);
}

/* ---- times ------------------------------------------------------------- */

static const char *time_of(const char *time_fired, char *buf, size_t n) {
    char ev[512];
    snprintf(ev, sizeof ev, "{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.t\",\"state\":\"1\",\"time_fired\":\"%s\"}",
             time_fired);
    json_t *r = enrich_ok(ev);
    snprintf(buf, n, "%s", json_string_value(json_object_get(r, "time_fired")));
    json_decref(r);
    return buf;
}

static void test_times(void **state) {
    (void)state;
    char b[64];
    assert_string_equal(time_of("2025-06-14T08:33:20.218734+00:00", b, sizeof b), "2025-06-14T08:33:20.218734Z");
    assert_string_equal(time_of("2025-06-14T08:35:11+00:00", b, sizeof b), "2025-06-14T08:35:11.000000Z");
    assert_string_equal(time_of("2025-06-14T08:35:11Z", b, sizeof b), "2025-06-14T08:35:11.000000Z");
    assert_string_equal(time_of("2025-06-14T10:35:11.5+02:00", b, sizeof b), "2025-06-14T08:35:11.500000Z");
    assert_string_equal(time_of("2025-06-14T04:35:11.123-04:00", b, sizeof b), "2025-06-14T08:35:11.123000Z");
    assert_string_equal(time_of("2025-06-14T00:05:00+05:30", b, sizeof b), "2025-06-13T18:35:00.000000Z");
    assert_string_equal(time_of("2024-12-31T23:59:59.999999-01:00", b, sizeof b), "2025-01-01T00:59:59.999999Z");
    assert_string_equal(time_of("2024-02-29T12:00:00.000000001+00:00", b, sizeof b), "2024-02-29T12:00:00.000000Z");

    static const char *const bad[] = {"yesterday", "2025-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2025-06-14",
                                      "2025-06-14T25:00:00Z", "1749890000", "", "2025-06-14T08:33:20+0x:00",
                                      "2025-06-14T08:33:20.Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char ev[512];
        snprintf(ev, sizeof ev, "{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.t\",\"state\":\"1\",\"time_fired\":\"%s\"}",
                 bad[i]);
        if (enrich_bad(ev) != ENRICH_BAD_TIME) fail_msg("time \"%s\" should be bad_time", bad[i]);
    }
    assert_int_equal(enrich_bad("{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.t\",\"state\":\"1\",\"time_fired\":1749890000}"),
                     ENRICH_BAD_TIME);
    assert_int_equal(enrich_bad("{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.t\",\"state\":\"1\",\"time_fired\":null}"),
                     ENRICH_MISSING_TIME);
    assert_int_equal(enrich_bad("{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.t\",\"state\":\"1\"}"),
                     ENRICH_MISSING_TIME);
}

/* ---- time_of_day / weekday in TZ -------------------------------------- */

static void test_time_of_day_ranges(void **state) {
    (void)state;
    for (int h = 0; h < 24; h++) {
        const char *want = h < 6 ? "night" : h < 12 ? "morning" : h < 18 ? "afternoon" : "evening";
        assert_string_equal(timeofday_label(h), want);
    }
}

static void expect_tod(const char *tz, int64_t us, const char *tod, const char *wd) {
    const char *t, *w;
    set_tz(tz);
    assert_int_equal(timeofday_classify(us, &t, &w), 0);
    if (strcmp(t, tod) || strcmp(w, wd)) fail_msg("TZ=%s %lld: want %s/%s, got %s/%s", tz, (long long)us, tod, wd, t, w);
}

static int64_t us_of(const char *rfc3339) {
    int64_t us;
    assert_int_equal(event_time_parse(rfc3339, &us), 0);
    return us;
}

static void test_time_of_day_tz(void **state) {
    (void)state;
    /* Europe/Amsterdam is UTC+2 in summer, UTC+1 in winter */
    expect_tod("Europe/Amsterdam", us_of("2025-06-14T03:59:59.999999Z"), "night", "saturday");
    expect_tod("Europe/Amsterdam", us_of("2025-06-14T04:00:00Z"), "morning", "saturday");
    expect_tod("Europe/Amsterdam", us_of("2025-06-14T09:59:59Z"), "morning", "saturday");
    expect_tod("Europe/Amsterdam", us_of("2025-06-14T10:00:00Z"), "afternoon", "saturday");
    expect_tod("Europe/Amsterdam", us_of("2025-06-14T16:00:00Z"), "evening", "saturday");
    expect_tod("Europe/Amsterdam", us_of("2025-06-14T21:59:59Z"), "evening", "saturday");
    expect_tod("Europe/Amsterdam", us_of("2025-06-14T22:00:00Z"), "night", "sunday");
    expect_tod("Europe/Amsterdam", us_of("2025-01-06T23:30:00Z"), "night", "tuesday");
    expect_tod("Europe/Amsterdam", us_of("2025-01-06T05:00:00Z"), "morning", "monday");
    /* DST: 2025-03-30 01:00Z clocks go 02:00 -> 03:00 in Amsterdam */
    expect_tod("Europe/Amsterdam", us_of("2025-03-30T04:59:59Z"), "morning", "sunday");
    expect_tod("Europe/Amsterdam", us_of("2025-03-30T03:59:59Z"), "night", "sunday");
    /* the same instant elsewhere */
    expect_tod("America/New_York", us_of("2025-06-14T08:33:20Z"), "night", "saturday");
    expect_tod("America/New_York", us_of("2025-06-14T02:00:00Z"), "evening", "friday");
    expect_tod("UTC", us_of("2025-06-14T08:33:20Z"), "morning", "saturday");
    expect_tod("Asia/Kolkata", us_of("2025-06-14T20:00:00Z"), "night", "sunday");
    set_tz("Europe/Amsterdam");
}

/* ---- duration_in_state / state_changed -------------------------------- */

static void test_duration_and_state_changed(void **state) {
    (void)state;
    json_t *ex = load_data("ha_examples.json");
    json_t *rec;
    enrich_reject rej;
    /* #5 climate: attribute-only change keeps last_changed */
    assert_int_equal(enrich_event(json_array_get(ex, 4), &rec, &rej), 0);
    assert_false(json_is_true(json_object_get(rec, "state_changed")));
    assert_true(json_real_value(json_object_get(rec, "duration_in_state")) == 0.0);
    assert_string_equal(json_string_value(json_object_get(rec, "state")), "heat");
    assert_string_equal(json_string_value(json_object_get(rec, "old_state")), "heat");
    json_decref(rec);
    /* #1: 300.1 s between the two last_changed */
    assert_int_equal(enrich_event(json_array_get(ex, 0), &rec, &rej), 0);
    assert_true(fabs(json_real_value(json_object_get(rec, "duration_in_state")) - 300.1) < 1e-9);
    assert_true(json_is_true(json_object_get(rec, "state_changed")));
    json_decref(rec);
    json_decref(ex);

    /* negative (clock went back) or unparseable last_changed -> null */
    rec = enrich_ok("{\"event_type\":\"state_changed\",\"time_fired\":\"2025-06-14T10:00:00Z\",\"data\":{\"entity_id\":\"sensor.a\","
                    "\"old_state\":{\"state\":\"1\",\"last_changed\":\"2025-06-14T11:00:00Z\"},"
                    "\"new_state\":{\"state\":\"2\",\"last_changed\":\"2025-06-14T10:00:00Z\"}}}");
    assert_true(json_is_null(json_object_get(rec, "duration_in_state")));
    json_decref(rec);
    rec = enrich_ok("{\"event_type\":\"state_changed\",\"time_fired\":\"2025-06-14T10:00:00Z\",\"data\":{\"entity_id\":\"sensor.a\","
                    "\"old_state\":{\"state\":\"1\",\"last_changed\":\"soon\"},"
                    "\"new_state\":{\"state\":\"1\",\"last_changed\":\"2025-06-14T10:00:00Z\"}}}");
    assert_true(json_is_null(json_object_get(rec, "duration_in_state")));
    assert_false(json_is_true(json_object_get(rec, "state_changed")));
    json_decref(rec);
}

/* ---- the three input shapes ------------------------------------------- */

static void test_three_shapes(void **state) {
    (void)state;
    const char *ha = "{\"event_type\":\"state_changed\",\"data\":{\"entity_id\":\"sensor.test\",\"old_state\":null,"
                     "\"new_state\":{\"entity_id\":\"sensor.test\",\"state\":\"test_value\",\"attributes\":{\"friendly_name\":\"Test\"},"
                     "\"last_changed\":\"2025-01-06T14:30:00+00:00\",\"last_updated\":\"2025-01-06T14:30:00+00:00\","
                     "\"context\":{\"id\":\"01JH000000000000000000000C\",\"parent_id\":null,\"user_id\":null}}},"
                     "\"origin\":\"LOCAL\",\"time_fired\":\"2025-01-06T14:30:00+00:00\","
                     "\"context\":{\"id\":\"01JH000000000000000000000C\",\"parent_id\":null,\"user_id\":null}}";
    char env[2048], flat[1024];
    snprintf(env, sizeof env, "{\"id\":5,\"type\":\"event\",\"event\":%s}", ha);
    snprintf(flat, sizeof flat, "{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.test\",\"state\":\"test_value\","
                                "\"timestamp\":\"2025-01-06T14:30:00Z\",\"attributes\":{\"friendly_name\":\"Test\"},"
                                "\"origin\":\"LOCAL\",\"context\":{\"id\":\"01JH000000000000000000000C\"}}");
    json_t *a = enrich_ok(ha), *b = enrich_ok(env), *c = enrich_ok(flat);
    assert_true(json_equal(a, b));
    assert_true(json_equal(a, c));
    json_t *want = parse("{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.test\",\"domain\":\"sensor\","
                         "\"object_id\":\"test\",\"time_fired\":\"2025-01-06T14:30:00.000000Z\",\"state\":\"test_value\","
                         "\"value\":null,\"old_state\":null,\"old_value\":null,\"friendly_name\":\"Test\","
                         "\"context_id\":\"01JH000000000000000000000C\",\"state_changed\":true,"
                         "\"time_of_day\":\"afternoon\",\"weekday\":\"monday\"}");
    check_fields("three shapes", a, want);
    assert_null(json_object_get(a, "data")); /* only for non-state events */
    json_decref(want);
    json_decref(a), json_decref(b), json_decref(c);

    /* the flat form's key is "timestamp" or "time_fired"; time_fired wins */
    c = enrich_ok("{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.t\",\"state\":\"1\","
                  "\"time_fired\":\"2025-01-06T14:30:00Z\",\"timestamp\":\"2030-01-01T00:00:00Z\"}");
    assert_string_equal(json_string_value(json_object_get(c, "time_fired")), "2025-01-06T14:30:00.000000Z");
    json_decref(c);
}

/* ---- every §2 example ------------------------------------------------- */

static void test_protocol_examples(void **state) {
    (void)state;
    json_t *ex = load_data("ha_examples.json"), *want = load_data("ha_examples_expected.json");
    assert_int_equal(json_array_size(ex), 10);
    assert_int_equal(json_array_size(want), 10);
    for (size_t i = 0; i < 10; i++) {
        json_t *rec;
        enrich_reject rej;
        json_t *in = json_array_get(ex, i);
        if (enrich_event(in, &rec, &rej) != 0) fail_msg("example #%zu rejected: %s", i + 1, rej.message);
        char name[32];
        snprintf(name, sizeof name, "example #%zu", i + 1);
        check_fields(name, rec, json_array_get(want, i));
        /* attributes: new_state's, whole, in the same key order */
        json_t *ns = json_object_get(json_object_get(json_object_get(in, "event"), "data"), "new_state");
        json_t *attrs = json_object_get(ns, "attributes");
        if (json_is_object(ns)) {
            char *x = json_dumps(attrs, JSON_COMPACT), *y = json_dumps(json_object_get(rec, "attributes"), JSON_COMPACT);
            assert_string_equal(x, y);
            free(x), free(y);
        } else {
            assert_true(json_is_null(json_object_get(rec, "attributes")));
        }
        /* state and old_state are verbatim HA strings, never re-typed */
        json_t *os = json_object_get(json_object_get(json_object_get(in, "event"), "data"), "old_state");
        if (json_is_object(ns)) assert_true(json_equal(json_object_get(ns, "state"), json_object_get(rec, "state")));
        if (json_is_object(os)) assert_true(json_equal(json_object_get(os, "state"), json_object_get(rec, "old_state")));
        json_decref(rec);
    }
    json_decref(ex);
    json_decref(want);
}

/* ---- edge cases (shared with the integration tests) -------------------- */

static enrich_reason reason_by_label(const char *label) {
    for (int r = 0; r < ENRICH_REASON_COUNT; r++)
        if (strcmp(enrich_reason_label((enrich_reason)r), label) == 0) return (enrich_reason)r;
    fail_msg("unknown reason label %s", label);
    return ENRICH_OK;
}

static void test_edge_cases(void **state) {
    (void)state;
    json_t *cases = load_data("edge_cases.json");
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *rec;
        enrich_reject rej;
        int rc = enrich_event(json_object_get(c, "input"), &rec, &rej);
        const char *reject = json_string_value(json_object_get(c, "reject"));
        if (reject) {
            if (rc == 0) fail_msg("%s: was accepted", name);
            if (rej.reason != reason_by_label(reject))
                fail_msg("%s: want %s, got %s (%s)", name, reject, enrich_reason_label(rej.reason), rej.message);
            continue;
        }
        if (rc != 0) fail_msg("%s: rejected: %s", name, rej.message);
        check_fields(name, rec, json_object_get(c, "expect"));
        json_decref(rec);
    }
    json_decref(cases);
}

static void test_rejections(void **state) {
    (void)state;
    assert_int_equal(enrich_bad("42"), ENRICH_NOT_OBJECT);
    assert_int_equal(enrich_bad("[1]"), ENRICH_NOT_OBJECT);
    assert_int_equal(enrich_bad("{\"entity_id\":\"sensor.a\",\"state\":\"1\",\"timestamp\":\"2025-01-01T00:00:00Z\"}"),
                     ENRICH_MISSING_EVENT_TYPE);
    assert_int_equal(enrich_bad("{\"event_type\":\"\",\"data\":{},\"time_fired\":\"2025-01-01T00:00:00Z\"}"),
                     ENRICH_MISSING_EVENT_TYPE);
    assert_int_equal(enrich_bad("{\"type\":\"event\",\"event\":[]}"), ENRICH_BAD_SHAPE);
    assert_int_equal(enrich_bad("{\"event_type\":\"state_changed\",\"data\":[],\"time_fired\":\"2025-01-01T00:00:00Z\"}"),
                     ENRICH_BAD_SHAPE);
    assert_int_equal(enrich_bad("{\"event_type\":\"state_changed\",\"time_fired\":\"2025-01-01T00:00:00Z\","
                                "\"data\":{\"entity_id\":\"sensor.a\",\"old_state\":null,\"new_state\":null}}"),
                     ENRICH_BAD_SHAPE);
    assert_int_equal(enrich_bad("{\"event_type\":\"state_changed\",\"time_fired\":\"2025-01-01T00:00:00Z\","
                                "\"data\":{\"entity_id\":\"sensor.a\",\"new_state\":{\"state\":21.5}}}"),
                     ENRICH_BAD_STATE);
    assert_int_equal(enrich_bad("{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.a\",\"state\":21.5,"
                                "\"timestamp\":\"2025-01-01T00:00:00Z\"}"),
                     ENRICH_BAD_STATE);
    assert_int_equal(enrich_bad("{\"event_type\":\"state_changed\",\"entity_id\":42,\"state\":\"1\","
                                "\"timestamp\":\"2025-01-01T00:00:00Z\"}"),
                     ENRICH_BAD_ENTITY_ID);
    assert_int_equal(enrich_bad("{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.a\","
                                "\"timestamp\":\"2025-01-01T00:00:00Z\"}"),
                     ENRICH_BAD_SHAPE);
    assert_int_equal(enrich_bad("{\"event_type\":\"state_changed\",\"time_fired\":\"2025-01-01T00:00:00Z\","
                                "\"data\":{\"new_state\":{\"state\":\"1\"}}}"),
                     ENRICH_MISSING_ENTITY_ID);
    assert_int_equal(enrich_bad("{\"event_type\":\"state_changed\",\"time_fired\":\"0000-01-01T00:00:00Z\","
                                "\"entity_id\":\"sensor.a\",\"state\":\"1\"}"),
                     ENRICH_BAD_TIME);
}

static void test_entity_id_fallbacks(void **state) {
    (void)state;
    /* data.entity_id missing: the State objects carry it */
    json_t *r = enrich_ok("{\"event_type\":\"state_changed\",\"time_fired\":\"2025-01-01T00:00:00Z\","
                          "\"data\":{\"old_state\":{\"entity_id\":\"cover.x\",\"state\":\"open\"},\"new_state\":null}}");
    assert_string_equal(json_string_value(json_object_get(r, "entity_id")), "cover.x");
    assert_true(json_is_null(json_object_get(r, "state")));
    assert_true(json_real_value(json_object_get(r, "old_value")) == 1.0);
    json_decref(r);
    /* non-state event with an invalid data.entity_id: kept in data, no entity_id */
    r = enrich_ok("{\"event_type\":\"call_service\",\"time_fired\":\"2025-01-01T00:00:00Z\","
                  "\"data\":{\"entity_id\":[\"light.a\",\"light.b\"]}}");
    assert_null(json_object_get(r, "entity_id"));
    assert_non_null(json_object_get(json_object_get(r, "data"), "entity_id"));
    json_decref(r);
    r = enrich_ok("{\"event_type\":\"my_event\",\"time_fired\":\"2025-01-01T00:00:00Z\",\"data\":{\"entity_id\":\"Light.A\"}}");
    assert_null(json_object_get(r, "entity_id"));
    json_decref(r);
    /* flat senders may use the record's own context names */
    r = enrich_ok("{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.a\",\"state\":\"1\",\"timestamp\":\"2025-01-01T00:00:00Z\","
                  "\"context_id\":\"c1\",\"context_parent_id\":\"p1\",\"context_user_id\":null}");
    assert_string_equal(json_string_value(json_object_get(r, "context_id")), "c1");
    assert_string_equal(json_string_value(json_object_get(r, "context_parent_id")), "p1");
    assert_true(json_is_null(json_object_get(r, "context_user_id")));
    json_decref(r);
    /* the event context wins; new_state.context is the fallback */
    r = enrich_ok("{\"event_type\":\"state_changed\",\"time_fired\":\"2025-01-01T00:00:00Z\",\"data\":{\"entity_id\":\"sensor.a\","
                  "\"new_state\":{\"state\":\"1\",\"context\":{\"id\":\"from_state\",\"user_id\":\"u\"}}}}");
    assert_string_equal(json_string_value(json_object_get(r, "context_id")), "from_state");
    assert_string_equal(json_string_value(json_object_get(r, "context_user_id")), "u");
    json_decref(r);
    /* a flat event inside an envelope */
    r = enrich_ok("{\"type\":\"event\",\"event\":{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.a\","
                  "\"state\":\"on\",\"timestamp\":\"2025-01-01T00:00:00Z\"}}");
    assert_string_equal(json_string_value(json_object_get(r, "entity_id")), "sensor.a");
    assert_true(json_real_value(json_object_get(r, "value")) == 1.0);
    json_decref(r);
    /* non-state flat event without data gets {} */
    r = enrich_ok("{\"event_type\":\"homeassistant_start\",\"timestamp\":\"2025-01-01T00:00:00Z\"}");
    assert_true(json_is_object(json_object_get(r, "data")));
    assert_int_equal(json_object_size(json_object_get(r, "data")), 0);
    assert_null(json_object_get(r, "state"));
    json_decref(r);
}

/* ---- batch: index mapping to and from storage -------------------------- */

static void test_batch_mapping(void **state) {
    (void)state;
    json_t *events = parse("[{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.a\",\"state\":\"1\",\"timestamp\":\"2025-01-01T00:00:00Z\"},"
                           " 42,"
                           " {\"event_type\":\"state_changed\",\"entity_id\":\"sensor.b\",\"state\":\"2\",\"timestamp\":\"2025-01-01T00:00:01Z\"},"
                           " {\"event_type\":\"state_changed\",\"entity_id\":\"Bad.Id\",\"state\":\"2\",\"timestamp\":\"2025-01-01T00:00:01Z\"},"
                           " {\"event_type\":\"state_changed\",\"entity_id\":\"sensor.c\",\"state\":\"3\",\"timestamp\":\"2025-01-01T00:00:02Z\"}]");
    batch b;
    assert_int_equal(batch_build(events, &b), 0);
    assert_int_equal(b.n, 5);
    assert_int_equal(b.nrecords, 3);
    assert_int_equal(json_array_size(b.rejected), 2);
    assert_int_equal(b.record_input[0], 0);
    assert_int_equal(b.record_input[1], 2);
    assert_int_equal(b.record_input[2], 4);
    assert_int_equal(b.reasons[ENRICH_NOT_OBJECT], 1);
    assert_int_equal(b.reasons[ENRICH_BAD_ENTITY_ID], 1);

    size_t len;
    char *body = batch_storage_body(&b, &len);
    json_t *sent = parse(body);
    free(body);
    json_t *dl = json_array_get(json_object_get(sent, "dead_letters"), 1);
    assert_string_equal(json_string_value(json_object_get(dl, "source")), "enrichment-pipeline");
    assert_true(json_equal(json_object_get(dl, "event"), json_array_get(events, 3))); /* raw, as received */
    assert_non_null(strstr(json_string_value(json_object_get(dl, "error")), "Bad.Id"));
    assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(sent, "dead_letters"), 0), "event")), 42);
    json_decref(sent);

    /* storage rejected its record #1 (= our input 2) */
    const char *ans = "{\"success\":true,\"stored\":1,\"duplicates\":1,\"rejected\":[{\"index\":1,\"error\":\"db says no\"}],\"dead_lettered\":3}";
    json_t *reply;
    char err[256];
    assert_int_equal(batch_map_reply(&b, ans, strlen(ans), &reply, err, sizeof err), 0);
    json_t *want = parse("{\"success\":true,\"processed\":5,\"stored\":1,\"duplicates\":1,\"dead_lettered\":3,"
                         "\"rejected\":[{\"index\":1,\"error\":\"event is not a JSON object\"},{\"index\":2,\"error\":\"db says no\"},"
                         "{\"index\":3,\"error\":\"entity_id \\\"Bad.Id\\\" is invalid: only lowercase a-z, 0-9 and _ are allowed\"}]}");
    if (!json_equal(reply, want)) {
        char *s = json_dumps(reply, 0);
        fail_msg("reply %s", s);
    }
    json_decref(want);
    json_decref(reply);

    /* answers that break the contract are errors, never a 200 */
    static const char *const broken[] = {"", "not json", "{\"success\":false}", "[]",
                                         "{\"success\":true,\"rejected\":[{\"index\":3,\"error\":\"x\"}]}",
                                         "{\"success\":true,\"rejected\":[{\"index\":-1}]}",
                                         "{\"success\":true,\"rejected\":{}}"};
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        reply = NULL;
        if (batch_map_reply(&b, broken[i], strlen(broken[i]), &reply, err, sizeof err) == 0)
            fail_msg("accepted storage answer %s", broken[i]);
        assert_null(reply);
    }
    batch_free(&b);
    json_decref(events);
}

static storage_client_outcome classify(long status, const char *error, size_t body_len) {
    httpc_response r = {.status = status, .body = "", .error = error};
    return storage_client_classify(&r, body_len);
}

/* The rules themselves are lib/delivery's (tests/unit/test_delivery.c); here:
 * enrichment's storage client goes by them. */
static void test_forward_rules(void **state) {
    (void)state;
    assert_int_equal(classify(200, NULL, 10), STORAGE_CLIENT_STORED);
    assert_int_equal(classify(0, "connection refused", 10), STORAGE_CLIENT_UNAVAILABLE);
    assert_int_equal(classify(500, NULL, 10), STORAGE_CLIENT_UNAVAILABLE);
    assert_int_equal(classify(503, NULL, 10), STORAGE_CLIENT_UNAVAILABLE);
    assert_int_equal(classify(400, NULL, 10), STORAGE_CLIENT_REFUSED);
    assert_int_equal(classify(413, NULL, 10), STORAGE_CLIENT_REFUSED);
    assert_int_equal(classify(0, "connection closed before the response", 4u << 20), STORAGE_CLIENT_CUT);
    assert_int_equal(classify(0, "connection closed before the response", 1000), STORAGE_CLIENT_UNAVAILABLE);
    assert_int_equal(classify(201, NULL, 10), STORAGE_CLIENT_UNAVAILABLE); /* a peer breaking the contract: retried */
    assert_int_equal(classify(302, NULL, 10), STORAGE_CLIENT_UNAVAILABLE);
    httpc_response r = {.status = 400, .body = "{\"error\":\"bad\"}", .body_len = 15};
    char msg[128];
    storage_client_error_text(&r, msg, sizeof msg);
    assert_string_equal(msg, "data-storage answered 400: bad");
}

int main(void) {
    set_tz("Europe/Amsterdam");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_valid),
        cmocka_unit_test(test_numbers_invalid),
        cmocka_unit_test(test_numbers_exact),
        cmocka_unit_test(test_binary_states),
        cmocka_unit_test(test_entity_ids),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_time_of_day_ranges),
        cmocka_unit_test(test_time_of_day_tz),
        cmocka_unit_test(test_duration_and_state_changed),
        cmocka_unit_test(test_three_shapes),
        cmocka_unit_test(test_protocol_examples),
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_entity_id_fallbacks),
        cmocka_unit_test(test_batch_mapping),
        cmocka_unit_test(test_forward_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
