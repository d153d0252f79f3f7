/* stats_sqlite.c -- see stats_sqlite.h.
 *
 * The update, per entity touched by a batch (all inside the batch's
 * transaction):
 *   1. B = the 5-minute bucket of the batch's earliest event of the entity;
 *      the carry (value in force, sum, last_reset) comes from the latest
 *      5-minute row before B. If that row's value still held at its end and
 *      it is older than B - 5 min, B moves back to just after it (the hold
 *      fills the gap).
 *   2. E = the end of the bucket of the first *numeric* stored event after the
 *      batch's latest one (every event before it is re-read too), else of the
 *      latest event: up to there the buckets are recomputed from the raw rows.
 *   3. Rows after E keep their shape; only their cumulative sum moves, by the
 *      difference the recomputation made to the sum at E.
 *   4. Every hour touched is merged again from its 5-minute rows (HA's way).
 * Recomputing from stored rows is what makes it idempotent: a duplicate adds
 * no raw row, so it changes nothing; a late event is simply part of the rows. */
#include "stats_sqlite.h"
#include "store_sqlite_home.h"
#include "log.h"

#include <math.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

enum {
    SQ_META_GET, SQ_META_ADD, SQ_META_KIND,
    SQ_PREV_5, SQ_AT_5, SQ_NEXT_EVENTS, SQ_RANGE_EVENTS,
    SQ_PUT_5, SQ_DEL_5, SQ_SHIFT_5,
    SQ_HOUR_5ROWS, SQ_GET_H, SQ_PUT_H, SQ_DEL_H, SQ_SHIFT_H,
    SQ_MARK_SET, SQ_MARKS,
    SQ_ROWS_5, SQ_ROWS_H, SQ_BEFORE_5, SQ_BEFORE_H,
    SQ_N
};

#define STATS_COLS "start_us,mean,min,max,last,state,sum,last_reset_us,count,covered_us"

static const char *const stats_sql[SQ_N] = {
    [SQ_META_GET] = "SELECT id,kind FROM stats_meta WHERE entity_id=?1 AND home_id=?2",
    [SQ_META_ADD] = "INSERT INTO stats_meta(entity_id,home_id,kind) VALUES(?1,?2,?3)",
    [SQ_META_KIND] = "UPDATE stats_meta SET kind=? WHERE id=?",
    [SQ_PREV_5] = /* bound with INT64_MAX: the entity's latest row */ "SELECT " STATS_COLS " FROM stats_5min WHERE meta_id=? AND start_us<? ORDER BY start_us DESC LIMIT 1",
    [SQ_AT_5] = "SELECT " STATS_COLS " FROM stats_5min WHERE meta_id=? AND start_us<? ORDER BY start_us DESC LIMIT 1",
    /* one home's events (issue 18): the row is read for its record anyway, so home_id costs no extra lookup */
    [SQ_NEXT_EVENTS] = "SELECT time_us,record FROM events WHERE entity_id=?1 AND home_id=?2 AND time_us>?3 ORDER BY time_us,id",
    [SQ_RANGE_EVENTS] =
        "SELECT time_us,record FROM events WHERE entity_id=?1 AND home_id=?2 AND time_us>=?3 AND time_us<?4 "
        "ORDER BY time_us,id",
    [SQ_PUT_5] = "INSERT OR REPLACE INTO stats_5min(meta_id," STATS_COLS ") VALUES(?,?,?,?,?,?,?,?,?,?,?)",
    [SQ_DEL_5] = "DELETE FROM stats_5min WHERE meta_id=? AND start_us=?",
    [SQ_SHIFT_5] = "UPDATE stats_5min SET sum=sum+? WHERE meta_id=? AND start_us>=? AND sum IS NOT NULL",
    [SQ_HOUR_5ROWS] =
        "SELECT " STATS_COLS " FROM stats_5min WHERE meta_id=? AND start_us>=? AND start_us<? ORDER BY start_us",
    [SQ_GET_H] = "SELECT " STATS_COLS " FROM stats_hour WHERE meta_id=? AND start_us=?",
    [SQ_PUT_H] = "INSERT OR REPLACE INTO stats_hour(meta_id," STATS_COLS ") VALUES(?,?,?,?,?,?,?,?,?,?,?)",
    [SQ_DEL_H] = "DELETE FROM stats_hour WHERE meta_id=? AND start_us=?",
    [SQ_SHIFT_H] = "UPDATE stats_hour SET sum=sum+? WHERE meta_id=? AND start_us>=? AND sum IS NOT NULL",
    [SQ_MARK_SET] = "UPDATE stats_marks SET value=? WHERE name=?",
    [SQ_MARKS] = "SELECT name,value FROM stats_marks",
    /* reads for the API: break markers (count 0, nothing covered) are not shown */
    [SQ_ROWS_5] = "SELECT " STATS_COLS " FROM stats_5min WHERE meta_id=? AND start_us>=? AND start_us<? "
                  "AND (count>0 OR covered_us>0) ORDER BY start_us",
    [SQ_ROWS_H] = "SELECT " STATS_COLS " FROM stats_hour WHERE meta_id=? AND start_us>=? AND start_us<? "
                  "AND (count>0 OR covered_us>0) ORDER BY start_us",
    [SQ_BEFORE_5] = "SELECT " STATS_COLS " FROM stats_5min WHERE meta_id=? AND start_us<? ORDER BY start_us DESC LIMIT 1",
    [SQ_BEFORE_H] = "SELECT " STATS_COLS " FROM stats_hour WHERE meta_id=? AND start_us<? ORDER BY start_us DESC LIMIT 1",
};

struct stats_sqlite {
    sqlite3 *db;
    sqlite3_stmt *st[SQ_N];
    int64_t events_purged_before, s5_purged_before;
    stats_sqlite_counters counters;
    /* scratch, reused across batches */
    stats_sample *samples;
    size_t nsamples, samples_cap;
    stats_row *rows;
    size_t nrows, rows_cap;
    struct stats_hot *hot[1024];   /* per-entity cache: the fast path for in-order states */
};

/* ---- small helpers ----------------------------------------------------- */

static sqlite3_stmt *stats_stmt(stats_sqlite *s, int which) {
    sqlite3_stmt *st = s->st[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

static int stats_done(stats_sqlite *s, sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return 0;
    log_error("statistics: %s", sqlite3_errmsg(s->db));
    return -1;
}

/* An entity of one home (issue 18): statistics are kept per (entity, home),
 * so two homes with the same entity id never share rows. home as stored
 * (EVENT_HOME_DEFAULT for the default home). */
typedef struct stats_key {
    const char *entity, *home;
} stats_key;

/* Binds ?1 = entity, ?2 = home (the statements that select by key). */
static void stats_bind_key(sqlite3_stmt *st, const stats_key *k) {
    sqlite3_bind_text(st, 1, k->entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k->home, -1, SQLITE_STATIC);
}

static void stats_bind_real_or_null(sqlite3_stmt *st, int col, int has, double v) {
    if (has && isfinite(v)) sqlite3_bind_double(st, col, v);
    else sqlite3_bind_null(st, col);
}

static double stats_col_real(sqlite3_stmt *st, int col, int *has) {
    int n = sqlite3_column_type(st, col) == SQLITE_NULL;
    if (has) *has = !n;
    return n ? NAN : sqlite3_column_double(st, col);
}

static void stats_row_read(sqlite3_stmt *st, stats_row *r) {
    int has;
    memset(r, 0, sizeof *r);
    r->start_us = sqlite3_column_int64(st, 0);
    r->mean = stats_col_real(st, 1, NULL);
    r->min = stats_col_real(st, 2, NULL);
    r->max = stats_col_real(st, 3, NULL);
    r->last = stats_col_real(st, 4, &r->has_last);
    r->state = stats_col_real(st, 5, &r->has_state);
    r->sum = stats_col_real(st, 6, &has);
    if (!has) r->sum = 0;
    r->has_last_reset = sqlite3_column_type(st, 7) != SQLITE_NULL;
    r->last_reset_us = sqlite3_column_int64(st, 7);
    r->count = sqlite3_column_int64(st, 8);
    r->covered_us = sqlite3_column_int64(st, 9);
}

static int stats_row_put(stats_sqlite *s, int which, int64_t meta, stats_kind kind, const stats_row *r) {
    sqlite3_stmt *st = stats_stmt(s, which);
    sqlite3_bind_int64(st, 1, meta);
    sqlite3_bind_int64(st, 2, r->start_us);
    stats_bind_real_or_null(st, 3, 1, r->mean);
    stats_bind_real_or_null(st, 4, 1, r->min);
    stats_bind_real_or_null(st, 5, 1, r->max);
    stats_bind_real_or_null(st, 6, r->has_last, r->last);
    stats_bind_real_or_null(st, 7, r->has_state, r->state);
    stats_bind_real_or_null(st, 8, kind != STATS_KIND_MEASUREMENT, r->sum);
    if (r->has_last_reset) sqlite3_bind_int64(st, 9, r->last_reset_us);
    else sqlite3_bind_null(st, 9);
    sqlite3_bind_int64(st, 10, r->count);
    sqlite3_bind_int64(st, 11, r->covered_us);
    s->counters.rows_written++;
    return stats_done(s, st);
}

static int stats_row_del(stats_sqlite *s, int which, int64_t meta, int64_t start) {
    sqlite3_stmt *st = stats_stmt(s, which);
    sqlite3_bind_int64(st, 1, meta);
    sqlite3_bind_int64(st, 2, start);
    return stats_done(s, st);
}

/* The latest row of `which` (a "before" query) with start < t. 1 found, 0 none, -1 error. */
static int stats_row_before(stats_sqlite *s, int which, int64_t meta, int64_t t, stats_row *r) {
    sqlite3_stmt *st = stats_stmt(s, which);
    sqlite3_bind_int64(st, 1, meta);
    sqlite3_bind_int64(st, 2, t);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) stats_row_read(st, r);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) return 0;
    log_error("statistics: %s", sqlite3_errmsg(s->db));
    return -1;
}

static int stats_push_sample(stats_sqlite *s, const stats_sample *x) {
    if (s->nsamples == s->samples_cap) {
        size_t cap = s->samples_cap ? s->samples_cap * 2 : 256;
        stats_sample *n = realloc(s->samples, cap * sizeof *n);
        if (!n) return -1;
        s->samples = n;
        s->samples_cap = cap;
    }
    s->samples[s->nsamples++] = *x;
    return 0;
}

static int stats_push_row(stats_sqlite *s, const stats_row *r) {
    if (s->nrows == s->rows_cap) {
        size_t cap = s->rows_cap ? s->rows_cap * 2 : 64;
        stats_row *n = realloc(s->rows, cap * sizeof *n);
        if (!n) return -1;
        s->rows = n;
        s->rows_cap = cap;
    }
    s->rows[s->nrows++] = *r;
    return 0;
}

/* ---- open / close / marks ---------------------------------------------- */

int stats_sqlite_load_marks(stats_sqlite *s) {
    sqlite3_stmt *st = stats_stmt(s, SQ_MARKS);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int64_t v = sqlite3_column_int64(st, 1);
        if (strcmp(name, "events_purged_before_us") == 0) s->events_purged_before = v;
        else if (strcmp(name, "stats_5min_purged_before_us") == 0) s->s5_purged_before = v;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int stats_sqlite_open(sqlite3 *db, stats_sqlite **out) {
    stats_sqlite *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->db = db;
    for (int i = 0; i < SQ_N; i++) {
        if (sqlite3_prepare_v3(db, stats_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK) {
            log_error("statistics: prepare: %s", sqlite3_errmsg(db));
            stats_sqlite_close(s);
            return -1;
        }
    }
    if (stats_sqlite_load_marks(s) != 0) {
        stats_sqlite_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

static void stats_hot_clear(stats_sqlite *s);

void stats_sqlite_close(stats_sqlite *s) {
    if (!s) return;
    stats_hot_clear(s);
    for (int i = 0; i < SQ_N; i++) sqlite3_finalize(s->st[i]);
    free(s->samples);
    free(s->rows);
    free(s);
}

int64_t stats_sqlite_horizon(const stats_sqlite *s) {
    return s->events_purged_before > s->s5_purged_before ? s->events_purged_before : s->s5_purged_before;
}

int stats_sqlite_set_mark(stats_sqlite *s, const char *name, int64_t value) {
    /* a watermark only rises: events before it may be gone, whatever a later,
     * longer retention (or another RETENTION_OVERRIDES rule) would keep */
    if (value <= (strcmp(name, "events_purged_before_us") == 0 ? s->events_purged_before : s->s5_purged_before))
        return 0;
    sqlite3_stmt *st = stats_stmt(s, SQ_MARK_SET);
    sqlite3_bind_int64(st, 1, value);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    if (stats_done(s, st) != 0) return -1;
    if (strcmp(name, "events_purged_before_us") == 0) s->events_purged_before = value;
    else s->s5_purged_before = value;
    return 0;
}

void stats_sqlite_counters_get(const stats_sqlite *s, stats_sqlite_counters *c) {
    *c = s->counters;
}

/* ---- the update -------------------------------------------------------- */

/* The entity's metadata id, created when it first has a numeric value.
 * 1 found/created, 0 not tracked, -1 error. */
static int stats_meta(stats_sqlite *s, const stats_key *k, int numeric, stats_kind kind, int64_t *meta) {
    sqlite3_stmt *st = stats_stmt(s, SQ_META_GET);
    stats_bind_key(st, k);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *meta = sqlite3_column_int64(st, 0);
        int old = sqlite3_column_int(st, 1);
        sqlite3_reset(st);
        if (numeric && old != (int)kind) {
            st = stats_stmt(s, SQ_META_KIND);
            sqlite3_bind_int(st, 1, (int)kind);
            sqlite3_bind_int64(st, 2, *meta);
            if (stats_done(s, st) != 0) return -1;
        }
        return 1;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return -1;
    if (!numeric) return 0;
    st = stats_stmt(s, SQ_META_ADD);
    stats_bind_key(st, k);
    sqlite3_bind_int(st, 3, (int)kind);
    if (stats_done(s, st) != 0) return -1;
    *meta = sqlite3_last_insert_rowid(s->db);
    return 1;
}

/* End of the range to recompute: the bucket end of the first numeric event
 * after tmax (every event up to it included), else of the latest event. */
static int stats_range_end(stats_sqlite *s, const stats_key *k, int64_t tmax, int64_t *end) {
    sqlite3_stmt *st = stats_stmt(s, SQ_NEXT_EVENTS);
    stats_bind_key(st, k);
    sqlite3_bind_int64(st, 3, tmax);
    int64_t last = tmax;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        last = sqlite3_column_int64(st, 0);
        stats_sample x;
        stats_kind kind;
        if (stats_sample_from_record((const char *)sqlite3_column_text(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                                     &x, &kind) == 1 && x.numeric)
            break;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return -1;
    *end = stats_floor(last, STATS_5MIN_US) + STATS_5MIN_US;
    return 0;
}

static int stats_load_samples(stats_sqlite *s, const stats_key *k, int64_t from, int64_t to) {
    sqlite3_stmt *st = stats_stmt(s, SQ_RANGE_EVENTS);
    stats_bind_key(st, k);
    sqlite3_bind_int64(st, 3, from);
    sqlite3_bind_int64(st, 4, to);
    s->nsamples = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        stats_sample x;
        stats_kind k;
        if (stats_sample_from_record((const char *)sqlite3_column_text(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                                     &x, &k) != 1)
            continue;   /* not a state change of this entity (another event type naming it) */
        x.t_us = sqlite3_column_int64(st, 0);
        if (stats_push_sample(s, &x) != 0) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

typedef struct stats_emit_ctx {
    stats_sqlite *s;
    int64_t meta;
    stats_kind kind;
} stats_emit_ctx;

static int stats_emit_5(const stats_row *r, int64_t start, void *arg) {
    stats_emit_ctx *c = arg;
    return r ? stats_row_put(c->s, SQ_PUT_5, c->meta, c->kind, r) : stats_row_del(c->s, SQ_DEL_5, c->meta, start);
}

/* Hour h again from its 5-minute rows from `from` on; when from > h (an
 * append), the existing hourly row stands for the hour's rows before `from`
 * (they may have been purged) and is merged with the new ones. */
static int stats_hour_update(stats_sqlite *s, int64_t meta, stats_kind kind, int64_t h, int64_t from) {
    s->nrows = 0;
    int64_t lo = h;
    if (from > h) {
        sqlite3_stmt *st = stats_stmt(s, SQ_GET_H);
        sqlite3_bind_int64(st, 1, meta);
        sqlite3_bind_int64(st, 2, h);
        stats_row r;
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) stats_row_read(st, &r);
        sqlite3_reset(st);
        if (rc == SQLITE_ROW && stats_push_row(s, &r) != 0) return -1;
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return -1;
        lo = from;
    }
    sqlite3_stmt *st = stats_stmt(s, SQ_HOUR_5ROWS);
    sqlite3_bind_int64(st, 1, meta);
    sqlite3_bind_int64(st, 2, lo);
    sqlite3_bind_int64(st, 3, h + STATS_HOUR_US);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        stats_row r;
        stats_row_read(st, &r);
        if (stats_push_row(s, &r) != 0) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return -1;
    if (s->nrows == 0) return stats_row_del(s, SQ_DEL_H, meta, h);
    stats_row hr;
    stats_merge(s->rows, s->nrows, h, &hr);
    return stats_row_put(s, SQ_PUT_H, meta, kind, &hr);
}

static int stats_shift(stats_sqlite *s, int which, int64_t meta, int64_t from, double delta) {
    sqlite3_stmt *st = stats_stmt(s, which);
    sqlite3_bind_double(st, 1, delta);
    sqlite3_bind_int64(st, 2, meta);
    sqlite3_bind_int64(st, 3, from);
    return stats_done(s, st);
}

/* Where the recomputation of an entity starts (*b) and what it carries in.
 * Append (no row at or after the first new bucket): from the entity's latest
 * row, filling a held value's gap; needs no older row. Late: from the row
 * before, which must not be in purged territory. 1 go, 0 skip, -1 error. */
static int stats_start(stats_sqlite *s, int64_t meta, int64_t tmin, int64_t *b, int *append, stats_carry *carry) {
    stats_row r;
    int64_t b0 = stats_floor(tmin, STATS_5MIN_US);
    memset(carry, 0, sizeof *carry);
    *b = b0;
    int found = stats_row_before(s, SQ_PREV_5, meta, INT64_MAX, &r);
    if (found < 0) return -1;
    *append = !found || r.start_us < b0;
    if (*append) {
        if (found) {
            stats_carry_from_row(&r, carry);
            if (r.has_last) *b = r.start_us + STATS_5MIN_US;
        }
        return 1;
    }
    int64_t h0 = stats_floor(b0, STATS_HOUR_US);
    if (h0 < s->s5_purged_before || b0 < s->events_purged_before) return 0;
    found = stats_row_before(s, SQ_PREV_5, meta, b0, &r);
    if (found < 0) return -1;
    if (found && (s->s5_purged_before == 0 || r.start_us >= s->s5_purged_before)) {
        stats_carry_from_row(&r, carry);
        return 1;
    }
    /* the rows before b0 were purged: the hour before stands for them */
    found = stats_row_before(s, SQ_BEFORE_H, meta, h0, &r);
    if (found < 0) return -1;
    if (found) {
        if (r.has_last && r.start_us + STATS_HOUR_US != b0) return 0; /* a hold we cannot see: skip */
        stats_carry_from_row(&r, carry);
    }
    return 1;
}

/* One entity: its batch events span [tmin, tmax]. */
static int stats_entity(stats_sqlite *s, const stats_key *k, int64_t meta, stats_kind kind, int64_t tmin,
                        int64_t tmax) {
    int64_t b, end;
    int append;
    stats_carry carry;
    int go = stats_start(s, meta, tmin, &b, &append, &carry);
    if (go <= 0) {
        if (go == 0) s->counters.late_skipped++;
        return go;
    }
    if (stats_range_end(s, k, tmax, &end) != 0) return -1;
    stats_row old_end;   /* the sum at `end` before: later rows move by the difference */
    int had_end = stats_row_before(s, SQ_AT_5, meta, end, &old_end);
    if (had_end < 0 || stats_load_samples(s, k, b, end) != 0) return -1;
    stats_emit_ctx ec = {s, meta, kind};
    if (stats_compute(kind, &carry, s->samples, s->nsamples, STATS_5MIN_US, b, end, stats_emit_5, &ec) != 0)
        return -1;
    double delta = had_end && kind != STATS_KIND_MEASUREMENT ? carry.sum - old_end.sum : 0;
    if (delta != 0 && stats_shift(s, SQ_SHIFT_5, meta, end, delta) != 0) return -1;
    int64_t h0 = stats_floor(b, STATS_HOUR_US), h1 = stats_floor(end - 1, STATS_HOUR_US);
    for (int64_t h = h0; h <= h1; h += STATS_HOUR_US)
        if (stats_hour_update(s, meta, kind, h, append && h == h0 ? b : h) != 0) return -1;
    if (delta != 0 && stats_shift(s, SQ_SHIFT_H, meta, h1 + STATS_HOUR_US, delta) != 0) return -1;
    s->counters.entities_updated++;
    return 0;
}

typedef struct stats_item_ref {
    const store_item *it;
} stats_item_ref;

static int stats_item_cmp(const void *a, const void *b) {
    const store_item *x = ((const stats_item_ref *)a)->it, *y = ((const stats_item_ref *)b)->it;
    int c = strcmp(x->entity_id, y->entity_id);
    if (c) return c;
    if (x->time_us != y->time_us) return x->time_us < y->time_us ? -1 : 1;
    return x < y ? -1 : x > y;   /* batch order = insert order = the id order the slow path reads */
}

/* ---- the hot cache: in-order states without re-reading the database ----
 *
 * For each entity the cache holds what the slow path would read back: its
 * latest 5-minute row's period, the carry at that period's start, the states
 * in that period, the merge of the hour's earlier rows, and the time of its
 * latest state. A group whose states are none earlier than that period's
 * start (the live case, including a batch that overtook another in flight:
 * its states are merged in by time) is computed from memory and costs two
 * writes (the 5-minute row, the hourly row); anything else takes the slow
 * path, which rebuilds the entry from the database. Any rollback empties the
 * cache. */

typedef struct stats_hot {
    struct stats_hot *next;
    char *entity;           /* "entity\0home\0", one allocation */
    stats_key key;          /* points into it */
    int64_t meta;           /* 0: no numeric state seen yet (not tracked) */
    stats_kind kind;
    int valid;              /* the fields below match the database */
    int64_t bucket, last_t;
    stats_carry carry;
    stats_sample *samples;
    size_t n, cap;
    int has_hour_before;
    stats_row hour_before;
} stats_hot;

static unsigned stats_hash(const stats_key *key) {
    unsigned h = 2166136261u;
    for (const char *e = key->entity; *e; e++) h = (h ^ (unsigned char)*e) * 16777619u;
    for (const char *e = key->home; *e; e++) h = (h ^ (unsigned char)*e) * 16777619u;
    return h & 1023u;
}

static int stats_key_eq(const stats_key *a, const stats_key *b) {
    return strcmp(a->entity, b->entity) == 0 && strcmp(a->home, b->home) == 0;
}

static stats_hot *stats_hot_get(stats_sqlite *s, const stats_key *key) {
    unsigned k = stats_hash(key);
    for (stats_hot *h = s->hot[k]; h; h = h->next)
        if (stats_key_eq(&h->key, key)) return h;
    size_t ne = strlen(key->entity) + 1, nh = strlen(key->home) + 1;
    stats_hot *h = calloc(1, sizeof *h);
    if (!h || !(h->entity = malloc(ne + nh))) {
        free(h);
        return NULL;
    }
    memcpy(h->entity, key->entity, ne);
    memcpy(h->entity + ne, key->home, nh);
    h->key = (stats_key){h->entity, h->entity + ne};
    h->meta = -1;   /* unknown */
    h->next = s->hot[k];
    s->hot[k] = h;
    return h;
}

static void stats_hot_clear(stats_sqlite *s) {
    for (int k = 0; k < 1024; k++) {
        for (stats_hot *h = s->hot[k], *n; h; h = n) {
            n = h->next;
            free(h->entity);
            free(h->samples);
            free(h);
        }
        s->hot[k] = NULL;
    }
}

void stats_sqlite_rollback(stats_sqlite *s) {
    stats_hot_clear(s);
}

static int stats_hot_set_samples(stats_hot *h, const stats_sample *x, size_t n) {
    if (n > h->cap) {
        size_t cap = n < 16 ? 16 : n * 2;
        stats_sample *p = realloc(h->samples, cap * sizeof *p);
        if (!p) return -1;
        h->samples = p;
        h->cap = cap;
    }
    if (n) memmove(h->samples, x, n * sizeof *x);
    h->n = n;
    return 0;
}

/* Reads the entry back from the database after the slow path. */
static int stats_hot_build(stats_sqlite *s, stats_hot *h) {
    stats_row r, p;
    h->valid = 0;
    int found = stats_row_before(s, SQ_PREV_5, h->meta, INT64_MAX, &r);
    if (found <= 0) return found;
    int64_t hour = stats_floor(r.start_us, STATS_HOUR_US);
    if (s->s5_purged_before && hour - STATS_HOUR_US < s->s5_purged_before) return 0; /* rows around it purged */
    memset(&h->carry, 0, sizeof h->carry);
    found = stats_row_before(s, SQ_PREV_5, h->meta, r.start_us, &p);
    if (found < 0) return -1;
    if (found) {
        if (p.has_last && p.start_us + STATS_5MIN_US < r.start_us) return 0;   /* not expected: stay slow */
        stats_carry_from_row(&p, &h->carry);
    }
    if (stats_load_samples(s, &h->key, r.start_us, r.start_us + STATS_5MIN_US) != 0) return -1;
    if (s->nsamples == 0 || stats_hot_set_samples(h, s->samples, s->nsamples) != 0) return 0;
    h->last_t = s->samples[s->nsamples - 1].t_us;
    h->bucket = r.start_us;
    s->nrows = 0;
    sqlite3_stmt *st = stats_stmt(s, SQ_HOUR_5ROWS);
    sqlite3_bind_int64(st, 1, h->meta);
    sqlite3_bind_int64(st, 2, hour);
    sqlite3_bind_int64(st, 3, r.start_us);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        stats_row x;
        stats_row_read(st, &x);
        if (stats_push_row(s, &x) != 0) break;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return -1;
    h->has_hour_before = s->nrows > 0;
    if (s->nrows) stats_merge(s->rows, s->nrows, hour, &h->hour_before);
    h->valid = 1;
    return 0;
}

typedef struct stats_fast_ctx {
    stats_sqlite *s;
    stats_hot *h;
} stats_fast_ctx;

static int stats_emit_fast(const stats_row *r, int64_t start, void *arg) {
    stats_fast_ctx *c = arg;
    (void)start;
    if (!r) return 0;   /* later than the latest row: nothing stored to delete */
    if (stats_row_put(c->s, SQ_PUT_5, c->h->meta, c->h->kind, r) != 0) return -1;
    return stats_push_row(c->s, r);
}

/* Rows [from, to) of s->rows merged, after `base` (if any), as hour h. */
static int stats_fast_hour(stats_sqlite *s, stats_hot *h, int64_t hour, const stats_row *base, size_t from,
                           size_t to, stats_row *out) {
    size_t n = to - from + (base ? 1 : 0);
    if (n == 0) return 0;
    stats_row *tmp = malloc(n * sizeof *tmp);
    if (!tmp) return -1;
    size_t k = 0;
    if (base) tmp[k++] = *base;
    for (size_t i = from; i < to; i++) tmp[k++] = s->rows[i];
    stats_merge(tmp, n, hour, out);
    free(tmp);
    (void)h;
    return 1;
}

/* gs (time order) merged into h->samples (time order) from the back. On equal times the
 * cached states stay first: they were stored before the group, and the slow path reads
 * rows ORDER BY time_us, id. */
static void stats_hot_merge(stats_hot *h, const stats_sample *gs, size_t gn) {
    size_t i = h->n, j = gn, k = h->n + gn;
    while (j > 0) {
        if (i > 0 && h->samples[i - 1].t_us > gs[j - 1].t_us) h->samples[--k] = h->samples[--i];
        else h->samples[--k] = gs[--j];
    }
    h->n += gn;
}

/* The live case from memory; gs: the group's states (time order), none before the cached
 * period h->bucket (the entity's latest 5-minute row). States later than every cached one
 * append; earlier ones inside the period (a batch that overtook another in flight) are
 * merged in: the period is recomputed from its start either way, exactly as the slow path
 * would from the stored rows, without reading them back. */
static int stats_fast(stats_sqlite *s, stats_hot *h, const stats_sample *gs, size_t gn) {
    if (h->n + gn > h->cap) {
        size_t cap = (h->n + gn) * 2;
        stats_sample *p = realloc(h->samples, cap * sizeof *p);
        if (!p) return -1;
        h->samples = p;
        h->cap = cap;
    }
    if (h->n && gs[0].t_us <= h->samples[h->n - 1].t_us) s->counters.fast_merged++;
    stats_hot_merge(h, gs, gn);
    int64_t last_t = h->samples[h->n - 1].t_us;
    int64_t lastb = stats_floor(last_t, STATS_5MIN_US), end = lastb + STATS_5MIN_US;
    size_t split = 0;
    while (split < h->n && h->samples[split].t_us < lastb) split++;
    stats_carry carry = h->carry;
    stats_fast_ctx c = {s, h};
    s->nrows = 0;
    if (stats_compute(h->kind, &carry, h->samples, split, STATS_5MIN_US, h->bucket, lastb, stats_emit_fast, &c) != 0)
        return -1;
    stats_carry at_last = carry;
    size_t nbefore = s->nrows;   /* rows before lastb */
    if (stats_compute(h->kind, &carry, h->samples + split, h->n - split, STATS_5MIN_US, lastb, end, stats_emit_fast,
                      &c) != 0)
        return -1;
    /* hours: the first one continues h->hour_before */
    int64_t h0 = stats_floor(h->bucket, STATS_HOUR_US);
    size_t i = 0;
    stats_row new_before;
    int has_new_before = 0;
    for (int64_t hour = h0; hour <= stats_floor(lastb, STATS_HOUR_US); hour += STATS_HOUR_US) {
        size_t j = i;
        while (j < s->nrows && s->rows[j].start_us < hour + STATS_HOUR_US) j++;
        const stats_row *base = hour == h0 && h->has_hour_before ? &h->hour_before : NULL;
        stats_row hr;
        int rc = stats_fast_hour(s, h, hour, base, i, j, &hr);
        if (rc < 0 || (rc > 0 && stats_row_put(s, SQ_PUT_H, h->meta, h->kind, &hr) != 0)) return -1;
        if (hour == stats_floor(lastb, STATS_HOUR_US)) {   /* the new hour_before: rows before lastb */
            size_t jb = i;
            while (jb < nbefore && s->rows[jb].start_us < lastb) jb++;
            rc = stats_fast_hour(s, h, hour, base, i, jb, &new_before);
            if (rc < 0) return -1;
            has_new_before = rc > 0;
        }
        i = j;
    }
    /* the entry now describes lastb */
    size_t keep = h->n - split;
    memmove(h->samples, h->samples + split, keep * sizeof *h->samples);
    h->n = keep;
    h->bucket = lastb;
    h->carry = at_last;
    h->last_t = last_t;
    h->has_hour_before = has_new_before;
    if (has_new_before) h->hour_before = new_before;
    s->counters.entities_updated++;
    s->counters.fast_updates++;
    return 0;
}

/* The entities of one group [i, j) of refs, all of one entity of the batch's home. */
static int stats_group(stats_sqlite *s, const char *home, const stats_item_ref *refs, size_t i, size_t j) {
    stats_key key = {refs[i].it->entity_id, home};
    size_t gn = 0;
    int numeric = 0;
    stats_kind kind = STATS_KIND_MEASUREMENT;
    stats_sample *gs = malloc((j - i) * sizeof *gs);
    if (!gs) return -1;
    for (size_t k = i; k < j; k++) {
        stats_kind kk;
        const store_item *it = refs[k].it;   /* fields noted by the writer's first pass (record_fields.h) */
        if ((it->fields.noted ? stats_sample_from_fields(it->json, &it->fields, &gs[gn], &kk)
                              : stats_sample_from_record(it->json, it->json_len, &gs[gn], &kk)) != 1)
            continue;
        gs[gn].t_us = refs[k].it->time_us;
        if (gs[gn].numeric) {
            numeric = 1;
            kind = kk;  /* the latest numeric event's state_class */
        }
        gn++;
    }
    int rc = 0;
    stats_hot *h = stats_hot_get(s, &key);
    if (h && h->meta == 0 && !numeric) goto out;   /* known not tracked */
    if (!h || h->meta <= 0 || (numeric && kind != h->kind)) {
        int64_t meta;
        rc = stats_meta(s, &key, numeric, kind, &meta);
        if (rc <= 0) {
            if (rc == 0 && h) h->meta = 0;
            goto out;
        }
        if (!numeric) {
            sqlite3_stmt *st = stats_stmt(s, SQ_META_GET);   /* keep the kind the entity has */
            stats_bind_key(st, &key);
            if (sqlite3_step(st) == SQLITE_ROW) kind = (stats_kind)sqlite3_column_int(st, 1);
            sqlite3_reset(st);
        }
        if (h) {
            if (h->meta != meta || h->kind != kind) h->valid = 0;
            h->meta = meta;
            h->kind = kind;
        }
        if (!h) { /* no hot entry (out of memory): recompute from the store, if this batch has samples */
            if (gn) rc = stats_entity(s, &key, meta, kind, gs[0].t_us, gs[gn - 1].t_us);
            goto out;
        }
    }
    if (gn == 0) goto out;
    if (h->valid && gs[0].t_us >= h->bucket) {
        rc = stats_fast(s, h, gs, gn);
    } else {
        rc = stats_entity(s, &key, h->meta, h->kind, gs[0].t_us, gs[gn - 1].t_us);
        if (rc == 0) rc = stats_hot_build(s, h);
    }
out:
    free(gs);
    return rc < 0 ? -1 : 0;
}

static int stats_sqlite_batch_run(stats_sqlite *s, const store_batch *b);

static unsigned long long stats_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

int stats_sqlite_batch(stats_sqlite *s, const store_batch *b) {
    unsigned long long t0 = stats_mono_us();
    int rc = stats_sqlite_batch_run(s, b);
    s->counters.update_us += stats_mono_us() - t0;
    s->counters.batches++;
    return rc;
}

json_t *stats_sqlite_info(const stats_sqlite *s) {
    const stats_sqlite_counters *c = &s->counters;
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "entities_updated", (json_int_t)c->entities_updated,
                     "fast_updates", (json_int_t)c->fast_updates, "fast_merged", (json_int_t)c->fast_merged,
                     "rows_written",
                     (json_int_t)c->rows_written, "late_skipped", (json_int_t)c->late_skipped, "batches",
                     (json_int_t)c->batches, "update_us", (json_int_t)c->update_us);
}

static int stats_sqlite_batch_run(stats_sqlite *s, const store_batch *b) {
    size_t n = 0;
    for (size_t i = 0; i < b->nitems; i++) {
        const store_item *it = &b->items[i];
        if (it->status == STORE_ITEM_STORED && it->entity_id && strcmp(it->event_type, "state_changed") == 0) n++;
    }
    if (n == 0) return 0;
    stats_item_ref *refs = malloc(n * sizeof *refs);
    if (!refs) return -1;
    n = 0;
    for (size_t i = 0; i < b->nitems; i++) {
        const store_item *it = &b->items[i];
        if (it->status == STORE_ITEM_STORED && it->entity_id && strcmp(it->event_type, "state_changed") == 0)
            refs[n++].it = it;
    }
    qsort(refs, n, sizeof *refs, stats_item_cmp);
    int rc = 0;
    for (size_t i = 0, j; i < n && rc == 0; i = j) {
        for (j = i + 1; j < n && strcmp(refs[j].it->entity_id, refs[i].it->entity_id) == 0; j++) {}
        rc = stats_group(s, store_sqlite_home_of(b->home_id), refs, i, j);
    }
    free(refs);
    return rc;
}

/* ---- history stored before the statistics (stats_catchup.c) ------------ */

int stats_sqlite_catchup(stats_sqlite *s, const char *entity, const char *home, int64_t tmin, int64_t tmax) {
    stats_key key = {entity, store_sqlite_home_of(home)};
    /* the entity's kind: its metadata's when it has one (today's state_class
     * wins), else the latest numeric state's in the range */
    int64_t meta = 0;
    stats_kind kind = STATS_KIND_MEASUREMENT;
    sqlite3_stmt *st = stats_stmt(s, SQ_META_GET);
    stats_bind_key(st, &key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        meta = sqlite3_column_int64(st, 0);
        kind = (stats_kind)sqlite3_column_int(st, 1);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return -1;
    if (!meta) {
        int numeric = 0;
        st = stats_stmt(s, SQ_RANGE_EVENTS);
        stats_bind_key(st, &key);
        sqlite3_bind_int64(st, 3, tmin);
        sqlite3_bind_int64(st, 4, tmax == INT64_MAX ? tmax : tmax + 1);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            stats_sample x;
            stats_kind k;
            if (stats_sample_from_record((const char *)sqlite3_column_text(st, 1),
                                         (size_t)sqlite3_column_bytes(st, 1), &x, &k) == 1 && x.numeric) {
                numeric = 1;
                kind = k;
            }
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) return -1;
        if (!numeric) return 0;   /* nothing numeric here: no statistics (yet) */
        if (stats_meta(s, &key, 1, kind, &meta) < 0) return -1;
    }
    for (stats_hot *h = s->hot[stats_hash(&key)]; h; h = h->next)
        if (stats_key_eq(&h->key, &key)) h->valid = 0;   /* its rows change under it */
    return stats_entity(s, &key, meta, kind, tmin, tmax) < 0 ? -1 : 0;
}

/* ---- reads ------------------------------------------------------------- */

int stats_sqlite_rows(stats_sqlite *s, const char *home, const char *entity_id, int hourly, int64_t start_us,
                      int64_t end_us, int *kind, stats_row *prev, int *has_prev, stats_sqlite_row_fn fn, void *arg) {
    *kind = -1;
    *has_prev = 0;
    stats_key key = {entity_id, store_sqlite_home_of(home)};
    sqlite3_stmt *st = stats_stmt(s, SQ_META_GET);
    stats_bind_key(st, &key);
    int rc = sqlite3_step(st);
    int64_t meta = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (rc == SQLITE_ROW) *kind = sqlite3_column_int(st, 1);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW) return -1;
    int found = stats_row_before(s, hourly ? SQ_BEFORE_H : SQ_BEFORE_5, meta, start_us, prev);
    if (found < 0) return -1;
    *has_prev = found;
    st = stats_stmt(s, hourly ? SQ_ROWS_H : SQ_ROWS_5);
    sqlite3_bind_int64(st, 1, meta);
    sqlite3_bind_int64(st, 2, start_us);
    sqlite3_bind_int64(st, 3, end_us);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        stats_row r;
        stats_row_read(st, &r);
        if (fn(&r, arg) != 0) {
            rc = SQLITE_ABORT;
            break;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}
