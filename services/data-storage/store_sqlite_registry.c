/* store_sqlite_registry.c -- see store_sqlite_registry.h. */
#include "store_sqlite_registry.h"

#include "event.h"
#include "json_scan.h"
#include "json_text.h"
#include "registry_row.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The registry columns, among the context members (record_fields.h). */
static const int sqr_col_key[SQR_COLUMNS] = {RF_AREA_ID, RF_FLOOR_ID, RF_DEVICE_ID, RF_PLATFORM};

/* A JSON string's text: in place without escapes, else decoded into an owned copy. */
static int sqr_string(sqr_fields *f, const char *v, size_t vl, sqr_text *out) {
    out->p = NULL;
    if (vl < 2 || v[0] != '"') return 0; /* null or not a string */
    if (!memchr(v, '\\', vl)) {
        out->p = v + 1, out->n = (int)(vl - 2);
        return 0;
    }
    json_error_t e;
    json_t *j = json_loadb(v, vl, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (json_is_string(j) && f->nowned < SQR_COLUMNS + SQR_MAX_LABELS) {
        size_t n = json_string_length(j);
        char *c = malloc(n + 1);
        if (!c) {
            json_decref(j);
            return -1;
        }
        memcpy(c, json_string_value(j), n + 1);
        f->owned[f->nowned++] = c;
        out->p = c, out->n = (int)n;
    }
    json_decref(j);
    return 0;
}

typedef struct sqr_label_walk {
    sqr_fields *f;
    int failed;
} sqr_label_walk;

static int sqr_label(const char *v, size_t vl, void *arg) {
    sqr_label_walk *w = arg;
    if (w->f->nlabels == SQR_MAX_LABELS) return 1;
    sqr_text t;
    if (sqr_string(w->f, v, vl, &t) != 0) return w->failed = 1;
    if (t.p) w->f->label[w->f->nlabels++] = t;
    return 0;
}

static int sqr_item(sqr_fields *f, store_item *it) {
    const record_fields *rf = it->json ? store_item_fields(it) : NULL;
    if (!rf || (!rf->len[RF_AREA_ID] && !rf->len[RF_DEVICE_ID] && !rf->len[RF_PLATFORM] && !rf->len[RF_LABELS]))
        return 0;
    f->has = 1;
    f->json = it->json;
    f->rf = rf;
    size_t n;
    for (int c = 0; c < SQR_COLUMNS; c++) {
        const char *v = record_fields_at(rf, it->json, sqr_col_key[c], &n);
        f->col[c].p = NULL;
        if (v && sqr_string(f, v, n, &f->col[c]) != 0) return -1;
    }
    const char *labels = record_fields_at(rf, it->json, RF_LABELS, &n);
    if (labels && labels[0] == '[') {
        sqr_label_walk w = {f, 0};
        jscan_array(labels, n, sqr_label, &w);
        if (w.failed) return -1;
    }
    return 0;
}

/* The registry table's context text of f (which has one), into o (reset first). 0/-1. */
static int sqr_context(const sqr_fields *f, sbuf *o) {
    sbuf_reset(o);
    registry_context(o, f->rf, f->json);
    return sbuf_failed(o) ? -1 : 0;
}

/* Not calloc: an sqr_fields is ~900 bytes, mostly label and owned slots read
 * only up to nlabels / nowned, and col only when has -- zeroing them all was
 * ~1 % of storage's instructions per event. Each item's counts and flags are
 * set here, its columns by sqr_item. */
int sqr_prepare(store_sqlite_registry *m, store_batch *b) {
    m->n = 0;
    m->f = b->nitems ? malloc(b->nitems * sizeof *m->f) : NULL;
    if (b->nitems && !m->f) return -1;
    for (size_t i = 0; i < b->nitems; i++) {
        sqr_fields *f = &m->f[i];
        f->has = f->nlabels = f->nowned = 0;
        f->json = NULL;
        f->rf = NULL;
        f->rowid = 0;
        m->n = i + 1; /* sqr_free frees what the items so far own */
        if (b->items[i].status == STORE_ITEM_PENDING && sqr_item(f, &b->items[i]) != 0) return -1;
    }
    return 0;
}

void sqr_bind(const store_sqlite_registry *m, size_t i, sqlite3_stmt *st, int col) {
    const sqr_fields *f = &m->f[i];
    for (int c = 0; c < SQR_COLUMNS; c++) {
        if (f->has && f->col[c].p) sqlite3_bind_text(st, col + c, f->col[c].p, f->col[c].n, SQLITE_STATIC);
        else sqlite3_bind_null(st, col + c);
    }
}

void sqr_note_rowid(store_sqlite_registry *m, size_t i, int64_t rowid) {
    m->f[i].rowid = rowid;
}

static int sqr_label_step(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int sqr_insert_labels(const store_sqlite_registry *m, const store_batch *b, sqlite3_stmt *one, sqlite3_stmt *many) {
    size_t total = 0, row = 0;
    for (size_t i = 0; i < b->nitems; i++)
        if (m->f[i].rowid) total += (size_t)m->f[i].nlabels;
    size_t grouped = total - total % SQR_LABEL_ROWS; /* rows [0, grouped) go by `many`, the rest by `one` */
    for (size_t i = 0; i < b->nitems; i++) {
        const sqr_fields *f = &m->f[i];
        for (int l = 0; f->rowid && l < f->nlabels; l++, row++) {
            sqlite3_stmt *st = row < grouped ? many : one;
            int k = row < grouped ? (int)(row % SQR_LABEL_ROWS) : 0;
            sqlite3_bind_text(st, 3 * k + 1, f->label[l].p, f->label[l].n, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3 * k + 2, b->items[i].time_us);
            sqlite3_bind_int64(st, 3 * k + 3, f->rowid);
            if ((st == one || k == SQR_LABEL_ROWS - 1) && sqr_label_step(st) != 0) return -1;
        }
    }
    return 0;
}

/* What sqr_context writes for member k of f. */
static const char *sqr_context_text(const sqr_fields *f, int k, size_t *n) {
    const char *v = record_fields_at(f->rf, f->json, k, n);
    if (v) return v;
    *n = k == RF_LABELS ? 2 : 4;
    return k == RF_LABELS ? "[]" : "null";
}

/* sqr_context(a) == sqr_context(b), without writing either. */
static int sqr_same_context(const sqr_fields *a, const sqr_fields *b) {
    for (int k = RF_CONTEXT_FIRST; k < RF_N; k++) {
        size_t an, bn;
        const char *av = sqr_context_text(a, k, &an), *bv = sqr_context_text(b, k, &bn);
        if (an != bn || memcmp(av, bv, an) != 0) return 0;
    }
    return 1;
}

static int sqr_upsert(sqlite3_stmt *upsert, const store_item *it, const sqr_fields *f, int64_t run_end_us,
                      sbuf *context) {
    if (sqr_context(f, context) != 0) return -1;
    sqlite3_bind_text(upsert, 1, it->entity_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(upsert, 2, it->time_us);
    sqlite3_bind_text(upsert, 3, context->data, (int)context->len, SQLITE_STATIC);
    sqlite3_bind_int64(upsert, 5, run_end_us);
    int rc = sqlite3_step(upsert);
    sqlite3_reset(upsert);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int sqr_counts(const store_item *it, const sqr_fields *f) {
    return f->has && it->entity_id && (it->status == STORE_ITEM_STORED || it->status == STORE_ITEM_DUPLICATE);
}

/* One backward walk of the batch: run_end[i] is the time of the last item of i's run -- the
 * items of the same entity that follow i in the batch with the same context -- for the
 * upsert's late-event rule (STORE_SQLITE_REGISTRY_UPSERT ?5); newest[i] says i is its
 * entity's last counted item in the batch (its last_seen). 0, or -1 on out of memory. */
static int sqr_walk(const store_sqlite_registry *m, const store_batch *b, int64_t *run_end, unsigned char *newest) {
    json_t *next = json_object(); /* entity_id -> index of the entity's following item */
    if (!next) return -1;
    for (size_t i = b->nitems; i-- > 0;) {
        const store_item *it = &b->items[i];
        run_end[i] = it->time_us;
        newest[i] = 0;
        if (!sqr_counts(it, &m->f[i])) continue;
        json_t *nx = json_object_get(next, it->entity_id);
        size_t j = nx ? (size_t)json_integer_value(nx) : 0;
        newest[i] = !nx;
        if (nx && sqr_same_context(&m->f[j], &m->f[i]) && run_end[j] > run_end[i]) run_end[i] = run_end[j];
        if (nx) json_integer_set(nx, (json_int_t)i); /* no allocation per event: the entity's value is reused */
        else if (json_object_set_new(next, it->entity_id, json_integer((json_int_t)i)) != 0) {
            json_decref(next);
            return -1;
        }
    }
    json_decref(next);
    return 0;
}

/* Forward: each change of an entity's context within the batch (so "since" is the first
 * event with the new context, e.g. the registry update itself); then the newest item of
 * each entity (last_seen), unless that was just written. */
int sqr_update_registry(const store_sqlite_registry *m, const store_batch *b, sqlite3_stmt *upsert) {
    size_t n = b->nitems ? b->nitems : 1;
    json_t *last = json_object(); /* entity_id -> index of the item last written */
    int64_t *run_end = malloc(n * sizeof *run_end);
    unsigned char *newest = malloc(n);
    int rc = last && run_end && newest ? sqr_walk(m, b, run_end, newest) : -1;
    sbuf context;
    sbuf_init(&context);
    /* the batch's home, for every upsert (a reset keeps bindings) */
    sqlite3_bind_text(upsert, 4, b->home_id[0] ? b->home_id : EVENT_HOME_DEFAULT, -1, SQLITE_STATIC);
    for (size_t i = 0; i < b->nitems && rc == 0; i++) {
        const store_item *it = &b->items[i];
        const sqr_fields *f = &m->f[i];
        if (!sqr_counts(it, f)) continue;
        json_t *prev = json_object_get(last, it->entity_id);
        const sqr_fields *pf = prev ? &m->f[json_integer_value(prev)] : NULL;
        if (pf && sqr_same_context(pf, f)) continue;
        rc = sqr_upsert(upsert, it, f, run_end[i], &context);
        json_object_set_new(last, it->entity_id, json_integer((json_int_t)i));
    }
    for (size_t i = b->nitems; i-- > 0 && rc == 0;)
        if (newest[i] && json_integer_value(json_object_get(last, b->items[i].entity_id)) != (json_int_t)i)
            rc = sqr_upsert(upsert, &b->items[i], &m->f[i], run_end[i], &context);
    sbuf_free(&context);
    json_decref(last);
    free(run_end);
    free(newest);
    return rc;
}

void sqr_free(store_sqlite_registry *m) {
    for (size_t i = 0; i < m->n; i++) {
        for (int k = 0; k < m->f[i].nowned; k++) free(m->f[i].owned[k]);
    }
    free(m->f);
    memset(m, 0, sizeof *m);
}

/* ---- GET /api/v1/registry ----------------------------------------------------------- */

int sqr_read(sqlite3 *db, const char *home, const char *entity_id, long limit, store_rows *rows) {
    sqlite3_stmt *st;
    const char *sql = "SELECT entity_id, since_us, time_us, context, home_id FROM registry"
                      " WHERE (?1 IS NULL OR entity_id = ?1) AND (?3 IS NULL OR home_id = ?3)"
                      " ORDER BY entity_id, home_id LIMIT ?2";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    if (entity_id) sqlite3_bind_text(st, 1, entity_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, limit);
    if (home) sqlite3_bind_text(st, 3, home, -1, SQLITE_STATIC);
    int rc;
    sbuf o;
    sbuf_init(&o);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *ctx = (const char *)sqlite3_column_text(st, 3);
        sbuf_reset(&o);
        registry_row(&o, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
                     sqlite3_column_int64(st, 2), (const char *)sqlite3_column_text(st, 4), ctx,
                     (size_t)sqlite3_column_bytes(st, 3));
        size_t n;
        char *text = sbuf_take(&o, &n);
        if (!text || store_rows_add(rows, text) != 0) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sbuf_free(&o);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}
