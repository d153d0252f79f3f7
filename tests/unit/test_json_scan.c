/* test_json_scan.c -- unit tests of lib/json_scan, the validating JSON scanner
 * that extracts HA's "event" member byte for byte (with the other lib tests;
 * HOME_ASSISTANT_URL handling is tests/ingestion/test_ha_url.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "json_text.h"
#include "sbuf.h"

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

/* ---- trusted skips (64 bytes at a time) ---- */

static unsigned rnd_state = 12345;
static unsigned rnd(void) {
    rnd_state = rnd_state * 1103515245u + 12345u;
    return rnd_state >> 8;
}

/* Random valid JSON: strings full of brackets, escaped quotes and backslashes
 * (some across 64-byte blocks), nested objects and arrays. */
static void gen_value(sbuf *o, int depth);
static void gen_string(sbuf *o) {
    static const char *bits[] = {"a", "{", "}", "[", "]", "\\\"", "\\\\", "\\u00e9", " ", ",", ":", "xyzxyzxyz", "\\n"};
    sbuf_addc(o, '"');
    for (unsigned i = 0, n = rnd() % 40; i < n; i++) sbuf_adds(o, bits[rnd() % (sizeof bits / sizeof *bits)]);
    sbuf_addc(o, '"');
}
static void gen_value(sbuf *o, int depth) {
    unsigned k = depth > 5 ? rnd() % 3 : rnd() % 5;
    if (k == 0) gen_string(o);
    else if (k == 1) sbuf_adds(o, rnd() % 2 ? "-12.5e3" : "true");
    else if (k == 2) sbuf_adds(o, "null");
    else {
        int obj = k == 3;
        sbuf_addc(o, obj ? '{' : '[');
        for (unsigned i = 0, n = rnd() % 6; i < n; i++) {
            if (i) sbuf_adds(o, rnd() % 4 ? "," : " , ");
            if (obj) {
                gen_string(o);
                sbuf_addc(o, ':');
            }
            gen_value(o, depth + 1);
        }
        sbuf_addc(o, obj ? '}' : ']');
    }
}

typedef struct spans {
    const char *v[64];
    size_t n[64];
    int count;
} spans;
static int span_cb(const char *k, size_t kl, const char *v, size_t vl, void *arg) {
    (void)k;
    (void)kl;
    spans *s = arg;
    if (s->count < 64) s->v[s->count] = v, s->n[s->count] = vl;
    s->count++;
    return 0;
}

/* Reads obj level by level the trusted way and checks every level's member
 * spans against the validating scan. */
static void check_levels(const char *p, size_t len) {
    spans want = {0}, got = {0};
    assert_int_equal(jscan_object(p, len, span_cb, &want), 0);
    assert_int_equal(jscan_object_trusted(p, len, span_cb, &got), 0);
    assert_int_equal(got.count, want.count);
    for (int i = 0; i < want.count && i < 64; i++) {
        assert_ptr_equal(got.v[i], want.v[i]);
        assert_int_equal(got.n[i], want.n[i]);
        if (want.v[i][0] == '{') check_levels(want.v[i], want.n[i]);
    }
}

static void test_trusted_skips_match_the_validating_scan(void **state) {
    (void)state;
    for (int t = 0; t < 3000; t++) {
        sbuf o;
        sbuf_init(&o);
        sbuf_adds(&o, "{\"pad\":\"");
        for (unsigned i = 0, n = rnd() % 64; i < n; i++) sbuf_addc(&o, 'p'); /* moves the blocks' edges */
        sbuf_adds(&o, "\"");
        for (unsigned i = 0, n = 1 + rnd() % 6; i < n; i++) {
            sbuf_adds(&o, ",\"k\":");
            gen_value(&o, 0);
        }
        sbuf_addc(&o, '}');
        assert_false(sbuf_failed(&o));
        assert_int_equal(jscan_validate(o.data, o.len, NULL), 0);
        check_levels(o.data, o.len);
        sbuf_free(&o);
    }
}

/* The number note (what json_text_real would print differently) against
 * printing itself, for reals of every shape: short, long, with trailing
 * zeros, tiny, with exponents. */
static void test_real_note_matches_printing(void **state) {
    (void)state;
    for (int t = 0; t < 200000; t++) {
        char txt[64];
        size_t n = 0;
        if (rnd() % 3 == 0) txt[n++] = '-';
        unsigned ni = rnd() % 4 == 0 ? 1 : 1 + rnd() % 16;
        for (unsigned i = 0; i < ni; i++) txt[n++] = (char)('0' + (i == 0 && ni > 1 ? 1 + rnd() % 9 : rnd() % 10));
        if (ni == 1 && rnd() % 2) txt[n - 1] = '0';
        unsigned nf = rnd() % 17;
        if (nf || rnd() % 4) {
            txt[n++] = '.';
            if (nf == 0) nf = 1;
            for (unsigned i = 0; i < nf; i++) txt[n++] = (char)('0' + (rnd() % 3 == 0 ? 0 : rnd() % 10));
        }
        if (rnd() % 8 == 0) n += (size_t)snprintf(txt + n, sizeof txt - n, "e%d", (int)(rnd() % 40) - 20);
        txt[n] = '\0';
        if (!strpbrk(txt, ".e")) continue; /* an integer */
        unsigned notes = 0;
        assert_int_equal(jscan_check(txt, n, JSCAN_NOTE_NUMBER, &notes), 0);
        sbuf o;
        sbuf_init(&o);
        json_text_real(&o, strtod(txt, NULL));
        int differs = o.len != n || memcmp(o.data, txt, n) != 0;
        if (differs != ((notes & JSCAN_NOTE_NUMBER) != 0))
            fail_msg("%s: printed %s, note %u", txt, o.data, notes & JSCAN_NOTE_NUMBER);
        sbuf_free(&o);
    }
}

/* jscan_collect_items: the wanted members of each item, at every level, in
 * the one validating pass; spans cleared between items; `unusual` for a
 * repeated wanted key or an escaped key in a wanted object; notes per item;
 * arrays not descended into; a lone object is one item. */
typedef struct collected {
    int n, unusual[8];
    unsigned notes[8];
    char got[8][4][32]; /* spans of slots 0..3 ("" absent), '!' first when esc */
} collected;

static void collect_item(const char *val, size_t vlen, const jscan_span *sp, int unusual, unsigned notes, void *arg) {
    collected *c = arg;
    (void)val, (void)vlen;
    assert_true(c->n < 8);
    c->unusual[c->n] = unusual;
    c->notes[c->n] = notes;
    for (int i = 0; i < 4; i++)
        if (sp[i].p) snprintf(c->got[c->n][i], 32, "%s%.*s", sp[i].esc ? "!" : "", (int)sp[i].n, sp[i].p);
    for (int i = 4; i < JSCAN_COLLECT_SLOTS; i++) assert_null(sp[i].p);
    c->n++;
}

static void test_collect_items(void **state) {
    (void)state;
    static const jscan_node_key inner_k[] = {{"c", 1, 2, NULL}};
    static const jscan_node inner = {inner_k, 1};
    static const jscan_node_key root_k[] = {{"a", 1, 0, NULL}, {"b", 1, 1, &inner}, {"e", 1, 3, NULL}};
    static const jscan_node root = {root_k, 3};
    static jscan_collect jc;
    collected c;
    unsigned notes;
    const char *t = "[{\"a\":1,\"b\":{\"c\":\"x\\\"y\",\"d\":[1,{\"c\":2}]},\"e\":\"p\"}, 5,"
                    "{\"b\":{\"c\":3},\"b\":{}},{\"a\\u0041\":1,\"e\":\"q\"},{\"e\":[{\"a\":7}]}]";
    memset(&c, 0, sizeof c);
    jc.root = &root, jc.item_fn = collect_item, jc.arg = &c;
    assert_int_equal(jscan_collect_items(t, strlen(t), &jc, JSCAN_NOTE_CANONICAL, &notes), 0);
    assert_int_equal(c.n, 5);
    assert_string_equal(c.got[0][0], "1");
    assert_string_equal(c.got[0][1], "{\"c\":\"x\\\"y\",\"d\":[1,{\"c\":2}]}");
    assert_string_equal(c.got[0][2], "!\"x\\\"y\""); /* b.c; not the c inside d's array */
    assert_string_equal(c.got[0][3], "\"p\"");
    assert_int_equal(c.unusual[0], 0);
    assert_int_equal(c.notes[0], 0);
    assert_string_equal(c.got[1][0], "");
    assert_int_equal(c.notes[1], 0); /* the whitespace before 5 is between items */
    assert_int_equal(c.unusual[2], 1);  /* "b" twice */
    assert_string_equal(c.got[2][2], "3");
    assert_int_equal(c.unusual[3], 1); /* an escaped key in a wanted object */
    assert_true(c.notes[3] & JSCAN_NOTE_KEY_ESCAPE);
    assert_string_equal(c.got[3][3], "\"q\"");
    assert_string_equal(c.got[4][0], ""); /* "a" inside e's array is no member of the item */
    assert_int_equal(c.unusual[4], 0);
    assert_true(notes & JSCAN_NOTE_WS);

    memset(&c, 0, sizeof c);
    const char *lone = " {\"e\":\"z\",\"b\":{\"c\":null}} ";
    assert_int_equal(jscan_collect_items(lone, strlen(lone), &jc, 0, &notes), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.got[0][2], "null");
    assert_string_equal(c.got[0][3], "\"z\"");

    const char *bad[] = {"[{\"a\":1},{\"a\":]", "[{\"a\":1}", "{\"a\":1}x", "5", "[{\"b\":{\"c\":\"\\x\"}}]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&c, 0, sizeof c);
        assert_int_equal(jscan_collect_items(bad[i], strlen(bad[i]), &jc, 0, &notes), -1);
    }
}

/* jscan_check_items: each item's members and end (with its own notes) in the
 * validating pass, the top-level members after them; only the items_key
 * array of a top-level object (or a bare array) holds items. */
typedef struct items_seen {
    char log[512];
    size_t n;
} items_seen;

static void items_add(items_seen *s, const char *tag, const char *k, size_t kl, const char *v, size_t vl) {
    s->n += (size_t)snprintf(s->log + s->n, sizeof s->log - s->n, "%s%.*s=%.*s;", tag, (int)kl, k ? k : "", (int)vl, v);
}
static int items_top(const char *k, size_t kl, const char *v, size_t vl, void *arg) {
    items_add(arg, "T:", k, kl, v, vl > 3 ? 3 : vl);
    return 0;
}
static int items_member(const char *k, size_t kl, const char *v, size_t vl, void *arg) {
    items_add(arg, "M:", k, kl, v, vl);
    return 0;
}
static void items_end(const char *v, size_t vl, unsigned notes, void *arg) {
    items_seen *s = arg;
    s->n += (size_t)snprintf(s->log + s->n, sizeof s->log - s->n, "E%zu/%u;", vl, notes);
    (void)v;
}

static void test_check_items(void **state) {
    (void)state;
    items_seen s;
    jscan_items h = {"events", items_top, items_member, items_end, &s};
    unsigned notes;
    memset(&s, 0, sizeof s);
    const char *t = "{\"x\":{\"events\":[{\"no\":1}]},\"events\": [{\"a\":1,\"b\":{\"c\":2}}, 5,{\"d\" : \"e\"}],\"y\":[{\"z\":0}]}";
    assert_int_equal(jscan_check_items(t, strlen(t), &h, JSCAN_NOTE_CANONICAL, &notes), 0);
    assert_string_equal(s.log, "T:x={\"e;M:a=1;M:b={\"c\":2};E19/0;E1/0;M:d=\"e\";E11/1;T:events=[{\";T:y=[{\";");
    assert_true(notes & JSCAN_NOTE_WS);
    memset(&s, 0, sizeof s);
    const char *arr = " [{\"k\":1.50},[{\"j\":1}]] ";
    assert_int_equal(jscan_check_items(arr, strlen(arr), &h, JSCAN_NOTE_CANONICAL, &notes), 0);
    assert_string_equal(s.log, "M:k=1.50;E10/8;E9/0;");
    /* not valid: -1, whatever ran before */
    const char *bad[] = {"{\"events\":[{\"a\":1,}]}", "[{\"a\":01}]", "{\"events\":[]", "7 8"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&s, 0, sizeof s);
        assert_int_equal(jscan_check_items(bad[i], strlen(bad[i]), &h, 0, &notes), -1);
    }
    memset(&s, 0, sizeof s);
    assert_int_equal(jscan_check_items("\"events\"", 8, &h, 0, &notes), 0); /* a scalar: valid, no items */
    assert_string_equal(s.log, "");
}

/* The repeated-key note against brute force: objects (and an object nested
 * in each) of random short keys, many of which collide in the scanner's key
 * filter (same length, first and last byte) without being equal. */
static void test_dup_key_note(void **state) {
    (void)state;
    for (int t = 0; t < 20000; t++) {
        char txt[2048], keys[2][40][8];
        size_t n = 0;
        int nk[2] = {1 + (int)(rnd() % 30), (int)(rnd() % 10)}, dup = 0;
        for (int o = 0; o < 2; o++)
            for (int i = 0; i < nk[o]; i++) {
                int len = (int)(rnd() % 5);
                for (int c = 0; c < len; c++) keys[o][i][c] = "abc"[rnd() % 3];
                keys[o][i][len] = '\0';
                for (int j = 0; j < i; j++) dup |= strcmp(keys[o][i], keys[o][j]) == 0;
            }
        n += (size_t)snprintf(txt + n, sizeof txt - n, "{");
        for (int i = 0; i < nk[0]; i++) {
            n += (size_t)snprintf(txt + n, sizeof txt - n, "%s\"%s\":", i ? "," : "", keys[0][i]);
            if (i == nk[0] / 2) { /* the nested object: its keys are its own */
                n += (size_t)snprintf(txt + n, sizeof txt - n, "{");
                for (int j = 0; j < nk[1]; j++)
                    n += (size_t)snprintf(txt + n, sizeof txt - n, "%s\"%s\":%d", j ? "," : "", keys[1][j], j);
                n += (size_t)snprintf(txt + n, sizeof txt - n, "}");
            } else {
                n += (size_t)snprintf(txt + n, sizeof txt - n, "%d", i);
            }
        }
        n += (size_t)snprintf(txt + n, sizeof txt - n, "}");
        unsigned notes = 0;
        assert_int_equal(jscan_check(txt, n, JSCAN_NOTE_DUP_KEY, &notes), 0);
        if (dup != ((notes & JSCAN_NOTE_DUP_KEY) != 0)) fail_msg("%s: repeated %d, note %u", txt, dup, notes);
    }
}

/* Zero is printed without printf now: the same text as before (jansson
 * reads "-0.0" back as negative zero). */
static void test_real_zero_text(void **state) {
    (void)state;
    sbuf o;
    sbuf_init(&o);
    json_text_real(&o, 0.0);
    sbuf_addc(&o, ' ');
    json_text_real(&o, -0.0);
    sbuf_addc(&o, ' ');
    json_text_real(&o, 0.5);
    assert_string_equal(o.data, "0.0 -0.0 0.5");
    sbuf_free(&o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_accepts_json),
        cmocka_unit_test(test_validate_rejects_bad_json),
        cmocka_unit_test(test_object_members_are_exact_spans),
        cmocka_unit_test(test_array_elements),
        cmocka_unit_test(test_trusted_skips_match_the_validating_scan),
        cmocka_unit_test(test_real_note_matches_printing),
        cmocka_unit_test(test_real_zero_text),
        cmocka_unit_test(test_collect_items),
        cmocka_unit_test(test_check_items),
        cmocka_unit_test(test_dup_key_note),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
