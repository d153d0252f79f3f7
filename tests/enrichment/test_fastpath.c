/* test_fastpath.c -- differential test of enrichment's fast path.
 *
 * fastpath.c must send data-storage exactly the bytes the jansson path sends
 * (batch_build + batch_storage_body on httpd_read_json's tree), with the same
 * index map, rejects and reject reasons, or decline the body. Every input goes
 * through both: the files in data/ (whole, per case, per input, re-indented),
 * and a few thousand generated simulator-like events (unicode, escapes,
 * numbers of every form, nulls, added/removed entities, non-state events,
 * envelopes, flat events, invalid ones, whitespace, repeated keys). The
 * generated set must mostly take the fast path, or the test proves nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "event.h"
#include "fastpath.h"
#include "json_scan.h"
#include "json_text.h"
#include "sbuf.h"
#include "validate.h"

#define MAX_BATCH 10000

static size_t total_events, fast_events, declined_bodies, bodies;

/* The jansson path as enrich_api.c runs it. 0 built, 1 body refused (400), 2 too many. */
static int slow_build(const char *body, size_t len, batch *b, size_t *n) {
    json_error_t e;
    json_t *v = json_loadb(body, len, JSON_ALLOW_NUL, &e);
    if (!v && json_error_code(&e) == json_error_numeric_overflow)
        v = json_loadb(body, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
    if (!v) {
        if (getenv("FASTPATH_DEBUG")) fprintf(stderr, "jansson: %s at %d: %.200s\n", e.text, e.position, body + (e.position > 100 ? e.position - 100 : 0));
        return 1;
    }
    json_t *events;
    const char *err;
    int rc = event_unpack_batch(v, &events, &err);
    json_decref(v);
    if (rc) return 1;
    *n = json_array_size(events);
    if (*n > MAX_BATCH) {
        json_decref(events);
        return 2;
    }
    assert_int_equal(batch_build(events, b), 0);
    json_decref(events);
    return 0;
}

static void check_body(const char *body, size_t len) {
    batch slow, fast;
    size_t n = 0;
    int s = slow_build(body, len, &slow, &n);
    int f = fastpath_build(body, len, MAX_BATCH, &fast);
    bodies++;
    assert_true(f == FASTPATH_BUILT || f == FASTPATH_DECLINED || f == FASTPATH_TOO_MANY);
    if (f == FASTPATH_DECLINED) {
        declined_bodies++;
        if (getenv("FASTPATH_DEBUG") && s == 0) fprintf(stderr, "declined: %.300s\n", body);
        if (s == 0) batch_free(&slow);
        return;
    }
    if (f == FASTPATH_TOO_MANY) {
        assert_int_equal(s, 2);
        assert_int_equal(fast.n, n);
        return;
    }
    if (s != 0) fail_msg("fast path built a body jansson refuses: %.300s", body);
    size_t sl, fl;
    char *sb = batch_storage_body(&slow, &sl), *fb = batch_storage_body(&fast, &fl);
    if (sl != fl || memcmp(sb, fb, sl) != 0) {
        size_t i = 0;
        while (i < sl && i < fl && sb[i] == fb[i]) i++;
        size_t from = i > 120 ? i - 120 : 0;
        fail_msg("storage bodies differ at byte %zu\n jansson: %.240s\n fast:    %.240s\n input: %.600s", i,
                 sb + from, fb + from, body);
    }
    /* what enrich_api sends: the same bytes, made in place from the record text */
    size_t tl;
    char *tb = batch_take_storage_body(&fast, &tl);
    assert_non_null(tb);
    assert_int_equal(tl, fl);
    assert_memory_equal(tb, fb, fl);
    free(tb);
    assert_int_equal(slow.n, fast.n);
    assert_int_equal(slow.nrecords, fast.nrecords);
    for (size_t j = 0; j < slow.nrecords; j++) assert_int_equal(slow.record_input[j], fast.record_input[j]);
    assert_true(json_equal(slow.rejected, fast.rejected));
    assert_memory_equal(slow.reasons, fast.reasons, sizeof slow.reasons);
    total_events += fast.n;
    fast_events += fast.fast;
    free(sb);
    free(fb);
    batch_free(&slow);
    batch_free(&fast);
}

static void check_json(const json_t *j, size_t flags) {
    char *t = json_dumps(j, flags | JSON_ENCODE_ANY);
    assert_non_null(t);
    check_body(t, strlen(t));
    free(t);
}

static void check_file(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", ENRICH_TEST_DATA, name);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    static char buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    check_body(buf, len); /* as written, whitespace and all */
    json_t *j = json_loadb(buf, len, 0, NULL);
    assert_non_null(j);
    check_json(j, JSON_COMPACT);
    check_json(j, JSON_INDENT(1));
    size_t i;
    json_t *c;
    json_array_foreach(j, i, c) {
        check_json(c, JSON_COMPACT); /* one case / one event */
        json_t *in = json_object_get(c, "input");
        if (in) {
            check_json(in, JSON_COMPACT);
            json_t *wrapped = json_pack("{s:[O]}", "events", in);
            check_json(wrapped, JSON_COMPACT);
            json_decref(wrapped);
        }
    }
    json_decref(j);
}

static json_t *load_file_json(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", ENRICH_TEST_DATA, name);
    json_t *j = json_load_file(path, 0, NULL);
    assert_non_null(j);
    return j;
}

/* The file's text without whitespace between tokens (as jq -c writes it:
 * json_dumps would print reals with 17 digits). */
static char *compact_file(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", ENRICH_TEST_DATA, name);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    sbuf o;
    sbuf_init(&o);
    int c, in_str = 0, esc = 0;
    while ((c = fgetc(fp)) != EOF) {
        if (in_str) {
            if (esc) esc = 0;
            else if (c == '\\') esc = 1;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            continue;
        }
        sbuf_addc(&o, (char)c);
    }
    fclose(fp);
    return sbuf_take(&o, NULL);
}

static void test_data_files(void **state) {
    (void)state;
    /* the ten protocol examples, in their envelopes, as ingestion forwards them: all fast */
    json_t *ex = load_file_json("ha_examples.json");
    char *t = compact_file("ha_examples.json");
    batch b;
    assert_int_equal(fastpath_build(t, strlen(t), MAX_BATCH, &b), FASTPATH_BUILT);
    assert_int_equal(b.fast, json_array_size(ex));
    batch_free(&b);
    check_body(t, strlen(t));
    free(t);
    json_decref(ex);
    check_file("ha_examples.json");
    check_file("ha_examples_expected.json");
    check_file("edge_cases.json");
}

/* ---- generated events ---------------------------------------------------- */

static unsigned long long rng = 88172645463325252ull;
static unsigned rnd(unsigned n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}
#define PICK(arr) (arr)[rnd(sizeof(arr) / sizeof(arr)[0])]

static const char *const domains[] = {"sensor", "binary_sensor", "light", "switch", "climate", "device_tracker",
                                      "lock", "sun", "cover", "weather"};
/* In "plain" rounds only the first *_PLAIN entries are picked: what HA and the
 * simulator send (raw UTF-8, canonical numbers); the rest are escapes and
 * number forms the fast path leaves to jansson. */
static int plain;
/* In "clean" rounds (plain too) nothing that would be rejected or that HA never
 * sends is picked: every event must then take the fast path. */
static int clean;
/* Picks from arr; sets *nonplain when the pick is one of the non-plain entries. */
static const char *pickp(const char *const *arr, size_t n, size_t nplain, int *nonplain) {
    size_t i = plain ? rnd((unsigned)nplain) : rnd((unsigned)n);
    if (i >= nplain) *nonplain = 1;
    return arr[i];
}
#define PICKP(arr, nplain, flag) pickp((arr), sizeof(arr) / sizeof(arr)[0], (nplain), (flag))
static const char *const states[] = {
    "\"21.5\"", "\"-3\"", "\"1e3\"", "\"on\"", "\"off\"", "\"unavailable\"", "\"unknown\"", "\"\"", "\" 5 \"",
    "\"1_000\"", "\"nan\"", "\"inf\"", "\"home\"", "\"not_home\"", "\"h\xc3\xa9llo\"", "\"open\"", "\"closed\"",
    "\"locked\"", "\"above_horizon\"", "\"0.1\"", "\"62\"", "\"1e999\"", "\"1e-400\"", "\"heat\"", "\"22.90\"",
    "\"\xf0\x9f\x8c\xa1\"", "\"21,5\"",
    /* not plain */ "\"a\\\"b\"", "\"\\u00e9t\\u00e9\"", "\"line\\nbreak\""};
#define STATES_PLAIN 27
static const char *const units[] = {"\"\xc2\xb0""C\"", "\"%\"", "\"kWh\"", "\"W\"", "5", "null", "\"lx\"",
                                    /* not plain */ "\"\\u00b0F\"", "\"m\\/s\""};
#define UNITS_PLAIN 7
static const char *const names[] = {"\"Living room Temperature\"", "\"K\xc3\xbc""che \xf0\x9f\x8c\xa1\"", "null",
                                    "\"Porch light\"", "\"caf\xc3\xa9\"",
                                    /* not plain */ "\"Kitchen \\\"Main\\\"\"", "\"Tab\\there\"",
                                    "\"\\ud83c\\udf21 Therm\""};
#define NAMES_PLAIN 5
static const char *const extras[] = {
    "\"latitude\":52.3731339", "\"longitude\":4.8903147", "\"brightness\":255", "\"color_temp\":7.0",
    "\"small\":0.0001", "\"half\":0.5", "\"list\":[1,2.5,\"x\",null,true,false]",
    "\"nested\":{\"a\":{\"b\":null,\"c\":[{}]}}", "\"empty\":{}", "\"ctl\":\"\\u0001\\u001f\"",
    "\"big\":123456789012345678", "\"neg\":-42", "\"friendly\":true", "\"icon\":\"mdi:thermometer\"",
    "\"options\":[\"a\",\"b\"]", "\"supported_features\":0", "\"q\":\"\\\"quoted\\\\\"", "\"negzero\":-0.0",
    "\"spaced\": 1", /* whitespace only: written without it, still the fast path (issue 15) */
    /* not plain */ "\"min\":1e3", "\"zero\":-0", "\"tiny\":1e-7", "\"path\":\"\\/config\\/x\"",
    "\"CTL\":\"\\u001F\"", "\"e\":2.5E-3", "\"trail\":7.50", "\"x\":1.7976931348623157e30"};
#define EXTRAS_PLAIN 19
static const char *const times[] = {"2025-06-14T08:33:20.218734+00:00", "2025-06-14T08:35:11+00:00",
                                    "2025-06-14T23:59:59.999999Z", "2025-01-06T14:30:00Z",
                                    "2025-03-30T01:30:00.5+01:00", "2025-10-26 02:30:00", "2025-12-31T23:00:00-02:00",
                                    "1970-01-01T00:00:00Z"};
static const char *const ctx_ids[] = {"\"01JXPS4SATTNZJ8RR616P54XFG\"", "null", "\"8a3f1c2d4e5b46a7b8c9d0e1f2a3b4c5\"",
                                      "\"01JXPRVH3P5B2ZJ7WQ0M6K4TRA\""};

/* What the generator knows about an event it wrote: whether the fast path must
 * take it (every member it reads is plain, the copied object is canonical,
 * nothing would be rejected) or must leave it to jansson. Checked per event. */
enum { EXPECT_FAST, EXPECT_SLOW };

/* A state's text is one the fast path reads: a string without escapes. */
static int plain_state_text(const char *t) {
    return t[0] == '"' && !strchr(t, '\\');
}

/* attributes; *slow when, as new_state's, they keep the event off the fast path. */
static void gen_attrs(sbuf *o, int *slow) {
    sbuf_addc(o, '{');
    const char *sep = "";
    size_t start = o->len;
#define MEMBER(...) (sbuf_adds(o, sep), sbuf_printf(o, __VA_ARGS__), sep = ",")
    int has_state_class = rnd(4) != 0;
    if (has_state_class) MEMBER("\"state_class\":\"measurement\"");
    if (rnd(4)) MEMBER("\"unit_of_measurement\":%s", PICKP(units, UNITS_PLAIN, slow));
    if (rnd(3)) MEMBER("\"device_class\":\"%s\"", rnd(2) ? "temperature" : "power");
    if (!plain && rnd(5) == 0) MEMBER("\"state_class\":null"), *slow |= has_state_class; /* sometimes a repeat */
    for (unsigned k = rnd(4); k > 0; k--) {
        int np = 0;
        const char *x = PICKP(extras, EXTRAS_PLAIN, &np);
        if (!strstr(o->data + start, x)) MEMBER("%s", x), *slow |= np;
    }
    if (rnd(6)) MEMBER("\"friendly_name\":%s", PICKP(names, NAMES_PLAIN, slow));
    if (!clean && rnd(40) == 0) MEMBER("\"device_\\u0063lass\":\"x\""), *slow = 1;
    sbuf_addc(o, '}');
#undef MEMBER
}

/* One State object; *slow as for gen_attrs (attributes that are not an object count). */
static void gen_state(sbuf *o, const char *entity, const char *state, const char *lc, int *slow) {
    sbuf_printf(o, "{\"entity_id\":\"%s\",\"state\":%s", entity, state);
    switch (clean ? 2 + rnd(10) : rnd(12)) {
    case 0: sbuf_adds(o, ",\"attributes\":null"); break;
    case 1: sbuf_adds(o, ",\"attributes\":\"oops\""), *slow = 1; break;
    case 2: break; /* none */
    default: sbuf_adds(o, ",\"attributes\":"), gen_attrs(o, slow);
    }
    sbuf_printf(o, ",\"last_changed\":%s,\"last_reported\":\"%s\",\"last_updated\":\"%s\"", lc, times[0], times[0]);
    if (rnd(3)) sbuf_printf(o, ",\"context\":{\"id\":%s,\"parent_id\":null,\"user_id\":%s}", PICK(ctx_ids), PICK(ctx_ids));
    sbuf_addc(o, '}');
}

static int valid_time(const char *t) {
    int64_t us;
    return event_time_parse(t, &us) == 0 && us >= 0;
}

/* A time_fired: any of times[], a valid one in clean rounds. */
static const char *pick_time(void) {
    const char *t = PICK(times);
    while (clean && !valid_time(t)) t = PICK(times);
    return t;
}

/* websocket-ingestion's registry context (issue 11), in its forms; returns 1 when the
 * fast path must leave the event to jansson. */
static int gen_registry(sbuf *o) {
    static const char *const labels[] = {"[]", "[\"battery\"]", "[\"battery\",\"energy\"]", "null"};
    static const char *const areas[] = {"\"kitchen\"", "null", "\"k\xc3\xbc" "che\"", "\"living_room\""};
    unsigned c = rnd(12);
    if (clean && c >= 9) c = 5;
    switch (c) {
    case 5:
        sbuf_printf(o, ",\"homeiq_registry\":{\"area_id\":%s,\"area\":\"Kitchen\",\"floor_id\":\"ground_floor\","
                       "\"floor\":\"Ground floor\",\"device_id\":\"6f7d2f60bded8b9f\",\"device\":\"Kitchen climate\","
                       "\"manufacturer\":\"Aqara\",\"model\":\"WSDCGQ11LM\",\"labels\":%s,\"platform\":\"zha\","
                       "\"entity_category\":%s}",
                    PICK(areas), PICK(labels), rnd(2) ? "null" : "\"diagnostic\"");
        return 0;
    case 6: /* members missing, others null: nulls and [] */
        sbuf_printf(o, ",\"homeiq_registry\":{\"platform\":\"person\",\"area_id\":null%s}",
                    rnd(2) ? ",\"labels\":[\"x\"]" : "");
        return 0;
    case 7: /* unknown members are ignored */
        sbuf_adds(o, ",\"homeiq_registry\":{\"area_id\":\"garden\",\"x\":{\"y\":[1,2]},\"labels\":null,\"model\":7}");
        return 0;
    case 8: /* not an object: no context */
        sbuf_adds(o, rnd(2) ? ",\"homeiq_registry\":null" : ",\"homeiq_registry\":\"kitchen\"");
        return 0;
    case 9: sbuf_adds(o, ",\"homeiq_registry\":{\"area\":\"K\\u00fcche\",\"labels\":[]}"); return 1;
    case 10: sbuf_adds(o, ",\"homeiq_registry\":{\"area\":\"Kitchen\",\"labels\":[\"a\",1]}"); return 1;
    case 11: sbuf_adds(o, ",\"homeiq_registry\":{\"labels\":\"battery\"}"); return 1;
    default: return 0;
    }
}

/* One generated event; returns EXPECT_FAST or EXPECT_SLOW; *is_sc for respace(). */
static int gen_event(sbuf *o, unsigned i, int *is_sc) {
    char entity[128];
    const char *dom = PICK(domains);
    int slow = 0;
    switch (clean ? 3 + rnd(27) : rnd(30)) {
    case 0: snprintf(entity, sizeof entity, "Sensor.Bad_%u", i); break;
    case 1: snprintf(entity, sizeof entity, "%s.a__%u", dom, i); break;
    case 2: snprintf(entity, sizeof entity, "%s", dom); break;
    default: snprintf(entity, sizeof entity, "%s.obj_%u", dom, i);
    }
    size_t dl;
    const char *why;
    int entity_ok = validate_entity_id(entity, strlen(entity), &dl, &why) == 0;
    int envelope = rnd(3) == 0, flat = !clean && rnd(25) == 0;
    if (envelope) sbuf_printf(o, "{\"id\":%u,\"type\":\"event\",\"event\":", i);
    unsigned kind = clean ? rnd(9) : rnd(10);
    const char *et = kind < 7 ? "state_changed" : kind == 7 ? "call_service" : kind == 8 ? "automation_triggered" : "";
    if (kind == 9) slow = 1; /* empty event_type: a reject */
    if (!clean && rnd(60) == 0) et = "state\\u005fchanged", slow = 1;
    *is_sc = kind < 7 && !slow;
    sbuf_printf(o, "{\"event_type\":\"%s\"", et);
    if (flat) {
        int np = 0;
        sbuf_printf(o, ",\"entity_id\":\"%s\",\"state\":%s,\"timestamp\":\"%s\"}", entity,
                    PICKP(states, STATES_PLAIN, &np), PICK(times));
        if (envelope) sbuf_addc(o, '}');
        return EXPECT_SLOW; /* the flat form is jansson's */
    }
    sbuf_adds(o, ",\"data\":");
    if (kind < 7 || kind == 9) {
        char lc_new[64], lc_old[64];
        snprintf(lc_new, sizeof lc_new, "%s%s%s", rnd(10) ? "\"" : "", rnd(10) ? times[0] : "null", "");
        if (lc_new[0] == '"') strcat(lc_new, "\"");
        else snprintf(lc_new, sizeof lc_new, "null");
        snprintf(lc_old, sizeof lc_old, "\"%s\"", rnd(4) ? "2025-06-14T08:28:20.118734+00:00" : PICK(times));
        sbuf_adds(o, "{");
        int eid = clean ? 1 + rnd(11) : rnd(12), has_eid = 1;
        if (eid) sbuf_printf(o, "\"entity_id\":\"%s\",", entity);
        else if (rnd(2)) sbuf_adds(o, "\"entity_id\":null,"), slow = 1; /* not a string: jansson says why */
        else has_eid = 0;
        if (!entity_ok) slow = 1;                                           /* a reject */
        unsigned shape = clean ? rnd(11) : rnd(12);
        int old_slow = 0, new_slow = 0, has_old = 1, has_new = 1;
        sbuf_adds(o, "\"old_state\":");
        if (shape == 0) sbuf_adds(o, "null"), has_old = 0; /* added */
        else if (shape == 11) sbuf_adds(o, "7"), slow = 1;
        else {
            int np = 0, ignored = 0;
            const char *st = PICKP(states, STATES_PLAIN, &np);
            if (!plain_state_text(st)) slow = 1;
            gen_state(o, entity, st, lc_old, &ignored); /* old attributes are not read */
            (void)old_slow;
        }
        sbuf_adds(o, ",\"new_state\":");
        if (shape == 1) sbuf_adds(o, "null"), has_new = 0; /* removed */
        else if (shape == 2 && rnd(2)) sbuf_adds(o, "null"), has_new = 0; /* neither (if old is also null: reject) */
        else {
            int np = 0;
            const char *st = clean || rnd(8) ? PICKP(states, STATES_PLAIN, &np) : "5";
            if (!plain_state_text(st)) slow = 1;
            gen_state(o, entity, st, lc_new, &new_slow);
            slow |= new_slow;
        }
        if (!has_old && !has_new) slow = 1;
        if (!clean && rnd(50) == 0) sbuf_printf(o, ",\"entity_id\":\"%s\"", entity), slow |= has_eid; /* repeated key */
        sbuf_adds(o, "}");
    } else if (kind == 7) {
        /* 1e2 is not json_text's form of 100: data is then not copied verbatim */
        int exp_form = !plain && rnd(2);
        sbuf_printf(o, "{\"domain\":\"light\",\"service\":\"turn_on\",\"service_data\":{\"entity_id\":\"%s\","
                       "\"brightness\":%u,\"rgb\":[255,0.5,%s]}}", entity, rnd(256), exp_form ? "1e2" : "100");
        if (exp_form) slow = 1;
    } else {
        /* data is copied verbatim when canonical: \" and \t are json_text's own
         * escapes, a \u escape is not (it writes the UTF-8) */
        int np = 0;
        const char *name = PICKP(names, NAMES_PLAIN, &np);
        if (strstr(name, "\\u")) slow = 1;
        sbuf_printf(o, "{\"entity_id\":\"%s\",\"name\":%s,\"source\":\"state of %s\"%s}",
                    rnd(4) ? "automation.porch" : "Bad.One", name, entity, rnd(3) ? "" : ",\"n\":1.0");
    }
    int has_origin = 1;
    switch (rnd(20)) {
    case 0: has_origin = 0; break; /* no origin */
    case 1: sbuf_adds(o, ",\"origin\":5"); break;
    default: sbuf_printf(o, ",\"origin\":\"%s\"", rnd(5) ? "LOCAL" : "REMOTE");
    }
    const char *t;
    unsigned tcase = rnd(25);
    if (clean && (tcase == 0 || tcase == 1 || tcase == 3)) tcase = 4;
    switch (tcase) {
    case 0: slow = 1; break; /* no time: a reject */
    case 1: sbuf_adds(o, ",\"time_fired\":\"yesterday\""), slow = 1; break;
    case 2: t = pick_time(), sbuf_printf(o, ",\"timestamp\":\"%s\"", t), slow |= !valid_time(t); break;
    case 3: sbuf_adds(o, ",\"time_fired\":null"), slow = 1; break;
    default: t = pick_time(), sbuf_printf(o, ",\"time_fired\":\"%s\"", t), slow |= !valid_time(t);
    }
    unsigned ccase = rnd(12);
    if (clean && (ccase == 2 || ccase == 3)) ccase = 4;
    switch (ccase) {
    case 0: break; /* no context: new_state's */
    case 1: sbuf_adds(o, ",\"context\":null"); break;
    case 2: sbuf_adds(o, ",\"context\":\"x\""), slow = 1; break;
    case 3: sbuf_adds(o, ",\"context\":{\"id\":\"\\u0041B\",\"parent_id\":null,\"user_id\":null}"), slow = 1; break;
    default:
        sbuf_printf(o, ",\"context\":{\"id\":%s,\"parent_id\":%s,\"user_id\":%s}", PICK(ctx_ids), PICK(ctx_ids),
                    PICK(ctx_ids));
    }
    if (!clean && rnd(80) == 0) sbuf_adds(o, ",\"origin\":\"REMOTE\""), slow |= has_origin; /* repeated key */
    slow |= gen_registry(o);
    sbuf_addc(o, '}');
    if (envelope) sbuf_addc(o, '}');
    return slow ? EXPECT_SLOW : EXPECT_FAST;
}

/* ---- whitespace: the same event, spaced ------------------------------------ */

static const char *const spaces[] = {" ", "  ", "\n", "\t", "\r\n  ", "\n\t\t"};

/* Copies event text `in` to o with whitespace after ':' and ',' (and sometimes
 * before them, and inside brackets) at every level. The object the fast path
 * copies -- new_state.attributes of a state_changed event, data of any other,
 * the registry's labels -- is spaced only with inside_copied == 1 (the fast
 * path then writes it without the whitespace: issue 15, cost must not depend
 * on spacing). Returns 1 when whitespace went inside a copied object. */
static int respace(sbuf *o, const char *in, size_t n, int is_sc, int inside_copied) {
    enum { MAXD = 32 };
    char keys[MAXD][24]; /* key under which each open container sits ("" in arrays) */
    int is_obj[MAXD], depth = 0, in_str = 0, esc = 0, at_key = 0, touched = 0;
    char cur_key[24] = "";
    size_t key_start = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        sbuf_addc(o, c);
        if (in_str) {
            if (esc) esc = 0;
            else if (c == '\\') esc = 1;
            else if (c == '"') {
                in_str = 0;
                if (at_key) {
                    size_t kl = i - key_start - 1;
                    if (kl >= sizeof cur_key) kl = sizeof cur_key - 1;
                    memcpy(cur_key, in + key_start + 1, kl);
                    cur_key[kl] = '\0';
                }
            }
            continue;
        }
        if (c == '"') {
            in_str = 1;
            key_start = i;
            continue;
        }
        if (c == '{' || c == '[') {
            assert_true(depth < MAXD);
            snprintf(keys[depth], sizeof keys[depth], "%s", depth > 0 && is_obj[depth - 1] ? cur_key : "");
            is_obj[depth++] = c == '{';
            at_key = c == '{';
            continue;
        }
        if (c == '}' || c == ']') {
            depth--;
            at_key = 0;
            continue;
        }
        if (c != ':' && c != ',') continue;
        if (c == ',') at_key = depth > 0 && is_obj[depth - 1];
        else at_key = 0;
        /* the path of keys from the event object (inside the envelope, if any) */
        int base = depth > 1 && strcmp(keys[1], "event") == 0 ? 2 : 1;
        int copied = is_sc ? depth >= base + 3 && strcmp(keys[base], "data") == 0 &&
                                 strcmp(keys[base + 1], "new_state") == 0 && strcmp(keys[base + 2], "attributes") == 0
                           : depth >= base + 1 && strcmp(keys[base], "data") == 0;
        /* the registry's label list is copied verbatim too */
        copied |= depth >= base + 2 && strcmp(keys[base], "homeiq_registry") == 0 && strcmp(keys[base + 1], "labels") == 0;
        if (copied && !inside_copied) continue;
        if (rnd(3) == 0) continue; /* not after every one */
        /* before the ':' / ',' too, sometimes: move it after the whitespace */
        if (rnd(4) == 0) {
            o->len--;
            sbuf_adds(o, PICK(spaces));
            sbuf_addc(o, c);
        }
        sbuf_adds(o, PICK(spaces));
        touched |= copied;
    }
    return touched;
}

/* How one event fares alone: 1 fast path, 0 jansson. */
static int took_fast_path(const char *ev, size_t len) {
    batch b;
    int rc = fastpath_build(ev, len, MAX_BATCH, &b);
    assert_int_equal(rc, FASTPATH_BUILT);
    assert_int_equal(b.n, 1);
    int fast = (int)b.fast;
    batch_free(&b);
    return fast;
}

static size_t gen_expected_fast, gen_spaced_fast, gen_spaced_slow, gen_clean_fast, gen_spaced_inside;

/* The fast path's storage request for body, and its fast count. */
static char *fast_body(const char *body, size_t len, size_t *out_len, size_t *nfast) {
    batch b;
    int rc = fastpath_build(body, len, MAX_BATCH, &b);
    assert_true(rc == FASTPATH_BUILT || rc == FASTPATH_DECLINED);
    if (rc == FASTPATH_DECLINED) return NULL;
    char *t = batch_storage_body(&b, out_len);
    assert_non_null(t);
    *nfast = b.fast;
    batch_free(&b);
    return t;
}

/* Spacing decides neither the path nor the bytes: the spaced body takes the
 * fast path for as many events as the compact one and gives storage exactly
 * the same request. */
static void check_same_as_compact(const char *compact, size_t clen, const char *spaced, size_t slen) {
    size_t cl, sl, cf, sf;
    char *cb = fast_body(compact, clen, &cl, &cf), *sb = fast_body(spaced, slen, &sl, &sf);
    if (!cb || !sb) fail_msg("the fast path declined the %s copy of a body: %.400s", cb ? "spaced" : "compact", compact);
    assert_int_equal(cf, sf);
    if (cl != sl || memcmp(cb, sb, cl) != 0) fail_msg("spacing changed the storage request: %.400s", spaced);
    free(cb);
    free(sb);
}

/* Checks the generator's expectation for one event text. */
static void expect_path(const char *ev, size_t len, int expect) {
    int fast = took_fast_path(ev, len);
    if (fast != (expect == EXPECT_FAST))
        fail_msg("expected the %s path, took the %s path: %.*s", expect == EXPECT_FAST ? "fast" : "jansson",
                 fast ? "fast" : "jansson", (int)len, ev);
}

static void test_generated(void **state) {
    (void)state;
    size_t before_total = total_events, before_fast = fast_events;
    unsigned id = 0;
    for (int round = 0; round < 160; round++) {
        sbuf o, compact;
        sbuf_init(&o);
        sbuf_init(&compact);
        unsigned form = rnd(10), n = 1 + rnd(60);
        /* even rounds: anything; odd rounds plain (what HA sends), and of those
         * 1 mod 8: clean (all fast), 3 mod 8: clean and spaced outside the copied
         * object (all still fast), 5 mod 8: clean and spaced inside it too
         * (all still fast), 7 mod 8: spaced outside it */
        plain = round % 2;
        clean = round % 8 == 1 || round % 8 == 3 || round % 8 == 5;
        int spaced = round % 8 == 3 || round % 8 == 7 ? 1 : round % 8 == 5 ? 2 : 0;
        if (form == 0) sbuf_adds(&o, spaced ? "{ \"events\" :\n[ " : "{\"events\":[");
        else if (form != 1) sbuf_adds(&o, spaced ? "[\n " : "[");
        if (form == 0) sbuf_adds(&compact, "{\"events\":[");
        else if (form != 1) sbuf_adds(&compact, "[");
        if (form == 1) n = 1;
        for (unsigned k = 0; k < n; k++) {
            if (k) sbuf_adds(&o, spaced ? " ,\n  " : ","), sbuf_addc(&compact, ',');
            sbuf ev;
            sbuf_init(&ev);
            int is_sc;
            int expect = gen_event(&ev, id++, &is_sc);
            assert_false(sbuf_failed(&ev));
            sbuf_add(&compact, ev.data, ev.len);
            if (spaced) {
                sbuf sp;
                sbuf_init(&sp);
                int touched = respace(&sp, ev.data, ev.len, is_sc, spaced == 2);
                assert_false(sbuf_failed(&sp));
                gen_spaced_inside += touched;
                expect_path(sp.data, sp.len, expect);
                if (expect == EXPECT_FAST) gen_spaced_fast++;
                else gen_spaced_slow++;
                sbuf_add(&o, sp.data, sp.len);
                sbuf_free(&sp);
            } else {
                expect_path(ev.data, ev.len, expect);
                sbuf_add(&o, ev.data, ev.len);
            }
            if (expect == EXPECT_FAST) gen_expected_fast++;
            if (clean) {
                assert_int_equal(expect, EXPECT_FAST); /* the generator's own promise */
                gen_clean_fast++;
            }
            sbuf_free(&ev);
        }
        if (form == 0) sbuf_adds(&o, spaced ? " ]\n}" : "]}");
        else if (form != 1) sbuf_adds(&o, spaced ? "\n]" : "]");
        if (form == 0) sbuf_adds(&compact, "]}");
        else if (form != 1) sbuf_addc(&compact, ']');
        assert_false(sbuf_failed(&o) || sbuf_failed(&compact));
        check_body(o.data, o.len);
        if (spaced) check_same_as_compact(compact.data, compact.len, o.data, o.len);
        sbuf_free(&compact);
        /* the same batch once more: whitespace around it, and a 64-bit overflow somewhere */
        if (round % 10 == 0 && form >= 2) {
            sbuf w;
            sbuf_init(&w);
            const char *open = memchr(o.data, '[', o.len), *close = o.data + o.len - 1;
            while (*close != ']') close--;
            sbuf_printf(&w, " \n[{\"event_type\":\"x\",\"big\":%s,\"data\":{}},%.*s ]\n",
                        round % 20 ? "123456789012345678901234" : "1.8e308" /* overflows a double */, (int)(close - open - 1),
                        open + 1);
            check_body(w.data, w.len);
            sbuf_free(&w);
        }
        sbuf_free(&o);
    }
    size_t gen_total = total_events - before_total, gen_fast = fast_events - before_fast;
    print_message("generated: %zu events in built bodies, %zu on the fast path (%zu expected, %zu of them in clean "
                  "rounds), spaced %zu fast + %zu jansson (%zu spaced inside the copied object); %zu of %zu bodies "
                  "declined\n",
                  gen_total, gen_fast, gen_expected_fast, gen_clean_fast, gen_spaced_fast, gen_spaced_slow,
                  gen_spaced_inside, declined_bodies, bodies);
    assert_true(gen_total >= 4000);
    /* every event the generator knew to be plain took the fast path, and no other did */
    assert_int_equal(gen_fast, gen_expected_fast);
    assert_true(gen_fast * 5 >= gen_total * 2); /* 40 %: the rest are rejects and forms left to jansson */
    assert_true(gen_clean_fast >= 1000);
    assert_true(gen_spaced_fast >= 400);
    assert_true(gen_spaced_slow >= 400);
    assert_true(gen_spaced_inside >= 300);
}

/* Plain HA events (what ingestion forwards) must all take the fast path. */
static void test_plain_all_fast(void **state) {
    (void)state;
    const char *ev = "[{\"event_type\":\"state_changed\",\"data\":{\"entity_id\":\"sensor.t\",\"old_state\":{\"entity_id\":"
                     "\"sensor.t\",\"state\":\"22.8\",\"attributes\":{\"unit_of_measurement\":\"\xc2\xb0""C\"},"
                     "\"last_changed\":\"2025-06-14T08:28:20.118734+00:00\"},\"new_state\":{\"entity_id\":\"sensor.t\","
                     "\"state\":\"22.9\",\"attributes\":{\"unit_of_measurement\":\"\xc2\xb0""C\",\"friendly_name\":\"T\"},"
                     "\"last_changed\":\"2025-06-14T08:33:20.218734+00:00\"}},\"origin\":\"LOCAL\",\"time_fired\":"
                     "\"2025-06-14T08:33:20.218734+00:00\",\"context\":{\"id\":\"01J\",\"parent_id\":null,\"user_id\":null}},"
                     "{\"event_type\":\"call_service\",\"data\":{\"domain\":\"light\"},\"time_fired\":\"2025-06-14T08:33:20Z\"}]";
    batch b;
    assert_int_equal(fastpath_build(ev, strlen(ev), MAX_BATCH, &b), FASTPATH_BUILT);
    assert_int_equal(b.fast, 2);
    batch_free(&b);
    check_body(ev, strlen(ev));
    assert_int_equal(fastpath_build(ev, strlen(ev), 1, &b), FASTPATH_TOO_MANY);
    assert_int_equal(b.n, 2);
}

/* The body's one scan notes each event's members and its own notes: an
 * event whose attributes need jansson (a number written "7.50", a repeated
 * key, an empty one among them, a repeated wanted member, an escaped key)
 * goes to jansson alone, the plain events around it stay on the fast path,
 * and every byte is still the jansson path's. Also in an envelope, {"events"}
 * and as a lone event. */
static void test_notes_per_event(void **state) {
    (void)state;
#define SC(attrs, extra)                                                                                            \
    "{\"event_type\":\"state_changed\",\"data\":{\"entity_id\":\"sensor.t\",\"new_state\":{\"entity_id\":\"sensor.t\"," \
    "\"state\":\"21.5\",\"attributes\":" attrs ",\"last_changed\":\"2025-06-14T08:33:20.218734+00:00\"}," \
    "\"old_state\":null}" extra ",\"time_fired\":\"2025-06-14T08:33:20.218734+00:00\"}"
    static const struct {
        const char *ev;
        int fast;
    } evs[] = {
        {SC("{\"unit_of_measurement\":\"W\"}", ""), 1},
        {SC("{\"v\":7.50}", ""), 0},
        {SC("{\"lat\":52.3731339,\"lon\":-4.8903147,\"z\":0.0001}", ""), 1},
        {SC("{\"\":1,\"\":2}", ""), 0},
        {SC("{\"a\": [1, 2]}", ""), 1},
        {SC("{\"friendly_name\":\"a\",\"friendly_name\":\"b\"}", ""), 0},
        {SC("{}", ",\"origin\":\"LOCAL\",\"origin\":\"REMOTE\""), 0},
        {SC("{\"unit_of_measuremen\\u0074\":\"W\"}", ""), 0},
        {SC("{\"s\":\"\\/\"}", ""), 0},
        {SC("{\"unit_of_measurement\":\"kWh\"}", ""), 1},
    };
#undef SC
    size_t nev = sizeof evs / sizeof evs[0];
    sbuf body;
    sbuf_init(&body);
    for (int form = 0; form < 3; form++) {
        sbuf_reset(&body);
        sbuf_adds(&body, form == 1 ? "{\"events\":[" : "[");
        for (size_t i = 0; i < nev; i++) {
            if (i) sbuf_addc(&body, ',');
            if (form == 2) sbuf_adds(&body, "{\"type\":\"event\",\"event\":");
            sbuf_adds(&body, evs[i].ev);
            if (form == 2) sbuf_adds(&body, ",\"id\":1}");
        }
        sbuf_adds(&body, form == 1 ? "]}" : "]");
        batch b;
        size_t want = 0;
        for (size_t i = 0; i < nev; i++) want += (size_t)evs[i].fast;
        assert_int_equal(fastpath_build(body.data, body.len, MAX_BATCH, &b), FASTPATH_BUILT);
        assert_int_equal(b.fast, want);
        batch_free(&b);
        check_body(body.data, body.len);
    }
    for (size_t i = 0; i < nev; i++) { /* each alone */
        batch b;
        assert_int_equal(fastpath_build(evs[i].ev, strlen(evs[i].ev), MAX_BATCH, &b), FASTPATH_BUILT);
        assert_int_equal(b.fast, (size_t)evs[i].fast);
        batch_free(&b);
        check_body(evs[i].ev, strlen(evs[i].ev));
    }
    sbuf_free(&body);
}

/* lib/json_scan's notes, which the fast path's decisions rest on. */
static unsigned notes_of(const char *t) {
    unsigned n = 0;
    assert_int_equal(jscan_check(t, strlen(t), JSCAN_NOTE_CANONICAL, &n), 0);
    return n;
}

static void test_scan_notes(void **state) {
    (void)state;
    assert_int_equal(notes_of("{\"a\":[1,2.5,-3,\"x\\\"y\\n\\u001f\",null,true,{}],\"b\":7.0,\"c\":-0.0}"), 0);
    assert_int_equal(notes_of(" {\"a\":1} "), 0); /* surrounding whitespace is fine */
    assert_int_equal(notes_of("{\"a\": 1}"), JSCAN_NOTE_WS);
    assert_int_equal(notes_of("[\"\\/\"]"), JSCAN_NOTE_ESCAPE);
    assert_int_equal(notes_of("[\"\\u00e9\"]"), JSCAN_NOTE_ESCAPE);
    assert_int_equal(notes_of("[\"\\u001F\"]"), JSCAN_NOTE_ESCAPE);
    assert_int_equal(notes_of("[\"\\u000a\"]"), JSCAN_NOTE_ESCAPE); /* json_text writes \n */
    assert_int_equal(notes_of("{\"\\u0061\":1}"), JSCAN_NOTE_KEY_ESCAPE | JSCAN_NOTE_ESCAPE);
    assert_int_equal(notes_of("[1e3]"), JSCAN_NOTE_NUMBER);
    assert_int_equal(notes_of("[-0]"), JSCAN_NOTE_NUMBER);
    assert_int_equal(notes_of("[7.50]"), JSCAN_NOTE_NUMBER);
    assert_int_equal(notes_of("{\"a\":1,\"b\":{\"a\":2},\"a\":3}"), JSCAN_NOTE_DUP_KEY);
    assert_int_equal(notes_of("[{\"a\":1},{\"a\":1}]"), 0); /* same key in sibling objects */
    assert_true(notes_of("[\"\\u0000\"]") & JSCAN_NOTE_JANSSON);
    assert_true(notes_of("[\"\\ud800x\"]") & JSCAN_NOTE_JANSSON);
    assert_false(notes_of("[\"\\ud83c\\udf21\"]") & JSCAN_NOTE_JANSSON); /* a pair is fine */
    assert_true(notes_of("[\"\\udf21\"]") & JSCAN_NOTE_JANSSON);
    assert_true(notes_of("[1234567890123456789]") & JSCAN_NOTE_JANSSON);
    assert_false(notes_of("[123456789012345678]") & JSCAN_NOTE_JANSSON);
    assert_true(notes_of("[1e400]") & JSCAN_NOTE_JANSSON);
    assert_false(notes_of("[1e-300]") & JSCAN_NOTE_JANSSON);
    assert_true(notes_of("[1.8e308]") & JSCAN_NOTE_JANSSON); /* just past DBL_MAX */
    assert_false(notes_of("[1.5e300]") & JSCAN_NOTE_JANSSON); /* exactly what jansson refuses, no more */
    assert_false(notes_of("[1.7976931348623157e308]") & JSCAN_NOTE_JANSSON);
}

int main(void) {
    setenv("TZ", "Europe/Amsterdam", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_notes),
        cmocka_unit_test(test_plain_all_fast),
        cmocka_unit_test(test_notes_per_event),
        cmocka_unit_test(test_data_files),
        cmocka_unit_test(test_generated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
