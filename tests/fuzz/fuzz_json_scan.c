/* fuzz_json_scan.c -- lib/json_scan against jansson on arbitrary bytes.
 *
 * Properties (any violation aborts):
 *  1. jscan_strict accepts exactly what jansson accepts as lib/httpd reads
 *     (a NUL byte refused first; JSON_ALLOW_NUL; big integers re-read as
 *     reals) -- the promise that
 *     every service accepts the same JSON. One known, documented difference:
 *     jscan refuses nesting deeper than JSCAN_MAX_DEPTH (512), jansson allows
 *     2048; such inputs are skipped.
 *  2. Strict acceptance implies jscan_validate acceptance.
 *  3. When jscan_check reports no JSCAN_NOTE_CANONICAL note, json_text_dump of
 *     jansson's tree reproduces the text byte for byte (enrichment's fast
 *     path copies such text verbatim instead of re-serialising it).
 *  4. The member/element iterators agree with validation. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "json_text.h"
#include "sbuf.h"

static int max_depth(const char *p, size_t n) {
    int d = 0, m = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') in_str = 1;
        else if (c == '[' || c == '{') m = ++d > m ? d : m;
        else if (c == ']' || c == '}') d--;
    }
    return m;
}

static int count_cb(const char *v, size_t l, void *arg) {
    (void)v;
    (void)l;
    (*(size_t *)arg)++;
    return 0;
}

static int member_cb(const char *k, size_t kl, const char *v, size_t vl, void *arg) {
    (void)k;
    (void)kl;
    (void)v;
    (void)vl;
    (*(size_t *)arg)++;
    return 0;
}

static void die(const char *what, const uint8_t *d, size_t n) {
    fprintf(stderr, "json_scan differential: %s\ninput (%zu bytes): %.*s\n", what, n, (int)(n > 400 ? 400 : n),
            (const char *)d);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = (const char *)data;
    size_t pos = 0;
    const char *why = NULL;
    int strict = jscan_strict(p, size, &pos, &why);
    int plain = jscan_validate(p, size, NULL);
    if (strict == 0 && plain != 0) die("strict accepts what validate refuses", data, size);
    if (strict != 0 && pos > size) die("error position past the end", data, size);

    /* as lib/httpd reads: a NUL byte refused first (jansson stops at one) */
    json_error_t e = {.text = "a NUL byte"};
    json_t *v = NULL;
    if (!memchr(p, '\0', size)) {
        v = json_loadb(p, size, JSON_ALLOW_NUL | JSON_DECODE_ANY, &e);
        if (!v && json_error_code(&e) == json_error_numeric_overflow)
            v = json_loadb(p, size, JSON_ALLOW_NUL | JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &e);
    }
    int jok = v != NULL;
    if ((strict == 0) != jok && max_depth(p, size) < JSCAN_MAX_DEPTH - 2) {
        char msg[300];
        snprintf(msg, sizeof msg, "jscan_strict %s (%s) but jansson %s (%s)", strict ? "refuses" : "accepts",
                 why ? why : "-", jok ? "accepts" : "refuses", jok ? "-" : e.text);
        die(msg, data, size);
    }
    if (v && strict == 0) {
        unsigned notes = 0;
        if (jscan_check(p, size, JSCAN_NOTE_CANONICAL, &notes) != 0) die("jscan_check refuses valid text", data, size);
        if (notes == 0) {
            size_t b = 0, end = size;
            while (b < end && (p[b] == ' ' || p[b] == '\t' || p[b] == '\n' || p[b] == '\r')) b++;
            while (end > b && (p[end - 1] == ' ' || p[end - 1] == '\t' || p[end - 1] == '\n' || p[end - 1] == '\r'))
                end--;
            sbuf out;
            sbuf_init(&out);
            json_text_dump(v, &out);
            if (!sbuf_failed(&out) && (out.len != end - b || memcmp(out.data, p + b, out.len) != 0))
                die("no note, but json_text_dump writes different text", data, size);
            sbuf_free(&out);
        }
        size_t k = 0;
        if (json_is_object(v) && (jscan_object(p, size, member_cb, &k) != 0 || k < json_object_size(v)))
            die("jscan_object disagrees", data, size);
        if (json_is_array(v) && (jscan_array(p, size, count_cb, &k) != 0 || k != json_array_size(v)))
            die("jscan_array disagrees", data, size);
    }
    json_decref(v);
    return 0;
}
