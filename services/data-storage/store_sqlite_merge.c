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
    int clean;                 /* only the filter's rows in [lo, hi]: index-only (sqx_mark_clean) */
} sqx_src;

typedef struct sqx {
    sqlite3 *db;
    const store_filter *f;
    sqlite3_stmt *range, *none, *row;
    sqlite3_stmt *clean, *count_clean, *count_dirty, *count_none; /* offset= skipping (sqx_skip) */
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
    sqlite3_stmt *st = !s->entity ? x->none : s->clean ? x->clean : x->range;
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

/* ---- deep offset= of domain= alone: whole ranges counted from the index --------------- */

int sqx_skips(const store_filter *f) {
    return sqx_applies(f) && !sqx_registry(f) && !f->event_type && f->offset > SQX_SKIP_ROWS;
}

static int sqx_prepare_skip(sqx *x) {
    static const char *const sql[4] = {
        SQX_RANGE_SELECT "entity_id = ?1" SQX_RANGE_TIME SQX_RANGE_ORDER,
        "SELECT count(*) FROM events INDEXED BY events_entity_series WHERE entity_id = ?1 AND time_us > ?2"
        " AND time_us <= ?3",
        "SELECT count(*) FROM events INDEXED BY events_entity_series WHERE entity_id = ?1 AND time_us > ?2"
        " AND time_us <= ?3 AND home_id = ?4 AND domain = ?5",
        "SELECT count(*) FROM events INDEXED BY events_domain_time WHERE entity_id IS NULL AND domain = ?5"
        " AND time_us > ?2 AND time_us <= ?3 AND (?4 IS NULL OR home_id = ?4)"};
    sqlite3_stmt **st[4] = {&x->clean, &x->count_clean, &x->count_dirty, &x->count_none};
    for (int i = 0; i < 4; i++) {
        if (sqlite3_prepare_v2(x->db, sql[i], -1, st[i], NULL) != SQLITE_OK) return sqx_fail(x, "prepare");
        if (i >= 2) sqlite3_bind_text(*st[i], 5, x->f->domain, -1, SQLITE_STATIC);
    }
    if (x->f->home_id) sqlite3_bind_text(x->count_none, 4, x->f->home_id, -1, SQLITE_STATIC);
    return 0;
}

/* The entity sources (all but the last, the entity-less one) of entity e: [*a, *b). */
static void sqx_of_entity(const sqx *x, const char *e, size_t *a, size_t *b) {
    size_t lo = 0, hi = x->n - 1; /* sorted by entity_id (BINARY, as strcmp) */
    while (lo < hi) {
        size_t m = (lo + hi) / 2;
        if (strcmp(x->src[m].entity, e) < 0) lo = m + 1;
        else hi = m;
    }
    *a = lo;
    while (hi < x->n - 1 && !strcmp(x->src[hi].entity, e)) hi++;
    *b = hi;
}

/* A source (entity, home) is clean when no span of its entity but its own (domain, home)
 * overlaps its range: every row of the entity there is one of the filter's (each row
 * lies in the span of its own domain -- '' without one, schema 12 -- entity and home). */
static int sqx_mark_clean(sqx *x) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(x->db, "SELECT entity_id, home_id, domain, first_us, last_us FROM event_domains", -1, &st,
                           NULL) != SQLITE_OK)
        return sqx_fail(x, "prepare");
    for (size_t i = 0; i + 1 < x->n; i++) x->src[i].clean = 1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *e = (const char *)sqlite3_column_text(st, 0), *h = (const char *)sqlite3_column_text(st, 1),
                   *d = (const char *)sqlite3_column_text(st, 2);
        int64_t a = sqlite3_column_int64(st, 3), b = sqlite3_column_int64(st, 4);
        size_t i, end;
        sqx_of_entity(x, e, &i, &end);
        for (; i < end; i++) {
            sqx_src *s = &x->src[i];
            if ((strcmp(d, x->f->domain) || strcmp(h, s->home)) && a <= s->hi && b >= s->lo) s->clean = 0;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sqx_fail(x, "event_domains");
}

/* The filter's rows of s in (t, u]: index entries only when s is clean. */
static int sqx_count(sqx *x, const sqx_src *s, int64_t t, int64_t u, int64_t *out) {
    if (s->lo > INT64_MIN && t < s->lo - 1) t = s->lo - 1; /* the entity-less range may start at INT64_MIN */
    if (u > s->hi) u = s->hi;
    *out = 0;
    if (u <= t) return 0;
    sqlite3_stmt *st = !s->entity ? x->count_none : s->clean ? x->count_clean : x->count_dirty;
    if (s->entity) sqlite3_bind_text(st, 1, s->entity, -1, SQLITE_STATIC);
    if (s->entity && !s->clean) sqlite3_bind_text(st, 4, s->home, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, t);
    sqlite3_bind_int64(st, 3, u);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : sqx_fail(x, "count");
}

/* The filter's rows in (t, u] over every source, up to more than `cap`. */
static int sqx_count_all(sqx *x, int64_t t, int64_t u, int64_t cap, int64_t *out) {
    *out = 0;
    for (size_t i = 0; i < x->n && *out <= cap; i++) {
        int64_t c;
        if (sqx_count(x, &x->src[i], t, u, &c) != 0) return -1;
        *out += c;
    }
    return 0;
}

/* The estimate of the filter's rows (the entities table's counts), for the first window. */
static double sqx_estimate(sqx *x) {
    sqlite3_stmt *st;
    double n = 0;
    if (sqlite3_prepare_v2(x->db,
                           "SELECT coalesce(sum(event_count), 0) FROM entities WHERE domain = ?1"
                           " AND (?2 IS NULL OR home_id = ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, x->f->domain, -1, SQLITE_STATIC);
    if (x->f->home_id) sqlite3_bind_text(st, 2, x->f->home_id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) n = (double)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* Skips the newest rows of the page's offset a time window at a time: the rows newer than
 * *cut (*skipped of them, at most offset - SQX_SKIP_ROWS ... offset) are counted per
 * source, not merged; each window aims at 9/10 of what is left to skip at the rate seen
 * so far, and one that holds more is tried again a quarter as wide. A window's rows
 * all have times above the next, so the merge goes on below *cut exactly where
 * `skipped` rows were passed (rows of one time are never split). */
static int sqx_skip(sqx *x, int64_t *skipped, int64_t *cut) {
    int64_t first = INT64_MAX, last = INT64_MIN;
    for (size_t i = 0; i + 1 < x->n; i++) {
        if (x->src[i].lo < first) first = x->src[i].lo;
        if (x->src[i].hi > last) last = x->src[i].hi;
    }
    *skipped = 0, *cut = INT64_MAX; /* the first window reaches up: entity-less rows may be newer than every span */
    if (first > last) return 0;     /* no entity: the entity-less rows are few */
    int64_t left = x->f->offset;
    double span = (double)last - (double)first + 1, est = sqx_estimate(x);
    double rate = (est > 0 ? est : (double)left) / span; /* rows per microsecond */
    for (int round = 0; round < 64 && left > SQX_SKIP_ROWS && *cut >= first; round++) {
        int64_t top = *cut < last ? *cut : last;
        double w = 0.9 * (double)left / rate;
        int64_t t = w >= (double)top - (double)first + 1 ? first - 1 : top - (w < 1 ? 1 : (int64_t)w);
        int64_t c;
        if (sqx_count_all(x, t, *cut, left, &c) != 0) return -1;
        if (c > left) {
            if (top - t <= 1) break; /* one time holds more: merged */
            rate *= 4;
            continue;
        }
        left -= c, *skipped += c, *cut = t;
        rate = *skipped > 0 ? (double)*skipped / ((double)last - (double)t) : rate / 4;
    }
    return 0;
}

int sqx_query(sqlite3 *db, const store_filter *f, store_rows *rows, char *err, size_t errlen) {
    sqx x = {.db = db, .f = f, .err = err, .errlen = errlen};
    /* event times are far inside int64 (EVENT_* range): end - 1 cannot wrap */
    int64_t lo = f->has_start ? f->start_us : INT64_MIN, hi = f->has_end ? f->end_us - 1 : INT64_MAX;
    int rc = sqx_prepare(&x);
    if (rc == 0 && lo <= hi) rc = sqx_sources(&x, lo, hi);
    int64_t skipped = 0, cut = INT64_MAX;
    if (rc == 0 && lo <= hi && sqx_skips(f)) {
        rc = sqx_prepare_skip(&x) || (x.n > 1 && sqx_mark_clean(&x)) || sqx_skip(&x, &skipped, &cut) ? -1 : 0;
        for (size_t i = 0; rc == 0 && i < x.n; i++)
            if (x.src[i].next_t > cut) x.src[i].next_t = cut; /* next_id stays: every row at cut is left */
    }
    long offset = f->offset - (long)skipped;
    /* first chunks: the page shared out over the ranges (then each range's doubles) */
    long first = (offset + f->limit) / (long)(x.n ? x.n : 1) + 2;
    for (size_t i = 0; i < x.n; i++) x.src[i].chunk = first < 16 ? (int)first : 16;
    sqx_src **heap = NULL;
    size_t nheap = 0;
    if (rc == 0 && lo <= hi) rc = sqx_heap(&x, &heap, &nheap);
    for (long i = 0; rc == 0 && nheap && i < offset + f->limit; i++) {
        int64_t id;
        if ((rc = sqx_pop(&x, heap, &nheap, &id)) == 0 && i >= offset) rc = sqx_row(&x, id, rows);
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
    sqlite3_finalize(x.clean);
    sqlite3_finalize(x.count_clean);
    sqlite3_finalize(x.count_dirty);
    sqlite3_finalize(x.count_none);
    return rc;
}
