/* clickhouse_registry.c -- see clickhouse_registry.h. */
#include "clickhouse_registry.h"

#include "clickhouse_read.h"
#include "clickhouse_sql.h"
#include "event.h"
#include "json_scan.h"
#include "json_text.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ch_registry_column_defs[CH_REGISTRY_NCOLUMNS] = {
    "area_id String", "floor_id String", "device_id String", "platform String", "labels Array(String)",
    "context String"};

/* ---- the event row's columns ------------------------------------------------------ */

static const struct {
    const char *col;
    int field;
} chr_cols[] = {{"area_id", RF_AREA_ID}, {"floor_id", RF_FLOOR_ID}, {"device_id", RF_DEVICE_ID},
                {"platform", RF_PLATFORM}};

/* A string member's JSON text as is (ClickHouse's JSON parser decodes its
 * escapes); null, absent or not a string: "". */
static void chr_string(sbuf *row, const char *v, size_t n) {
    if (v && n >= 2 && v[0] == '"') sbuf_add(row, v, n);
    else sbuf_adds(row, "\"\"");
}

typedef struct chr_labels {
    sbuf *row;
    int n;
} chr_labels;

static int chr_label(const char *v, size_t vl, void *arg) {
    chr_labels *w = arg;
    if (vl < 2 || v[0] != '"') return 0; /* Array(String): only the strings */
    if (w->n++) sbuf_addc(w->row, ',');
    sbuf_add(w->row, v, vl);
    return 0;
}

/* The context object's text (the eleven members, record order; absent = null, labels []). */
static void chr_context(sbuf *o, const record_fields *rf, const char *json) {
    for (int k = RF_CONTEXT_FIRST; k < RF_N; k++) {
        sbuf_adds(o, k > RF_CONTEXT_FIRST ? ",\"" : "{\"");
        sbuf_adds(o, record_fields_name(k));
        sbuf_adds(o, "\":");
        size_t n;
        const char *v = record_fields_at(rf, json, k, &n);
        if (v) sbuf_add(o, v, n);
        else sbuf_adds(o, k == RF_LABELS ? "[]" : "null");
    }
    sbuf_addc(o, '}');
}

int ch_registry_row(sbuf *row, store_item *it, sbuf *scratch) {
    const record_fields *rf = it->json ? store_item_fields(it) : NULL;
    int has = rf && (rf->len[RF_AREA_ID] || rf->len[RF_DEVICE_ID] || rf->len[RF_PLATFORM] || rf->len[RF_LABELS]);
    size_t n;
    for (size_t c = 0; c < sizeof chr_cols / sizeof *chr_cols; c++) {
        sbuf_printf(row, ",\"%s\":", chr_cols[c].col);
        const char *v = has ? record_fields_at(rf, it->json, chr_cols[c].field, &n) : NULL;
        chr_string(row, v, v ? n : 0);
    }
    sbuf_adds(row, ",\"labels\":[");
    const char *labels = has ? record_fields_at(rf, it->json, RF_LABELS, &n) : NULL;
    if (labels && labels[0] == '[') {
        chr_labels w = {row, 0};
        jscan_array_trusted(labels, n, chr_label, &w);
    }
    sbuf_adds(row, "],\"context\":");
    if (has) {
        sbuf_reset(scratch);
        chr_context(scratch, rf, it->json);
        if (sbuf_failed(scratch)) return -1;
        json_text_string(row, scratch->data, scratch->len);
    } else {
        sbuf_adds(row, "\"\"");
    }
    return sbuf_failed(row) ? -1 : 0;
}

/* ---- filters ------------------------------------------------------------------------ */

static void chr_where(sbuf *q, const char *col, const char *v) {
    if (!v) return;
    sbuf_printf(q, " AND %s = ", col);
    ch_quote(q, v);
}

void ch_registry_where(sbuf *q, const store_filter *f) {
    chr_where(q, "area_id", f->area);
    chr_where(q, "floor_id", f->floor);
    chr_where(q, "device_id", f->device);
    chr_where(q, "platform", f->platform);
    if (f->label) {
        sbuf_adds(q, " AND has(labels, ");
        ch_quote(q, f->label);
        sbuf_addc(q, ')');
    }
}

/* ---- GET /api/v1/registry -------------------------------------------------------------- */

typedef struct chr_read {
    store_rows_cb cb;
    void *arg;
} chr_read;

/* One answer line {"home_id","entity_id","context","last_seen","since"} -> a registry row. */
static int chr_row(store_rows *rows, const char *line, size_t n) {
    json_t *o = json_loadb(line, n, 0, NULL);
    const char *home = json_string_value(json_object_get(o, "home_id"));
    const char *eid = json_string_value(json_object_get(o, "entity_id"));
    const char *ctx = json_string_value(json_object_get(o, "context"));
    const char *seen_s = json_string_value(json_object_get(o, "last_seen"));
    const char *since_s = json_string_value(json_object_get(o, "since"));
    if (!home || !eid || !ctx || !seen_s || !since_s) {
        json_decref(o);
        return -1;
    }
    char since[EVENT_TIME_LEN], seen[EVENT_TIME_LEN];
    event_time_format(strtoll(since_s, NULL, 10), since);
    event_time_format(strtoll(seen_s, NULL, 10), seen);
    sbuf r;
    sbuf_init(&r);
    sbuf_adds(&r, "{\"entity_id\":");
    json_text_string(&r, eid, strlen(eid));
    sbuf_printf(&r, ",\"since\":\"%s\",\"last_seen\":\"%s\"", since, seen);
    if (strcmp(home, EVENT_HOME_DEFAULT) != 0) { /* another home's row says so, as its records do */
        sbuf_adds(&r, ",\"" STORE_HOME_KEY "\":");
        json_text_string(&r, home, strlen(home));
    }
    size_t cl = strlen(ctx);
    if (cl > 2 && ctx[0] == '{') {
        sbuf_addc(&r, ',');
        sbuf_add(&r, ctx + 1, cl - 1); /* the context's members and its '}' */
    } else {
        sbuf_addc(&r, '}');
    }
    json_decref(o);
    size_t len;
    char *text = sbuf_failed(&r) ? (sbuf_free(&r), NULL) : sbuf_take(&r, &len);
    return text ? store_rows_add(rows, text) : -1;
}

static void chr_read_done(int rc, const char *body, size_t len, const char *err, void *arg) {
    chr_read *rd = arg;
    store_rows rows = {0};
    const char *why = err;
    if (rc == 0) {
        const char *p = body, *end = body + len;
        while (p < end && rc == 0) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = (size_t)((nl ? nl : end) - p);
            if (n && chr_row(&rows, p, n) != 0) rc = -1, why = "unreadable registry row from clickhouse";
            p = nl ? nl + 1 : end;
        }
    }
    rd->cb(&rows, rc, rc ? why : NULL, rd->arg);
    store_rows_free(&rows);
    free(rd);
}

/* The events with a context, of the home / entity asked for, not expired. */
static void chr_events(sbuf *q, store *s, const char *cols, const char *home, const char *entity_id) {
    sbuf_printf(q, "(SELECT %s FROM %s.events WHERE context != '' AND entity_id != ''", cols, ch_store_db(s));
    chr_where(q, "home_id", home);
    chr_where(q, "entity_id", entity_id);
    ch_store_visible(s, q);
    sbuf_addc(q, ')');
}

void ch_registry_read(store *s, const char *home, const char *entity_id, long limit, store_rows_cb cb, void *arg) {
    chr_read *rd = calloc(1, sizeof *rd);
    if (!rd) {
        store_rows none = {0};
        cb(&none, -1, "out of memory", arg);
        return;
    }
    *rd = (chr_read){.cb = cb, .arg = arg};
    /* per entity and home: c0 the newest event's context, s0 its time; l the
     * newest event of another context; since the first event after l */
    sbuf q;
    sbuf_init(&q);
    sbuf_adds(&q, "SELECT home_id, entity_id, any(c1) AS context, toString(any(s1)) AS last_seen, "
                  "toString(minIf(time_us, time_us > l)) AS since FROM ");
    chr_events(&q, s, "home_id, entity_id, time_us", home, entity_id);
    sbuf_adds(&q, " ANY INNER JOIN (SELECT home_id, entity_id, any(c0) AS c1, any(s0) AS s1, "
                  "if(countIf(context != c0) = 0, -9223372036854775808, maxIf(time_us, context != c0)) AS l FROM ");
    chr_events(&q, s, "home_id, entity_id, time_us, context", home, entity_id);
    sbuf_adds(&q, " ANY INNER JOIN (SELECT home_id, entity_id, argMax(context, time_us) AS c0, max(time_us) AS s0 "
                  "FROM ");
    chr_events(&q, s, "home_id, entity_id, time_us, context", home, entity_id);
    sbuf_adds(&q, " GROUP BY home_id, entity_id) USING (home_id, entity_id) GROUP BY home_id, entity_id)"
                  " USING (home_id, entity_id) GROUP BY home_id, entity_id");
    sbuf_printf(&q, " ORDER BY entity_id, home_id LIMIT %ld FORMAT JSONEachRow", limit);
    ch_store_select(s, &q, chr_read_done, rd);
}
