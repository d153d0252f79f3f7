/* influx_registry.c -- see influx_registry.h. */
#include "influx_registry.h"
#include "registry_row.h"

#include "event.h"
#include "influx_answer.h"
#include "influx_points.h"
#include "json_text.h"
#include "lineproto.h"
#include "log.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct influx_registry {
    stats_influx_io io;
    char *events_measurement;   /* NULL: no last_seen */
    json_t *written;            /* ir_key(home, entity_id) -> what is written (ir_state) */
};

/* Issue 18: a registry point of a home other than the default one carries the
 * home_id tag (as the events do, influx_points.h); the maps and the reader key
 * an entity by its home too: "<entity_id>\x1f<tag value>" ("" = default). */
static char *ir_key(const char *home, const char *entity_id) {
    sbuf k;
    sbuf_init(&k);
    sbuf_adds(&k, entity_id);
    sbuf_addc(&k, '\x1f');
    sbuf_adds(&k, influx_points_home_value(home));
    size_t n;
    return sbuf_failed(&k) ? (sbuf_free(&k), NULL) : sbuf_take(&k, &n);
}

/* The record's registry members, in record order (docs/EVENTS.md section 3). */
static const char *const ir_keys[] = {"area_id", "area", "floor_id", "floor", "device_id", "device",
                                      "manufacturer", "model", "labels", "platform", "entity_category"};
#define IR_NKEYS (sizeof ir_keys / sizeof *ir_keys)
_Static_assert(IR_NKEYS == RF_CONTEXT_N, "ir_keys are record_fields' context members, in order");

int influx_registry_open(const stats_influx_io *io, const char *events_measurement, influx_registry **out) {
    influx_registry *r = calloc(1, sizeof *r);
    if (!r) return -1;
    r->io = *io;
    r->written = json_object();
    if (events_measurement) r->events_measurement = strdup(events_measurement);
    if (!r->written || (events_measurement && !r->events_measurement)) {
        influx_registry_close(r);
        return -1;
    }
    *out = r;
    return 0;
}

void influx_registry_close(influx_registry *r) {
    if (!r) return;
    json_decref(r->written);
    free(r->events_measurement);
    free(r);
}

/* ---- writing ------------------------------------------------------------------------ */

/* The context text of a record ("{…}" with the eleven members), or NULL when it has none. */
static char *ir_context(const json_t *rec) {
    if (!json_object_get(rec, "area_id") && !json_object_get(rec, "device_id") &&
        !json_object_get(rec, "platform") && !json_object_get(rec, "labels"))
        return NULL;
    sbuf o;
    sbuf_init(&o);
    for (size_t k = 0; k < IR_NKEYS; k++) {
        sbuf_adds(&o, k ? ",\"" : "{\"");
        sbuf_adds(&o, ir_keys[k]);
        sbuf_adds(&o, "\":");
        const json_t *v = json_object_get(rec, ir_keys[k]);
        if (!v) sbuf_adds(&o, strcmp(ir_keys[k], "labels") ? "null" : "[]");
        else json_text_dump(v, &o);
    }
    sbuf_addc(&o, '}');
    size_t n;
    return sbuf_failed(&o) ? (sbuf_free(&o), NULL) : sbuf_take(&o, &n);
}

/* The same from the record's text: its members' spans (record_fields notes the
 * eleven, in this order) are json_text_dump's text of their values, the record
 * being canonical. */
static char *ir_context_text(const char *json, const record_fields *f) {
    if (!f->len[RF_AREA_ID] && !f->len[RF_DEVICE_ID] && !f->len[RF_PLATFORM] && !f->len[RF_LABELS]) return NULL;
    sbuf o;
    sbuf_init(&o);
    registry_context(&o, f, json); /* SQLite's and ClickHouse's text (registry_row.c) */
    size_t n;
    return sbuf_failed(&o) ? (sbuf_free(&o), NULL) : sbuf_take(&o, &n);
}

typedef struct ir_write {
    influx_registry *r;
    json_t *pending;            /* ir_key -> ir_state, to remember once written */
    influx_registry_done_fn done;
    void *arg;
    sbuf lines;
} ir_write;

static void ir_write_free(ir_write *w) {
    json_decref(w->pending);
    sbuf_free(&w->lines);
    free(w);
}

static void ir_write_done(const httpc_response *res, void *arg) {
    ir_write *w = arg;
    if (res->status == 204 || res->status == 200) {
        const char *k;
        json_t *v;
        json_object_foreach(w->pending, k, v) json_object_set(w->r->written, k, v);
        w->done(0, NULL, w->arg);
    } else {
        char why[300];
        snprintf(why, sizeof why, "registry write to InfluxDB failed: %ld %.200s", res->status,
                 res->status ? (res->body ? res->body : "") : (res->error ? res->error : "no answer"));
        w->done(-1, why, w->arg);
    }
    ir_write_free(w);
}

/* What the writer knows of an entity's points, as written (or earlier in the batch):
 * "c" the context of its newest event, "t" that event's time, "s" the oldest point of that
 * context's run ("since" as far as this process knows), "x" the newest point of another
 * context below the run (where the reader's walk back stops). Times in µs. */
static json_t *ir_state(const char *c, json_int_t s, json_int_t t, json_int_t x) {
    return json_pack("{s:s,s:I,s:I,s:I}", "c", c, "s", s, "t", t, "x", x);
}

/* Whether an item (ctx at tu) needs a point, given what is known (k; NULL: nothing, e.g.
 * after a restart); *next is the new state, NULL when unchanged. A point per change of
 * context; and per late item (a retried batch, one held and released late) that the reader
 * needs: one of another context (it stops the walk back), and one of the current context
 * older than "s" (the context began earlier; "s" moves back unless a stop lies between). */
static int ir_needs_point(const json_t *k, const char *ctx, json_int_t tu, json_t **next) {
    *next = NULL;
    const char *c = json_string_value(json_object_get(k, "c"));
    if (!c) {
        *next = ir_state(ctx, tu, tu, INT64_MIN);
        return 1;
    }
    json_int_t s = json_integer_value(json_object_get(k, "s")), t = json_integer_value(json_object_get(k, "t")),
               x = json_integer_value(json_object_get(k, "x"));
    int same = strcmp(c, ctx) == 0;
    if (tu >= t) {
        if (same) {
            if (tu > t) *next = ir_state(c, s, tu, x);
            return 0;
        }
        *next = ir_state(ctx, tu, tu, t); /* a new run; the old one's newest event stops the walk */
        return 1;
    }
    if (!same) {
        if (tu > x) *next = ir_state(c, s, t, tu);
        return 1;
    }
    if (tu >= s) return 0;
    if (tu > x) *next = ir_state(c, tu, t, x);
    return 1;
}

/* One point per item that ir_needs_point says needs one. */
static int ir_lines(influx_registry *r, const store_batch *b, ir_write *w) {
    for (size_t i = 0; i < b->nitems; i++) {
        const store_item *it = &b->items[i];
        if (!it->entity_id || !*it->entity_id ||
            (it->status != STORE_ITEM_STORED && it->status != STORE_ITEM_DUPLICATE))
            continue;
        char *ctx = it->record ? ir_context(it->record)
                    : it->fields.noted ? ir_context_text(it->json, &it->fields) : NULL;
        if (!ctx) continue;
        char *key = ir_key(b->home_id, it->entity_id);
        if (!key) {
            free(ctx);
            return -1;
        }
        const json_t *k = json_object_get(w->pending, key);
        if (!k) k = json_object_get(r->written, key);
        json_t *next;
        if (ir_needs_point(k, ctx, it->time_us, &next)) {
            lineproto_measurement(&w->lines, INFLUX_REGISTRY_MEASUREMENT);
            sbuf_adds(&w->lines, ",entity_id=");
            lineproto_tag(&w->lines, it->entity_id);
            if (*influx_points_home_value(b->home_id)) {
                sbuf_adds(&w->lines, "," INFLUX_HOME_TAG "=");
                lineproto_tag(&w->lines, b->home_id);
            }
            sbuf_adds(&w->lines, " context=");
            lineproto_field_string(&w->lines, ctx, strlen(ctx));
            sbuf_printf(&w->lines, " %lld\n", (long long)it->time_us * 1000);
        }
        if (next) json_object_set_new(w->pending, key, next);
        free(key);
        free(ctx);
    }
    return sbuf_failed(&w->lines) ? -1 : 0;
}

void influx_registry_batch(influx_registry *r, const store_batch *b, influx_registry_done_fn done, void *arg) {
    ir_write *w = calloc(1, sizeof *w);
    if (!w) {
        done(-1, "out of memory", arg);
        return;
    }
    *w = (ir_write){.r = r, .pending = json_object(), .done = done, .arg = arg};
    sbuf_init(&w->lines);
    if (!w->pending || ir_lines(r, b, w) != 0) {
        ir_write_free(w);
        done(-1, "out of memory", arg);
        return;
    }
    if (w->lines.len == 0) { /* no change: nothing to write */
        ir_write_free(w);
        done(0, NULL, arg);
        return;
    }
    if (r->io.write(r->io.ctx, NULL, w->lines.data, w->lines.len, ir_write_done, w) != 0) {
        ir_write_free(w);
        done(-1, "cannot start a registry write to InfluxDB", arg);
    }
}

/* ---- reading --------------------------------------------------------------------------- */

typedef struct ir_read {
    store_rows_cb cb;
    void *arg;
    long limit;
    json_t *ent;                /* ir_key -> {"context","since","done","seen"} */
} ir_read;

static int ir_row_of(ir_read *rd, const influx_answer_row *row, const char *eid, json_t *e, int64_t ns);

/* One row of statement 0 (the registry points, newest first per entity and home) or 1 (last event). */
static int ir_row(const influx_answer_row *row, void *arg) {
    ir_read *rd = arg;
    const char *eid = json_string_value(json_object_get(row->tags, "entity_id"));
    if (!eid || !*eid) return 0;
    int64_t ns = influx_answer_time(row);
    char *key = ir_key(json_string_value(json_object_get(row->tags, INFLUX_HOME_TAG)), eid);
    if (!key) return -1;
    json_t *e = json_object_get(rd->ent, key);
    int rc = ir_row_of(rd, row, key, e, ns);
    free(key);
    return rc;
}

static int ir_row_of(ir_read *rd, const influx_answer_row *row, const char *eid, json_t *e, int64_t ns) {
    if (row->stmt == 1) {
        if (e) json_object_set_new(e, "seen", json_integer(ns / 1000));
        return 0;
    }
    const char *ctx = influx_answer_str(row, "context");
    if (!ctx) return 0;
    if (!e) return json_object_set_new(rd->ent, eid, json_pack("{s:s,s:I}", "context", ctx, "since", (json_int_t)(ns / 1000)));
    if (json_is_true(json_object_get(e, "done"))) return 0;
    if (!strcmp(json_string_value(json_object_get(e, "context")), ctx))
        json_object_set_new(e, "since", json_integer(ns / 1000)); /* the same context, earlier */
    else json_object_set_new(e, "done", json_true());
    return 0;
}

static int ir_cmp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The rows, by entity_id then home: {"entity_id","since","last_seen"[,"home_id"],<context members>}. */
static int ir_rows(ir_read *rd, store_rows *rows) {
    size_t n = json_object_size(rd->ent), i = 0;
    const char **keys = n ? malloc(n * sizeof *keys) : NULL;
    if (n && !keys) return -1;
    const char *k;
    json_t *e;
    json_object_foreach(rd->ent, k, e) keys[i++] = k;
    if (n) qsort(keys, n, sizeof *keys, ir_cmp);
    int rc = 0;
    for (i = 0; i < n && (long)i < rd->limit && rc == 0; i++) {
        e = json_object_get(rd->ent, keys[i]);
        const char *ctx = json_string_value(json_object_get(e, "context"));
        char since[EVENT_TIME_LEN], seen[EVENT_TIME_LEN];
        event_time_format(json_integer_value(json_object_get(e, "since")), since);
        sbuf o;
        sbuf_init(&o);
        const char *sep = strchr(keys[i], '\x1f'), *home = sep ? sep + 1 : "";
        sbuf_adds(&o, "{\"entity_id\":");
        json_text_string(&o, keys[i], sep ? (size_t)(sep - keys[i]) : strlen(keys[i]));
        sbuf_printf(&o, ",\"since\":\"%s\",\"last_seen\":", since);
        json_t *s = json_object_get(e, "seen");
        if (s) {
            event_time_format(json_integer_value(s), seen);
            sbuf_printf(&o, "\"%s\"", seen);
        } else sbuf_adds(&o, "null");
        if (*home) { /* another home's row says so, as its records do */
            sbuf_adds(&o, ",\"" INFLUX_HOME_TAG "\":");
            json_text_string(&o, home, strlen(home));
        }
        size_t cl = ctx ? strlen(ctx) : 0;
        if (cl > 2 && ctx[0] == '{') {
            sbuf_addc(&o, ',');
            sbuf_add(&o, ctx + 1, cl - 1); /* the context's members and its '}' */
        } else sbuf_addc(&o, '}');
        size_t len;
        char *text = sbuf_failed(&o) ? (sbuf_free(&o), NULL) : sbuf_take(&o, &len);
        rc = text ? store_rows_add(rows, text) : -1;
    }
    free(keys);
    return rc;
}

static void ir_read_done(const httpc_response *res, void *arg) {
    ir_read *rd = arg;
    char why[300] = "";
    store_rows rows = {0};
    int rc = -1;
    if (res->status != 200) {
        snprintf(why, sizeof why, "influxdb: %ld %.200s", res->status,
                 res->status ? (res->body ? res->body : "") : (res->error ? res->error : "no answer"));
    } else if (influx_answer_walk(res->body, res->body_len, -1, ir_row, rd, why, sizeof why) == 0) {
        rc = ir_rows(rd, &rows);
        if (rc) snprintf(why, sizeof why, "out of memory");
    }
    rd->cb(&rows, rc, rc ? why : NULL, rd->arg);
    store_rows_free(&rows);
    json_decref(rd->ent);
    free(rd);
}

static void ir_where_tag(sbuf *q, int *first, const char *key, const char *value) {
    if (!value) return;
    sbuf form;
    sbuf_init(&form);
    lineproto_tag_form(&form, value);
    sbuf_adds(q, *first ? " WHERE " : " AND ");
    *first = 0;
    influxql_ident(q, key);
    sbuf_adds(q, " = ");
    influxql_string(q, form.data ? form.data : "");
    sbuf_free(&form);
}

static void ir_where_entity(sbuf *q, const char *entity_id, const char *home) {
    int first = 1;
    ir_where_tag(q, &first, "entity_id", entity_id);
    ir_where_tag(q, &first, INFLUX_HOME_TAG, home ? influx_points_home_value(home) : NULL);
}

void influx_registry_read(influx_registry *r, const char *home, const char *entity_id, long limit, store_rows_cb cb,
                          void *arg) {
    ir_read *rd = calloc(1, sizeof *rd);
    store_rows none = {0};
    if (!rd || !(rd->ent = json_object())) {
        free(rd);
        cb(&none, -1, "out of memory", arg);
        return;
    }
    rd->cb = cb, rd->arg = arg, rd->limit = limit;
    sbuf q;
    sbuf_init(&q);
    sbuf_adds(&q, "SELECT \"context\" FROM ");
    influxql_ident(&q, INFLUX_REGISTRY_MEASUREMENT);
    ir_where_entity(&q, entity_id, home);
    sbuf_adds(&q, " GROUP BY \"entity_id\", \"" INFLUX_HOME_TAG "\" ORDER BY time DESC");
    if (r->events_measurement) { /* last_seen: the newest event of each entity */
        sbuf_adds(&q, "; SELECT last(\"event_id\") FROM ");
        influxql_ident(&q, r->events_measurement);
        ir_where_entity(&q, entity_id, home);
        sbuf_adds(&q, " GROUP BY \"entity_id\", \"" INFLUX_HOME_TAG "\"");
    }
    if (sbuf_failed(&q) || r->io.query(r->io.ctx, q.data, ir_read_done, rd) != 0) {
        json_decref(rd->ent);
        free(rd);
        cb(&none, -1, "cannot start a request to InfluxDB", arg);
    }
    sbuf_free(&q);
}
