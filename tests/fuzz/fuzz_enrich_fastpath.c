/* fuzz_enrich_fastpath.c -- enrichment's fast path (fastpath_build, straight
 * from the request text) against the general path (jansson as lib/httpd
 * reads, event_unpack_batch, batch_build): whenever the fast path builds a
 * batch, the request to storage must be byte-identical and the rejects the
 * same. Declining is always allowed. Also: neither path may fail on any input
 * (finding 1 made batch_build fail on a cut UTF-8 character).
 *
 * Whitespace (issue 15): each input is also run spaced -- a space or newline
 * after every ':' and ',' outside strings, as json.dumps and pretty-printers
 * write -- through the same differential, and whenever the fast path built
 * the input as given, it must build the spaced one too, with as many events
 * on the fast path and a byte-identical storage request: how the JSON is
 * spaced may decide neither the path nor the bytes. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "event.h"
#include "fastpath.h"

#define MAX_BATCH 10000

static void die(const char *what, const uint8_t *d, size_t n) {
    fprintf(stderr, "fast path differential: %s\ninput (%zu bytes): %.*s\n", what, n, (int)(n > 600 ? 600 : n),
            (const char *)d);
    abort();
}

/* 0 built, 1 refused (400), 2 too many. */
static int slow_build(const char *body, size_t len, batch *b) {
    if (memchr(body, '\0', len)) return 1; /* lib/httpd refuses it first */
    json_error_t e;
    json_t *v = json_loadb(body, len, JSON_ALLOW_NUL, &e);
    if (!v && json_error_code(&e) == json_error_numeric_overflow)
        v = json_loadb(body, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
    if (!v) return 1;
    json_t *events;
    const char *err;
    int rc = event_unpack_batch(v, &events, &err);
    json_decref(v);
    if (rc) return 1;
    if (json_array_size(events) > MAX_BATCH) {
        json_decref(events);
        return 2;
    }
    rc = batch_build(events, b);
    json_decref(events);
    return rc == 0 ? 0 : 3;
}

/* The input with whitespace after each ':' and ',' outside strings; malloc'd. */
static char *spaced_copy(const char *in, size_t n, size_t *out_len) {
    char *o = malloc(3 * n + 1);
    size_t k = 0;
    int in_str = 0, esc = 0;
    if (!o) abort();
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        o[k++] = c;
        if (in_str) {
            if (esc) esc = 0;
            else if (c == '\\') esc = 1;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == ':' || c == ',') {
            if (i % 3 == 2) o[k++] = '\n', o[k++] = '\t';
            else o[k++] = ' ';
        }
    }
    *out_len = k;
    return o;
}

/* The differential for one body; the fast path's storage request (malloc'd,
 * *fl) and its fast count when it built one, else NULL. */
static char *check_one(const char *body, size_t size, size_t *fl, size_t *nfast) {
    const uint8_t *data = (const uint8_t *)body;
    batch slow, fast;
    int s = slow_build(body, size, &slow);
    if (s == 3) die("batch_build failed (the whole batch would get 503 forever)", data, size);
    int f = fastpath_build(body, size, MAX_BATCH, &fast);
    if (f < 0) die("fastpath_build failed", data, size);
    if (f == FASTPATH_DECLINED || f == FASTPATH_TOO_MANY) {
        if (f == FASTPATH_TOO_MANY && s != 2) die("fast path says too many, jansson path does not", data, size);
        if (s == 0) batch_free(&slow);
        return NULL;
    }
    if (s != 0) die("fast path built a body the jansson path refuses", data, size);
    size_t sl;
    char *sb = batch_storage_body(&slow, &sl), *fb = batch_storage_body(&fast, fl);
    if (!sb || !fb || sl != *fl || memcmp(sb, fb, sl) != 0) die("storage bodies differ", data, size);
    if (slow.nrecords != fast.nrecords || !json_equal(slow.rejected, fast.rejected))
        die("records or rejects differ", data, size);
    *nfast = fast.fast;
    free(sb);
    batch_free(&slow);
    batch_free(&fast);
    return fb;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t fl, nfast, sfl, snfast, slen;
    char *fb = check_one((const char *)data, size, &fl, &nfast);
    char *spaced = spaced_copy((const char *)data, size, &slen);
    char *sfb = check_one(spaced, slen, &sfl, &snfast);
    if (fb) {
        if (!sfb) die("the fast path declined the spaced copy of a body it built", (const uint8_t *)spaced, slen);
        if (snfast != nfast) die("spacing changed how many events took the fast path", (const uint8_t *)spaced, slen);
        if (sfl != fl || memcmp(sfb, fb, fl) != 0) die("spacing changed the storage request", (const uint8_t *)spaced, slen);
    }
    free(fb);
    free(sfb);
    free(spaced);
    return 0;
}
