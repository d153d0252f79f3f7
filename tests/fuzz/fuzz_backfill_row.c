/* fuzz_backfill_row.c -- ingestion's history rows (backfill.c,
 * backfill_row_event) on arbitrary input. Rows reach it as spans of HA's
 * answer that json_scan validated, so the harness gives it only what the
 * scanner accepts: input = entity id (escaped string text) '\n' previous
 * state (empty: none) '\n' row. Whenever a row is turned into an event, the
 * event and its new_state must be JSON every reader accepts (jscan_strict
 * and jansson), and the event must be an object with the state_changed
 * shape ingestion spools. Never a crash, a leak or a read outside the row. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfill.h"
#include "json_scan.h"
#include "sbuf.h"

static void die(const char *what, const char *text) {
    fprintf(stderr, "backfill row: %s: %.400s\n", what, text ? text : "");
    abort();
}

/* jansson as lib/httpd reads: an integer too big for json_int_t is re-read as a real. */
static json_t *load_as_httpd(const char *p, size_t n) {
    json_error_t e;
    json_t *j = json_loadb(p, n, JSON_ALLOW_NUL, &e);
    if (!j && json_error_code(&e) == json_error_numeric_overflow)
        j = json_loadb(p, n, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
    return j;
}

static void must_be_json(const char *what, const char *p, size_t n) {
    const char *why;
    if (jscan_strict(p, n, NULL, &why) != 0) die(what, p);
    json_t *j = load_as_httpd(p, n);
    if (!j) die(what, p);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *d = (const char *)data, *end = d + size;
    const char *nl1 = memchr(d, '\n', size);
    if (!nl1) return 0;
    const char *nl2 = memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1));
    if (!nl2) return 0;
    size_t elen = (size_t)(nl1 - d), plen = (size_t)(nl2 - nl1 - 1), rlen = (size_t)(end - nl2 - 1);
    /* what backfill.c gets: a validated entity string, a previous state it built, a validated row */
    char *ent = malloc(elen + 3), *prev = malloc(plen + 1), *row = malloc(rlen + 1);
    ent[0] = '"';
    memcpy(ent + 1, d, elen);
    ent[elen + 1] = '"';
    ent[elen + 2] = '\0';
    memcpy(prev, nl1 + 1, plen);
    prev[plen] = '\0';
    memcpy(row, nl2 + 1, rlen); /* no NUL after it in the real answer either: malloc'd exactly */
    row[rlen] = '\0';
    if (jscan_strict(ent, elen + 2, NULL, NULL) == 0 && (plen == 0 || jscan_first(prev, plen) == '{') &&
        (plen == 0 || jscan_strict(prev, plen, NULL, NULL) == 0) && jscan_first(row, rlen) == '{' &&
        jscan_strict(row, rlen, NULL, NULL) == 0) {
        sbuf ev, st;
        sbuf_init(&ev);
        sbuf_init(&st);
        int64_t t = 0;
        if (backfill_row_event(ent + 1, elen, row, rlen, plen ? prev : NULL, &ev, &st, &t) == 0) {
            must_be_json("event is not JSON every reader accepts", ev.data, ev.len);
            must_be_json("new_state is not JSON every reader accepts", st.data, st.len);
            json_t *j = load_as_httpd(ev.data, ev.len);
            if (!json_is_object(j) || !json_is_string(json_object_get(j, "event_type")) ||
                !json_is_object(json_object_get(j, "data")) || !json_is_string(json_object_get(j, "time_fired")))
                die("event lacks the state_changed shape", ev.data);
            json_decref(j);
        }
        sbuf_free(&ev);
        sbuf_free(&st);
    }
    free(ent);
    free(prev);
    free(row);
    return 0;
}
