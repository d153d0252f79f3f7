/* fastpath.c -- see fastpath.h. Each function returns 0 (done), 1 (declined:
 * jansson decides) or -1 (out of memory). Field rules mirror input.c,
 * validate.c and enrich.c for the HA event shape; docs/EVENTS.md is the
 * contract for both. */
#include "fastpath.h"
#include "enrich.h"

#include "event.h"
#include "json_scan.h"
#include "json_text.h"
#include "normalize.h"
#include "timeofday.h"
#include "validate.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct fp_span {
    const char *p; /* NULL: absent */
    size_t n;
    int ws;  /* a copied object with insignificant whitespace: written without it */
    int esc; /* a string with an escape (the body scan saw it) */
} fp_span;

enum { FP_ABSENT, FP_NULL, FP_STR, FP_OBJ, FP_OTHER, FP_ESC };

/* What a member is; FP_STR only for a string without escapes (its text is canonical). */
static int fp_kind(fp_span v) {
    if (!v.p) return FP_ABSENT;
    switch (v.p[0]) {
    case '"': return v.esc ? FP_ESC : FP_STR;
    case 'n': return FP_NULL;
    case '{': return FP_OBJ;
    default: return FP_OTHER;
    }
}

/* A plain string's content (between the quotes). */
static const char *fp_str(fp_span v, size_t *n) {
    *n = v.n - 2;
    return v.p + 1;
}

/* A plain string member as "string or null" (enrich_string_or_null); 1 when escaped. */
static int fp_string_or_null(fp_span v, fp_span *out) {
    int k = fp_kind(v);
    if (k == FP_ESC) return 1;
    *out = k == FP_STR ? v : (fp_span){NULL, 0, 0, 0};
    return 0;
}

/* Parses a plain-string time; 0 with *us, 1 otherwise. */
static int fp_time(fp_span v, int64_t *us) {
    char buf[64];
    size_t n;
    if (fp_kind(v) != FP_STR) return 1;
    const char *s = fp_str(v, &n);
    if (n >= sizeof buf) return 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return event_time_parse(buf, us) != 0;
}

/* attributes / data / labels: copied when already exactly json_text_dump's
 * text, or when whitespace between tokens is all that differs (pretty-printed
 * or json.dumps-spaced input): then *v is marked to be written without it.
 * Anything else (escapes, number forms, repeated keys) is jansson's. */
static int fp_canonical(fp_span *v, unsigned event_notes) {
    unsigned notes = event_notes;
    /* the body scan noted nothing but whitespace anywhere in the event: true of
     * every part of it, no second scan (the common case: HA's compact text, or json.dumps') */
    if ((event_notes & ~JSCAN_NOTE_WS) == 0) {
        v->ws = notes != 0;
        return 1;
    }
    if (jscan_check(v->p, v->n, JSCAN_NOTE_CANONICAL, &notes) != 0 || (notes & ~JSCAN_NOTE_WS) != 0) return 0;
    v->ws = notes != 0;
    return 1;
}

/* Appends validated JSON text without the whitespace between its tokens: for
 * text whose only note is JSCAN_NOTE_WS, exactly json_text_dump's text.
 * Written in place (it is never longer than the text): no call per token. */
static void fp_add_stripped(sbuf *o, const char *p, size_t n) {
    if (sbuf_reserve(o, n + 1) != 0) return;
    const char *end = p + n;
    char *w = o->data + o->len;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            const char *q = jscan_string_end(p, end); /* past the closing quote; an escaped one is skipped */
            memcpy(w, p, (size_t)(q - p));
            w += q - p;
            p = q;
        } else {
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') *w++ = c;
            p++;
        }
    }
    o->len = (size_t)(w - o->data);
    o->data[o->len] = '\0';
}

typedef struct fp_record {
    unsigned notes; /* JSCAN_NOTE_CANONICAL notes of this event's text */
    fp_span event_type, entity_id, origin, ctx_id, ctx_parent, ctx_user;
    size_t domain_len;
    int64_t time_us;
    int is_sc;
    fp_span state, old_state, unit, device_class, state_class, friendly_name, attributes, data;
    int has_duration;
    double duration;
    int has_registry;
    fp_span reg[ENRICH_REGISTRY_NSTRINGS], labels; /* labels.p NULL: [] */
} fp_record;

/* The members read, at every level of the event: the body's one validating
 * scan (jscan_collect_items) notes their spans, so nothing is walked twice.
 * Each object that may be read has its own slots: the event's members at the
 * top (HA event object) and inside an envelope's "event", and under each of
 * them data, the two states, attributes, the contexts and the registry. */
enum { E_EVENT, E_TYPE, E_EVENT_TYPE, E_DATA, E_TIME_FIRED, E_TIMESTAMP, E_ORIGIN, E_CONTEXT, E_REGISTRY, E_N };
enum { D_ENTITY_ID, D_NEW_STATE, D_OLD_STATE, D_N };
enum { S_STATE, S_ENTITY_ID, S_ATTRIBUTES, S_LAST_CHANGED, S_CONTEXT, S_N };
enum { A_UNIT, A_DEVICE_CLASS, A_STATE_CLASS, A_FRIENDLY_NAME, A_N };
enum { C_ID, C_PARENT_ID, C_USER_ID, C_N };
#define R_LABELS ENRICH_REGISTRY_NSTRINGS /* enrich_registry_strings' order, then labels */
#define R_N (R_LABELS + 1)

/* One level's slots (b: its first): the event object's members and those of
 * what hangs under it. */
#define FP_B_DATA(b) ((b) + E_N)
#define FP_B_NS(b) (FP_B_DATA(b) + D_N)
#define FP_B_OS(b) (FP_B_NS(b) + S_N)
#define FP_B_ATTR(b) (FP_B_OS(b) + S_N)
#define FP_B_CTX(b) (FP_B_ATTR(b) + A_N)
#define FP_B_NS_CTX(b) (FP_B_CTX(b) + C_N)
#define FP_B_REG(b) (FP_B_NS_CTX(b) + C_N)
enum { FP_TOP = 0, FP_INNER = FP_B_REG(0) + R_N, FP_SLOTS = 2 * FP_INNER };
_Static_assert(FP_SLOTS <= JSCAN_COLLECT_SLOTS, "fast path slots");
typedef struct fp_level {
    int ev, data, ns, os, attr, ctx, ns_ctx, reg;
} fp_level;
#define FP_LEVEL(b) {(b), FP_B_DATA(b), FP_B_NS(b), FP_B_OS(b), FP_B_ATTR(b), FP_B_CTX(b), FP_B_NS_CTX(b), FP_B_REG(b)}
static const fp_level fp_top = FP_LEVEL(FP_TOP), fp_inner = FP_LEVEL(FP_INNER);

#define FP_K(name, slot, child) {name, sizeof name - 1, (slot), (child)}
#define FP_CTX_KEYS(b) {FP_K("id", (b) + C_ID, NULL), FP_K("parent_id", (b) + C_PARENT_ID, NULL), \
                        FP_K("user_id", (b) + C_USER_ID, NULL)}
#define FP_ATTR_KEYS(b)                                                                                              \
    {FP_K("unit_of_measurement", (b) + A_UNIT, NULL), FP_K("device_class", (b) + A_DEVICE_CLASS, NULL),             \
     FP_K("state_class", (b) + A_STATE_CLASS, NULL), FP_K("friendly_name", (b) + A_FRIENDLY_NAME, NULL)}
#define FP_STATE_KEYS(b, attr, ctx)                                                                                  \
    {FP_K("state", (b) + S_STATE, NULL), FP_K("entity_id", (b) + S_ENTITY_ID, NULL),                                 \
     FP_K("attributes", (b) + S_ATTRIBUTES, attr), FP_K("last_changed", (b) + S_LAST_CHANGED, NULL),                 \
     FP_K("context", (b) + S_CONTEXT, ctx)}
#define FP_DATA_KEYS(b, ns, os)                                                                                      \
    {FP_K("entity_id", (b) + D_ENTITY_ID, NULL), FP_K("new_state", (b) + D_NEW_STATE, ns),                           \
     FP_K("old_state", (b) + D_OLD_STATE, os)}
#define FP_REG_KEYS(b)                                                                                               \
    {FP_K("area_id", (b) + 0, NULL), FP_K("area", (b) + 1, NULL), FP_K("floor_id", (b) + 2, NULL),                  \
     FP_K("floor", (b) + 3, NULL), FP_K("device_id", (b) + 4, NULL), FP_K("device", (b) + 5, NULL),                  \
     FP_K("manufacturer", (b) + 6, NULL), FP_K("model", (b) + 7, NULL), FP_K("platform", (b) + 8, NULL),            \
     FP_K("entity_category", (b) + 9, NULL), FP_K("labels", (b) + R_LABELS, NULL)}
#define FP_EVENT_KEYS(b, event, data, ctx, reg)                                                                      \
    {FP_K("event", (b) + E_EVENT, event), FP_K("type", (b) + E_TYPE, NULL),                                          \
     FP_K("event_type", (b) + E_EVENT_TYPE, NULL), FP_K("data", (b) + E_DATA, data),                                 \
     FP_K("time_fired", (b) + E_TIME_FIRED, NULL), FP_K("timestamp", (b) + E_TIMESTAMP, NULL),                       \
     FP_K("origin", (b) + E_ORIGIN, NULL), FP_K("context", (b) + E_CONTEXT, ctx),                                    \
     FP_K("homeiq_registry", (b) + E_REGISTRY, reg)}
/* The objects of one level (b: its first slot), innermost first. */
#define FP_NODES(L, b, event_child)                                                                                  \
    static const jscan_node_key L##_ctx_k[C_N] = FP_CTX_KEYS(FP_B_CTX(b)), L##_ns_ctx_k[C_N] = FP_CTX_KEYS(FP_B_NS_CTX(b)); \
    static const jscan_node_key L##_attr_k[A_N] = FP_ATTR_KEYS(FP_B_ATTR(b)), L##_reg_k[R_N] = FP_REG_KEYS(FP_B_REG(b)); \
    static const jscan_node L##_ctx = {L##_ctx_k, C_N}, L##_ns_ctx = {L##_ns_ctx_k, C_N}, L##_attr = {L##_attr_k, A_N}, \
                            L##_reg = {L##_reg_k, R_N};                                                             \
    static const jscan_node_key L##_ns_k[S_N] = FP_STATE_KEYS(FP_B_NS(b), &L##_attr, &L##_ns_ctx),                        \
                                L##_os_k[S_N] = FP_STATE_KEYS(FP_B_OS(b), NULL, NULL);                                    \
    static const jscan_node L##_ns = {L##_ns_k, S_N}, L##_os = {L##_os_k, S_N};                                      \
    static const jscan_node_key L##_data_k[D_N] = FP_DATA_KEYS(FP_B_DATA(b), &L##_ns, &L##_os);                           \
    static const jscan_node L##_data = {L##_data_k, D_N};                                                            \
    static const jscan_node_key L##_ev_k[E_N] = FP_EVENT_KEYS(b, event_child, &L##_data, &L##_ctx, &L##_reg);    \
    static const jscan_node L##_ev = {L##_ev_k, E_N}
FP_NODES(fp_in, FP_INNER, NULL);
FP_NODES(fp_out, FP_TOP, &fp_in_ev);

/* Member `i` of the object whose first slot is `base`. */
static fp_span fp_at(const jscan_span *sp, int base, int i) {
    const jscan_span *v = &sp[base + i];
    return (fp_span){v->p, v->n, 0, v->esc};
}

/* input.c's envelope rule: the level the event's members are at; 0, or 1. */
static int fp_unwrap(const jscan_span *sp, const fp_level **lv) {
    *lv = &fp_top;
    fp_span e = fp_at(sp, FP_TOP, E_EVENT);
    if (!e.p) return 0;
    fp_span type = fp_at(sp, FP_TOP, E_TYPE);
    int k = fp_kind(type), envelope;
    if (k == FP_ESC) return 1;
    envelope = (k == FP_STR && type.n == 7 && memcmp(type.p, "\"event\"", 7) == 0) ||
               (!fp_at(sp, FP_TOP, E_EVENT_TYPE).p && fp_kind(e) == FP_OBJ);
    if (!envelope) return 0;
    if (fp_kind(e) != FP_OBJ) return 1; /* a reject */
    *lv = &fp_inner;
    return 0;
}

/* A State member: absent/null -> absent, object -> present; else 1. */
static int fp_state_obj(fp_span v, int *present) {
    int k = fp_kind(v);
    *present = k == FP_OBJ;
    return k != FP_ABSENT && k != FP_NULL && k != FP_OBJ;
}

static int fp_state_fields(const jscan_span *sp, const fp_level *lv, fp_record *r, fp_span *ctx_fallback) {
    int has_ns, has_os;
    if (fp_state_obj(fp_at(sp, lv->data, D_NEW_STATE), &has_ns) || fp_state_obj(fp_at(sp, lv->data, D_OLD_STATE), &has_os))
        return 1;
    if (!has_ns && !has_os) return 1;
    if (has_ns && fp_kind(fp_at(sp, lv->ns, S_STATE)) != FP_STR) return 1;
    if (has_os && fp_kind(fp_at(sp, lv->os, S_STATE)) != FP_STR) return 1;
    r->state = has_ns ? fp_at(sp, lv->ns, S_STATE) : (fp_span){NULL, 0, 0, 0};
    r->old_state = has_os ? fp_at(sp, lv->os, S_STATE) : (fp_span){NULL, 0, 0, 0};
    fp_span e = fp_at(sp, lv->data, D_ENTITY_ID);
    if (!e.p && has_ns) e = fp_at(sp, lv->ns, S_ENTITY_ID);
    if (!e.p && has_os) e = fp_at(sp, lv->os, S_ENTITY_ID);
    size_t n;
    const char *why;
    if (fp_kind(e) != FP_STR) return 1;
    const char *s = fp_str(e, &n);
    if (validate_entity_id(s, n, &r->domain_len, &why)) return 1;
    r->entity_id = e;
    if (has_ns) {
        fp_span a = fp_at(sp, lv->ns, S_ATTRIBUTES);
        int k = fp_kind(a);
        if (k == FP_OBJ) {
            if (!fp_canonical(&a, r->notes)) return 1;
            r->attributes = a;
            if (fp_string_or_null(fp_at(sp, lv->attr, A_UNIT), &r->unit) ||
                fp_string_or_null(fp_at(sp, lv->attr, A_DEVICE_CLASS), &r->device_class) ||
                fp_string_or_null(fp_at(sp, lv->attr, A_STATE_CLASS), &r->state_class) ||
                fp_string_or_null(fp_at(sp, lv->attr, A_FRIENDLY_NAME), &r->friendly_name))
                return 1;
        } else if (k != FP_ABSENT && k != FP_NULL) {
            return 1;
        }
        if (fp_kind(fp_at(sp, lv->ns, S_CONTEXT)) == FP_OBJ) *ctx_fallback = fp_at(sp, lv->ns, S_CONTEXT);
    }
    if (has_ns && has_os) {
        fp_span nl = fp_at(sp, lv->ns, S_LAST_CHANGED), ol = fp_at(sp, lv->os, S_LAST_CHANGED);
        int64_t nu, ou;
        if (fp_kind(nl) == FP_ESC || fp_kind(ol) == FP_ESC) return 1;
        if (fp_kind(nl) == FP_STR && fp_kind(ol) == FP_STR) {
            if (nl.n >= 64 || ol.n >= 64) return 1;
            if (fp_time(nl, &nu) == 0 && fp_time(ol, &ou) == 0 && nu >= ou) {
                r->has_duration = 1;
                r->duration = (double)(nu - ou) / 1e6;
            }
        }
    }
    return 0;
}

static int fp_plain_string(const char *val, size_t vlen, void *arg) {
    int *bad = arg;
    return *bad = val[0] != '"' || memchr(val, '\\', vlen) != NULL;
}

/* "homeiq_registry" (enrich.c enrich_registry): an object's strings, labels copied
 * when a canonical list of plain strings; anything else that is not simply absent or
 * null is left to jansson. 0 or 1. */
static int fp_registry(const jscan_span *sp, const fp_level *lv, fp_record *r) {
    if (fp_kind(fp_at(sp, lv->ev, E_REGISTRY)) != FP_OBJ) return 0; /* not an object: no context (as enrich.c) */
    for (int i = 0; i < R_LABELS; i++)
        if (fp_string_or_null(fp_at(sp, lv->reg, i), &r->reg[i])) return 1;
    fp_span l = fp_at(sp, lv->reg, R_LABELS);
    if (l.p && l.p[0] == '[') {
        int bad = 0;
        if (!fp_canonical(&l, r->notes) || jscan_array_trusted(l.p, l.n, fp_plain_string, &bad) != 0 || bad)
            return 1;
        r->labels = l;
    } else if (l.p && l.p[0] != 'n') {
        return 1; /* a label list that is not a list: jansson's [] */
    }
    r->has_registry = 1;
    return 0;
}

/* Fills r from the spans the body scan noted for one event; 0, or 1 for
 * anything the jansson path should judge. */
static int fp_read(const jscan_span *sp, unsigned notes, fp_record *r) {
    const fp_level *lv;
    memset(r, 0, sizeof *r);
    r->notes = notes;
    if (fp_unwrap(sp, &lv)) return 1;
    fp_span data = fp_at(sp, lv->ev, E_DATA);
    if (fp_kind(data) != FP_OBJ) return 1; /* flat form, or a reject */
    r->event_type = fp_at(sp, lv->ev, E_EVENT_TYPE);
    if (fp_kind(r->event_type) != FP_STR || r->event_type.n < 3) return 1;
    r->is_sc = r->event_type.n == 15 && memcmp(r->event_type.p, "\"state_changed\"", 15) == 0;
    fp_span t = fp_at(sp, lv->ev, E_TIME_FIRED).p ? fp_at(sp, lv->ev, E_TIME_FIRED) : fp_at(sp, lv->ev, E_TIMESTAMP);
    if (fp_time(t, &r->time_us) || r->time_us < 0 || r->time_us > EVENT_TIME_MAX_US) return 1;
    if (fp_string_or_null(fp_at(sp, lv->ev, E_ORIGIN), &r->origin)) return 1;
    fp_span c = fp_at(sp, lv->ev, E_CONTEXT);
    int ck = fp_kind(c), ctx_slots = lv->ctx;
    if (ck != FP_ABSENT && ck != FP_NULL && ck != FP_OBJ) return 1;
    fp_span ctx_fallback = {NULL, 0, 0, 0};
    if (r->is_sc) {
        if (fp_state_fields(sp, lv, r, &ctx_fallback)) return 1;
    } else {
        fp_span e = fp_at(sp, lv->data, D_ENTITY_ID);
        size_t n;
        const char *why;
        if (fp_kind(e) == FP_ESC) return 1;
        if (fp_kind(e) == FP_STR) {
            const char *s = fp_str(e, &n);
            if (validate_entity_id(s, n, &r->domain_len, &why) == 0) r->entity_id = e;
        }
        r->data = data;
        if (!fp_canonical(&r->data, r->notes)) return 1;
    }
    if (fp_registry(sp, lv, r)) return 1;
    if (ck != FP_OBJ) c = ctx_fallback, ctx_slots = lv->ns_ctx;
    if (c.p &&
        (fp_string_or_null(fp_at(sp, ctx_slots, C_ID), &r->ctx_id) ||
         fp_string_or_null(fp_at(sp, ctx_slots, C_PARENT_ID), &r->ctx_parent) ||
         fp_string_or_null(fp_at(sp, ctx_slots, C_USER_ID), &r->ctx_user)))
        return 1;
    return 0;
}

/* Inline: the keys are literals, their strlen folds away. */
static inline __attribute__((always_inline)) void fp_put(sbuf *o, const char *key, fp_span v) {
    sbuf_adds(o, key);
    if (!v.p) sbuf_add(o, "null", 4);
    else if (v.ws) fp_add_stripped(o, v.p, v.n);
    else sbuf_add(o, v.p, v.n);
}

static inline __attribute__((always_inline)) void fp_put_value(sbuf *o, const char *key, fp_span state) {
    size_t n;
    double d;
    sbuf_adds(o, key);
    if (state.p && normalize_value(fp_str(state, &n), state.n - 2, &d) == 0) json_text_real(o, d);
    else sbuf_add(o, "null", 4);
}

/* The record text, in enrich.c's field order. */
static void fp_write(batch *b, size_t index, const fp_record *r) {
    sbuf *o = &b->records;
    char t[EVENT_TIME_LEN];
    size_t n;
    batch_begin_record(b, index);
    fp_put(o, "{\"event_type\":", r->event_type);
    if (r->entity_id.p) {
        const char *e = fp_str(r->entity_id, &n);
        fp_put(o, ",\"entity_id\":", r->entity_id);
        sbuf_adds(o, ",\"domain\":");
        json_text_string(o, e, r->domain_len);
        sbuf_adds(o, ",\"object_id\":");
        json_text_string(o, e + r->domain_len + 1, n - r->domain_len - 1);
    }
    event_time_format(r->time_us, t);
    sbuf_adds(o, ",\"time_fired\":\"");
    sbuf_adds(o, t);
    sbuf_addc(o, '"');
    fp_put(o, ",\"origin\":", r->origin);
    fp_put(o, ",\"context_id\":", r->ctx_id);
    fp_put(o, ",\"context_parent_id\":", r->ctx_parent);
    fp_put(o, ",\"context_user_id\":", r->ctx_user);
    if (r->is_sc) {
        fp_put(o, ",\"state\":", r->state);
        fp_put_value(o, ",\"value\":", r->state);
        fp_put(o, ",\"old_state\":", r->old_state);
        fp_put_value(o, ",\"old_value\":", r->old_state);
        fp_put(o, ",\"unit_of_measurement\":", r->unit);
        fp_put(o, ",\"device_class\":", r->device_class);
        fp_put(o, ",\"state_class\":", r->state_class);
        fp_put(o, ",\"friendly_name\":", r->friendly_name);
        fp_put(o, ",\"attributes\":", r->attributes);
        sbuf_adds(o, ",\"duration_in_state\":");
        if (r->has_duration) json_text_real(o, r->duration);
        else sbuf_add(o, "null", 4);
        int changed = !(r->state.p && r->old_state.p && r->state.n == r->old_state.n &&
                        memcmp(r->state.p, r->old_state.p, r->state.n) == 0);
        sbuf_adds(o, changed ? ",\"state_changed\":true" : ",\"state_changed\":false");
    }
    const char *tod, *wd;
    if (timeofday_classify(r->time_us, &tod, &wd) == 0) {
        sbuf_adds(o, ",\"time_of_day\":\"");
        sbuf_adds(o, tod);
        sbuf_adds(o, "\",\"weekday\":\"");
        sbuf_adds(o, wd);
        sbuf_addc(o, '"');
    }
    if (r->has_registry) {
        for (int i = 0; i < R_LABELS; i++) {
            sbuf_adds(o, ",\"");
            sbuf_adds(o, enrich_registry_strings[i]);
            sbuf_adds(o, "\":");
            if (r->reg[i].p) sbuf_add(o, r->reg[i].p, r->reg[i].n);
            else sbuf_add(o, "null", 4);
            if (i == ENRICH_REGISTRY_LABELS_AFTER) {
                sbuf_adds(o, ",\"labels\":");
                if (!r->labels.p) sbuf_add(o, "[]", 2);
                else if (r->labels.ws) fp_add_stripped(o, r->labels.p, r->labels.n);
                else sbuf_add(o, r->labels.p, r->labels.n);
            }
        }
    }
    if (!r->is_sc) fp_put(o, ",\"data\":", r->data);
    sbuf_addc(o, '}');
}

/* The body's scan, event by event (jscan_collect_items' item_fn). */
typedef struct fp_build {
    batch *b;
    size_t max_batch, count;
    int rc; /* 0, 1 (an event jansson cannot read: decline), -1 (out of memory) */
} fp_build;

/* One event: the fast way, else jansson's tree of just this event. */
static void fp_event(const char *val, size_t vlen, const jscan_span *spans, int unusual, unsigned notes, void *arg) {
    fp_build *fb = arg;
    batch *b = fb->b;
    size_t index = fb->count++;
    fp_record r;
    if (fb->rc != 0 || fb->count > fb->max_batch) return; /* counted only: 413, or it failed already */
    if (!unusual && val[0] == '{' && fp_read(spans, notes, &r) == 0) {
        fp_write(b, index, &r);
        b->fast++;
        if (sbuf_failed(&b->records)) fb->rc = -1;
        return;
    }
    json_error_t je;
    json_t *ev = json_loadb(val, vlen, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
    if (!ev) { /* cannot happen after the body scan; let jansson say why */
        fb->rc = 1;
        return;
    }
    if (batch_add_event(b, index, ev) != 0) fb->rc = -1;
    json_decref(ev);
}

static int fp_event_member(const char *key, size_t klen, const char *val, size_t vlen, void *arg) {
    const char **events = arg;
    if (memchr(key, '\\', klen)) return events[2] = val, 1; /* may be "events" escaped: jansson's */
    if (klen != 6 || memcmp(key, "events", 6) != 0) return 0;
    if (events[0]) return events[2] = val, 1; /* repeated: jansson's */
    events[0] = val, events[1] = val + vlen;
    return 0;
}

/* The events of the body: an array, {"events":[...]}, or one event; the
 * array (or the event) is scanned once, noting each event's members
 * (fp_event builds it then). The {"events":...} form is validated whole first
 * (its array twice): websocket-ingestion sends arrays. 0 built, 1 declined. */
static int fp_scan(const char *body, size_t len, jscan_collect *c, unsigned *notes) {
    char first = jscan_first(body, len);
    if (first == '{') {
        const char *events[3] = {NULL, NULL, NULL};
        if (jscan_check(body, len, JSCAN_NOTE_CANONICAL, notes) || (*notes & JSCAN_NOTE_JANSSON) ||
            jscan_object_trusted(body, len, fp_event_member, events) || events[2])
            return 1;
        if (events[0]) {
            if (events[0][0] != '[') return 1; /* "events" must be an array: jansson's 400 */
            body = events[0], len = (size_t)(events[1] - events[0]);
        }
    } else if (first != '[') {
        return 1;
    }
    return jscan_collect_items(body, len, c, JSCAN_NOTE_CANONICAL, notes) != 0 || (*notes & JSCAN_NOTE_JANSSON);
}

int fastpath_build(const char *body, size_t len, size_t max_batch, batch *b) {
    static _Thread_local jscan_collect c; /* 2 KB of spans: not on the stack */
    fp_build fb = {b, max_batch, 0, 0};
    unsigned notes = 0;
    if (batch_init(b, 0)) return -1;
    sbuf_reserve(&b->records, len + 64); /* records are smaller than the events they come from: no regrowth */
    c.root = &fp_out_ev;
    c.item_fn = fp_event;
    c.arg = &fb;
    int rc = fp_scan(body, len, &c, &notes);
    if (rc == 0 && fb.rc == 0 && fb.count > max_batch) {
        batch_free(b);
        b->n = fb.count;
        return FASTPATH_TOO_MANY;
    }
    if (rc != 0 || fb.rc != 0) {
        batch_free(b);
        return rc != 0 ? FASTPATH_DECLINED : fb.rc;
    }
    b->n = fb.count;
    return FASTPATH_BUILT;
}
