/* store_sqlite_context.c -- see store_sqlite_context.h. */
#include "store_sqlite_context.h"
#include "store_sqlite_home.h"
#include "store_sqlite_identity.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct sqc_span {
    size_t item;          /* the first item of the span in the batch: its entity and context */
    int64_t first, last;
} sqc_span;

static int sqc_counts(const store_item *it, const sqr_fields *f) {
    if (it->status != STORE_ITEM_STORED || !it->entity_id || !f->has) return 0;
    for (int c = 0; c < SQR_COLUMNS; c++)
        if (f->col[c].p) return 1;
    return 0; /* labels only: ?label= reads event_labels */
}

/* "entity\x1f area\x1f floor\x1f device\x1f platform" (ids hold no \x1f; a column with a NUL
 * makes the key shorter, which only merges two upserts' spans: still a cover). */
static int sqc_key(sbuf *k, const store_item *it, const sqr_fields *f) {
    sbuf_reset(k);
    sbuf_adds(k, it->entity_id);
    for (int c = 0; c < SQR_COLUMNS; c++) {
        sbuf_addc(k, '\x1f');
        if (f->col[c].p) sbuf_add(k, f->col[c].p, (size_t)f->col[c].n);
    }
    return sbuf_failed(k) ? -1 : 0;
}

static int sqc_upsert(sqlite3_stmt *up, const store_item *it, const sqr_fields *f, const sqc_span *s) {
    sqlite3_bind_text(up, 1, it->entity_id, -1, SQLITE_STATIC);
    for (int c = 0; c < SQR_COLUMNS; c++)
        sqlite3_bind_text(up, 3 + c, f->col[c].p ? f->col[c].p : "", f->col[c].p ? f->col[c].n : 0, SQLITE_STATIC);
    sqlite3_bind_int64(up, 7, s->first);
    sqlite3_bind_int64(up, 8, s->last);
    int rc = sqlite3_step(up);
    sqlite3_reset(up);
    return rc == SQLITE_DONE ? 0 : -1;
}

int sqc_update(const store_sqlite_registry *r, const store_batch *b, sqlite3_stmt *upsert) {
    json_t *at = json_object(); /* key -> index in spans */
    sqc_span *spans = malloc((b->nitems ? b->nitems : 1) * sizeof *spans);
    size_t n = 0;
    sbuf k;
    sbuf_init(&k);
    int rc = at && spans ? 0 : -1;
    for (size_t i = 0; i < b->nitems && rc == 0; i++) {
        const store_item *it = &b->items[i];
        if (!sqc_counts(it, &r->f[i])) continue;
        if (sqc_key(&k, it, &r->f[i]) != 0) {
            rc = -1;
            break;
        }
        json_t *j = json_object_getn(at, k.data, k.len);
        if (j) {
            sqc_span *s = &spans[json_integer_value(j)];
            if (it->time_us < s->first) s->first = it->time_us;
            if (it->time_us > s->last) s->last = it->time_us;
            continue;
        }
        spans[n] = (sqc_span){i, it->time_us, it->time_us};
        rc = json_object_setn_new(at, k.data, k.len, json_integer((json_int_t)n++));
    }
    sqlite3_bind_text(upsert, 2, store_sqlite_home_of(b->home_id), -1, SQLITE_STATIC);
    for (size_t s = 0; s < n && rc == 0; s++)
        rc = sqc_upsert(upsert, &b->items[spans[s].item], &r->f[spans[s].item], &spans[s]);
    sbuf_free(&k);
    free(spans);
    json_decref(at);
    return rc;
}

/* Migration 10 writes the dropped indexes' pages to the freelist (pointer-map and trunk
 * pages), the new partial indexes (the few entity-less rows with a context, the types
 * other than state_changed), event_contexts (a row per entity and context) and its GROUP
 * BY's sort of the events with a context: a small part of the file; an eighth is asked. */
int sqc_room(sqlite3 *db) {
    return sqi_room(db, sqi_file_bytes(db) / 8, "migration 10 (fewer indexes per event)");
}
