/* registry.c -- see registry.h. The lists are kept as HA sent them (jansson arrays,
 * unknown members and nulls ignored); after each load the per-entity context is
 * resolved once into its JSON text, so an event costs a member lookup, a hash lookup
 * and one copy. */
#include "registry.h"

#include "json_scan.h"
#include "json_text.h"
#include "log.h"
#include "service.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the five registries ------------------------------------------------------------- */

enum { RK_ENTITY, RK_DEVICE, RK_AREA, RK_FLOOR, RK_LABEL, RK_N };
#define RK_ALL ((1u << RK_N) - 1)

static const struct {
    const char *cmd, *event, *name;
} rk_info[RK_N] = {
    {"config/entity_registry/list", "entity_registry_updated", "entity"},
    {"config/device_registry/list", "device_registry_updated", "device"},
    {"config/area_registry/list", "area_registry_updated", "area"},
    {"config/floor_registry/list", "floor_registry_updated", "floor"},
    {"config/label_registry/list", "label_registry_updated", "label"},
};

typedef enum { RS_NEVER = 0, RS_OK, RS_UNSUPPORTED, RS_UNAUTHORIZED, RS_FAILED } rk_state;
static const char *const rs_names[] = {"not_loaded", "ok", "unsupported", "unauthorized", "failed"};

typedef struct rk_slot {
    registry *r;
    int kind;
} rk_slot;

struct registry {
    struct event_base *base;
    registry_opts o;
    ha_client *ha;
    registry_sink_fn sink;
    void *arg;

    json_t *list[RK_N];          /* the last list HA gave (array), or NULL */
    rk_state st[RK_N];
    char err[RK_N][120];
    long long req[RK_N];         /* id of the list request in flight, or -1 */
    rk_slot slot[RK_N];
    unsigned dirty;              /* kinds to read (again) */
    int inflight;
    int connected;               /* subscribed: requests can be sent */
    int need_load;               /* no load since this connection began: hold */

    json_t *ctx;                 /* entity_id -> its context's JSON text */
    json_t *dev_by_id, *area_by_id, *floor_by_id; /* borrowed entries of list[] */

    sbuf held;                   /* held events: u32 length, u8 flags (REGISTRY_ROW) + text, in order */
    size_t nheld, nheld_rows;    /* events held, of which history rows */
    json_t *hold_base[RK_N];     /* the lists as they were when the hold began (undo of updates
                                    without "changes"); NULL when not holding */
    int stalled;                 /* a reload went unanswered past REGISTRY_HOLD_MAX_MS: do not hold
                                    until HA answers again */
    struct event *debounce_ev, *hold_ev;
    sbuf out;                    /* scratch: an annotated event */

    uint64_t loads, updates, held_total, released_unresolved, annotated, plain, rows, rows_lost, undone;
    const char *last_unresolved; /* why events last went with the context known so far */
    long long last_load_us;
};

/* ---- context text ---------------------------------------------------------------------- */

static const char *reg_str(const json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }

static void reg_put(sbuf *o, const char *key, const char *v) {
    sbuf_adds(o, key);
    if (v) json_text_string(o, v, strlen(v));
    else sbuf_add(o, "null", 4);
}

/* The context object's text: area (and its floor) of `area_id`, device `dev`, labels. */
static void reg_context(const registry *r, const char *area_id, const char *floor_id, const char *dev_id,
                        const json_t *dev, const json_t *labels, const char *platform, const char *category, sbuf *o) {
    const json_t *area = area_id ? json_object_get(r->area_by_id, area_id) : NULL;
    if (area && !floor_id) floor_id = reg_str(area, "floor_id");
    const json_t *floor = floor_id ? json_object_get(r->floor_by_id, floor_id) : NULL;
    reg_put(o, "{\"area_id\":", area_id);
    reg_put(o, ",\"area\":", area ? reg_str(area, "name") : NULL);
    reg_put(o, ",\"floor_id\":", floor_id);
    reg_put(o, ",\"floor\":", floor ? reg_str(floor, "name") : NULL);
    reg_put(o, ",\"device_id\":", dev_id);
    const char *dname = dev ? reg_str(dev, "name_by_user") : NULL;
    reg_put(o, ",\"device\":", dname ? dname : dev ? reg_str(dev, "name") : NULL);
    reg_put(o, ",\"manufacturer\":", dev ? reg_str(dev, "manufacturer") : NULL);
    reg_put(o, ",\"model\":", dev ? reg_str(dev, "model") : NULL);
    sbuf_adds(o, ",\"labels\":[");
    size_t i, n = 0;
    json_t *v;
    json_array_foreach(labels, i, v) {
        if (!json_is_string(v)) continue;
        if (n++) sbuf_addc(o, ',');
        json_text_string(o, json_string_value(v), json_string_length(v));
    }
    sbuf_addc(o, ']');
    reg_put(o, ",\"platform\":", platform);
    reg_put(o, ",\"entity_category\":", category);
    sbuf_addc(o, '}');
}

/* An entity's context, resolved as HA does: its own area, else its device's. */
static void reg_entity_context(const registry *r, const json_t *e, sbuf *o) {
    const char *dev_id = reg_str(e, "device_id");
    const json_t *dev = dev_id ? json_object_get(r->dev_by_id, dev_id) : NULL;
    const char *area = reg_str(e, "area_id");
    if (!area && dev) area = reg_str(dev, "area_id");
    /* without a readable device registry the device_id is still known */
    reg_context(r, area, NULL, dev_id, dev, json_object_get(e, "labels"), reg_str(e, "platform"),
                reg_str(e, "entity_category"), o);
}

static json_t *reg_index(json_t *list, const char *key) {
    json_t *idx = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        const char *id = reg_str(v, key);
        if (id && idx) json_object_set(idx, id, v);
    }
    return idx;
}

/* Resolves every entity's context from `l` (the lists, or undone copies of them). */
static void reg_resolve(registry *r, json_t *const l[RK_N]) {
    json_decref(r->dev_by_id);
    json_decref(r->area_by_id);
    json_decref(r->floor_by_id);
    r->dev_by_id = reg_index(l[RK_DEVICE], "id");
    r->area_by_id = reg_index(l[RK_AREA], "area_id");
    r->floor_by_id = reg_index(l[RK_FLOOR], "floor_id");
    json_t *ctx = json_object();
    sbuf t;
    sbuf_init(&t);
    size_t i;
    json_t *e;
    json_array_foreach(l[RK_ENTITY], i, e) {
        const char *eid = reg_str(e, "entity_id");
        if (!eid || !ctx) continue;
        sbuf_reset(&t);
        reg_entity_context(r, e, &t);
        if (!sbuf_failed(&t)) json_object_set_new(ctx, eid, json_stringn(t.data, t.len));
    }
    sbuf_free(&t);
    if (ctx) {
        json_decref(r->ctx);
        r->ctx = ctx;
    }
}

/* Resolves every entity's context from the lists as they are now. */
static void reg_build(registry *r) {
    reg_resolve(r, r->list);
    r->loads++;
    r->last_load_us = service_now_us();
}

/* ---- finding an event's context ------------------------------------------------------- */

typedef struct reg_ev {
    const char *type, *data;
    size_t tlen, dlen;
} reg_ev;

static int reg_top_cb(const char *k, size_t kl, const char *v, size_t vl, void *arg) {
    reg_ev *e = arg;
    if (kl == 10 && !memcmp(k, "event_type", 10)) e->type = v, e->tlen = vl;
    else if (kl == 4 && !memcmp(k, "data", 4)) e->data = v, e->dlen = vl;
    return e->type && e->data; /* both found: stop */
}

typedef struct reg_member {
    const char *key;
    size_t klen;
    const char *val;
    size_t vlen;
} reg_member;

static int reg_member_cb(const char *k, size_t kl, const char *v, size_t vl, void *arg) {
    reg_member *m = arg;
    if (kl != m->klen || memcmp(k, m->key, kl) != 0) return 0;
    m->val = v, m->vlen = vl;
    return 1;
}

/* data.<key> as a plain string (no escapes) into buf; 0 or -1. */
static int reg_data_string(const reg_ev *e, const char *key, char *buf, size_t n) {
    if (!e->data || e->dlen < 2 || e->data[0] != '{') return -1;
    reg_member m = {key, strlen(key), NULL, 0};
    jscan_object_trusted(e->data, e->dlen, reg_member_cb, &m);
    if (!m.val || m.vlen < 2 || m.val[0] != '"' || m.vlen - 2 >= n || memchr(m.val, '\\', m.vlen)) return -1;
    memcpy(buf, m.val + 1, m.vlen - 2);
    buf[m.vlen - 2] = '\0';
    return 0;
}

/* Which *_registry_updated an event type is, or -1. */
static int reg_update_kind(const reg_ev *e) {
    if (!e->type || e->tlen < 20 || e->type[0] != '"') return -1;
    for (int k = 0; k < RK_N; k++) {
        size_t n = strlen(rk_info[k].event);
        if (e->tlen == n + 2 && !memcmp(e->type + 1, rk_info[k].event, n)) return k;
    }
    return -1;
}

/* The context of one event into `o`: 0, or 1 when none is known. */
static int reg_event_context(const registry *r, const reg_ev *e, sbuf *o) {
    char id[256];
    int kind = reg_update_kind(e);
    if (kind < 0 || kind == RK_ENTITY) {
        if (!r->ctx || reg_data_string(e, "entity_id", id, sizeof id) != 0) return 1;
        const char *t = json_string_value(json_object_get(r->ctx, id));
        if (!t) return 1;
        sbuf_adds(o, t);
        return 0;
    }
    if (kind == RK_DEVICE) {
        if (reg_data_string(e, "device_id", id, sizeof id) != 0) return 1;
        const json_t *dev = json_object_get(r->dev_by_id, id);
        if (!dev) return 1;
        reg_context(r, reg_str(dev, "area_id"), NULL, id, dev, json_object_get(dev, "labels"), NULL, NULL, o);
        return 0;
    }
    if (kind == RK_AREA) {
        if (reg_data_string(e, "area_id", id, sizeof id) != 0 || !json_object_get(r->area_by_id, id)) return 1;
        reg_context(r, id, NULL, NULL, NULL, NULL, NULL, NULL, o);
        return 0;
    }
    if (kind == RK_FLOOR) {
        if (reg_data_string(e, "floor_id", id, sizeof id) != 0 || !json_object_get(r->floor_by_id, id)) return 1;
        reg_context(r, NULL, id, NULL, NULL, NULL, NULL, NULL, o);
        return 0;
    }
    if (reg_data_string(e, "label_id", id, sizeof id) != 0) return 1;
    json_t *labels = json_pack("[s]", id);
    reg_context(r, NULL, NULL, NULL, NULL, labels, NULL, NULL, o);
    json_decref(labels);
    return 0;
}

static int reg_annotate_ev(registry *r, const reg_ev *e, const char *json, size_t len, sbuf *out) {
    if (len < 2 || json[0] != '{' || json[len - 1] != '}') return 1;
    size_t start = out->len;
    sbuf_add(out, json, len - 1);
    int empty = 1;
    for (size_t i = 1; i + 1 < len && empty; i++)
        if (json[i] != ' ' && json[i] != '\t' && json[i] != '\n' && json[i] != '\r') empty = 0;
    sbuf_adds(out, empty ? "\"homeiq_registry\":" : ",\"homeiq_registry\":");
    if (reg_event_context(r, e, out) != 0) {
        out->len = start;
        return 1;
    }
    sbuf_addc(out, '}');
    return sbuf_failed(out) ? 1 : 0;
}


/* To the sink, with its context when one is known. */
static int reg_emit(registry *r, const reg_ev *e, const char *json, size_t len, unsigned flags,
                    const ha_event_info *info) {
    sbuf_reset(&r->out);
    if (reg_annotate_ev(r, e, json, len, &r->out) == 0) {
        r->annotated++;
        return r->sink(r->out.data, r->out.len, flags, info, r->arg);
    }
    r->plain++;
    return r->sink(json, len, flags, info, r->arg);
}

/* ---- undoing updates -------------------------------------------------------------------
 * A hold can span several updates (they came closer together than one reload round trip),
 * and the reload answers with the registries as they are *after all of them* (HA answers in
 * order with its events: every update received before the answer is in it). Each held event
 * must get the context of its own position, so the context is resolved backwards: the events
 * after the last update get the answer's; then that update is undone, and the events before
 * it get the result; and so on. How an update is undone follows what HA's event carries:
 *  - entity/device "update" with "changes" ({field: old value}, HA 2023.x+): the old values
 *    are written back -- exact, however many updates of the same entry the hold spans;
 *  - anything else (area/floor/label updates carry no "changes"; create; remove): the entry
 *    is put back as it was in the lists known when the hold began (`hold_base`), or removed if it
 *    was not there -- exact unless the same entry changed twice within one hold (then the
 *    events between those two get the state before both: HA does not say what it was).
 * Area "reorder" carries no id and changes no context. */

static const char *const rk_list_key[RK_N] = {"entity_id", "id", "area_id", "floor_id", "label_id"};
static const char *const rk_event_key[RK_N] = {"entity_id", "device_id", "area_id", "floor_id", "label_id"};

static json_t *reg_find(json_t *list, const char *key, const char *id, size_t *at) {
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        const char *k = reg_str(v, key);
        if (k && !strcmp(k, id)) {
            if (at) *at = i;
            return v;
        }
    }
    return NULL;
}

/* Undoes one update event (its "data" object) on the working copies `cur`. 1 if anything changed. */
static int reg_undo(registry *r, json_t *cur[RK_N], int kind, const json_t *data) {
    const char *id = reg_str(data, rk_event_key[kind]);
    json_t *changes = json_object_get(data, "changes");
    const char *action = reg_str(data, "action");
    int exact = (kind == RK_ENTITY || kind == RK_DEVICE) && action && !strcmp(action, "update") &&
                json_is_object(changes);
    if (!id || !cur[kind] || (!exact && !r->hold_base[kind])) return 0;
    if (cur[kind] == r->list[kind] || cur[kind] == r->hold_base[kind]) { /* copy on first write */
        json_t *c = json_deep_copy(cur[kind]);
        if (!c) return 0;
        json_decref(cur[kind]);
        cur[kind] = c;
    }
    const char *key = rk_list_key[kind];
    size_t at;
    json_t *entry = reg_find(cur[kind], key, id, &at);
    if (exact) {
        if (!entry) return 0;
        const char *k;
        json_t *v;
        json_object_foreach(changes, k, v) json_object_set(entry, k, v); /* entity_id too: a rename */
        return 1;
    }
    if (entry) json_array_remove(cur[kind], at);
    json_t *was = reg_find(r->hold_base[kind], key, id, NULL);
    if (was) json_array_append_new(cur[kind], json_deep_copy(was));
    return 1;
}

/* The held records, [u32 length][u8 flags][text] each. */
typedef struct reg_rec {
    const char *text;
    uint32_t len;
    unsigned flags;
    reg_ev e;
    int kind;      /* *_registry_updated kind (live events only), or -1 */
} reg_rec;

static size_t reg_next(const sbuf *h, size_t off, reg_rec *rec) {
    if (off + 5 > h->len) return 0;
    memcpy(&rec->len, h->data + off, 4);
    rec->flags = (unsigned char)h->data[off + 4];
    rec->text = h->data + off + 5;
    memset(&rec->e, 0, sizeof rec->e);
    jscan_object_trusted(rec->text, rec->len, reg_top_cb, &rec->e);
    rec->kind = (rec->flags & REGISTRY_ROW) ? -1 : reg_update_kind(&rec->e);
    return off + 5 + rec->len;
}

/* Annotates the records in [from, to) of h into out (same record format, final text). */
static void reg_annotate_span(registry *r, const sbuf *h, size_t from, size_t to, sbuf *out) {
    reg_rec rec;
    for (size_t off = from, nx; off < to && (nx = reg_next(h, off, &rec)) != 0; off = nx) {
        size_t at = out->len;
        uint32_t l = 0;
        sbuf_add(out, (const char *)&l, 4);
        sbuf_addc(out, (char)rec.flags);
        if (reg_annotate_ev(r, &rec.e, rec.text, rec.len, out) == 0) r->annotated++;
        else {
            r->plain++;
            sbuf_add(out, rec.text, rec.len);
        }
        if (sbuf_failed(out)) return;
        l = (uint32_t)(out->len - at - 5);
        memcpy(out->data + at, &l, 4);
    }
}

/* The held events with the context of their own positions (see above), into `out`. */
static void reg_resolve_held(registry *r, const sbuf *h, sbuf *out) {
    size_t nb = 0, cap = 0, *bound = NULL; /* offsets of the updates to undo, in order */
    reg_rec rec;
    for (size_t off = 0, nx; (nx = reg_next(h, off, &rec)) != 0; off = nx) {
        if (rec.kind < 0) continue;
        if (nb == cap) {
            size_t *b = realloc(bound, (cap = cap ? cap * 2 : 8) * sizeof *b);
            if (!b) break;
            bound = b;
        }
        bound[nb++] = off;
    }
    json_t *cur[RK_N];
    for (int k = 0; k < RK_N; k++) cur[k] = json_incref(r->list[k]);
    /* segment j = [bound[j-1], bound[j]) (bound[-1] = 0, bound[nb] = end), resolved last to first */
    sbuf *seg = calloc(nb + 1, sizeof *seg);
    if (!seg) nb = 0;
    for (size_t j = 0; seg && j <= nb; j++) sbuf_init(&seg[j]);
    size_t end = h->len;
    int undone = 0;
    for (size_t j = nb + 1; j-- > 0;) {
        size_t from = j ? bound[j - 1] : 0;
        reg_annotate_span(r, h, from, end, seg ? &seg[j] : out);
        end = from;
        if (!j || from == 0) break; /* nothing before this update */
        reg_next(h, from, &rec); /* the update that begins segment j: undone for the ones before */
        json_error_t je;
        json_t *data = rec.e.data ? json_loadb(rec.e.data, rec.e.dlen, 0, &je) : NULL;
        if (reg_undo(r, cur, rec.kind, data)) {
            r->undone++;
            undone = 1;
            reg_resolve(r, cur);
        }
        json_decref(data);
    }
    if (seg) {
        for (size_t j = 0; j <= nb; j++) {
            if (seg[j].len) sbuf_add(out, seg[j].data, seg[j].len);
            if (sbuf_failed(&seg[j])) out->failed = 1;
            sbuf_free(&seg[j]);
        }
        free(seg);
    }
    for (int k = 0; k < RK_N; k++) json_decref(cur[k]);
    free(bound);
    if (undone) reg_resolve(r, r->list); /* back to the answer's context for what follows */
}

/* ---- holding ---------------------------------------------------------------------------- */

static void reg_base_drop(registry *r) {
    for (int k = 0; k < RK_N; k++) {
        json_decref(r->hold_base[k]);
        r->hold_base[k] = NULL;
    }
}

static void reg_release(registry *r, int resolved, const char *why) {
    if (!r->nheld) return;
    size_t n = r->nheld;
    sbuf h = r->held; /* the sink may not re-enter, but take the buffer anyway */
    sbuf_init(&r->held);
    r->nheld = 0;
    r->nheld_rows = 0;
    if (r->hold_ev) evtimer_del(r->hold_ev);
    sbuf fin;
    sbuf_init(&fin);
    reg_resolve_held(r, &h, &fin);
    reg_base_drop(r);
    sbuf_free(&h);
    reg_rec rec;
    uint64_t lost = 0;
    for (size_t off = 0, nx; (nx = reg_next(&fin, off, &rec)) != 0; off = nx)
        if (r->sink(rec.text, rec.len, rec.flags, NULL, r->arg) != 0 && (rec.flags & REGISTRY_ROW)) lost++;
    if (sbuf_failed(&fin)) log_error("registry: out of memory resolving %zu held event(s)", n);
    sbuf_free(&fin);
    if (lost) {
        r->rows_lost += lost;
        log_error("registry: %llu held history row(s) could not be spooled (spool full); lost to this run",
                  (unsigned long long)lost);
    }
    if (!resolved) {
        r->released_unresolved += n;
        r->last_unresolved = why;
        log_warn("registry: %zu event(s) spooled with the context known so far (%s)", n, why);
    }
}

static void reg_hold(registry *r, const char *json, size_t len, unsigned flags) {
    if (!r->nheld) {
        struct timeval tv = {r->o.hold_max_ms / 1000, (r->o.hold_max_ms % 1000) * 1000};
        evtimer_add(r->hold_ev, &tv);
        for (int k = 0; k < RK_N; k++) r->hold_base[k] = json_incref(r->list[k]); /* lists are replaced, never edited */
    }
    uint32_t l = (uint32_t)len;
    sbuf_add(&r->held, (const char *)&l, 4);
    sbuf_addc(&r->held, (char)flags);
    sbuf_add(&r->held, json, len);
    r->nheld++;
    if (flags & REGISTRY_ROW) r->nheld_rows++;
    r->held_total++;
    if (sbuf_failed(&r->held) || r->held.len > r->o.hold_max_bytes)
        reg_release(r, 0, "more than REGISTRY_HOLD_MAX_BYTES held");
}

static int reg_holding(const registry *r) {
    return r->nheld > 0 || ((r->need_load || r->inflight > 0 || r->dirty) && !r->stalled);
}

void registry_flush_rows(registry *r) {
    if (r && r->nheld_rows) reg_release(r, 0, "backfill completed while its rows waited for a registry reload");
}

static void reg_hold_timeout_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    registry *r = arg;
    reg_release(r, 0, "Home Assistant did not answer the registry reload within REGISTRY_HOLD_MAX_MS");
    r->need_load = 0; /* don't hold again for a load that may never answer; the next answer does */
    if (r->inflight > 0) r->stalled = 1;
}

/* ---- loading ---------------------------------------------------------------------------- */

static void reg_send(registry *r);

static void reg_loaded(registry *r) {
    if (r->inflight > 0) return;
    if (r->dirty && r->connected) { /* more changes came in meanwhile */
        struct timeval tv = {r->o.debounce_ms / 1000, (r->o.debounce_ms % 1000) * 1000};
        evtimer_add(r->debounce_ev, &tv);
        return;
    }
    reg_build(r);
    int was_first = r->need_load;
    r->need_load = 0;
    reg_release(r, r->connected, "the connection to Home Assistant ended");
    if (was_first) {
        log_info("registry: %zu entities, %zu devices, %zu areas, %zu floors, %zu labels%s",
                 json_array_size(r->list[RK_ENTITY]), json_array_size(r->list[RK_DEVICE]),
                 json_array_size(r->list[RK_AREA]), json_array_size(r->list[RK_FLOOR]),
                 json_array_size(r->list[RK_LABEL]),
                 r->st[RK_ENTITY] == RS_OK ? "" : " (no entity registry: events carry no context)");
    }
}

static void reg_result(registry *r, int k, const char *msg, size_t len) {
    if (!msg) {
        r->st[k] = RS_FAILED;
        snprintf(r->err[k], sizeof r->err[k], "the connection ended before the answer");
        return;
    }
    json_error_t je;
    json_t *m = json_loadb(msg, len, 0, &je);
    json_t *res = json_object_get(m, "result");
    if (json_is_true(json_object_get(m, "success")) && json_is_array(res)) {
        json_decref(r->list[k]);
        r->list[k] = json_incref(res);
        r->st[k] = RS_OK;
        r->err[k][0] = '\0';
    } else {
        json_t *err = json_object_get(m, "error");
        const char *code = reg_str(err, "code"), *text = reg_str(err, "message");
        rk_state was = r->st[k];
        r->st[k] = code && !strcmp(code, "unknown_command") ? RS_UNSUPPORTED
                   : code && !strcmp(code, "unauthorized")  ? RS_UNAUTHORIZED
                                                            : RS_FAILED;
        snprintf(r->err[k], sizeof r->err[k], "%s: %s", code ? code : "no error code", text ? text : "");
        if (was != r->st[k])
            log_warn("registry: %s failed (%s)%s", rk_info[k].cmd, r->err[k],
                     r->st[k] == RS_UNSUPPORTED    ? "; an older HA: its fields stay null"
                     : r->st[k] == RS_UNAUTHORIZED ? "; the token is not an admin's: its fields stay null"
                                                   : "");
        if (r->st[k] != RS_OK) { /* what HA refuses now is not shown stale */
            json_decref(r->list[k]);
            r->list[k] = NULL;
        }
    }
    json_decref(m);
}

static void reg_on_result(const char *msg, size_t len, void *arg) {
    rk_slot *s = arg;
    registry *r = s->r;
    r->req[s->kind] = -1;
    r->inflight--;
    reg_result(r, s->kind, msg, len);
    if (!msg) return; /* the connection ended: reg_on_lost decides */
    r->stalled = 0;
    /* every update of this kind received so far came before the answer: it is in it */
    r->dirty &= ~(1u << s->kind);
    reg_loaded(r);
}

static void reg_send(registry *r) {
    for (int k = 0; k < RK_N && r->connected; k++) {
        if (!(r->dirty & (1u << k)) || r->req[k] >= 0) continue;
        r->dirty &= ~(1u << k);
        long long id = ha_client_request(r->ha, json_pack("{s:s}", "type", rk_info[k].cmd), reg_on_result, &r->slot[k]);
        if (id < 0) {
            if (!r->connected) return; /* the send dropped the connection: reg_on_lost ran */
            r->st[k] = RS_FAILED;
            snprintf(r->err[k], sizeof r->err[k], "could not send the request (too many pending)");
            continue;
        }
        r->req[k] = id;
        r->inflight++;
    }
    if (r->connected) reg_loaded(r);
}

static void reg_debounce_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    reg_send(arg);
}

static void reg_on_subscribed(void *arg) {
    registry *r = arg;
    r->connected = 1;
    r->dirty = RK_ALL;
    evtimer_del(r->debounce_ev);
    reg_send(r);
}

static void reg_on_lost(void *arg) {
    registry *r = arg;
    r->connected = 0;
    r->inflight = 0;
    for (int k = 0; k < RK_N; k++) r->req[k] = -1;
    r->dirty = 0;
    evtimer_del(r->debounce_ev);
    r->stalled = 0;
    reg_release(r, 0, "the connection to Home Assistant ended");
    r->need_load = 1; /* the next connection holds events until its first load */
}

/* ---- events ------------------------------------------------------------------------------ */

void registry_on_event(registry *r, const char *json, size_t len, const ha_event_info *info) {
    reg_ev e = {0};
    if (info && info->strict) /* ha_client's scan found them: no second scan */
        e.type = info->event_type, e.tlen = info->tlen, e.data = info->data, e.dlen = info->dlen;
    else
        jscan_object_trusted(json, len, reg_top_cb, &e);
    int kind = reg_update_kind(&e);
    if (kind >= 0 && r->connected && r->st[kind] != RS_UNAUTHORIZED && r->st[kind] != RS_UNSUPPORTED) {
        r->updates++;
        if (!r->dirty && r->req[kind] < 0) {
            struct timeval tv = {r->o.debounce_ms / 1000, (r->o.debounce_ms % 1000) * 1000};
            evtimer_add(r->debounce_ev, &tv);
        }
        r->dirty |= 1u << kind;
        if (!r->stalled) {
            reg_hold(r, json, len, 0);
            return;
        }
    }
    if (reg_holding(r) && (r->connected || r->need_load)) {
        reg_hold(r, json, len, 0);
        return;
    }
    reg_emit(r, &e, json, len, 0, info);
}

int registry_on_row(registry *r, const char *json, size_t len) {
    if (!r) return -1;
    r->rows++;
    if (reg_holding(r) && (r->connected || r->need_load)) { /* after the live events received before it */
        reg_hold(r, json, len, REGISTRY_ROW);
        return 0;
    }
    reg_ev e = {0};
    jscan_object_trusted(json, len, reg_top_cb, &e);
    return reg_emit(r, &e, json, len, REGISTRY_ROW, NULL);
}

/* ---- life cycle, health ------------------------------------------------------------------ */

int registry_new(struct event_base *base, const registry_opts *o, ha_client *ha, registry_sink_fn sink, void *arg,
                 registry **out) {
    registry *r = calloc(1, sizeof *r);
    if (!r) return -1;
    r->base = base;
    r->o = *o;
    if (r->o.hold_max_ms < 1) r->o.hold_max_ms = 10000;
    if (r->o.debounce_ms < 0) r->o.debounce_ms = 0;
    if (!r->o.hold_max_bytes) r->o.hold_max_bytes = 64u << 20;
    r->ha = ha;
    r->sink = sink;
    r->arg = arg;
    r->need_load = 1;
    for (int k = 0; k < RK_N; k++) {
        r->req[k] = -1;
        r->slot[k] = (rk_slot){r, k};
    }
    sbuf_init(&r->held);
    sbuf_init(&r->out);
    r->debounce_ev = evtimer_new(base, reg_debounce_cb, r);
    r->hold_ev = evtimer_new(base, reg_hold_timeout_cb, r);
    if (!r->debounce_ev || !r->hold_ev) {
        registry_free(r);
        return -1;
    }
    ha_client_set_hooks(ha, reg_on_subscribed, reg_on_lost, r);
    *out = r;
    return 0;
}

json_t *registry_health(const registry *r) {
    json_t *kinds = json_object();
    const char *reason = NULL;
    int degraded = 0;
    for (int k = 0; k < RK_N; k++) {
        json_object_set_new(kinds, rk_info[k].name,
                            r->err[k][0] ? json_pack("{s:s,s:s}", "state", rs_names[r->st[k]], "error", r->err[k])
                                         : json_pack("{s:s}", "state", rs_names[r->st[k]]));
        if (r->st[k] == RS_OK || r->st[k] == RS_NEVER) continue;
        degraded = 1;
        if (reason) continue;
        reason = r->st[k] == RS_UNAUTHORIZED
                     ? (k == RK_ENTITY ? "the token may not list registries (not an admin): events are stored "
                                         "without area/device/label context"
                                       : "the token may not list some registries (not an admin): their fields are null")
                 : r->st[k] == RS_UNSUPPORTED ? "an older Home Assistant without some registries (floors/labels): "
                                                "their fields are null"
                                              : "a registry could not be read: its fields are null or stale";
    }
    if (r->stalled) {
        degraded = 1;
        reason = "Home Assistant did not answer a registry reload within REGISTRY_HOLD_MAX_MS: events go with the "
                 "context known so far until it does";
    }
    const char *state = r->need_load ? "loading" : degraded ? "degraded" : r->loads ? "ready" : "loading";
    json_t *h = json_pack("{s:s,s:s?,s:o,s:I,s:I,s:I,s:I,s:I}", "state", state, "reason", reason, "registries", kinds,
                          "entities", (json_int_t)json_array_size(r->list[RK_ENTITY]), "devices",
                          (json_int_t)json_array_size(r->list[RK_DEVICE]), "areas",
                          (json_int_t)json_array_size(r->list[RK_AREA]), "floors",
                          (json_int_t)json_array_size(r->list[RK_FLOOR]), "labels",
                          (json_int_t)json_array_size(r->list[RK_LABEL]));
    if (h && json_object_update_new(h, json_pack("{s:I,s:I,s:I,s:I,s:s?,s:I,s:I,s:I,s:I,s:I}", "loads",
                                                 (json_int_t)r->loads, "updates", (json_int_t)r->updates, "held",
                                                 (json_int_t)r->held_total, "released_unresolved",
                                                 (json_int_t)r->released_unresolved, "last_unresolved_reason",
                                                 r->last_unresolved, "updates_undone", (json_int_t)r->undone,
                                                 "history_rows", (json_int_t)r->rows, "history_rows_lost",
                                                 (json_int_t)r->rows_lost, "events_with_context",
                                                 (json_int_t)r->annotated, "events_without_context",
                                                 (json_int_t)r->plain)) != 0) {
        json_decref(h);
        return NULL;
    }
    return h;
}

void registry_free(registry *r) {
    if (!r) return;
    reg_release(r, 0, "shutting down");
    if (r->debounce_ev) event_free(r->debounce_ev);
    if (r->hold_ev) event_free(r->hold_ev);
    for (int k = 0; k < RK_N; k++) json_decref(r->list[k]);
    json_decref(r->ctx);
    json_decref(r->dev_by_id);
    json_decref(r->area_by_id);
    json_decref(r->floor_by_id);
    reg_base_drop(r);
    sbuf_free(&r->held);
    sbuf_free(&r->out);
    free(r);
}
