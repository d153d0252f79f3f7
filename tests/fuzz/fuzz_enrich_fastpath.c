/* fuzz_enrich_fastpath.c -- enrichment's fast path (fastpath_build, straight
 * from the request text) against the general path (jansson as lib/httpd
 * reads, event_unpack_batch, batch_build): whenever the fast path builds a
 * batch, the request to storage must be byte-identical and the rejects the
 * same. Declining is always allowed. Also: neither path may fail on any input
 * (finding 1 made batch_build fail on a cut UTF-8 character). */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *body = (const char *)data;
    batch slow, fast;
    int s = slow_build(body, size, &slow);
    if (s == 3) die("batch_build failed (the whole batch would get 503 forever)", data, size);
    int f = fastpath_build(body, size, MAX_BATCH, &fast);
    if (f < 0) die("fastpath_build failed", data, size);
    if (f == FASTPATH_DECLINED || f == FASTPATH_TOO_MANY) {
        if (f == FASTPATH_TOO_MANY && s != 2) die("fast path says too many, jansson path does not", data, size);
        if (s == 0) batch_free(&slow);
        return 0;
    }
    if (s != 0) die("fast path built a body the jansson path refuses", data, size);
    size_t sl, fl;
    char *sb = batch_storage_body(&slow, &sl), *fb = batch_storage_body(&fast, &fl);
    if (!sb || !fb || sl != fl || memcmp(sb, fb, sl) != 0) die("storage bodies differ", data, size);
    if (slow.nrecords != fast.nrecords || !json_equal(slow.rejected, fast.rejected))
        die("records or rejects differ", data, size);
    free(sb);
    free(fb);
    batch_free(&slow);
    batch_free(&fast);
    return 0;
}
