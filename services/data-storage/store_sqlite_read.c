/* store_sqlite_read.c -- see store_sqlite_read.h.
 *
 * Why these queries:
 *  - feed: the events table's INTEGER PRIMARY KEY (rowid) is the cursor. It
 *    only grows (one writer, this process; rows are never deleted) and a
 *    batch becomes visible at once at commit, so "id > after" in id order
 *    never skips or repeats an event. The answer's cursor is the head read in
 *    the same statement batch when everything up to it was returned, so a
 *    filtered tail does not rescan non-matching rows on the next call.
 *  - entities: read from the table the writer keeps (one row per entity),
 *    never from a GROUP BY over all events.
 *  - series: one range of the covering index events_entity_series (entity,
 *    time, kind, value, state), aggregated by SQLite into at most `points`
 *    buckets; a state timeline is the same range with equal neighbours
 *    merged here. No record is parsed.
 * Every function answers synchronously through the callback. */
#include "store_sqlite_read.h"
#include "json_text.h"
#include "log.h"
#include "sbuf.h"
#include "service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- helpers ---------------------------------------------------------- */

static sqlite3_stmt *sqr_prepare(store *s, const char *sql, char *err, size_t n) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store_sqlite_db(s), sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, n, "prepare: %s", sqlite3_errmsg(store_sqlite_db(s)));
        log_error("sqlite read %s", err);
        return NULL;
    }
    return st;
}

static int sqr_fail(store *s, sqlite3_stmt *st, const char *what, char *err, size_t n) {
    snprintf(err, n, "%s: %s", what, sqlite3_errmsg(store_sqlite_db(s)));
    log_error("sqlite read %s", err);
    sqlite3_finalize(st);
    return -1;
}

/* One integer from a one-row statement (0 when NULL). */
static int sqr_scalar(store *s, const char *sql, int64_t *out, char *err, size_t n) {
    sqlite3_stmt *st = sqr_prepare(s, sql, err, n);
    if (!st) return -1;
    if (sqlite3_step(st) != SQLITE_ROW) return sqr_fail(s, st, sql, err, n);
    *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

static void sqr_time(sbuf *b, const char *key, sqlite3_stmt *st, int col) {
    sbuf_printf(b, ",\"%s\":", key);
    if (sqlite3_column_type(st, col) == SQLITE_NULL) {
        sbuf_adds(b, "null");
        return;
    }
    char t[EVENT_TIME_LEN];
    event_time_format(sqlite3_column_int64(st, col), t);
    sbuf_printf(b, "\"%s\"", t);
}

static void sqr_text(sbuf *b, sqlite3_stmt *st, int col) {
    const char *v = (const char *)sqlite3_column_text(st, col);
    if (!v) sbuf_adds(b, "null");
    else json_text_string(b, v, (size_t)sqlite3_column_bytes(st, col));
}

static void sqr_real(sbuf *b, double v) { json_text_real(b, v); }

static void sqr_answer(store_rows *rows, sbuf *meta, int rc, const char *err, store_read_cb cb, void *arg) {
    if (rc == 0 && (sbuf_failed(meta))) rc = -1, err = "out of memory";
    cb(rows, rc == 0 ? (meta->data ? meta->data : "") : NULL, rc, err, arg);
    store_rows_free(rows);
    sbuf_free(meta);
}

/* home= (issue 18): the home_id column (store_sqlite_home.h). The feed's id
 * range and the series' entity/time range bound what is read. */
#define SQR_HOME_COND " AND home_id = "
#define SQR_FEED_AREA_IDS                                                                                         \
    " AND id IN (SELECT e.id FROM event_contexts c JOIN events e INDEXED BY events_entity_series"                  \
    " ON e.entity_id = c.entity_id AND e.time_us BETWEEN c.first_us AND c.last_us WHERE c.area_id = ?8"           \
    " UNION ALL SELECT id FROM events INDEXED BY events_area_time WHERE entity_id IS NULL AND area_id = ?8)"
/* domain=: the same from the domain spans (schema 11, store_sqlite_domain.h) and the
 * partial events_domain_time of the entity-less rows */
#define SQR_FEED_DOMAIN_IDS                                                                                       \
    " AND id IN (SELECT e.id FROM event_domains d JOIN events e INDEXED BY events_entity_series"                  \
    " ON e.entity_id = d.entity_id AND e.time_us BETWEEN d.first_us AND d.last_us WHERE d.domain = ?4"            \
    " UNION ALL SELECT id FROM events INDEXED BY events_domain_time WHERE entity_id IS NULL AND domain = ?4)"

/* domain= on the first page: 1 when the domain's ids from its spans (every event of the
 * domain, index entries) cost less than reading back by id until `limit` match (limit /
 * share rows). With d of all events in the domain (the entities table's counts; the
 * entity-less rows are few): spans when d < SQR_DOMAIN_SPANS * limit * all / d. Both
 * ways give the same rows; an empty or rare domain (the admin live stream's first
 * request) no longer reads back through the whole table. 0 on any error. */
#define SQR_DOMAIN_SPANS 4.0
static int sqr_domain_rare(store *s, const store_filter *f) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store_sqlite_db(s),
                           "SELECT coalesce(sum(event_count), 0), (SELECT coalesce(sum(event_count), 0) FROM entities)"
                           " FROM entities WHERE domain = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, f->domain, -1, SQLITE_STATIC);
    int rare = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        double d = (double)sqlite3_column_int64(st, 0), all = (double)sqlite3_column_int64(st, 1);
        rare = d * d < SQR_DOMAIN_SPANS * (double)f->limit * all;
    }
    sqlite3_finalize(st);
    return rare;
}

/* ---- feed --------------------------------------------------------------- */

/* store_rows_add_event's object plus "seq". */
static int sqr_add_feed_row(store_rows *rows, sqlite3_stmt *st) {
    const char *rec = (const char *)sqlite3_column_text(st, 1);
    if (store_rows_add_event(rows, rec, (size_t)sqlite3_column_bytes(st, 1), (const char *)sqlite3_column_text(st, 2),
                             sqlite3_column_int64(st, 3)) != 0)
        return -1;
    char *o = rows->json[rows->n - 1];
    size_t len = strlen(o);
    char seq[40];
    int sl = snprintf(seq, sizeof seq, ",\"seq\":%lld}", (long long)sqlite3_column_int64(st, 0));
    char *p = realloc(o, len + (size_t)sl);
    if (!p) return -1;
    memcpy(p + len - 1, seq, (size_t)sl + 1);
    rows->json[rows->n - 1] = p;
    return 0;
}

static void sqr_reverse(store_rows *rows) {
    for (size_t i = 0, j = rows->n ? rows->n - 1 : 0; i < j; i++, j--) {
        char *t = rows->json[i];
        rows->json[i] = rows->json[j];
        rows->json[j] = t;
    }
}

void store_sqlite_feed(store *s, const store_feed_query *q, store_read_cb cb, void *arg) {
    store_rows rows = {0};
    sbuf meta;
    sbuf_init(&meta);
    char err[256] = "", sql[1024];
    int64_t head = 0, last = 0;
    const store_filter *f = q->f;
    int rc = sqr_scalar(s, "SELECT coalesce(max(id), 0) FROM events", &head, err, sizeof err);
    if (rc != 0) goto out;
    /* area= on the first page (no cursor yet): only the ids of the area's events, from its
     * context spans (schema 10, store_sqlite_context.h), so a rare area does not read back
     * through every newer event; a cursor's page reads the few ids after it */
    int spans = f->area && !f->entity_id && !q->has_after;
    /* domain= likewise when the domain is rare enough (sqr_domain_rare) */
    int dspans = !spans && f->domain && !f->entity_id && !q->has_after && sqr_domain_rare(s, f);
    if (spans || dspans) store_sqlite_count_feed_spans(s);
    snprintf(sql, sizeof sql,
             "SELECT id, record, event_id, stored_at_us FROM events WHERE id <= ?1 AND id > ?2%s%s%s%s%s%s%s "
             "ORDER BY id %s LIMIT ?6",
             f->entity_id ? " AND entity_id = ?3" : "", f->domain ? " AND domain = ?4" : "",
             f->event_type ? " AND event_type = ?5" : "", f->home_id ? SQR_HOME_COND "?7" : "",
             f->area ? " AND area_id = ?8" : "", spans ? SQR_FEED_AREA_IDS : "", dspans ? SQR_FEED_DOMAIN_IDS : "",
             q->has_after ? "ASC" : "DESC");
    sqlite3_stmt *st = sqr_prepare(s, sql, err, sizeof err);
    if (!st) {
        rc = -1;
        goto out;
    }
    sqlite3_bind_int64(st, 1, head);
    sqlite3_bind_int64(st, 2, q->has_after ? q->after : 0);
    if (f->entity_id) sqlite3_bind_text(st, 3, f->entity_id, -1, SQLITE_STATIC);
    if (f->domain) sqlite3_bind_text(st, 4, f->domain, -1, SQLITE_STATIC);
    if (f->event_type) sqlite3_bind_text(st, 5, f->event_type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, f->limit);
    if (f->home_id) sqlite3_bind_text(st, 7, f->home_id, -1, SQLITE_STATIC);
    if (f->area) sqlite3_bind_text(st, 8, f->area, -1, SQLITE_STATIC);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        last = sqlite3_column_int64(st, 0);
        if (sqr_add_feed_row(&rows, st) != 0) {
            r = SQLITE_NOMEM;
            break;
        }
    }
    if (r != SQLITE_DONE) {
        rc = sqr_fail(s, st, "feed", err, sizeof err);
        goto out;
    }
    sqlite3_finalize(st);
    int more = q->has_after && (long)rows.n == f->limit && last < head;
    if (!q->has_after) sqr_reverse(&rows);
    sbuf_printf(&meta, "\"cursor\":%lld,\"head\":%lld,\"more\":%s", (long long)(more ? last : head), (long long)head,
                more ? "true" : "false");
out:
    sqr_answer(&rows, &meta, rc, err, cb, arg);
}

/* One integer from a one-row statement with ?1 = home (NULL: every home). */
static int sqr_home_count(store *s, const char *sql, const char *home, int64_t *out, char *err, size_t n) {
    sqlite3_stmt *st = sqr_prepare(s, sql, err, n);
    if (!st) return -1;
    if (home) sqlite3_bind_text(st, 1, home, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_ROW) return sqr_fail(s, st, sql, err, n);
    *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* ---- entities ----------------------------------------------------------- */

static int sqr_add_entity_row(store_rows *rows, sqlite3_stmt *st) {
    sbuf b;
    sbuf_init(&b);
    sbuf_adds(&b, "{\"entity_id\":");
    sqr_text(&b, st, 0);
    sbuf_adds(&b, ",\"domain\":");
    sqr_text(&b, st, 1);
    sbuf_adds(&b, ",\"state\":");
    sqr_text(&b, st, 2);
    sqr_time(&b, "last_changed", st, 3);
    sqr_time(&b, "last_event", st, 4);
    sbuf_printf(&b, ",\"event_count\":%lld,\"numeric\":%s", (long long)sqlite3_column_int64(st, 5),
                sqlite3_column_int(st, 6) ? "true" : "false");
    const char *h = (const char *)sqlite3_column_text(st, 7);
    if (h && strcmp(h, EVENT_HOME_DEFAULT) != 0) { /* another home's row says so, as its records do */
        sbuf_adds(&b, ",\"" STORE_HOME_KEY "\":");
        json_text_string(&b, h, strlen(h));
    }
    sbuf_addc(&b, '}');
    return store_rows_add(rows, sbuf_take(&b, NULL));
}

void store_sqlite_entities(store *s, const store_entity_query *q, store_read_cb cb, void *arg) {
    store_rows rows = {0};
    sbuf meta;
    sbuf_init(&meta);
    char err[256] = "";
    int64_t total = 0;
    int rc = sqr_home_count(s, "SELECT count(*) FROM entities WHERE ?1 IS NULL OR home_id = ?1", q->home_id, &total,
                            err, sizeof err);
    if (rc != 0) goto out;
    sqlite3_stmt *st = sqr_prepare(s,
                                   "SELECT entity_id, domain, last_state, last_changed_us, last_time_us, event_count,"
                                   " numeric, home_id FROM entities WHERE (?1 IS NULL OR domain = ?1)"
                                   " AND (?2 IS NULL OR instr(entity_id, ?2) > 0) AND (?4 IS NULL OR home_id = ?4)"
                                   " ORDER BY entity_id, home_id LIMIT ?3",
                                   err, sizeof err);
    if (!st) {
        rc = -1;
        goto out;
    }
    if (q->domain) sqlite3_bind_text(st, 1, q->domain, -1, SQLITE_STATIC);
    if (q->search) sqlite3_bind_text(st, 2, q->search, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, q->limit);
    if (q->home_id) sqlite3_bind_text(st, 4, q->home_id, -1, SQLITE_STATIC);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW)
        if (sqr_add_entity_row(&rows, st) != 0) {
            r = SQLITE_NOMEM;
            break;
        }
    if (r != SQLITE_DONE) {
        rc = sqr_fail(s, st, "entities", err, sizeof err);
        goto out;
    }
    sqlite3_finalize(st);
    sbuf_printf(&meta, "\"total\":%lld", (long long)total);
out:
    sqr_answer(&rows, &meta, rc, err, cb, arg);
}

/* ---- series ------------------------------------------------------------- */

static int sqr_buckets(store *s, const store_series_query *q, int64_t width, store_rows *rows, char *err,
                       size_t n) {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT (time_us - ?1) / ?2, min(value), avg(value), max(value), count(value)"
             " FROM events INDEXED BY events_entity_series WHERE entity_id = ?3"
             " AND time_us >= ?1 AND time_us < ?4 AND kind = 1 AND value IS NOT NULL%s"
             " GROUP BY 1 ORDER BY 1",
             q->home_id ? SQR_HOME_COND "?5" : "");
    sqlite3_stmt *st = sqr_prepare(s, sql, err, n);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, q->start_us);
    sqlite3_bind_int64(st, 2, width);
    sqlite3_bind_text(st, 3, q->entity_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, q->end_us);
    if (q->home_id) sqlite3_bind_text(st, 5, q->home_id, -1, SQLITE_STATIC);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        char t[EVENT_TIME_LEN];
        event_time_format(q->start_us + sqlite3_column_int64(st, 0) * width, t);
        sbuf b;
        sbuf_init(&b);
        sbuf_printf(&b, "{\"t\":\"%s\",\"min\":", t);
        sqr_real(&b, sqlite3_column_double(st, 1));
        sbuf_adds(&b, ",\"mean\":");
        sqr_real(&b, sqlite3_column_double(st, 2));
        sbuf_adds(&b, ",\"max\":");
        sqr_real(&b, sqlite3_column_double(st, 3));
        sbuf_printf(&b, ",\"count\":%lld}", (long long)sqlite3_column_int64(st, 4));
        if (store_rows_add(rows, sbuf_take(&b, NULL)) != 0) {
            r = SQLITE_NOMEM;
            break;
        }
    }
    if (r != SQLITE_DONE) return sqr_fail(s, st, "series", err, n);
    sqlite3_finalize(st);
    return 0;
}

typedef struct sqr_segment {
    int open;
    int64_t start_us;
    char *state; /* NULL = JSON null (entity removed) */
} sqr_segment;

static int sqr_segment_close(sqr_segment *g, int64_t end_us, store_rows *rows) {
    if (!g->open) return 0;
    char a[EVENT_TIME_LEN], b2[EVENT_TIME_LEN];
    event_time_format(g->start_us, a);
    event_time_format(end_us, b2);
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "{\"start\":\"%s\",\"end\":\"%s\",\"state\":", a, b2);
    if (g->state) json_text_string(&b, g->state, strlen(g->state));
    else sbuf_adds(&b, "null");
    sbuf_addc(&b, '}');
    free(g->state);
    g->state = NULL;
    g->open = 0;
    return store_rows_add(rows, sbuf_take(&b, NULL));
}

/* Feeds one sample; a new segment starts when the state differs. */
static int sqr_segment_feed(sqr_segment *g, int64_t t, const char *state, store_rows *rows) {
    if (g->open && ((!g->state && !state) || (g->state && state && strcmp(g->state, state) == 0))) return 0;
    if (sqr_segment_close(g, t, rows) != 0) return -1;
    g->open = 1;
    g->start_us = t;
    g->state = state ? strdup(state) : NULL;
    return state && !g->state ? -1 : 0;
}

static int sqr_timeline(store *s, const store_series_query *q, int64_t now_us, store_rows *rows, int *truncated,
                        char *err, size_t n) {
    sqr_segment g = {0};
    char sql[1024];
    const char *home = q->home_id ? SQR_HOME_COND "?4" : "";
    snprintf(sql, sizeof sql,
             "SELECT * FROM (SELECT time_us, state FROM events INDEXED BY events_entity_series"
             " WHERE entity_id = ?1 AND time_us < ?2 AND kind = 1%s ORDER BY time_us DESC, id DESC"
             " LIMIT 1) UNION ALL SELECT * FROM (SELECT time_us, state FROM events"
             " INDEXED BY events_entity_series WHERE entity_id = ?1 AND time_us >= ?2"
             " AND time_us < ?3 AND kind = 1%s ORDER BY time_us, id)",
             home, home);
    sqlite3_stmt *st = sqr_prepare(s, sql, err, n);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, q->entity_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, q->start_us);
    sqlite3_bind_int64(st, 3, q->end_us);
    if (q->home_id) sqlite3_bind_text(st, 4, q->home_id, -1, SQLITE_STATIC);
    int r;
    *truncated = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t t = sqlite3_column_int64(st, 0);
        if (t < q->start_us) t = q->start_us; /* the state the range starts in */
        if ((long)rows->n >= q->max_segments) {
            *truncated = 1;
            break;
        }
        if (sqr_segment_feed(&g, t, (const char *)sqlite3_column_text(st, 1), rows) != 0) {
            r = SQLITE_NOMEM;
            break;
        }
    }
    if (r != SQLITE_DONE && r != SQLITE_ROW) {
        free(g.state);
        return sqr_fail(s, st, "timeline", err, n);
    }
    sqlite3_finalize(st);
    int64_t end = q->end_us < now_us ? q->end_us : now_us;
    if (end < g.start_us) end = g.start_us;
    if (!*truncated && sqr_segment_close(&g, end, rows) != 0) return -1;
    free(g.state);
    return 0;
}

void store_sqlite_series(store *s, const store_series_query *q, store_read_cb cb, void *arg) {
    store_rows rows = {0};
    sbuf meta;
    sbuf_init(&meta);
    char err[256] = "";
    int rc = 0;
    sqlite3_stmt *st = sqr_prepare(s,
                                   "SELECT max(numeric) FROM entities WHERE entity_id = ?1"
                                   " AND (?2 IS NULL OR home_id = ?2) HAVING count(*) > 0",
                                   err, sizeof err);
    if (!st) {
        rc = -1;
        goto out;
    }
    sqlite3_bind_text(st, 1, q->entity_id, -1, SQLITE_STATIC);
    if (q->home_id) sqlite3_bind_text(st, 2, q->home_id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_DONE) {
        sqlite3_finalize(st);
        snprintf(err, sizeof err, "entity_id: no events stored for %.200s", q->entity_id);
        rc = 1;
        goto out;
    }
    if (r != SQLITE_ROW) {
        rc = sqr_fail(s, st, "series", err, sizeof err);
        goto out;
    }
    int numeric = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    char a[EVENT_TIME_LEN], b[EVENT_TIME_LEN];
    event_time_format(q->start_us, a);
    event_time_format(q->end_us, b);
    sbuf_adds(&meta, "\"entity_id\":");
    json_text_string(&meta, q->entity_id, strlen(q->entity_id));
    sbuf_printf(&meta, ",\"start\":\"%s\",\"end\":\"%s\"", a, b);
    if (numeric) {
        int64_t span = q->end_us - q->start_us, width = (span + q->points - 1) / q->points;
        if (width < 1) width = 1;
        rc = sqr_buckets(s, q, width, &rows, err, sizeof err);
        sbuf_printf(&meta, ",\"kind\":\"numeric\",\"bucket_s\":");
        json_text_real(&meta, (double)width / 1e6);
    } else {
        int truncated = 0;
        rc = sqr_timeline(s, q, service_now_us(), &rows, &truncated, err, sizeof err);
        sbuf_printf(&meta, ",\"kind\":\"timeline\",\"truncated\":%s", truncated ? "true" : "false");
    }
out:
    sqr_answer(&rows, &meta, rc, err, cb, arg);
}

/* ---- stats -------------------------------------------------------------- */

static int sqr_per_second(store *s, const store_stats_query *q, sbuf *meta, char *err, size_t n) {
    long w = q->window_s;
    int64_t from_s = q->now_us / 1000000 - w + 1;
    long long *counts = calloc((size_t)w, sizeof *counts);
    if (!counts) return -1;
    sqlite3_stmt *st = sqr_prepare(s,
                                   "SELECT time_us / 1000000, count(*) FROM events WHERE time_us >= ?1"
                                   " AND time_us < ?2 AND (?3 IS NULL OR home_id = ?3) GROUP BY 1",
                                   err, n);
    if (!st) {
        free(counts);
        return -1;
    }
    sqlite3_bind_int64(st, 1, from_s * 1000000);
    sqlite3_bind_int64(st, 2, (from_s + w) * 1000000);
    if (q->home_id) sqlite3_bind_text(st, 3, q->home_id, -1, SQLITE_STATIC);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t i = sqlite3_column_int64(st, 0) - from_s;
        if (i >= 0 && i < w) counts[i] = sqlite3_column_int64(st, 1);
    }
    if (r != SQLITE_DONE) {
        free(counts);
        return sqr_fail(s, st, "stats", err, n);
    }
    sqlite3_finalize(st);
    long long sum = 0;
    sbuf_printf(meta, ",\"window_s\":%ld,\"per_second\":[", w);
    for (long i = 0; i < w; i++) {
        sbuf_printf(meta, "%s%lld", i ? "," : "", counts[i]);
        sum += counts[i];
    }
    sbuf_printf(meta, "],\"window_events\":%lld", sum);
    free(counts);
    return 0;
}

static int sqr_per_domain(store *s, const store_stats_query *q, sbuf *meta, char *err, size_t n) {
    sqlite3_stmt *st = sqr_prepare(s,
                                   "SELECT coalesce(domain, ''), count(*) FROM events WHERE time_us >= ?1"
                                   " AND time_us < ?2 AND (?3 IS NULL OR home_id = ?3) GROUP BY 1 ORDER BY 2 DESC",
                                   err, n);
    if (!st) return -1;
    int64_t to = (q->now_us / 1000000 + 1) * 1000000;
    sqlite3_bind_int64(st, 1, to - (int64_t)q->window_s * 1000000);
    sqlite3_bind_int64(st, 2, to);
    if (q->home_id) sqlite3_bind_text(st, 3, q->home_id, -1, SQLITE_STATIC);
    sbuf_adds(meta, ",\"per_domain\":{");
    int r, first = 1;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (!first) sbuf_addc(meta, ',');
        first = 0;
        sqr_text(meta, st, 0);
        sbuf_printf(meta, ":%lld", (long long)sqlite3_column_int64(st, 1));
    }
    if (r != SQLITE_DONE) return sqr_fail(s, st, "stats", err, n);
    sqlite3_finalize(st);
    sbuf_addc(meta, '}');
    return 0;
}

static int64_t sqr_file_size(const char *path, const char *suffix) {
    char p[4200];
    struct stat sb;
    snprintf(p, sizeof p, "%s%s", path, suffix);
    return stat(p, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

void store_sqlite_stats(store *s, const store_stats_query *q, store_read_cb cb, void *arg) {
    store_rows rows = {0};
    sbuf meta;
    sbuf_init(&meta);
    char err[256] = "";
    int64_t events = 0, dead = 0, entities = 0;
    int64_t cursor = 0;
    int rc = sqr_scalar(s, "SELECT coalesce(max(id), 0) FROM events", &cursor, err, sizeof err);
    events = cursor;
    /* home= (issue 18): another home's events counted on its partial index; the
     * default home's = every id minus the other homes' (as max(id) stands for all) */
    if (rc == 0 && q->home_id) {
        int64_t others = 0;
        int dflt = strcmp(q->home_id, EVENT_HOME_DEFAULT) == 0;
        rc = sqr_home_count(s,
                            dflt ? "SELECT count(*) FROM events WHERE home_id != '" EVENT_HOME_DEFAULT "'"
                                 : "SELECT count(*) FROM events WHERE home_id != '" EVENT_HOME_DEFAULT "' AND home_id = ?1",
                            dflt ? NULL : q->home_id, &others, err, sizeof err);
        events = dflt ? cursor - others : others;
    }
    if (rc == 0)
        rc = sqr_home_count(s, "SELECT count(*) FROM dead_letters WHERE ?1 IS NULL OR home_id = ?1", q->home_id, &dead,
                            err, sizeof err);
    if (rc == 0)
        rc = sqr_home_count(s, "SELECT count(*) FROM entities WHERE ?1 IS NULL OR home_id = ?1", q->home_id, &entities,
                            err, sizeof err);
    if (rc != 0) goto out;
    const char *path = store_sqlite_path(s);
    sbuf_printf(&meta,
                "\"backend\":\"sqlite\",\"events_total\":%lld,\"dead_letters_total\":%lld,\"entities\":%lld,"
                "\"store_bytes\":%lld,\"cursor\":%lld",
                (long long)events, (long long)dead, (long long)entities,
                (long long)(sqr_file_size(path, "") + sqr_file_size(path, "-wal")), (long long)cursor);
    if (sqr_per_second(s, q, &meta, err, sizeof err) != 0 || sqr_per_domain(s, q, &meta, err, sizeof err) != 0) rc = -1;
out:
    sqr_answer(&rows, &meta, rc, err, cb, arg);
}
