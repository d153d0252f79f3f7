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

    sbuf held;                   /* held events: u32 length + text, in order */
    size_t nheld;
    struct event *debounce_ev, *hold_ev;
    sbuf out;                    /* scratch: an annotated event */

    uint64_t loads, updates, held_total, released_unresolved, annotated, plain;
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

/* Resolves every entity's context from the lists as they are now. */
static void reg_build(registry *r) {
    json_decref(r->dev_by_id);
    json_decref(r->area_by_id);
    json_decref(r->floor_by_id);
    r->dev_by_id = reg_index(r->list[RK_DEVICE], "id");
    r->area_by_id = reg_index(r->list[RK_AREA], "area_id");
    r->floor_by_id = reg_index(r->list[RK_FLOOR], "floor_id");
    json_t *ctx = json_object();
    sbuf t;
    sbuf_init(&t);
    size_t i;
    json_t *e;
    json_array_foreach(r->list[RK_ENTITY], i, e) {
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

int registry_annotate(registry *r, const char *json, size_t len, sbuf *out) {
    if (!r) return 1;
    reg_ev e = {0};
    jscan_object_trusted(json, len, reg_top_cb, &e);
    return reg_annotate_ev(r, &e, json, len, out);
}

/* To the sink, with its context when one is known. */
static void reg_emit(registry *r, const reg_ev *e, const char *json, size_t len) {
    sbuf_reset(&r->out);
    if (reg_annotate_ev(r, e, json, len, &r->out) == 0) {
        r->annotated++;
        r->sink(r->out.data, r->out.len, r->arg);
    } else {
        r->plain++;
        r->sink(json, len, r->arg);
    }
}

/* ---- holding ---------------------------------------------------------------------------- */

static void reg_release(registry *r, int resolved) {
    if (!r->nheld) return;
    size_t off = 0, n = r->nheld;
    sbuf h = r->held; /* the sink may not re-enter, but take the buffer anyway */
    sbuf_init(&r->held);
    r->nheld = 0;
    if (r->hold_ev) evtimer_del(r->hold_ev);
    while (off + 4 <= h.len) {
        uint32_t l;
        memcpy(&l, h.data + off, 4);
        off += 4;
        reg_ev e = {0};
        jscan_object_trusted(h.data + off, l, reg_top_cb, &e);
        reg_emit(r, &e, h.data + off, l);
        off += l;
    }
    sbuf_free(&h);
    if (!resolved) {
        r->released_unresolved += n;
        log_warn("registry: %zu event(s) spooled with the context known so far (the registry reload did not "
                 "answer in time or the connection ended)", n);
    }
}

static void reg_hold(registry *r, const char *json, size_t len) {
    if (!r->nheld) {
        struct timeval tv = {r->o.hold_max_ms / 1000, (r->o.hold_max_ms % 1000) * 1000};
        evtimer_add(r->hold_ev, &tv);
    }
    uint32_t l = (uint32_t)len;
    sbuf_add(&r->held, (const char *)&l, 4);
    sbuf_add(&r->held, json, len);
    r->nheld++;
    r->held_total++;
    if (sbuf_failed(&r->held) || r->held.len > r->o.hold_max_bytes) reg_release(r, 0);
}

static int reg_holding(const registry *r) { return r->nheld > 0 || r->need_load || r->inflight > 0 || r->dirty; }

void registry_release_held(registry *r) {
    if (r) reg_release(r, 0);
}

static void reg_hold_timeout_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    registry *r = arg;
    reg_release(r, 0);
    r->need_load = 0; /* don't hold again for a load that may never answer; the next update does */
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
    reg_release(r, r->connected);
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
    reg_release(r, 0);
    r->need_load = 1; /* the next connection holds events until its first load */
}

/* ---- events ------------------------------------------------------------------------------ */

void registry_on_event(registry *r, const char *json, size_t len) {
    reg_ev e = {0};
    jscan_object_trusted(json, len, reg_top_cb, &e);
    int kind = reg_update_kind(&e);
    if (kind >= 0 && r->connected && r->st[kind] != RS_UNAUTHORIZED && r->st[kind] != RS_UNSUPPORTED) {
        r->updates++;
        if (!r->dirty && r->req[kind] < 0) {
            struct timeval tv = {r->o.debounce_ms / 1000, (r->o.debounce_ms % 1000) * 1000};
            evtimer_add(r->debounce_ev, &tv);
        }
        r->dirty |= 1u << kind;
        reg_hold(r, json, len);
        return;
    }
    if (reg_holding(r) && (r->connected || r->need_load)) {
        reg_hold(r, json, len);
        return;
    }
    reg_emit(r, &e, json, len);
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
    const char *state = r->need_load ? "loading" : degraded ? "degraded" : r->loads ? "ready" : "loading";
    return json_pack("{s:s,s:s?,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "state", state, "reason", reason,
                     "registries", kinds, "entities", (json_int_t)json_array_size(r->list[RK_ENTITY]), "devices",
                     (json_int_t)json_array_size(r->list[RK_DEVICE]), "areas",
                     (json_int_t)json_array_size(r->list[RK_AREA]), "floors",
                     (json_int_t)json_array_size(r->list[RK_FLOOR]), "labels",
                     (json_int_t)json_array_size(r->list[RK_LABEL]), "loads", (json_int_t)r->loads, "updates",
                     (json_int_t)r->updates, "held", (json_int_t)r->held_total, "released_unresolved",
                     (json_int_t)r->released_unresolved, "events_with_context", (json_int_t)r->annotated,
                     "events_without_context", (json_int_t)r->plain);
}

void registry_free(registry *r) {
    if (!r) return;
    reg_release(r, 0);
    if (r->debounce_ev) event_free(r->debounce_ev);
    if (r->hold_ev) event_free(r->hold_ev);
    for (int k = 0; k < RK_N; k++) json_decref(r->list[k]);
    json_decref(r->ctx);
    json_decref(r->dev_by_id);
    json_decref(r->area_by_id);
    json_decref(r->floor_by_id);
    sbuf_free(&r->held);
    sbuf_free(&r->out);
    free(r);
}
