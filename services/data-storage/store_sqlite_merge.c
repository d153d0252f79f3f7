/* store_sqlite_merge.c -- see store_sqlite_merge.h. */
#include "store_sqlite_merge.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQX_CHUNK_MAX 1024

typedef struct sqx_src {
    char *entity, *home;       /* NULL entity: the entity-less events */
    int64_t lo, hi;            /* time range, both inclusive */
    int64_t next_t, next_id;   /* read on below (next_t, next_id), exclusive */
    int64_t *t, *id;
    int n, pos, chunk, cap, done;
} sqx_src;

typedef struct sqx {
    sqlite3 *db;
    const store_filter *f;
    sqlite3_stmt *range, *none, *row;
    sqx_src *src;
    size_t n, cap;
    char *err;
    size_t errlen;
} sqx;

static int sqx_registry(const store_filter *f) {
    return f->area || f->floor || f->device || f->platform;
}

/* With label= the labels' own table narrows more (the one-statement query reads it first);
 * domain= with an event type other than state_changed reads the partial events_type_time. */
int sqx_applies(const store_filter *f) {
    if (f->entity_id || f->label) return 0;
    if (sqx_registry(f)) return 1;
    return f->domain && !(f->event_type && strcmp(f->event_type, "state_changed") != 0);
}

static int sqx_fail(sqx *x, const char *what) {
    snprintf(x->err, x->errlen, "%s: %s", what, sqlite3_errmsg(x->db));
    return -1;
}

/* The filter's own terms, checked on every row read (?10 on). */
static void sqx_terms(const store_filter *f, char *out, size_t n) {
    snprintf(out, n, "%s%s%s%s%s%s", f->domain ? " AND domain = ?10" : "", f->event_type ? " AND event_type = ?11" : "",
             f->area ? " AND area_id = ?12" : "", f->floor ? " AND floor_id = ?13" : "",
             f->device ? " AND device_id = ?14" : "", f->platform ? " AND platform = ?15" : "");
}

static void sqx_bind_terms(const store_filter *f, sqlite3_stmt *st) {
    const char *v[] = {f->domain, f->event_type, f->area, f->floor, f->device, f->platform, f->home_id};
    for (int i = 0; i < 7; i++)
        if (v[i]) sqlite3_bind_text(st, 10 + i, v[i], -1, SQLITE_STATIC);
}

/* The partial index of entity-less events with a context that the filter names. */
static const char *sqx_none_index(const store_filter *f) {
    if (!sqx_registry(f)) return "events_domain_time"; /* domain= alone (schema 11) */
    return f->area ? "events_area_time" : f->floor ? "events_floor_time" : f->device ? "events_device_time"
                                                                                    : "events_platform_time";
}

static int sqx_prepare(sqx *x) {
    char terms[512], sql[1024];
    sqx_terms(x->f, terms, sizeof terms);
    snprintf(sql, sizeof sql, SQX_RANGE_SELECT SQX_RANGE_ENTITY SQX_RANGE_TIME "%s" SQX_RANGE_ORDER, terms);
    if (sqlite3_prepare_v2(x->db, sql, -1, &x->range, NULL) != SQLITE_OK) return sqx_fail(x, "prepare");
    snprintf(sql, sizeof sql,
             "SELECT time_us, id FROM events INDEXED BY %s WHERE entity_id IS NULL" SQX_RANGE_TIME "%s%s" SQX_RANGE_ORDER,
             sqx_none_index(x->f), terms, x->f->home_id ? " AND home_id = ?16" : "");
    if (sqlite3_prepare_v2(x->db, sql, -1, &x->none, NULL) != SQLITE_OK) return sqx_fail(x, "prepare");
    if (sqlite3_prepare_v2(x->db, "SELECT record, event_id, stored_at_us FROM events WHERE id = ?", -1, &x->row,
                           NULL) != SQLITE_OK)
        return sqx_fail(x, "prepare");
    sqx_bind_terms(x->f, x->range);
    sqx_bind_terms(x->f, x->none);
    return 0;
}

static int sqx_add(sqx *x, const char *entity, const char *home, int64_t lo, int64_t hi) {
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 16;
        sqx_src *p = realloc(x->src, cap * sizeof *p);
        if (!p) return -1;
        x->src = p, x->cap = cap;
    }
    sqx_src *s = &x->src[x->n];
    memset(s, 0, sizeof *s);
    s->entity = entity ? strdup(entity) : NULL;
    s->home = home ? strdup(home) : NULL;
    x->n++;
    if ((entity && !s->entity) || (home && !s->home)) return -1;
    s->lo = lo, s->hi = hi, s->next_t = hi, s->next_id = INT64_MAX; /* chunk: set by sqx_query */
    return 0;
}

/* The spans the filter's registry terms name (event_contexts, schema 10), or else its
 * domain (event_domains, schema 11), within start/end, one range per (entity, home)
 * stretch: overlapping spans of one entity and home are joined. */
static int sqx_sources(sqx *x, int64_t lo, int64_t hi) {
    const store_filter *f = x->f;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(x->db,
                           sqx_registry(f)
                               ? "SELECT entity_id, home_id, first_us, last_us FROM event_contexts"
                                 " WHERE (?1 IS NULL OR area_id = ?1) AND (?2 IS NULL OR floor_id = ?2)"
                                 " AND (?3 IS NULL OR device_id = ?3) AND (?4 IS NULL OR platform = ?4)"
                                 " AND (?5 IS NULL OR home_id = ?5) AND last_us >= ?6 AND first_us <= ?7"
                                 " ORDER BY entity_id, home_id, first_us"
                               : "SELECT entity_id, home_id, first_us, last_us FROM event_domains"
                                 " WHERE domain = ?8 AND (?5 IS NULL OR home_id = ?5) AND last_us >= ?6"
                                 " AND first_us <= ?7 ORDER BY entity_id, home_id, first_us",
                           -1, &st, NULL) != SQLITE_OK)
        return sqx_fail(x, "prepare");
    if (!sqx_registry(f)) sqlite3_bind_text(st, 8, f->domain, -1, SQLITE_STATIC);
    const char *v[] = {f->area, f->floor, f->device, f->platform, f->home_id};
    for (int i = 0; i < 5; i++)
        if (v[i]) sqlite3_bind_text(st, i + 1, v[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, lo);
    sqlite3_bind_int64(st, 7, hi);
    int rc, failed = 0;
    while (!failed && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *e = (const char *)sqlite3_column_text(st, 0), *h = (const char *)sqlite3_column_text(st, 1);
        int64_t a = sqlite3_column_int64(st, 2), b = sqlite3_column_int64(st, 3);
        if (a < lo) a = lo;
        if (b > hi) b = hi;
        sqx_src *p = x->n ? &x->src[x->n - 1] : NULL;
        if (p && p->entity && !strcmp(p->entity, e) && !strcmp(p->home, h) && a <= p->hi) {
            if (b > p->hi) p->hi = p->next_t = b;
            continue;
        }
        failed = sqx_add(x, e, h, a, b) != 0;
    }
    sqlite3_finalize(st);
    if (failed) return sqx_fail(x, "out of memory");
    if (rc != SQLITE_DONE) return sqx_fail(x, sqx_registry(f) ? "event_contexts" : "event_domains");
    return sqx_add(x, NULL, NULL, lo, hi) != 0 ? sqx_fail(x, "out of memory") : 0;
}

/* The next chunk of s, newest first. 0/-1. */
static int sqx_fill(sqx *x, sqx_src *s) {
    sqlite3_stmt *st = s->entity ? x->range : x->none;
    if (s->cap < s->chunk) { /* grows with the chunk: many ranges cost little each */
        int64_t *t = realloc(s->t, (size_t)s->chunk * sizeof *t);
        if (t) s->t = t;
        int64_t *id = t ? realloc(s->id, (size_t)s->chunk * sizeof *id) : NULL;
        if (!id) return sqx_fail(x, "out of memory");
        s->id = id, s->cap = s->chunk;
    }
    if (s->entity) {
        sqlite3_bind_text(st, 1, s->entity, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, s->home, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 3, s->lo);
    sqlite3_bind_int64(st, 4, s->next_t);
    sqlite3_bind_int64(st, 5, s->next_id);
    sqlite3_bind_int64(st, 6, s->chunk);
    int rc = SQLITE_DONE;
    s->n = s->pos = 0;
    while (s->n < s->chunk && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        s->t[s->n] = sqlite3_column_int64(st, 0);
        s->id[s->n++] = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return sqx_fail(x, "query");
    if (s->n < s->chunk) s->done = 1;
    if (s->n) s->next_t = s->t[s->n - 1], s->next_id = s->id[s->n - 1];
    if (s->chunk < SQX_CHUNK_MAX) s->chunk *= 2;
    return 0;
}

/* 1 when a's next row is newer than b's: (time_us, id) descending. */
static int sqx_newer(const sqx_src *a, const sqx_src *b) {
    return a->t[a->pos] > b->t[b->pos] || (a->t[a->pos] == b->t[b->pos] && a->id[a->pos] > b->id[b->pos]);
}

static void sqx_sift(sqx_src **h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && sqx_newer(h[l], h[m])) m = l;
        if (r < n && sqx_newer(h[r], h[m])) m = r;
        if (m == i) return;
        sqx_src *t = h[i];
        h[i] = h[m], h[m] = t, i = m;
    }
}

/* The ranges with unread rows, as a heap by their next row, newest on top: a row costs
 * log2(ranges) comparisons, not one per range (domain=sensor&offset=200000 over 3,000
 * entities was 8.6 s merged by a scan of every range per row). 0/-1. */
static int sqx_heap(sqx *x, sqx_src ***out, size_t *n) {
    sqx_src **h = x->n ? malloc(x->n * sizeof *h) : NULL;
    if (x->n && !h) return sqx_fail(x, "out of memory");
    *n = 0;
    for (size_t i = 0; i < x->n; i++) {
        if (sqx_fill(x, &x->src[i]) != 0) {
            free(h);
            return -1;
        }
        if (x->src[i].n) h[(*n)++] = &x->src[i];
    }
    for (size_t i = *n / 2; i-- > 0;) sqx_sift(h, *n, i);
    *out = h;
    return 0;
}

/* Takes the top's row into *id and puts the heap right again (refills the top's chunk). */
static int sqx_pop(sqx *x, sqx_src **h, size_t *n, int64_t *id) {
    sqx_src *s = h[0];
    *id = s->id[s->pos++];
    if (s->pos == s->n && !s->done && sqx_fill(x, s) != 0) return -1;
    if (s->pos == s->n) h[0] = h[--*n];
    sqx_sift(h, *n, 0);
    return 0;
}

static int sqx_row(sqx *x, int64_t id, store_rows *rows) {
    sqlite3_bind_int64(x->row, 1, id);
    int rc = sqlite3_step(x->row), out = 0;
    if (rc == SQLITE_ROW) {
        if (store_rows_add_event(rows, (const char *)sqlite3_column_text(x->row, 0),
                                 (size_t)sqlite3_column_bytes(x->row, 0), (const char *)sqlite3_column_text(x->row, 1),
                                 sqlite3_column_int64(x->row, 2)) != 0)
            out = -1, snprintf(x->err, x->errlen, "out of memory");
    } else if (rc != SQLITE_DONE) out = sqx_fail(x, "row");
    sqlite3_reset(x->row);
    return out;
}

int sqx_query(sqlite3 *db, const store_filter *f, store_rows *rows, char *err, size_t errlen) {
    sqx x = {.db = db, .f = f, .err = err, .errlen = errlen};
    /* event times are far inside int64 (EVENT_* range): end - 1 cannot wrap */
    int64_t lo = f->has_start ? f->start_us : INT64_MIN, hi = f->has_end ? f->end_us - 1 : INT64_MAX;
    int rc = sqx_prepare(&x);
    if (rc == 0 && lo <= hi) rc = sqx_sources(&x, lo, hi);
    /* first chunks: the page shared out over the ranges (then each range's doubles) */
    long first = (f->offset + f->limit) / (long)(x.n ? x.n : 1) + 2;
    for (size_t i = 0; i < x.n; i++) x.src[i].chunk = first < 16 ? (int)first : 16;
    sqx_src **heap = NULL;
    size_t nheap = 0;
    if (rc == 0 && lo <= hi) rc = sqx_heap(&x, &heap, &nheap);
    for (long i = 0; rc == 0 && nheap && i < f->offset + f->limit; i++) {
        int64_t id;
        if ((rc = sqx_pop(&x, heap, &nheap, &id)) == 0 && i >= f->offset) rc = sqx_row(&x, id, rows);
    }
    free(heap);
    for (size_t i = 0; i < x.n; i++) {
        free(x.src[i].entity);
        free(x.src[i].home);
        free(x.src[i].t);
        free(x.src[i].id);
    }
    free(x.src);
    sqlite3_finalize(x.range);
    sqlite3_finalize(x.none);
    sqlite3_finalize(x.row);
    return rc;
}
