/* clickhouse_registry.c -- see clickhouse_registry.h. */
#include "clickhouse_registry.h"

#include "clickhouse_read.h"
#include "clickhouse_rowbinary.h"
#include "clickhouse_sql.h"
#include "event.h"
#include "json_scan.h"
#include "json_text.h"
#include "registry_row.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ch_registry_column_defs[CH_REGISTRY_NCOLUMNS] = {
    "area_id String", "floor_id String", "device_id String", "platform String", "labels Array(String)",
    "context_hash UInt64"};

/* ---- the event row's columns ------------------------------------------------------ */

static const struct {
    const char *col;
    int field;
} chr_cols[] = {{"area_id", RF_AREA_ID}, {"floor_id", RF_FLOOR_ID}, {"device_id", RF_DEVICE_ID},
                {"platform", RF_PLATFORM}};

#define CHR_MAX_LABELS 64

typedef struct chr_labels {
    const char *p[CHR_MAX_LABELS];
    size_t n[CHR_MAX_LABELS];
    int count;
} chr_labels;

static int chr_label(const char *v, size_t vl, void *arg) {
    chr_labels *w = arg;
    if (vl < 2 || v[0] != '"') return 0; /* Array(String): only the strings */
    if (w->count == CHR_MAX_LABELS) return 1;
    w->p[w->count] = v, w->n[w->count++] = vl;
    return 0;
}

/* FNV-1a 64 of the context text; never 0 (0 = no context). Equal contexts,
 * equal hashes; a collision (2^-64 per pair) would only merge two contexts'
 * runs in "since". */
static uint64_t chr_hash(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h ? h : 1;
}

int ch_registry_row(sbuf *row, store_item *it, sbuf *scratch) {
    const record_fields *rf = it->json ? store_item_fields(it) : NULL;
    int has = rf && (rf->len[RF_AREA_ID] || rf->len[RF_DEVICE_ID] || rf->len[RF_PLATFORM] || rf->len[RF_LABELS]);
    size_t n;
    for (size_t c = 0; c < sizeof chr_cols / sizeof *chr_cols; c++) {
        const char *v = has ? record_fields_at(rf, it->json, chr_cols[c].field, &n) : NULL;
        ch_rb_json_string(row, v, v ? n : 0);
    }
    chr_labels w = {.count = 0};
    const char *labels = has ? record_fields_at(rf, it->json, RF_LABELS, &n) : NULL;
    if (labels && labels[0] == '[') jscan_array_trusted(labels, n, chr_label, &w);
    ch_rb_count(row, (uint64_t)w.count);
    for (int l = 0; l < w.count; l++) ch_rb_json_string(row, w.p[l], w.n[l]);
    uint64_t h = 0;
    if (has) {
        sbuf_reset(scratch);
        registry_context(scratch, rf, it->json);
        if (sbuf_failed(scratch)) return -1;
        h = chr_hash(scratch->data, scratch->len);
    }
    ch_rb_u64(row, h);
    return sbuf_failed(row) ? -1 : 0;
}

/* ---- filters ------------------------------------------------------------------------ */

void ch_registry_where(sbuf *q, const store_filter *f) {
    ch_where_eq(q, "area_id", f->area);
    ch_where_eq(q, "floor_id", f->floor);
    ch_where_eq(q, "device_id", f->device);
    ch_where_eq(q, "platform", f->platform);
    if (f->label) {
        sbuf_adds(q, " AND has(labels, ");
        ch_quote(q, f->label);
        sbuf_addc(q, ')');
    }
}

/* ---- GET /api/v1/registry -------------------------------------------------------------- */

/* One entity (and home) of the answer: step 1 gives the times, step 2 the newest record. */
typedef struct chr_ent {
    char *home, *entity_id;
    char *seen_us, *since_us;   /* decimal text, as ClickHouse answered */
    char *context;              /* the context object's text, from the newest record */
} chr_ent;

typedef struct chr_read {
    store *s;
    store_rows_cb cb;
    void *arg;
    chr_ent *e;
    size_t n;
    json_t *index;              /* "<home>\x1f<entity_id>" -> position in e */
} chr_read;

/* The index key of an entity of a home (NULL on out of memory). */
static char *chr_key(const char *home, const char *entity_id) {
    size_t hn = strlen(home), en = strlen(entity_id);
    char *k = malloc(hn + en + 2);
    if (!k) return NULL;
    memcpy(k, home, hn);
    k[hn] = '\x1f';
    memcpy(k + hn + 1, entity_id, en + 1);
    return k;
}

static void chr_read_end(chr_read *rd, int rc, const char *err) {
    store_rows rows = {0};
    sbuf r;
    sbuf_init(&r);
    for (size_t i = 0; i < rd->n && rc == 0; i++) {
        const chr_ent *e = &rd->e[i];
        sbuf_reset(&r);
        registry_row(&r, e->entity_id, strtoll(e->since_us, NULL, 10), strtoll(e->seen_us, NULL, 10), e->home,
                     e->context, e->context ? strlen(e->context) : 0);
        char *text = sbuf_failed(&r) ? NULL : strdup(r.data);
        if (!text || store_rows_add(&rows, text) != 0) rc = -1, err = "out of memory";
    }
    sbuf_free(&r);
    rd->cb(&rows, rc, rc ? err : NULL, rd->arg);
    store_rows_free(&rows);
    for (size_t i = 0; i < rd->n; i++) {
        free(rd->e[i].home), free(rd->e[i].entity_id), free(rd->e[i].seen_us), free(rd->e[i].since_us);
        free(rd->e[i].context);
    }
    free(rd->e);
    json_decref(rd->index);
    free(rd);
}

static char *chr_dup(json_t *o, const char *k) {
    const char *v = json_string_value(json_object_get(o, k));
    return v ? strdup(v) : NULL;
}

/* step 2's line {"home_id","entity_id","record"}: the context of that entity's row */
static int chr_record_line(void *ctx, json_t *o) {
    chr_read *rd = ctx;
    const char *home = json_string_value(json_object_get(o, "home_id"));
    const char *eid = json_string_value(json_object_get(o, "entity_id"));
    const json_t *rec = json_object_get(o, "record");
    if (!home || !eid || !json_is_string(rec)) return -1;
    char *key = chr_key(home, eid);
    if (!key) return -1;
    json_t *at = json_object_get(rd->index, key);
    free(key);
    if (at) {
        chr_ent *e = &rd->e[json_integer_value(at)];
        if (e->context) return 0; /* a second copy of that event */
        record_fields rf = {0};
        const char *json = json_string_value(rec);
        if (record_fields_scan(&rf, json, json_string_length(rec)) != 0) return -1;
        sbuf c;
        sbuf_init(&c);
        registry_context(&c, &rf, json);
        size_t n;
        e->context = sbuf_failed(&c) ? (sbuf_free(&c), NULL) : sbuf_take(&c, &n);
        return e->context ? 0 : -1;
    }
    return 0;
}

static void chr_records_done(int rc, const char *body, size_t len, const char *err, void *arg) {
    chr_read *rd = arg;
    if (rc == 0 && ch_json_lines(body, len, chr_record_line, rd) != 0) rc = -1, err = "unreadable record from clickhouse";
    chr_read_end(rd, rc, err);
}

/* step 1's line {"home_id","entity_id","last_seen","since"} */
static int chr_entity_line(void *ctx, json_t *o) {
    chr_read *rd = ctx;
    chr_ent *v = realloc(rd->e, (rd->n + 1) * sizeof *v);
    if (!v) return -1;
    rd->e = v;
    chr_ent *e = &rd->e[rd->n++];
    *e = (chr_ent){.home = chr_dup(o, "home_id"), .entity_id = chr_dup(o, "entity_id"),
                   .seen_us = chr_dup(o, "last_seen"), .since_us = chr_dup(o, "since")};
    if (!e->home || !e->entity_id || !e->seen_us || !e->since_us) return -1;
    char *key = chr_key(e->home, e->entity_id);
    int rc = key ? json_object_set_new(rd->index, key, json_integer((json_int_t)(rd->n - 1))) : -1;
    free(key);
    return rc;
}

/* Step 2: the newest event of each entity (its time is in the primary key: the index finds them). */
static void chr_entities_done(int rc, const char *body, size_t len, const char *err, void *arg) {
    chr_read *rd = arg;
    if (rc == 0 && ch_json_lines(body, len, chr_entity_line, rd) != 0) rc = -1, err = "unreadable registry row from clickhouse";
    if (rc != 0 || rd->n == 0) {
        chr_read_end(rd, rc, err);
        return;
    }
    sbuf q;
    sbuf_init(&q);
    sbuf_printf(&q, "SELECT home_id, entity_id, record FROM %s.events WHERE (home_id, entity_id, time_us) IN (",
                ch_store_db(rd->s));
    for (size_t i = 0; i < rd->n; i++) {
        sbuf_adds(&q, i ? ",(" : "(");
        ch_quote(&q, rd->e[i].home);
        sbuf_addc(&q, ',');
        ch_quote(&q, rd->e[i].entity_id);
        sbuf_printf(&q, ",%lld)", strtoll(rd->e[i].seen_us, NULL, 10));
    }
    sbuf_adds(&q, ") AND context_hash != 0 LIMIT 1 BY home_id, entity_id FORMAT JSONEachRow");
    ch_store_select(rd->s, &q, chr_records_done, rd);
}

/* The events with a context, of the home / entity asked for, not expired. */
static void chr_events(sbuf *q, store *s, const char *cols, const char *home, const char *entity_id) {
    sbuf_printf(q, "(SELECT %s FROM %s.events WHERE context_hash != 0 AND entity_id != ''", cols, ch_store_db(s));
    ch_where_eq(q, "home_id", home);
    ch_where_eq(q, "entity_id", entity_id);
    ch_store_visible(s, q);
    sbuf_addc(q, ')');
}

void ch_registry_read(store *s, const char *home, const char *entity_id, long limit, store_rows_cb cb, void *arg) {
    chr_read *rd = calloc(1, sizeof *rd);
    json_t *index = json_object();
    if (!rd || !index) {
        free(rd);
        json_decref(index);
        store_rows none = {0};
        cb(&none, -1, "out of memory", arg);
        return;
    }
    *rd = (chr_read){.s = s, .cb = cb, .arg = arg, .index = index};
    /* Step 1, per entity and home: c0 the newest event's context, s0 its time;
     * l the newest event of another context; since the first event after l. */
    sbuf q;
    sbuf_init(&q);
    sbuf_adds(&q, "SELECT home_id, entity_id, toString(any(s1)) AS last_seen, "
                  "toString(minIf(time_us, time_us > l)) AS since FROM ");
    chr_events(&q, s, "home_id, entity_id, time_us", home, entity_id);
    sbuf_adds(&q, " ANY INNER JOIN (SELECT home_id, entity_id, any(s0) AS s1, if(countIf(context_hash != c0) = 0, "
                  "-9223372036854775808, maxIf(time_us, context_hash != c0)) AS l FROM ");
    chr_events(&q, s, "home_id, entity_id, time_us, context_hash", home, entity_id);
    sbuf_adds(&q, " ANY INNER JOIN (SELECT home_id, entity_id, argMax(context_hash, time_us) AS c0, "
                  "max(time_us) AS s0 FROM ");
    chr_events(&q, s, "home_id, entity_id, time_us, context_hash", home, entity_id);
    sbuf_adds(&q, " GROUP BY home_id, entity_id) USING (home_id, entity_id) GROUP BY home_id, entity_id)"
                  " USING (home_id, entity_id) GROUP BY home_id, entity_id");
    sbuf_printf(&q, " ORDER BY entity_id, home_id LIMIT %ld FORMAT JSONEachRow", limit);
    ch_store_select(s, &q, chr_entities_done, rd);
}
