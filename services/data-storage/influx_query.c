/* influx_query.c -- see influx_query.h (the feed design) and
 * docs/INFLUX_READS.md.
 *
 * Why these queries (InfluxQL, influxd 1.6):
 *  - feed: one range of homeiq_feed by time (its only index), bounded by the
 *    head; then the page's records are read from HomeIQ's measurement by
 *    time: the page's event times are grouped into ranges (times within a
 *    second share one, influx_dup_ranges), one SELECT per range, joined to
 *    the page by event_id. A live tail is one or two SELECTs per page.
 *  - entities: count / last() GROUP BY entity_id (the series index), then,
 *    for the answered page only, the time of each entity's last change:
 *    the last state_changed point whose state differs from the last state,
 *    and the first point after it.
 *  - series: min/mean/max/count GROUP BY time(width, offset) so the buckets
 *    start at `start` as on SQLite; a timeline is the state before the
 *    range plus the range's points, equal neighbours merged here.
 *  - stats: count GROUP BY time(1s) / domain over the window; the totals are
 *    counted once (the first stats call) and then kept by the write hook,
 *    so the dashboard's polling never scans the whole store.
 * The numeric reading of a state is `value` when the state string holds a
 * digit, as on SQLite (store_sqlite_read.h), so on/off stay a timeline.
 * Every read is a chain of /query requests on the loop (iq_req). */
#include "influx_query.h"
#include "influx_answer.h"
#include "influx_time.h"
#include "json_text.h"
#include "lineproto.h"
#include "log.h"
#include "service.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IQ_EVENTS "home_assistant_events"
#define IQ_DEAD "homeiq_dead_letters"
#define IQ_STMTS_PER_REQUEST 200
#define IQ_HA_WHY                                                                                                   \
    "INFLUXDB_SCHEMA=homeassistant stores state_changed events as Home Assistant's points (one measurement per "   \
    "unit, no HomeIQ record, no commit-order index), which this read needs; use INFLUXDB_SCHEMA=homeiq for the "   \
    "dashboard, or read HA's points with InfluxQL/Grafana"

typedef struct iq_entity {
    char *id, *domain, *state;
    long long count;
    int64_t last_ns, state_ns, t0_ns, changed_ns;
    int has_state, numeric, has_t0, has_changed;
} iq_entity;

struct influx_reads {
    int ha_schema;
    char *db;
    int64_t feed_last;   /* last feed sequence given out (us; the point's time is seq * 1000 ns) */
    int64_t head;        /* highest sequence of an acknowledged batch (us) */
    int head_known;      /* head read back from InfluxDB since start */
    int64_t events_total, dead_total;
    int totals_known, counting; /* counted once; one count in flight at most */
    iq_entity *cache;           /* every entity, sorted by id, once built (cache_state 2) */
    size_t ncache, capcache;
    int cache_state;            /* 0 not built, 1 being built, 2 built and kept by the write path */
    struct iq_req *waiting;     /* entity reads waiting for the build (linked by next_wait) */
};

/* ---- the write hooks ---------------------------------------------------- */

int influx_reads_new(int ha_schema, const char *db, influx_reads **out) {
    influx_reads *r = calloc(1, sizeof *r);
    if (!r || !(r->db = strdup(db ? db : ""))) {
        free(r);
        return -1;
    }
    r->ha_schema = ha_schema;
    *out = r;
    return 0;
}

static void iq_entities_free(iq_entity *e, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(e[i].id);
        free(e[i].domain);
        free(e[i].state);
    }
    free(e);
}

void influx_reads_free(influx_reads *r) {
    if (!r) return;
    iq_entities_free(r->cache, r->ncache);
    free(r->db);
    free(r);
}

/* ---- the entity cache: built once by a read, then kept by the write path ---- */

static int iq_cmp_entity(const void *a, const void *b) {
    return strcmp(((const iq_entity *)a)->id, ((const iq_entity *)b)->id);
}

/* The cached entity `id`, inserted (sorted) when new; NULL when out of memory. */
static iq_entity *iq_cache_get(influx_reads *r, const char *id, const char *domain) {
    size_t lo = 0, hi = r->ncache;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(r->cache[mid].id, id);
        if (c == 0) return &r->cache[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    if (r->ncache == r->capcache) {
        size_t cap = r->capcache ? r->capcache * 2 : 64;
        iq_entity *p = realloc(r->cache, cap * sizeof *p);
        if (!p) return NULL;
        r->cache = p;
        r->capcache = cap;
    }
    iq_entity e = {.id = strdup(id), .domain = domain && *domain ? strdup(domain) : NULL};
    if (!e.id || (domain && *domain && !e.domain)) {
        free(e.id);
        free(e.domain);
        return NULL;
    }
    memmove(&r->cache[lo + 1], &r->cache[lo], (r->ncache - lo) * sizeof *r->cache);
    r->cache[lo] = e;
    r->ncache++;
    return &r->cache[lo];
}

/* One stored event, as the entity queries would count it. -1 out of memory. */
static int iq_cache_apply(influx_reads *r, const store_item *it) {
    if (!it->entity_id || !*it->entity_id) return 0; /* no entity */
    iq_entity *e = iq_cache_get(r, it->entity_id, it->domain);
    if (!e) return -1;
    int64_t ns = it->time_us * 1000;
    e->count++;
    if (ns > e->last_ns) e->last_ns = ns;
    const char *st = it->record ? json_string_value(json_object_get(it->record, "state")) : NULL;
    if (!st || !it->event_type || strcmp(it->event_type, "state_changed") != 0) return 0;
    if (json_is_number(json_object_get(it->record, "value")) && strpbrk(st, "0123456789")) e->numeric = 1;
    if (e->has_state && ns < e->state_ns) return 0; /* older than the newest state: history only */
    if (!e->has_state || strcmp(e->state, st) != 0) {
        char *copy = strdup(st);
        if (!copy) return -1;
        free(e->state);
        e->state = copy;
        e->changed_ns = ns;
        e->has_changed = 1;
    }
    e->has_state = 1;
    e->state_ns = ns;
    return 0;
}

static void iq_tag(sbuf *b, const char *key, const char *value) {
    if (!value || !*value) return; /* InfluxDB has no empty tag values */
    sbuf_addc(b, ',');
    sbuf_adds(b, key);
    sbuf_addc(b, '=');
    lineproto_tag(b, value);
}

void influx_reads_feed_line(influx_reads *r, sbuf *body, const store_item *it, uint64_t event_ns) {
    int64_t seq = service_now_us(); /* microseconds: < 2^53, exact in JavaScript */
    if (seq <= r->feed_last) seq = r->feed_last + 1;
    r->feed_last = seq;
    lineproto_measurement(body, INFLUX_FEED_MEASUREMENT);
    iq_tag(body, "domain", it->domain);
    iq_tag(body, "entity_id", it->entity_id);
    iq_tag(body, "event_type", it->event_type);
    sbuf_adds(body, " event_id=");
    lineproto_field_string(body, it->event_id, strlen(it->event_id));
    sbuf_printf(body, ",t=%lldi %lld\n", (long long)event_ns, (long long)seq * 1000);
}

void influx_reads_committed(influx_reads *r, const store_batch *b) {
    /* one batch at a time: every sequence given out so far is now visible */
    if (r->feed_last > r->head) r->head = r->feed_last;
    r->events_total += (int64_t)b->stored;
    r->dead_total += (int64_t)b->ndead;
    if (r->cache_state != 2) return;
    for (size_t i = 0; i < b->nitems; i++) {
        if (b->items[i].status != STORE_ITEM_STORED || iq_cache_apply(r, &b->items[i]) == 0) continue;
        iq_entities_free(r->cache, r->ncache); /* out of memory: the next read builds it again */
        r->cache = NULL;
        r->ncache = r->capcache = 0;
        r->cache_state = 0;
        return;
    }
}

/* ---- a read: a chain of /query requests -------------------------------- */

typedef struct iq_req iq_req;
typedef int (*iq_row_fn)(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals);
typedef void (*iq_step_fn)(iq_req *q);

typedef struct iq_feed_row {
    int64_t seq, t_ns, stored_at_us;
    char event_id[EVENT_ID_LEN];
    char *record;
} iq_feed_row;

typedef struct iq_segment {
    int open;
    int64_t start_us;
    char *state;
} iq_segment;

struct iq_req {
    store *s;
    influx_reads *r;
    store_read_cb cb;
    void *arg;
    store_rows rows;
    sbuf meta;
    iq_row_fn row;
    iq_step_fn next;
    int tolerate_stmt;          /* a statement whose error is not fatal (-1: none) */
    int failed;
    char err[256];
    /* filters (copied) */
    char *entity_id, *domain, *event_type, *search;
    long limit;
    /* feed */
    int64_t after, head;
    int has_after;
    iq_feed_row *fr;
    size_t nfr, frcap;
    iq_feed_row **by_id;        /* fr sorted by event_id */
    influx_us_range *ranges;
    size_t nranges, range_next;
    /* entities */
    iq_entity *ents;
    size_t nents, entcap, chunk_lo, chunk_hi;
    int64_t total;
    int building;               /* this read builds the entity cache: no filters, no limit */
    struct iq_req *next_wait;
    /* series */
    int64_t start_us, end_us, width_us;
    long points, max_segments;
    int numeric, exists, truncated;
    iq_segment seg;
    /* stats */
    int64_t now_us, from_s, store_bytes;
    long window_s;
    long long *per_second;
    int64_t count_events, count_dead;
    int counted;
};

static void iq_feed_rows_free(iq_req *q) {
    for (size_t i = 0; i < q->nfr; i++) free(q->fr[i].record);
    free(q->fr);
    free(q->by_id);
    free(q->ranges);
}

static void iq_finish(iq_req *q, int rc, const char *err);

static void iq_free(iq_req *q) {
    if (q->counted) q->r->counting = 0; /* answered or failed: a later call may count */
    if (q->building && q->r->cache_state == 1) { /* failed: the waiting reads fail too, a later read builds */
        q->r->cache_state = 0;
        iq_req *w = q->r->waiting;
        q->r->waiting = NULL;
        while (w) {
            iq_req *next = w->next_wait;
            iq_finish(w, -1, "the entity list could not be read from InfluxDB");
            w = next;
        }
    }
    iq_feed_rows_free(q);
    iq_entities_free(q->ents, q->nents);
    free(q->seg.state);
    free(q->per_second);
    free(q->entity_id);
    free(q->domain);
    free(q->event_type);
    free(q->search);
    store_rows_free(&q->rows);
    sbuf_free(&q->meta);
    free(q);
}

static void iq_finish(iq_req *q, int rc, const char *err) {
    if (rc == 0 && sbuf_failed(&q->meta)) rc = -1, err = "out of memory";
    if (rc != 0 && rc != STORE_QUERY_UNSUPPORTED && rc != 1) log_warn("influxdb read failed: %s", err ? err : "");
    q->cb(&q->rows, rc == 0 ? (q->meta.data ? q->meta.data : "") : NULL, rc, err, q->arg);
    iq_free(q);
}

static iq_req *iq_new(store *s, store_read_cb cb, void *arg) {
    iq_req *q = calloc(1, sizeof *q);
    influx_reads *r = store_influx_reads(s);
    if (!q) {
        store_rows none = {0};
        cb(&none, NULL, -1, "out of memory", arg);
        return NULL;
    }
    *q = (iq_req){.s = s, .r = r, .cb = cb, .arg = arg, .tolerate_stmt = -1};
    sbuf_init(&q->meta);
    if (r->ha_schema) {
        iq_finish(q, STORE_QUERY_UNSUPPORTED, IQ_HA_WHY);
        return NULL;
    }
    return q;
}

static char *iq_dup(const char *s, int *oom) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *oom = 1;
    return d;
}

static int iq_col(json_t *cols, const char *name) { return influx_answer_col(cols, name); }

static const char *iq_str(json_t *cols, json_t *vals, const char *name) {
    int i = iq_col(cols, name);
    return i < 0 ? NULL : json_string_value(json_array_get(vals, (size_t)i));
}

/* An integer column; 0 with *ok 0 when absent or null. */
static int64_t iq_int(json_t *cols, json_t *vals, const char *name, int *ok) {
    int i = iq_col(cols, name);
    json_t *v = i < 0 ? NULL : json_array_get(vals, (size_t)i);
    if (ok) *ok = json_is_number(v);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : json_is_real(v) ? (int64_t)json_real_value(v) : 0;
}

static const char *iq_tagv(json_t *tags, const char *key) {
    const char *v = json_string_value(json_object_get(tags, key));
    return v && *v ? v : NULL;
}

static void iq_error_text(const httpc_response *r, char *out, size_t n) {
    json_t *j = r->body_len ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
    const char *e = json_string_value(json_object_get(j, "error"));
    if (e) snprintf(out, n, "influxdb: %s", e);
    else if (r->status == 0) snprintf(out, n, "influxdb unreachable: %s", r->error ? r->error : "no response");
    else snprintf(out, n, "influxdb: HTTP %ld: %.200s", r->status, r->body_len ? r->body : "");
    json_decref(j);
}

static int iq_answer_row(const influx_answer_row *row, void *arg) {
    iq_req *q = arg;
    return q->row(q, row->stmt, row->tags, row->columns, row->values);
}

/* Walks the (chunked) answer (influx_answer.h); the statement q->tolerate_stmt
 * may fail. -1 with q->err. */
static int iq_walk(iq_req *q, const httpc_response *r) {
    return influx_answer_walk(r->body, r->body_len, q->tolerate_stmt, iq_answer_row, q, q->err, sizeof q->err);
}

static void iq_done(const httpc_response *r, void *arg) {
    iq_req *q = arg;
    if (r->status != 200) {
        iq_error_text(r, q->err, sizeof q->err);
        iq_finish(q, -1, q->err);
    } else if (iq_walk(q, r) != 0) {
        iq_finish(q, -1, q->err);
    } else {
        q->next(q);
    }
}

/* Sends sql; row() gets each value row, then next() runs (or the read fails). */
static void iq_send(iq_req *q, sbuf *sql, iq_row_fn row, iq_step_fn next) {
    q->row = row;
    q->next = next;
    if (sbuf_failed(sql)) iq_finish(q, -1, "out of memory");
    else if (store_influx_sql(q->s, sql->data, iq_done, q) != 0) iq_finish(q, -1, "cannot start a request to InfluxDB");
    sbuf_free(sql);
}

/* ---- InfluxQL pieces --------------------------------------------------- */

/* ` AND "key" = '<tag form>'` (or WHERE when *first). */
static void iq_where_tag(sbuf *b, int *first, const char *key, const char *value) {
    if (!value) return;
    sbuf_adds(b, *first ? " WHERE " : " AND ");
    *first = 0;
    influxql_ident(b, key);
    sbuf_adds(b, " = ");
    sbuf form;
    sbuf_init(&form);
    lineproto_tag_form(&form, value);
    influxql_string(b, form.data ? form.data : "");
    sbuf_free(&form);
}

static void iq_where(sbuf *b, int *first, const char *cond) {
    sbuf_adds(b, *first ? " WHERE " : " AND ");
    *first = 0;
    sbuf_adds(b, cond);
}

/* ` AND "entity_id" =~ /<escaped tag form of s>/`: a substring match. */
static void iq_where_substring(sbuf *b, int *first, const char *key, const char *s) {
    if (!s) return;
    sbuf form;
    sbuf_init(&form);
    lineproto_tag_form(&form, s);
    sbuf_adds(b, *first ? " WHERE " : " AND ");
    *first = 0;
    influxql_ident(b, key);
    sbuf_adds(b, " =~ /");
    for (const char *p = form.data ? form.data : ""; *p; p++) {
        if (strchr("\\.+*?()|[]{}^$/", *p)) sbuf_addc(b, '\\');
        sbuf_addc(b, *p);
    }
    sbuf_addc(b, '/');
    sbuf_free(&form);
}

#define IQ_NUMERIC_STATE "event_type = 'state_changed' AND state =~ /[0-9]/"

/* ---- feed ---------------------------------------------------------------- */

static void iq_feed_list(iq_req *q);

static int iq_head_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    (void)stmt, (void)tags;
    int64_t t = iq_int(cols, vals, "time", NULL) / 1000;
    if (t > q->r->head) q->r->head = t;
    if (t > q->r->feed_last) q->r->feed_last = t;
    return 0;
}

static void iq_head_known(iq_req *q) {
    q->r->head_known = 1;
    iq_feed_list(q);
}

static int iq_feed_row_cb(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    (void)stmt, (void)tags;
    const char *id = iq_str(cols, vals, "event_id");
    if (!id || strlen(id) != EVENT_ID_LEN - 1) return 0;
    if (q->nfr == q->frcap) {
        size_t cap = q->frcap ? q->frcap * 2 : 64;
        iq_feed_row *p = realloc(q->fr, cap * sizeof *p);
        if (!p) return -1;
        q->fr = p;
        q->frcap = cap;
    }
    iq_feed_row *f = &q->fr[q->nfr++];
    memset(f, 0, sizeof *f);
    f->seq = iq_int(cols, vals, "time", NULL) / 1000;
    f->t_ns = iq_int(cols, vals, "t", NULL);
    memcpy(f->event_id, id, EVENT_ID_LEN);
    return 0;
}

static int iq_cmp_row_id(const void *a, const void *b) {
    return strcmp((*(iq_feed_row *const *)a)->event_id, (*(iq_feed_row *const *)b)->event_id);
}

static int iq_record_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    (void)stmt, (void)tags;
    const char *id = iq_str(cols, vals, "event_id"), *rec = iq_str(cols, vals, "record");
    const char *at = iq_str(cols, vals, "stored_at");
    int64_t at_us = 0;
    if (!id || !rec || !at || strlen(id) != EVENT_ID_LEN - 1 || event_time_parse(at, &at_us) != 0) return 0;
    iq_feed_row key, *kp = &key;
    memcpy(key.event_id, id, EVENT_ID_LEN);
    iq_feed_row **hit = bsearch(&kp, q->by_id, q->nfr, sizeof *q->by_id, iq_cmp_row_id);
    if (!hit || (*hit)->record) return 0;
    (*hit)->stored_at_us = at_us;
    return ((*hit)->record = strdup(rec)) ? 0 : -1;
}

static void iq_feed_answer(iq_req *q) {
    int64_t last = 0;
    for (size_t i = 0; i < q->nfr; i++) {
        /* without after= the page was read newest first: answer oldest first */
        iq_feed_row *f = &q->fr[q->has_after ? i : q->nfr - 1 - i];
        if (f->seq > last) last = f->seq;
        if (!f->record) continue; /* its event line was refused (dead-lettered) */
        if (store_rows_add_event(&q->rows, f->record, strlen(f->record), f->event_id, f->stored_at_us) != 0) {
            iq_finish(q, -1, "out of memory");
            return;
        }
        char *o = q->rows.json[q->rows.n - 1];
        size_t len = strlen(o);
        char seq[40];
        int sl = snprintf(seq, sizeof seq, ",\"seq\":%lld}", (long long)f->seq);
        char *p = realloc(o, len + (size_t)sl);
        if (!p) {
            iq_finish(q, -1, "out of memory");
            return;
        }
        memcpy(p + len - 1, seq, (size_t)sl + 1);
        q->rows.json[q->rows.n - 1] = p;
    }
    int more = q->has_after && (long)q->nfr == q->limit && last < q->head;
    sbuf_printf(&q->meta, "\"cursor\":%lld,\"head\":%lld,\"more\":%s", (long long)(more ? last : q->head),
                (long long)q->head, more ? "true" : "false");
    iq_finish(q, 0, NULL);
}

/* One request with the next IQ_STMTS_PER_REQUEST record ranges. */
static void iq_feed_fetch(iq_req *q) {
    if (q->range_next >= q->nranges) {
        iq_feed_answer(q);
        return;
    }
    sbuf sql;
    sbuf_init(&sql);
    for (size_t k = 0; k < IQ_STMTS_PER_REQUEST && q->range_next < q->nranges; k++, q->range_next++) {
        const influx_us_range *rg = &q->ranges[q->range_next];
        int first = 0;
        sbuf_printf(&sql, "%sSELECT record, event_id, stored_at FROM \"%s\" WHERE time >= %lld AND time <= %lld",
                    k ? ";" : "", IQ_EVENTS, (long long)rg->lo * 1000, (long long)rg->hi * 1000 + 999);
        iq_where_tag(&sql, &first, "entity_id", q->entity_id);
        iq_where_tag(&sql, &first, "domain", q->domain);
        iq_where_tag(&sql, &first, "event_type", q->event_type);
    }
    iq_send(q, &sql, iq_record_row, iq_feed_fetch);
}

static void iq_feed_plan(iq_req *q) {
    if (q->nfr == 0) {
        iq_feed_answer(q);
        return;
    }
    int64_t *us = malloc(q->nfr * sizeof *us);
    q->ranges = malloc(q->nfr * sizeof *q->ranges);
    q->by_id = malloc(q->nfr * sizeof *q->by_id);
    if (!us || !q->ranges || !q->by_id) {
        free(us);
        iq_finish(q, -1, "out of memory");
        return;
    }
    for (size_t i = 0; i < q->nfr; i++) {
        us[i] = q->fr[i].t_ns / 1000;
        q->by_id[i] = &q->fr[i];
    }
    qsort(q->by_id, q->nfr, sizeof *q->by_id, iq_cmp_row_id);
    q->nranges = influx_dup_ranges(us, q->nfr, q->ranges);
    free(us);
    iq_feed_fetch(q);
}

static void iq_feed_list(iq_req *q) {
    q->head = q->r->head;
    if (q->head == 0 || (q->has_after && q->after >= q->head)) {
        iq_feed_answer(q);
        return;
    }
    sbuf sql;
    int first = 1;
    sbuf_init(&sql);
    sbuf_printf(&sql, "SELECT event_id, t FROM \"%s\"", INFLUX_FEED_MEASUREMENT);
    iq_where_tag(&sql, &first, "entity_id", q->entity_id);
    iq_where_tag(&sql, &first, "domain", q->domain);
    iq_where_tag(&sql, &first, "event_type", q->event_type);
    char cond[96];
    snprintf(cond, sizeof cond, "time > %lld AND time <= %lld", (long long)(q->has_after ? q->after : 0) * 1000,
             (long long)q->head * 1000);
    iq_where(&sql, &first, cond);
    sbuf_printf(&sql, " ORDER BY time %s LIMIT %ld", q->has_after ? "ASC" : "DESC", q->limit);
    iq_send(q, &sql, iq_feed_row_cb, iq_feed_plan);
}

void store_influx_feed(store *s, const store_feed_query *fq, store_read_cb cb, void *arg) {
    iq_req *q = iq_new(s, cb, arg);
    if (!q) return;
    int oom = 0;
    q->entity_id = iq_dup(fq->f->entity_id, &oom);
    q->domain = iq_dup(fq->f->domain, &oom);
    q->event_type = iq_dup(fq->f->event_type, &oom);
    q->limit = fq->f->limit;
    q->after = fq->after;
    q->has_after = fq->has_after;
    if (oom) {
        iq_finish(q, -1, "out of memory");
    } else if (!q->r->head_known) {
        /* the head of an earlier run: the feed never answers below it */
        sbuf sql;
        sbuf_init(&sql);
        sbuf_printf(&sql, "SELECT last(event_id) FROM \"%s\"", INFLUX_FEED_MEASUREMENT);
        iq_send(q, &sql, iq_head_row, iq_head_known);
    } else {
        iq_feed_list(q);
    }
}

/* ---- entities --------------------------------------------------------------- */

static iq_entity *iq_entity_find(iq_req *q, const char *id) {
    if (!id || !q->nents) return NULL;
    iq_entity key = {.id = (char *)id};
    return bsearch(&key, q->ents, q->nents, sizeof *q->ents, iq_cmp_entity);
}

/* The filter shared by every entity statement. */
static void iq_entity_where(iq_req *q, sbuf *sql, int *first) {
    if (q->building) return; /* every entity goes into the cache */
    iq_where_tag(sql, first, "domain", q->domain);
    iq_where_substring(sql, first, "entity_id", q->search);
}

static int iq_count_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    if (stmt == 1) {
        q->total = iq_int(cols, vals, "count", NULL);
        return 0;
    }
    const char *id = iq_tagv(tags, "entity_id");
    if (!id) return 0; /* events without entity_id make no entity */
    for (size_t i = q->nents; i-- > 0;) /* one entity seen under two domains: one row */
        if (strcmp(q->ents[i].id, id) == 0) return q->ents[i].count += iq_int(cols, vals, "count", NULL), 0;
    if (q->nents == q->entcap) {
        size_t cap = q->entcap ? q->entcap * 2 : 64;
        iq_entity *p = realloc(q->ents, cap * sizeof *p);
        if (!p) return -1;
        q->ents = p;
        q->entcap = cap;
    }
    iq_entity *e = &q->ents[q->nents];
    memset(e, 0, sizeof *e);
    e->id = strdup(id);
    const char *d = iq_tagv(tags, "domain");
    e->domain = d ? strdup(d) : NULL;
    if (!e->id || (d && !e->domain)) {
        free(e->id);
        free(e->domain);
        return -1;
    }
    e->count = iq_int(cols, vals, "count", NULL);
    q->nents++;
    return 0;
}

static int iq_last_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    iq_entity *e = iq_entity_find(q, iq_tagv(tags, "entity_id"));
    if (!e) return 0;
    int64_t t = iq_int(cols, vals, "time", NULL);
    if (stmt == 0) {
        e->last_ns = t;
    } else if (stmt == 1) {
        const char *st = iq_str(cols, vals, "last");
        if (!st) return 0;
        free(e->state);
        if (!(e->state = strdup(st))) return -1;
        e->has_state = 1;
        e->state_ns = t;
    } else {
        e->numeric = 1;
    }
    return 0;
}

static int iq_entity_row(store_rows *rows, const iq_entity *e) {
    char t[EVENT_TIME_LEN];
    sbuf b;
    sbuf_init(&b);
    sbuf_adds(&b, "{\"entity_id\":");
    json_text_string(&b, e->id, strlen(e->id));
    sbuf_adds(&b, ",\"domain\":");
    if (e->domain) json_text_string(&b, e->domain, strlen(e->domain));
    else sbuf_adds(&b, "null");
    sbuf_adds(&b, ",\"state\":");
    if (e->has_state) json_text_string(&b, e->state, strlen(e->state));
    else sbuf_adds(&b, "null");
    sbuf_adds(&b, ",\"last_changed\":");
    if (e->has_changed) {
        event_time_format(e->changed_ns / 1000, t);
        sbuf_printf(&b, "\"%s\"", t);
    } else {
        sbuf_adds(&b, "null");
    }
    event_time_format(e->last_ns / 1000, t);
    sbuf_printf(&b, ",\"last_event\":\"%s\",\"event_count\":%lld,\"numeric\":%s}", t, e->count,
                e->numeric ? "true" : "false");
    return store_rows_add(rows, sbuf_take(&b, NULL));
}

/* From the cache: no query at all. */
static void iq_entities_from_cache(iq_req *q) {
    influx_reads *r = q->r;
    long n = 0;
    for (size_t i = 0; i < r->ncache && n < q->limit; i++) {
        const iq_entity *e = &r->cache[i];
        if (q->domain && (!e->domain || strcmp(e->domain, q->domain) != 0)) continue;
        if (q->search && !strstr(e->id, q->search)) continue;
        if (iq_entity_row(&q->rows, e) != 0) {
            iq_finish(q, -1, "out of memory");
            return;
        }
        n++;
    }
    sbuf_printf(&q->meta, "\"total\":%lld", (long long)r->ncache);
    iq_finish(q, 0, NULL);
}

static void iq_entities_answer(iq_req *q) {
    if (q->building) { /* the cache is these rows from now on */
        influx_reads *r = q->r;
        iq_entities_free(r->cache, r->ncache);
        r->cache = q->ents;
        r->ncache = r->capcache = q->nents;
        q->ents = NULL;
        q->nents = q->entcap = 0;
        r->cache_state = 2;
        iq_req *w = r->waiting;
        r->waiting = NULL;
        while (w) {
            iq_req *next = w->next_wait;
            iq_entities_from_cache(w);
            w = next;
        }
        iq_entities_from_cache(q);
        return;
    }
    for (size_t i = 0; i < q->nents; i++)
        if (iq_entity_row(&q->rows, &q->ents[i]) != 0) {
            iq_finish(q, -1, "out of memory");
            return;
        }
    sbuf_printf(&q->meta, "\"total\":%lld", (long long)q->total);
    iq_finish(q, 0, NULL);
}

/* Rounds 3 and 4, per entity with a state, IQ_STMTS_PER_REQUEST at a time:
 * the last point in another state (t0), then the first point after it. */
static void iq_changes_next(iq_req *q);

static int iq_change_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    (void)tags;
    size_t i = q->chunk_lo + (size_t)stmt;
    if (i >= q->chunk_hi) return 0;
    iq_entity *e = &q->ents[i];
    int64_t t = iq_int(cols, vals, "time", NULL);
    if (q->numeric == 0) e->t0_ns = t, e->has_t0 = 1;
    else e->changed_ns = t, e->has_changed = 1;
    return 0;
}

static void iq_changes_next(iq_req *q) {
    /* q->numeric is reused here as the round: 0 = t0, 1 = first change */
    if (q->chunk_hi >= q->nents) {
        if (q->numeric == 1) {
            iq_entities_answer(q);
            return;
        }
        q->numeric = 1;
        q->chunk_hi = 0;
    }
    q->chunk_lo = q->chunk_hi;
    q->chunk_hi = q->chunk_lo + IQ_STMTS_PER_REQUEST < q->nents ? q->chunk_lo + IQ_STMTS_PER_REQUEST : q->nents;
    sbuf sql;
    sbuf_init(&sql);
    for (size_t i = q->chunk_lo; i < q->chunk_hi; i++) {
        iq_entity *e = &q->ents[i];
        int first = 1;
        if (i > q->chunk_lo) sbuf_addc(&sql, ';');
        /* an entity without a state still takes a statement, so statement_id = index in chunk */
        sbuf_printf(&sql, "SELECT %s(state) FROM \"%s\"", q->numeric ? "first" : "last", IQ_EVENTS);
        iq_where_tag(&sql, &first, "entity_id", e->id);
        iq_where(&sql, &first, "event_type = 'state_changed'");
        if (!e->has_state) {
            iq_where(&sql, &first, "time < 0");
        } else if (q->numeric == 0) {
            sbuf_adds(&sql, " AND state != ");
            influxql_string(&sql, e->state);
        } else if (e->has_t0) {
            sbuf_printf(&sql, " AND time > %lld", (long long)e->t0_ns);
        }
    }
    iq_send(q, &sql, iq_change_row, iq_changes_next);
}

static void iq_entities_page(iq_req *q) {
    if (q->nents) qsort(q->ents, q->nents, sizeof *q->ents, iq_cmp_entity);
    while (!q->building && (long)q->nents > q->limit) {
        iq_entity *e = &q->ents[--q->nents];
        free(e->id);
        free(e->domain);
    }
    if (q->nents == 0) {
        iq_entities_answer(q);
        return;
    }
    sbuf sql;
    sbuf_init(&sql);
    const char *sel[3] = {"last(event_id)", "last(state)", "last(value)"};
    for (int k = 0; k < 3; k++) {
        int first = 1;
        sbuf_printf(&sql, "%sSELECT %s FROM \"%s\"", k ? ";" : "", sel[k], IQ_EVENTS);
        if (k == 1) iq_where(&sql, &first, "event_type = 'state_changed'");
        if (k == 2) iq_where(&sql, &first, IQ_NUMERIC_STATE);
        iq_entity_where(q, &sql, &first);
        sbuf_adds(&sql, " GROUP BY entity_id");
    }
    q->numeric = 0;
    q->chunk_hi = 0;
    iq_send(q, &sql, iq_last_row, iq_changes_next);
}

void store_influx_entities(store *s, const store_entity_query *eq, store_read_cb cb, void *arg) {
    iq_req *q = iq_new(s, cb, arg);
    if (!q) return;
    int oom = 0, first = 1;
    q->search = iq_dup(eq->search, &oom);
    q->domain = iq_dup(eq->domain, &oom);
    q->limit = eq->limit;
    if (oom) {
        iq_finish(q, -1, "out of memory");
        return;
    }
    if (q->r->cache_state == 2) {
        iq_entities_from_cache(q);
        return;
    }
    if (q->r->cache_state == 1) { /* answered when the build ends */
        q->next_wait = q->r->waiting;
        q->r->waiting = q;
        return;
    }
    q->building = 1; /* this read builds the cache */
    q->r->cache_state = 1;
    sbuf sql;
    sbuf_init(&sql);
    sbuf_printf(&sql, "SELECT count(event_id) FROM \"%s\"", IQ_EVENTS);
    iq_entity_where(q, &sql, &first);
    sbuf_printf(&sql, " GROUP BY entity_id, domain;SHOW TAG VALUES EXACT CARDINALITY FROM \"%s\" WITH KEY = "
                      "\"entity_id\"", IQ_EVENTS);
    iq_send(q, &sql, iq_count_row, iq_entities_page);
}

/* ---- series ------------------------------------------------------------------ */

static int iq_segment_close(iq_segment *g, int64_t end_us, store_rows *rows) {
    if (!g->open) return 0;
    char a[EVENT_TIME_LEN], b2[EVENT_TIME_LEN];
    event_time_format(g->start_us, a);
    event_time_format(end_us, b2);
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "{\"start\":\"%s\",\"end\":\"%s\",\"state\":", a, b2);
    json_text_string(&b, g->state, strlen(g->state));
    sbuf_addc(&b, '}');
    free(g->state);
    g->state = NULL;
    g->open = 0;
    return store_rows_add(rows, sbuf_take(&b, NULL));
}

static int iq_timeline_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    (void)tags;
    const char *st = iq_str(cols, vals, stmt == 0 ? "last" : "state");
    if (!st || q->truncated) return 0;
    int64_t t = iq_int(cols, vals, "time", NULL) / 1000;
    if (t < q->start_us) t = q->start_us; /* the state the range starts in */
    iq_segment *g = &q->seg;
    if (g->open && strcmp(g->state, st) == 0) return 0;
    if ((long)q->rows.n >= q->max_segments) {
        q->truncated = 1;
        return 0;
    }
    if (iq_segment_close(g, t, &q->rows) != 0) return -1;
    g->open = 1;
    g->start_us = t;
    return (g->state = strdup(st)) ? 0 : -1;
}

static void iq_timeline_answer(iq_req *q) {
    int64_t now = service_now_us(), end = q->end_us < now ? q->end_us : now;
    if (end < q->seg.start_us) end = q->seg.start_us;
    if (!q->truncated && iq_segment_close(&q->seg, end, &q->rows) != 0) {
        iq_finish(q, -1, "out of memory");
        return;
    }
    sbuf_printf(&q->meta, ",\"kind\":\"timeline\",\"truncated\":%s", q->truncated ? "true" : "false");
    iq_finish(q, 0, NULL);
}

static int iq_bucket_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    (void)stmt, (void)tags;
    int ok;
    long long n = (long long)iq_int(cols, vals, "count", &ok);
    if (!ok || n == 0) return 0;
    char t[EVENT_TIME_LEN];
    event_time_format(iq_int(cols, vals, "time", NULL) / 1000, t);
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "{\"t\":\"%s\"", t);
    const char *k[3] = {"min", "mean", "max"};
    for (int i = 0; i < 3; i++) {
        int c = iq_col(cols, k[i]);
        sbuf_printf(&b, ",\"%s\":", k[i]);
        json_text_real(&b, json_number_value(json_array_get(vals, (size_t)c)));
    }
    sbuf_printf(&b, ",\"count\":%lld}", n);
    return store_rows_add(&q->rows, sbuf_take(&b, NULL));
}

static void iq_bucket_answer(iq_req *q) {
    sbuf_printf(&q->meta, ",\"kind\":\"numeric\",\"bucket_s\":");
    json_text_real(&q->meta, (double)q->width_us / 1e6);
    iq_finish(q, 0, NULL);
}

static int iq_kind_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    (void)tags, (void)cols, (void)vals;
    if (stmt == 0) q->exists = 1;
    else q->numeric = 1;
    return 0;
}

static void iq_series_read(iq_req *q) {
    if (!q->exists) {
        snprintf(q->err, sizeof q->err, "entity_id: no events stored for %.200s", q->entity_id);
        iq_finish(q, 1, q->err);
        return;
    }
    char a[EVENT_TIME_LEN], b[EVENT_TIME_LEN];
    event_time_format(q->start_us, a);
    event_time_format(q->end_us, b);
    sbuf_adds(&q->meta, "\"entity_id\":");
    json_text_string(&q->meta, q->entity_id, strlen(q->entity_id));
    sbuf_printf(&q->meta, ",\"start\":\"%s\",\"end\":\"%s\"", a, b);
    long long lo = (long long)influx_time_ns_sat(q->start_us), hi = (long long)influx_time_ns_sat(q->end_us);
    sbuf sql;
    int first = 1;
    sbuf_init(&sql);
    if (q->numeric) {
        int64_t span = q->end_us - q->start_us;
        q->width_us = (span + q->points - 1) / q->points;
        if (q->width_us < 1) q->width_us = 1;
        int64_t off = ((q->start_us % q->width_us) + q->width_us) % q->width_us;
        sbuf_printf(&sql, "SELECT min(value), mean(value), max(value), count(value) FROM \"%s\"", IQ_EVENTS);
        iq_where_tag(&sql, &first, "entity_id", q->entity_id);
        iq_where(&sql, &first, IQ_NUMERIC_STATE);
        sbuf_printf(&sql, " AND time >= %lld AND time < %lld GROUP BY time(%lldu, %lldu) fill(none)", lo, hi,
                    (long long)q->width_us, (long long)off);
        iq_send(q, &sql, iq_bucket_row, iq_bucket_answer);
        return;
    }
    for (int k = 0; k < 2; k++) {
        first = 1;
        sbuf_printf(&sql, "%sSELECT %s FROM \"%s\"", k ? ";" : "", k ? "state" : "last(state)", IQ_EVENTS);
        iq_where_tag(&sql, &first, "entity_id", q->entity_id);
        iq_where(&sql, &first, "event_type = 'state_changed'");
        if (k == 0) sbuf_printf(&sql, " AND time < %lld", lo);
        else sbuf_printf(&sql, " AND time >= %lld AND time < %lld ORDER BY time ASC", lo, hi);
    }
    iq_send(q, &sql, iq_timeline_row, iq_timeline_answer);
}

void store_influx_series(store *s, const store_series_query *sq, store_read_cb cb, void *arg) {
    iq_req *q = iq_new(s, cb, arg);
    if (!q) return;
    int oom = 0;
    q->entity_id = iq_dup(sq->entity_id, &oom);
    q->start_us = sq->start_us;
    q->end_us = sq->end_us;
    q->points = sq->points;
    q->max_segments = sq->max_segments;
    if (oom) {
        iq_finish(q, -1, "out of memory");
        return;
    }
    sbuf sql;
    sbuf_init(&sql);
    for (int k = 0; k < 2; k++) {
        int first = 1;
        sbuf_printf(&sql, "%sSELECT %s FROM \"%s\"", k ? ";" : "", k ? "last(value)" : "last(event_id)", IQ_EVENTS);
        iq_where_tag(&sql, &first, "entity_id", q->entity_id);
        if (k) iq_where(&sql, &first, IQ_NUMERIC_STATE);
    }
    iq_send(q, &sql, iq_kind_row, iq_series_read);
}

/* ---- stats ------------------------------------------------------------------- */

enum { IQ_ST_SECOND, IQ_ST_DOMAIN, IQ_ST_ENTITIES, IQ_ST_DISK, IQ_ST_HEAD, IQ_ST_EVENTS, IQ_ST_DEAD };

static int iq_stats_row(iq_req *q, int stmt, json_t *tags, json_t *cols, json_t *vals) {
    int64_t n = iq_int(cols, vals, "count", NULL);
    switch (stmt) {
    case IQ_ST_SECOND: {
        int64_t i = iq_int(cols, vals, "time", NULL) / 1000000000 - q->from_s;
        if (i >= 0 && i < q->window_s) q->per_second[i] = n;
        return 0;
    }
    case IQ_ST_DOMAIN: {
        const char *d = iq_tagv(tags, "domain");
        if (n == 0) return 0;
        if (q->meta.len && q->meta.data[q->meta.len - 1] != '{') sbuf_addc(&q->meta, ',');
        json_text_string(&q->meta, d ? d : "", d ? strlen(d) : 0);
        sbuf_printf(&q->meta, ":%lld", (long long)n);
        return 0;
    }
    case IQ_ST_ENTITIES:
        q->total = n;
        return 0;
    case IQ_ST_DISK: {
        const char *db = iq_tagv(tags, "database");
        if (db && strcmp(db, q->r->db) == 0) q->store_bytes += iq_int(cols, vals, "diskBytes", NULL);
        return 0;
    }
    case IQ_ST_HEAD:
        return iq_head_row(q, stmt, tags, cols, vals);
    case IQ_ST_EVENTS:
        q->count_events = iq_int(cols, vals, "count", NULL);
        return 0;
    case IQ_ST_DEAD:
        q->count_dead = iq_int(cols, vals, "count", NULL);
        return 0;
    }
    return 0;
}

static void iq_stats_answer(iq_req *q) {
    influx_reads *r = q->r;
    r->head_known = 1;
    if (q->counted && !r->totals_known) {
        r->events_total = q->count_events;
        r->dead_total = q->count_dead;
        r->totals_known = 1;
    }
    sbuf_addc(&q->meta, '}'); /* closes per_domain */
    sbuf tail;
    sbuf_init(&tail);
    /* null while the one count is still running (a large store takes a while) */
    if (r->totals_known)
        sbuf_printf(&tail, "\"events_total\":%lld,\"dead_letters_total\":%lld,", (long long)r->events_total,
                    (long long)r->dead_total);
    else
        sbuf_adds(&tail, "\"events_total\":null,\"dead_letters_total\":null,");
    sbuf_printf(&tail,
                "\"backend\":\"influxdb\",\"entities\":%lld,\"store_bytes\":%lld,\"cursor\":%lld,\"window_s\":%ld,"
                "\"per_second\":[",
                (long long)q->total, (long long)q->store_bytes, (long long)r->head, q->window_s);
    long long sum = 0;
    for (long i = 0; i < q->window_s; i++) {
        sbuf_printf(&tail, "%s%lld", i ? "," : "", q->per_second[i]);
        sum += q->per_second[i];
    }
    sbuf_printf(&tail, "],\"window_events\":%lld,", sum);
    sbuf_add(&tail, q->meta.data ? q->meta.data : "", q->meta.len);
    sbuf_free(&q->meta);
    q->meta = tail;
    iq_finish(q, 0, NULL);
}

void store_influx_stats(store *s, const store_stats_query *stq, store_read_cb cb, void *arg) {
    iq_req *q = iq_new(s, cb, arg);
    if (!q) return;
    q->window_s = stq->window_s;
    q->now_us = stq->now_us;
    q->from_s = q->now_us / 1000000 - q->window_s + 1;
    q->per_second = calloc((size_t)q->window_s, sizeof *q->per_second);
    if (!q->per_second) {
        iq_finish(q, -1, "out of memory");
        return;
    }
    long long from = (long long)q->from_s * 1000000000, to = (long long)(q->from_s + q->window_s) * 1000000000;
    sbuf sql;
    sbuf_init(&sql);
    sbuf_printf(&sql,
                "SELECT count(event_id) FROM \"%s\" WHERE time >= %lld AND time < %lld GROUP BY time(1s);"
                "SELECT count(event_id) FROM \"%s\" WHERE time >= %lld AND time < %lld GROUP BY domain;"
                "SHOW TAG VALUES EXACT CARDINALITY FROM \"%s\" WITH KEY = \"entity_id\";SHOW STATS FOR 'shard';"
                "SELECT last(event_id) FROM \"%s\"",
                IQ_EVENTS, from, to, IQ_EVENTS, from, to, IQ_EVENTS, INFLUX_FEED_MEASUREMENT);
    /* the totals are counted once, then kept by influx_reads_committed */
    if (!q->r->totals_known && !q->r->counting) {
        sbuf_printf(&sql, ";SELECT count(event_id) FROM \"%s\";SELECT count(error) FROM \"%s\"", IQ_EVENTS, IQ_DEAD);
        q->counted = q->r->counting = 1;
    }
    q->tolerate_stmt = IQ_ST_DISK; /* SHOW STATS may need admin rights: store_bytes 0 then */
    sbuf_adds(&q->meta, "\"per_domain\":{");
    iq_send(q, &sql, iq_stats_row, iq_stats_answer);
}
