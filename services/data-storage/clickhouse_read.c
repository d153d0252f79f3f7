/* clickhouse_read.c -- see clickhouse_read.h.
 *
 * Why these queries (docs/CLICKHOUSE.md, "Reads" has the long form):
 *  - ClickHouse has no commit-order row id, so the feed's cursor is
 *    stored_at_us (one stamp per batch, taken before its INSERT). A batch
 *    stamped earlier can become visible after one stamped later, so the feed
 *    never reads past a horizon: CLICKHOUSE_FEED_SETTLE_MS ago, and before
 *    the oldest batch this process still has in flight. A page is cut only
 *    between two stamps (never inside a batch), so "stamp > cursor" neither
 *    skips nor repeats. A copy of an event written again later (two
 *    replicas racing with one batch) is shown only at its first stamp.
 *  - Copies not merged yet are collapsed with LIMIT 1 BY event_id (series)
 *    or uniqExact(event_id) (entity counts); totals (stats, homes) count
 *    rows and may include copies until ClickHouse merges them.
 *  - State and value come from the stored record's top-level members
 *    with visitParamExtract* (18.16 has no JSONExtract; current releases
 *    keep visitParam* as aliases of simpleJSONExtract*): the enriched record
 *    has "state" and "value" as its own members before "attributes", and a
 *    string value cannot contain an unescaped "state": (docs/EVENTS.md §3).
 *  - Every read takes home= as a WHERE on home_id, the first key column.
 * Each read is one or two SELECTs chained through ch_store_select. */
#include "clickhouse_read.h"
#include "clickhouse_registry.h"
#include "clickhouse_sql.h"
#include "json_text.h"
#include "service.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A state_changed record with a value, as SQLite's model (store_sqlite_model.c):
 * "value" not null and a digit in "state" ("on" with value 1 is a timeline). */
#define CR_HAS_VALUE                                                                                                   \
    "(visitParamExtractRaw(record, 'value') NOT IN ('null', '') AND match(visitParamExtractRaw(record, 'state'), "    \
    "'[0-9]'))"
/* The state changed with this event (HA's old state differs from the new). */
#define CR_CHANGED "visitParamExtractRaw(record, 'state') != visitParamExtractRaw(record, 'old_state')"

/* A timeline reads at most this many state rows. */
#define CR_MAX_TIMELINE_ROWS 200000

typedef struct cr_req cr_req;

struct cr_req {
    store *s;
    store_read_cb cb;
    store_rows_cb rows_cb; /* homes */
    void *arg;
    char *cond;            /* " AND ..." filters of the read (home first) */
    store_rows rows;
    sbuf meta;
    /* feed */
    int64_t after, horizon, cutoff;
    int has_after, more;
    long limit;
    /* series */
    char *entity_id;
    int64_t start_us, end_us, width;
    long points, max_segments;
    int truncated, seg_open;
    int64_t seg_start;
    char *seg_state;       /* JSON text of the open segment's state */
    /* stats */
    int64_t from_s;
    long window_s;
    long long *per_second;
    sbuf domains;          /* per_domain members */
};

/* ---- helpers ------------------------------------------------------------- */

static cr_req *cr_new(store *s, store_read_cb cb, void *arg) {
    cr_req *r = calloc(1, sizeof *r);
    if (!r) {
        store_rows none = {0};
        cb(&none, NULL, -1, "out of memory", arg);
        return NULL;
    }
    r->s = s;
    r->cb = cb;
    r->arg = arg;
    sbuf_init(&r->meta);
    sbuf_init(&r->domains);
    return r;
}

static void cr_free(cr_req *r) {
    store_rows_free(&r->rows);
    sbuf_free(&r->meta);
    sbuf_free(&r->domains);
    free(r->cond);
    free(r->entity_id);
    free(r->seg_state);
    free(r->per_second);
    free(r);
}

/* Answers and frees. */
static void cr_end(cr_req *r, int rc, const char *err) {
    if (rc == 0 && sbuf_failed(&r->meta)) rc = -1, err = "out of memory";
    if (r->rows_cb) r->rows_cb(&r->rows, rc, err, r->arg);
    else r->cb(&r->rows, rc == 0 ? (r->meta.data ? r->meta.data : "") : NULL, rc, err, r->arg);
    cr_free(r);
}

/* Starts a read's condition: the home asked for (NULL = every home), rows
 * not expired (ch_store_visible). */
static void cr_home_cond(sbuf *cond, store *s, const char *home_id) {
    sbuf_init(cond);
    ch_where_eq(cond, "home_id", home_id);
    ch_store_visible(s, cond);
}

/* Takes cond's text into r->cond. 0/-1. */
static int cr_take_cond(cr_req *r, sbuf *cond) {
    if (sbuf_failed(cond)) {
        sbuf_free(cond);
        return -1;
    }
    r->cond = cond->data ? sbuf_take(cond, NULL) : strdup("");
    return r->cond ? 0 : -1;
}

static int64_t cr_int(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v)) return json_integer_value(v);
    return json_is_string(v) ? strtoll(json_string_value(v), NULL, 10) : 0;
}

static double cr_real(json_t *o, const char *key) { return json_number_value(json_object_get(o, key)); }

static void cr_time(sbuf *b, const char *key, int64_t us, int null_when_zero) {
    sbuf_printf(b, ",\"%s\":", key);
    if (null_when_zero && us == 0) {
        sbuf_adds(b, "null");
        return;
    }
    char t[EVENT_TIME_LEN];
    event_time_format(us, t);
    sbuf_printf(b, "\"%s\"", t);
}

/* Appends the JSON text `raw` (a member as stored) re-encoded, or null. */
static void cr_raw_json(sbuf *b, const char *raw) {
    json_t *v = raw && *raw ? json_loads(raw, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
    if (json_is_string(v)) json_text_string(b, json_string_value(v), json_string_length(v));
    else sbuf_adds(b, "null");
    json_decref(v);
}

static void cr_select(cr_req *r, sbuf *q, ch_answer_fn fn) { ch_store_select(r->s, q, fn, r); }

/* ---- feed ------------------------------------------------------------------ */

/* The first copy of each event in (after, upper] (a later copy of an event
 * already shown at its first stamp is left out). */
static void cr_feed_first_copies(sbuf *q, const cr_req *r, const char *db, int64_t upper) {
    sbuf_printf(q,
                " AND (event_id, stored_at_us) IN (SELECT event_id, min(stored_at_us) FROM %s.events WHERE event_id IN "
                "(SELECT event_id FROM %s.events WHERE stored_at_us > %lld AND stored_at_us <= %lld%s) GROUP BY "
                "event_id)",
                db, db, (long long)r->after, (long long)upper, r->cond);
}

static int cr_feed_row(void *ctx, json_t *o) {
    cr_req *r = ctx;
    const json_t *rec = json_object_get(o, "record");
    const char *eid = json_string_value(json_object_get(o, "event_id"));
    int64_t at = cr_int(o, "stored_at_us");
    if (!json_is_string(rec) || !eid) return -1;
    if (store_rows_add_event(&r->rows, json_string_value(rec), json_string_length(rec), eid, at) != 0) return -1;
    /* "seq": the row's stamp; the answer's cursor is what the next call passes */
    char *o2 = r->rows.json[r->rows.n - 1];
    size_t len = strlen(o2);
    char seq[40];
    int sl = snprintf(seq, sizeof seq, ",\"seq\":%lld}", (long long)at);
    char *p = realloc(o2, len + (size_t)sl);
    if (!p) return -1;
    memcpy(p + len - 1, seq, (size_t)sl + 1);
    r->rows.json[r->rows.n - 1] = p;
    return 0;
}

static void cr_feed_rows_done(int rc, const char *body, size_t len, const char *err, void *arg) {
    cr_req *r = arg;
    if (rc != 0) {
        cr_end(r, -1, err);
        return;
    }
    if (ch_json_lines(body, len, cr_feed_row, r) != 0) {
        cr_end(r, -1, "unreadable feed row from clickhouse");
        return;
    }
    int64_t cursor = r->has_after && r->more ? r->cutoff : r->horizon;
    if (r->has_after && cursor < r->after) cursor = r->after; /* never move a cursor back */
    sbuf_printf(&r->meta, "\"cursor\":%lld,\"head\":%lld,\"more\":%s", (long long)cursor, (long long)r->horizon,
                r->has_after && r->more ? "true" : "false");
    cr_end(r, 0, NULL);
}

/* A one-row answer of two numbers, "<a>\t<b>" (b 0 when absent): 0, or -1
 * after answering the failed query. */
static int cr_pair(cr_req *r, int rc, const char *body, size_t len, const char *err, long long *a, long long *b) {
    if (rc != 0) {
        cr_end(r, -1, err);
        return -1;
    }
    char text[64];
    snprintf(text, sizeof text, "%.*s", (int)(len < 63 ? len : 63), body);
    char *tab = strchr(text, '\t');
    *a = strtoll(text, NULL, 10);
    *b = tab ? strtoll(tab + 1, NULL, 10) : 0;
    return 0;
}

/* Step 1's answer: "<bound>\t<n>" -- the stamp where this page ends (after)
 * or starts (latest), and how many rows it has. */
static void cr_feed_bound_done(int rc, const char *body, size_t len, const char *err, void *arg) {
    cr_req *r = arg;
    long long bound, n;
    if (cr_pair(r, rc, body, len, err, &bound, &n) != 0) return;
    if (n == 0) {
        r->more = 0;
        cr_feed_rows_done(0, "", 0, NULL, r);
        return;
    }
    const char *db = ch_store_db(r->s);
    int64_t lo = r->after, hi = r->horizon;
    if (r->has_after) {
        r->more = n >= r->limit && bound < r->horizon;
        if (r->more) hi = r->cutoff = bound; /* the whole last batch: a page ends between two stamps */
    } else {
        lo = bound - 1;
    }
    sbuf q;
    sbuf_init(&q);
    sbuf_printf(&q,
                "SELECT record, event_id, stored_at_us FROM %s.events WHERE stored_at_us > "
                "%lld AND stored_at_us <= %lld%s",
                db, (long long)lo, (long long)hi, r->cond);
    int64_t saved = r->after;
    r->after = lo;
    cr_feed_first_copies(&q, r, db, hi);
    r->after = saved;
    /* a batch has one stamp and no commit order inside: its events by time
     * (as they were fired; SQLite's rowids follow the batch, in time order) */
    sbuf_adds(&q, " ORDER BY stored_at_us, time_us, event_id LIMIT 1 BY event_id FORMAT JSONEachRow");
    cr_select(r, &q, cr_feed_rows_done);
}

void ch_read_feed(store *s, const store_feed_query *q, store_read_cb cb, void *arg) {
    cr_req *r = cr_new(s, cb, arg);
    if (!r) return;
    const store_filter *f = q->f;
    sbuf cond;
    cr_home_cond(&cond, s, f->home_id);
    ch_where_eq(&cond, "entity_id", f->entity_id);
    ch_where_eq(&cond, "domain", f->domain);
    ch_where_eq(&cond, "event_type", f->event_type);
    ch_registry_where(&cond, f); /* area= (schema v3) */
    if (cr_take_cond(r, &cond) != 0) {
        cr_end(r, -1, "out of memory");
        return;
    }
    r->has_after = q->has_after;
    r->after = q->has_after ? q->after : 0;
    r->limit = f->limit;
    r->horizon = ch_store_feed_horizon(s, service_now_us());
    if (r->has_after && r->after >= r->horizon) { /* nothing can be past the horizon yet */
        cr_feed_rows_done(0, "", 0, NULL, r);
        return;
    }
    const char *db = ch_store_db(s);
    sbuf b;
    sbuf_init(&b);
    /* the page's bound: its limit-th stamp (copies counted: a page may be
     * shorter than limit, never cut inside a batch) */
    sbuf_printf(&b,
                "SELECT toString(%s(stored_at_us)), toString(count()) FROM (SELECT stored_at_us FROM %s.events WHERE "
                "stored_at_us > %lld AND stored_at_us <= %lld%s ORDER BY stored_at_us %s LIMIT %ld) FORMAT "
                "TabSeparated",
                r->has_after ? "max" : "min", db, (long long)r->after, (long long)r->horizon, r->cond,
                r->has_after ? "ASC" : "DESC", r->limit);
    cr_select(r, &b, cr_feed_bound_done);
}

/* ---- entities -------------------------------------------------------------- */

static int cr_entity_row(void *ctx, json_t *o) {
    cr_req *r = ctx;
    const char *id = json_string_value(json_object_get(o, "entity_id"));
    const char *dom = json_string_value(json_object_get(o, "dom"));
    if (!id) return -1;
    sbuf b;
    sbuf_init(&b);
    sbuf_adds(&b, "{\"entity_id\":");
    json_text_string(&b, id, strlen(id));
    sbuf_adds(&b, ",\"domain\":");
    if (dom && *dom) json_text_string(&b, dom, strlen(dom));
    else sbuf_adds(&b, "null");
    sbuf_adds(&b, ",\"state\":");
    cr_raw_json(&b, json_string_value(json_object_get(o, "state")));
    cr_time(&b, "last_changed", cr_int(o, "last_changed_us"), 1);
    cr_time(&b, "last_event", cr_int(o, "last_time_us"), 0);
    sbuf_printf(&b, ",\"event_count\":%lld,\"numeric\":%s}", (long long)cr_int(o, "event_count"),
                cr_int(o, "numeric") ? "true" : "false");
    return store_rows_add(&r->rows, sbuf_take(&b, NULL));
}

static void cr_entities_rows_done(int rc, const char *body, size_t len, const char *err, void *arg) {
    cr_req *r = arg;
    if (rc == 0 && ch_json_lines(body, len, cr_entity_row, r) != 0) rc = -1, err = "unreadable entity row from clickhouse";
    cr_end(r, rc, err);
}

static void cr_entities_total_done(int rc, const char *body, size_t len, const char *err, void *arg) {
    cr_req *r = arg;
    if (rc != 0) {
        cr_end(r, -1, err);
        return;
    }
    sbuf_printf(&r->meta, "\"total\":%lld", strtoll(len ? body : "0", NULL, 10));
    sbuf q;
    sbuf_init(&q);
    sbuf_printf(&q,
                "SELECT entity_id, any(domain) AS dom, argMaxIf(visitParamExtractRaw(record, 'state'), time_us, "
                "event_type = 'state_changed') AS state, toString(maxIf(time_us, event_type = 'state_changed' AND "
                CR_CHANGED ")) AS last_changed_us, toString(max(time_us)) AS last_time_us, toString(uniqExact("
                "event_id)) AS event_count, toUInt8(argMaxIf(" CR_HAS_VALUE ", time_us, event_type = 'state_changed'))"
                " AS numeric FROM %s.events WHERE entity_id != ''%s GROUP BY entity_id ORDER BY entity_id LIMIT %ld "
                "FORMAT JSONEachRow",
                ch_store_db(r->s), r->cond, r->limit);
    cr_select(r, &q, cr_entities_rows_done);
}

void ch_read_entities(store *s, const store_entity_query *q, store_read_cb cb, void *arg) {
    cr_req *r = cr_new(s, cb, arg);
    if (!r) return;
    sbuf cond;
    cr_home_cond(&cond, s, q->home_id);
    if (cr_take_cond(r, &cond) != 0) {
        cr_end(r, -1, "out of memory");
        return;
    }
    r->limit = q->limit;
    /* total: every entity of the home(s), as SQLite's count of its entity table */
    sbuf t;
    sbuf_init(&t);
    sbuf_printf(&t, "SELECT toString(uniqExact(entity_id)) FROM %s.events WHERE entity_id != ''%s FORMAT TabSeparated",
                ch_store_db(s), r->cond);
    /* then the filters of the list */
    sbuf more;
    sbuf_init(&more);
    sbuf_adds(&more, r->cond);
    ch_where_eq(&more, "domain", q->domain);
    if (q->search) {
        sbuf_adds(&more, " AND position(entity_id, ");
        ch_quote(&more, q->search);
        sbuf_adds(&more, ") > 0");
    }
    free(r->cond);
    r->cond = NULL;
    if (cr_take_cond(r, &more) != 0) {
        sbuf_free(&t);
        cr_end(r, -1, "out of memory");
        return;
    }
    cr_select(r, &t, cr_entities_total_done);
}

/* ---- series ------------------------------------------------------------------ */

/* The events of one entity in the range, one row per identity. */
static void cr_series_range(sbuf *q, const cr_req *r, const char *db, int64_t from_us, int64_t to_us) {
    int64_t a = from_us / 1000000, b = to_us / 1000000 + 1;
    sbuf_printf(q,
                "FROM %s.events WHERE entity_id = ", db);
    ch_quote(q, r->entity_id);
    sbuf_printf(q, "%s AND event_type = 'state_changed' AND time >= toDateTime(%lld) AND time <= toDateTime(%lld)"
                   " AND time_us >= %lld AND time_us < %lld",
                r->cond, (long long)(a < 0 ? 0 : a), (long long)(b > 4294967295LL ? 4294967295LL : b),
                (long long)from_us, (long long)to_us);
}

static int cr_bucket_row(void *ctx, json_t *o) {
    cr_req *r = ctx;
    char t[EVENT_TIME_LEN];
    event_time_format(r->start_us + cr_int(o, "b") * r->width, t);
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "{\"t\":\"%s\",\"min\":", t);
    json_text_real(&b, cr_real(o, "mn"));
    sbuf_adds(&b, ",\"mean\":");
    json_text_real(&b, cr_real(o, "av"));
    sbuf_adds(&b, ",\"max\":");
    json_text_real(&b, cr_real(o, "mx"));
    sbuf_printf(&b, ",\"count\":%lld}", (long long)cr_int(o, "n"));
    return store_rows_add(&r->rows, sbuf_take(&b, NULL));
}

static int cr_segment_close(cr_req *r, int64_t end_us) {
    if (!r->seg_open) return 0;
    char a[EVENT_TIME_LEN], b2[EVENT_TIME_LEN];
    event_time_format(r->seg_start, a);
    event_time_format(end_us, b2);
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "{\"start\":\"%s\",\"end\":\"%s\",\"state\":", a, b2);
    cr_raw_json(&b, r->seg_state);
    sbuf_addc(&b, '}');
    free(r->seg_state);
    r->seg_state = NULL;
    r->seg_open = 0;
    return store_rows_add(&r->rows, sbuf_take(&b, NULL));
}

/* One state row (oldest first); a new segment starts when the state differs. */
static int cr_timeline_row(void *ctx, json_t *o) {
    cr_req *r = ctx;
    if (r->truncated) return 0;
    int64_t t = cr_int(o, "t");
    const char *state = json_string_value(json_object_get(o, "state"));
    if (!state) return -1;
    if (t < r->start_us) t = r->start_us; /* the state the range starts in */
    if (r->seg_open && strcmp(r->seg_state, state) == 0) return 0;
    if ((long)r->rows.n >= r->max_segments) {
        r->truncated = 1;
        return 0;
    }
    if (cr_segment_close(r, t) != 0) return -1;
    r->seg_open = 1;
    r->seg_start = t;
    r->seg_state = strdup(state);
    return r->seg_state ? 0 : -1;
}

static void cr_series_rows_done(int rc, const char *body, size_t len, const char *err, void *arg) {
    cr_req *r = arg;
    if (rc != 0) {
        cr_end(r, -1, err);
        return;
    }
    if (r->width) {
        if (ch_json_lines(body, len, cr_bucket_row, r) != 0) rc = -1;
    } else {
        if (ch_json_lines(body, len, cr_timeline_row, r) != 0) rc = -1;
        int64_t now = service_now_us(), end = r->end_us < now ? r->end_us : now;
        if (end < r->seg_start) end = r->seg_start;
        if (rc == 0 && !r->truncated && cr_segment_close(r, end) != 0) rc = -1;
        sbuf_printf(&r->meta, ",\"kind\":\"timeline\",\"truncated\":%s", r->truncated ? "true" : "false");
    }
    cr_end(r, rc, rc ? "unreadable series row from clickhouse" : NULL);
}

/* Step 1's answer: "<events>\t<numeric>" of the entity (its latest state). */
static void cr_series_kind_done(int rc, const char *body, size_t len, const char *err, void *arg) {
    cr_req *r = arg;
    long long events, numeric_n;
    if (cr_pair(r, rc, body, len, err, &events, &numeric_n) != 0) return;
    if (events == 0) {
        char why[300];
        snprintf(why, sizeof why, "entity_id: no events stored for %.200s", r->entity_id);
        cr_end(r, 1, why);
        return;
    }
    int numeric = numeric_n != 0;
    char a[EVENT_TIME_LEN], b[EVENT_TIME_LEN];
    event_time_format(r->start_us, a);
    event_time_format(r->end_us, b);
    sbuf_adds(&r->meta, "\"entity_id\":");
    json_text_string(&r->meta, r->entity_id, strlen(r->entity_id));
    sbuf_printf(&r->meta, ",\"start\":\"%s\",\"end\":\"%s\"", a, b);
    const char *db = ch_store_db(r->s);
    sbuf q;
    sbuf_init(&q);
    if (numeric) {
        int64_t span = r->end_us - r->start_us;
        r->width = (span + r->points - 1) / r->points;
        if (r->width < 1) r->width = 1;
        sbuf_printf(&r->meta, ",\"kind\":\"numeric\",\"bucket_s\":");
        json_text_real(&r->meta, (double)r->width / 1e6);
        sbuf_printf(&q,
                    "SELECT intDiv(time_us - %lld, %lld) AS bk, toString(bk) AS b, min(v) AS mn, avg(v) AS av, max(v) AS mx, "
                    "toString(count()) AS n FROM (SELECT time_us, visitParamExtractFloat(record, 'value') AS v ",
                    (long long)r->start_us, (long long)r->width);
        cr_series_range(&q, r, db, r->start_us, r->end_us);
        sbuf_adds(&q, " AND " CR_HAS_VALUE " LIMIT 1 BY event_id) GROUP BY bk"
                      " ORDER BY bk FORMAT JSONEachRow");
    } else {
        /* the state before the range, then the range, oldest first */
        sbuf_adds(&q, "SELECT toString(tu) AS t, state FROM (SELECT time_us AS tu, event_id, visitParamExtractRaw("
                      "record, 'state') AS state ");
        cr_series_range(&q, r, db, 0, r->start_us);
        sbuf_adds(&q, " ORDER BY time_us DESC, event_id DESC LIMIT 1 UNION ALL SELECT time_us AS tu, event_id, "
                      "visitParamExtractRaw(record, 'state') AS state ");
        cr_series_range(&q, r, db, r->start_us, r->end_us);
        sbuf_printf(&q, " ORDER BY time_us, event_id LIMIT 1 BY event_id LIMIT %d) ORDER BY tu, event_id FORMAT "
                        "JSONEachRow",
                    CR_MAX_TIMELINE_ROWS);
    }
    cr_select(r, &q, cr_series_rows_done);
}

void ch_read_series(store *s, const store_series_query *q, store_read_cb cb, void *arg) {
    cr_req *r = cr_new(s, cb, arg);
    if (!r) return;
    sbuf cond;
    cr_home_cond(&cond, s, q->home_id);
    r->entity_id = strdup(q->entity_id);
    if (cr_take_cond(r, &cond) != 0 || !r->entity_id) {
        cr_end(r, -1, "out of memory");
        return;
    }
    r->start_us = q->start_us;
    r->end_us = q->end_us;
    r->points = q->points;
    r->max_segments = q->max_segments;
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b,
                "SELECT toString(count()), toUInt8(argMax(" CR_HAS_VALUE ", time_us)) FROM %s.events WHERE entity_id = ",
                ch_store_db(s));
    ch_quote(&b, r->entity_id);
    sbuf_printf(&b, "%s AND event_type = 'state_changed' FORMAT TabSeparated", r->cond);
    cr_select(r, &b, cr_series_kind_done);
}

/* ---- stats ------------------------------------------------------------------- */

/* One row of the window's answer: part "a" = (second, count), part "b" =
 * (domain, count), most first (gathered in r->domains). */
static int cr_window_row(void *ctx, json_t *o) {
    cr_req *r = ctx;
    const char *part = json_string_value(json_object_get(o, "part"));
    const char *key = json_string_value(json_object_get(o, "key"));
    if (!part || !key) return -1;
    if (part[0] == 'a') {
        int64_t i = strtoll(key, NULL, 10) - r->from_s;
        if (i >= 0 && i < r->window_s) r->per_second[i] += cr_int(o, "n");
        return 0;
    }
    if (r->domains.len) sbuf_addc(&r->domains, ',');
    json_text_string(&r->domains, key, strlen(key));
    sbuf_printf(&r->domains, ":%lld", (long long)cr_int(o, "n"));
    return 0;
}

static void cr_stats_window_done(int rc, const char *body, size_t len, const char *err, void *arg) {
    cr_req *r = arg;
    if (rc != 0) {
        cr_end(r, -1, err);
        return;
    }
    if (ch_json_lines(body, len, cr_window_row, r) != 0 || sbuf_failed(&r->domains)) {
        cr_end(r, -1, "unreadable stats row from clickhouse");
        return;
    }
    long long sum = 0;
    sbuf_printf(&r->meta, ",\"window_s\":%ld,\"per_second\":[", r->window_s);
    for (long i = 0; i < r->window_s; i++) {
        sbuf_printf(&r->meta, "%s%lld", i ? "," : "", r->per_second[i]);
        sum += r->per_second[i];
    }
    sbuf_printf(&r->meta, "],\"window_events\":%lld,\"per_domain\":{", sum);
    sbuf_add(&r->meta, r->domains.data ? r->domains.data : "", r->domains.len);
    sbuf_addc(&r->meta, '}');
    cr_end(r, 0, NULL);
}

static int cr_totals_row(void *ctx, json_t *o) {
    cr_req *r = ctx;
    sbuf_printf(&r->meta,
                "\"backend\":\"clickhouse\",\"events_total\":%lld,\"dead_letters_total\":%lld,\"entities\":%lld,"
                "\"store_bytes\":%lld,\"cursor\":%lld",
                (long long)cr_int(o, "events"), (long long)cr_int(o, "dead"), (long long)cr_int(o, "entities"),
                (long long)cr_int(o, "bytes"), (long long)r->horizon);
    return 0;
}

static void cr_stats_totals_done(int rc, const char *body, size_t len, const char *err, void *arg) {
    cr_req *r = arg;
    if (rc != 0) {
        cr_end(r, -1, err);
        return;
    }
    if (ch_json_lines(body, len, cr_totals_row, r) != 0 || !r->meta.len) {
        cr_end(r, -1, "unreadable stats answer from clickhouse");
        return;
    }
    const char *db = ch_store_db(r->s);
    int64_t to = r->from_s + r->window_s;
    sbuf q;
    sbuf_init(&q);
    /* per second, then per domain (most first), in one answer */
    sbuf_printf(&q,
                "SELECT * FROM (SELECT 'a' AS part, toString(intDiv(time_us, 1000000)) AS key, toString(count()) AS n "
                "FROM %s.events WHERE time >= toDateTime(%lld) AND time < toDateTime(%lld) AND time_us >= %lld AND "
                "time_us < %lld%s GROUP BY key UNION ALL SELECT 'b' AS part, domain AS key, toString(count()) AS n "
                "FROM %s.events WHERE time >= toDateTime(%lld) AND time < toDateTime(%lld) AND time_us >= %lld AND "
                "time_us < %lld%s GROUP BY key) ORDER BY part, toUInt64(n) DESC, key FORMAT JSONEachRow",
                db, (long long)r->from_s, (long long)to, (long long)r->from_s * 1000000, (long long)to * 1000000,
                r->cond, db, (long long)r->from_s, (long long)to, (long long)r->from_s * 1000000,
                (long long)to * 1000000, r->cond);
    cr_select(r, &q, cr_stats_window_done);
}

void ch_read_stats(store *s, const store_stats_query *q, store_read_cb cb, void *arg) {
    cr_req *r = cr_new(s, cb, arg);
    if (!r) return;
    sbuf cond;
    cr_home_cond(&cond, s, q->home_id);
    r->window_s = q->window_s;
    r->from_s = q->now_us / 1000000 - q->window_s + 1;
    r->per_second = calloc((size_t)q->window_s, sizeof *r->per_second);
    if (cr_take_cond(r, &cond) != 0 || !r->per_second) {
        cr_end(r, -1, "out of memory");
        return;
    }
    r->horizon = ch_store_feed_horizon(s, q->now_us);
    const char *db = ch_store_db(s);
    sbuf b, dead;
    sbuf_init(&b);
    sbuf_init(&dead);
    ch_where_eq(&dead, "home_id", q->home_id); /* dead letters are kept (no retention) */
    /* store_bytes: the whole database (parts are not split by home) */
    sbuf_printf(&b,
                "SELECT toString((SELECT count() FROM %s.events WHERE 1%s)) AS events, toString((SELECT count() FROM "
                "%s.dead_letters WHERE 1%s)) AS dead, toString((SELECT uniqExact(entity_id) FROM %s.events WHERE "
                "entity_id != ''%s)) AS entities, toString((SELECT sum(bytes) FROM system.parts WHERE database = '%s' "
                "AND active)) AS bytes FORMAT JSONEachRow",
                db, r->cond, db, dead.data ? dead.data : "", db, r->cond, db);
    if (sbuf_failed(&dead)) b.failed = 1;
    sbuf_free(&dead);
    cr_select(r, &b, cr_stats_totals_done);
}

/* ---- homes ----------------------------------------------------------------- */

static int cr_home_row(void *ctx, json_t *o) {
    cr_req *r = ctx;
    const char *h = json_string_value(json_object_get(o, "home_id"));
    if (!h) return -1;
    sbuf b;
    sbuf_init(&b);
    sbuf_adds(&b, "{\"home_id\":");
    json_text_string(&b, h, strlen(h));
    sbuf_printf(&b, ",\"events\":%lld}", (long long)cr_int(o, "events"));
    return store_rows_add(&r->rows, sbuf_take(&b, NULL));
}

static void cr_homes_done(int rc, const char *body, size_t len, const char *err, void *arg) {
    cr_req *r = arg;
    if (rc == 0 && ch_json_lines(body, len, cr_home_row, r) != 0) rc = -1, err = "unreadable home row from clickhouse";
    cr_end(r, rc, err);
}

static void cr_homes_cb_adapter(const store_rows *rows, const char *meta, int rc, const char *err, void *arg) {
    (void)rows, (void)meta, (void)rc, (void)err, (void)arg; /* never called: homes answer through rows_cb */
}

void ch_read_homes(store *s, store_rows_cb cb, void *arg) {
    cr_req *r = calloc(1, sizeof *r);
    if (!r) {
        store_rows none = {0};
        cb(&none, -1, "out of memory", arg);
        return;
    }
    *r = (cr_req){.s = s, .cb = cr_homes_cb_adapter, .rows_cb = cb, .arg = arg};
    sbuf_init(&r->meta);
    sbuf_init(&r->domains);
    sbuf q;
    sbuf_init(&q);
    sbuf_printf(&q,
                "SELECT home_id, toString(count()) AS events FROM %s.events GROUP BY home_id ORDER BY home_id FORMAT "
                "JSONEachRow",
                ch_store_db(s));
    cr_select(r, &q, cr_homes_done);
}
