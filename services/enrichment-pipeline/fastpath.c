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

#define FP_MAX_KEYS 12

typedef struct fp_span {
    const char *p; /* NULL: absent */
    size_t n;
    int ws; /* a copied object with insignificant whitespace: written without it */
} fp_span;

typedef struct fp_key {
    const char *k;
    size_t n;
} fp_key;
#define FP_KEY(s) {s, sizeof s - 1}

/* The wanted members of one object. */
typedef struct fp_obj {
    const fp_key *keys;
    int nkeys;
    int unusual; /* a wanted key repeated, or any key with an escape */
    fp_span val[FP_MAX_KEYS];
} fp_obj;

static int fp_member(const char *key, size_t klen, const char *val, size_t vlen, void *arg) {
    fp_obj *o = arg;
    if (memchr(key, '\\', klen)) return o->unusual = 1;
    for (int i = 0; i < o->nkeys; i++) {
        if (o->keys[i].n != klen || memcmp(o->keys[i].k, key, klen) != 0) continue;
        if (o->val[i].p) return o->unusual = 1;
        o->val[i] = (fp_span){val, vlen, 0};
        break;
    }
    return 0;
}

/* Finds `keys` in the object `obj` (which must be one). 0 or 1. */
static int fp_members(fp_span obj, fp_obj *o, const fp_key *keys, int nkeys) {
    memset(o, 0, sizeof *o);
    o->keys = keys;
    o->nkeys = nkeys;
    if (!obj.p || obj.n == 0 || obj.p[0] != '{') return 1;
    return jscan_object_trusted(obj.p, obj.n, fp_member, o) != 0 || o->unusual; /* the body scan validated it */
}

enum { FP_ABSENT, FP_NULL, FP_STR, FP_OBJ, FP_OTHER, FP_ESC };

/* What a member is; FP_STR only for a string without escapes (its text is canonical). */
static int fp_kind(fp_span v) {
    if (!v.p) return FP_ABSENT;
    switch (v.p[0]) {
    case '"': return memchr(v.p, '\\', v.n) ? FP_ESC : FP_STR;
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
    *out = k == FP_STR ? v : (fp_span){NULL, 0, 0};
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
static int fp_canonical(fp_span *v, unsigned body_notes) {
    unsigned notes = body_notes;
    /* the body scan noted nothing but whitespace anywhere: true of every part
     * of it, no second scan (the common case: HA's compact text, or json.dumps') */
    if ((body_notes & ~JSCAN_NOTE_WS) == 0) {
        v->ws = notes != 0;
        return 1;
    }
    if (jscan_check(v->p, v->n, JSCAN_NOTE_CANONICAL, &notes) != 0 || (notes & ~JSCAN_NOTE_WS) != 0) return 0;
    v->ws = notes != 0;
    return 1;
}

/* Appends validated JSON text without the whitespace between its tokens: for
 * text whose only note is JSCAN_NOTE_WS, exactly json_text_dump's text. */
static void fp_add_stripped(sbuf *o, const char *p, size_t n) {
    const char *end = p + n, *run = p;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            p = jscan_string_end(p, end); /* past the closing quote; an escaped one is skipped */
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            sbuf_add(o, run, (size_t)(p - run));
            while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
            run = p;
        } else {
            p++;
        }
    }
    sbuf_add(o, run, (size_t)(p - run));
}

typedef struct fp_record {
    unsigned body_notes; /* JSCAN_NOTE_CANONICAL notes of the whole body */
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

enum { E_EVENT, E_TYPE, E_EVENT_TYPE, E_DATA, E_TIME_FIRED, E_TIMESTAMP, E_ORIGIN, E_CONTEXT, E_REGISTRY, E_N };
static const fp_key fp_event_keys[E_N] = {FP_KEY("event"), FP_KEY("type"), FP_KEY("event_type"), FP_KEY("data"),
                                          FP_KEY("time_fired"), FP_KEY("timestamp"), FP_KEY("origin"),
                                          FP_KEY("context"), FP_KEY("homeiq_registry")};
/* enrich_registry_strings' order, then labels */
#define R_LABELS ENRICH_REGISTRY_NSTRINGS
static const fp_key fp_registry_keys[ENRICH_REGISTRY_NSTRINGS + 1] = {
    FP_KEY("area_id"), FP_KEY("area"), FP_KEY("floor_id"), FP_KEY("floor"), FP_KEY("device_id"), FP_KEY("device"),
    FP_KEY("manufacturer"), FP_KEY("model"), FP_KEY("platform"), FP_KEY("entity_category"), FP_KEY("labels")};
enum { D_ENTITY_ID, D_NEW_STATE, D_OLD_STATE, D_N };
static const fp_key fp_data_keys[D_N] = {FP_KEY("entity_id"), FP_KEY("new_state"), FP_KEY("old_state")};
enum { S_STATE, S_ENTITY_ID, S_ATTRIBUTES, S_LAST_CHANGED, S_CONTEXT, S_N };
static const fp_key fp_state_keys[S_N] = {FP_KEY("state"), FP_KEY("entity_id"), FP_KEY("attributes"),
                                          FP_KEY("last_changed"), FP_KEY("context")};
enum { A_UNIT, A_DEVICE_CLASS, A_STATE_CLASS, A_FRIENDLY_NAME, A_N };
static const fp_key fp_attr_keys[A_N] = {FP_KEY("unit_of_measurement"), FP_KEY("device_class"),
                                         FP_KEY("state_class"), FP_KEY("friendly_name")};
enum { C_ID, C_PARENT_ID, C_USER_ID, C_N };
static const fp_key fp_ctx_keys[C_N] = {FP_KEY("id"), FP_KEY("parent_id"), FP_KEY("user_id")};

/* input.c's envelope rule; 0 with *ev, or 1. */
static int fp_unwrap(const fp_obj *top, fp_obj *inner, const fp_obj **ev) {
    *ev = top;
    fp_span e = top->val[E_EVENT];
    if (!e.p) return 0;
    fp_span type = top->val[E_TYPE];
    int k = fp_kind(type), envelope;
    if (k == FP_ESC) return 1;
    envelope = (k == FP_STR && type.n == 7 && memcmp(type.p, "\"event\"", 7) == 0) ||
               (!top->val[E_EVENT_TYPE].p && fp_kind(e) == FP_OBJ);
    if (!envelope) return 0;
    if (fp_members(e, inner, fp_event_keys, E_N)) return 1; /* not an object: a reject */
    *ev = inner;
    return 0;
}

/* A State member: absent/null -> absent, object -> its members; else 1. */
static int fp_state_obj(fp_span v, fp_obj *o, int *present) {
    int k = fp_kind(v);
    *present = 0;
    memset(o, 0, sizeof *o);
    if (k == FP_ABSENT || k == FP_NULL) return 0;
    if (k != FP_OBJ || fp_members(v, o, fp_state_keys, S_N)) return 1;
    *present = 1;
    return 0;
}

static int fp_state_fields(const fp_obj *data, fp_record *r, fp_span *ctx_fallback) {
    fp_obj ns, os, at;
    int has_ns, has_os;
    if (fp_state_obj(data->val[D_NEW_STATE], &ns, &has_ns) || fp_state_obj(data->val[D_OLD_STATE], &os, &has_os))
        return 1;
    if (!has_ns && !has_os) return 1;
    if (has_ns && fp_kind(ns.val[S_STATE]) != FP_STR) return 1;
    if (has_os && fp_kind(os.val[S_STATE]) != FP_STR) return 1;
    r->state = has_ns ? ns.val[S_STATE] : (fp_span){NULL, 0, 0};
    r->old_state = has_os ? os.val[S_STATE] : (fp_span){NULL, 0, 0};
    fp_span e = data->val[D_ENTITY_ID];
    if (!e.p && has_ns) e = ns.val[S_ENTITY_ID];
    if (!e.p && has_os) e = os.val[S_ENTITY_ID];
    size_t n;
    const char *why;
    if (fp_kind(e) != FP_STR) return 1;
    const char *s = fp_str(e, &n);
    if (validate_entity_id(s, n, &r->domain_len, &why)) return 1;
    r->entity_id = e;
    if (has_ns) {
        fp_span a = ns.val[S_ATTRIBUTES];
        int k = fp_kind(a);
        if (k == FP_OBJ) {
            if (fp_members(a, &at, fp_attr_keys, A_N) || !fp_canonical(&a, r->body_notes)) return 1;
            r->attributes = a;
            if (fp_string_or_null(at.val[A_UNIT], &r->unit) ||
                fp_string_or_null(at.val[A_DEVICE_CLASS], &r->device_class) ||
                fp_string_or_null(at.val[A_STATE_CLASS], &r->state_class) ||
                fp_string_or_null(at.val[A_FRIENDLY_NAME], &r->friendly_name))
                return 1;
        } else if (k != FP_ABSENT && k != FP_NULL) {
            return 1;
        }
        if (fp_kind(ns.val[S_CONTEXT]) == FP_OBJ) *ctx_fallback = ns.val[S_CONTEXT];
    }
    if (has_ns && has_os) {
        fp_span nl = ns.val[S_LAST_CHANGED], ol = os.val[S_LAST_CHANGED];
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
static int fp_registry(fp_span v, fp_record *r) {
    fp_obj o;
    if (fp_kind(v) != FP_OBJ) return 0; /* not an object: no context (as enrich.c) */
    if (fp_members(v, &o, fp_registry_keys, R_LABELS + 1)) return 1;
    for (int i = 0; i < R_LABELS; i++)
        if (fp_string_or_null(o.val[i], &r->reg[i])) return 1;
    fp_span l = o.val[R_LABELS];
    if (l.p && l.p[0] == '[') {
        int bad = 0;
        if (!fp_canonical(&l, r->body_notes) || jscan_array_trusted(l.p, l.n, fp_plain_string, &bad) != 0 || bad)
            return 1;
        r->labels = l;
    } else if (l.p && l.p[0] != 'n') {
        return 1; /* a label list that is not a list: jansson's [] */
    }
    r->has_registry = 1;
    return 0;
}

/* Fills r from the event text; 0, or 1 for anything the jansson path should judge. */
static int fp_read(fp_span raw, unsigned body_notes, fp_record *r) {
    fp_obj top, inner, data, ctx;
    const fp_obj *ev;
    memset(r, 0, sizeof *r);
    r->body_notes = body_notes;
    if (fp_members(raw, &top, fp_event_keys, E_N) || fp_unwrap(&top, &inner, &ev)) return 1;
    if (fp_kind(ev->val[E_DATA]) != FP_OBJ) return 1; /* flat form, or a reject */
    r->event_type = ev->val[E_EVENT_TYPE];
    if (fp_kind(r->event_type) != FP_STR || r->event_type.n < 3) return 1;
    r->is_sc = r->event_type.n == 15 && memcmp(r->event_type.p, "\"state_changed\"", 15) == 0;
    fp_span t = ev->val[E_TIME_FIRED].p ? ev->val[E_TIME_FIRED] : ev->val[E_TIMESTAMP];
    if (fp_time(t, &r->time_us) || r->time_us < 0 || r->time_us > EVENT_TIME_MAX_US) return 1;
    if (fp_string_or_null(ev->val[E_ORIGIN], &r->origin)) return 1;
    fp_span c = ev->val[E_CONTEXT];
    int ck = fp_kind(c);
    if (ck != FP_ABSENT && ck != FP_NULL && ck != FP_OBJ) return 1;
    if (fp_members(ev->val[E_DATA], &data, fp_data_keys, D_N)) return 1;
    fp_span ctx_fallback = {NULL, 0, 0};
    if (r->is_sc) {
        if (fp_state_fields(&data, r, &ctx_fallback)) return 1;
    } else {
        fp_span e = data.val[D_ENTITY_ID];
        size_t n;
        const char *why;
        if (fp_kind(e) == FP_ESC) return 1;
        if (fp_kind(e) == FP_STR) {
            const char *s = fp_str(e, &n);
            if (validate_entity_id(s, n, &r->domain_len, &why) == 0) r->entity_id = e;
        }
        r->data = ev->val[E_DATA];
        if (!fp_canonical(&r->data, r->body_notes)) return 1;
    }
    if (fp_registry(ev->val[E_REGISTRY], r)) return 1;
    if (ck != FP_OBJ) c = ctx_fallback;
    if (c.p) {
        if (fp_members(c, &ctx, fp_ctx_keys, C_N) || fp_string_or_null(ctx.val[C_ID], &r->ctx_id) ||
            fp_string_or_null(ctx.val[C_PARENT_ID], &r->ctx_parent) ||
            fp_string_or_null(ctx.val[C_USER_ID], &r->ctx_user))
            return 1;
    }
    return 0;
}

static void fp_put(sbuf *o, const char *key, fp_span v) {
    sbuf_adds(o, key);
    if (!v.p) sbuf_add(o, "null", 4);
    else if (v.ws) fp_add_stripped(o, v.p, v.n);
    else sbuf_add(o, v.p, v.n);
}

static void fp_put_value(sbuf *o, const char *key, fp_span state) {
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

/* One event: the fast way, else jansson's tree of just this event. */
static int fp_event(batch *b, size_t index, fp_span raw, unsigned body_notes) {
    fp_record r;
    jscan_remember_ends(raw.p, raw.n); /* each level below reads its members; nested values skipped once */
    int rd = fp_read(raw, body_notes, &r);
    jscan_remember_ends(NULL, 0);
    if (rd == 0) {
        fp_write(b, index, &r);
        b->fast++;
        return sbuf_failed(&b->records) ? -1 : 0;
    }
    json_error_t je;
    json_t *ev = json_loadb(raw.p, raw.n, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
    if (!ev) return 1; /* cannot happen after the body scan; let jansson say why */
    int rc = batch_add_event(b, index, ev);
    json_decref(ev);
    return rc;
}

typedef struct fp_list {
    fp_span *items;
    size_t n, cap;
    int oom;
} fp_list;

static int fp_collect(const char *val, size_t vlen, void *arg) {
    fp_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        fp_span *p = realloc(l->items, cap * sizeof *p);
        if (!p) return l->oom = 1;
        l->items = p;
        l->cap = cap;
    }
    l->items[l->n++] = (fp_span){val, vlen, 0};
    return 0;
}

static const fp_key fp_body_keys[1] = {FP_KEY("events")};

/* The events of the body: an array, {"events":[...]}, or one event. 0, 1, -1.
 * The body is scanned (validated) once, noting what json_text would write
 * differently (*notes): when that is nothing, or only whitespace, no part of
 * it needs a second look. */
static int fp_events(const char *body, size_t len, fp_list *l, unsigned *notes) {
    while (len && (*body == ' ' || *body == '\t' || *body == '\n' || *body == '\r')) body++, len--;
    while (len && (body[len - 1] == ' ' || body[len - 1] == '\t' || body[len - 1] == '\n' || body[len - 1] == '\r'))
        len--;
    if (len == 0) return 1;
    if (body[0] == '[') {
        if (jscan_array_notes(body, len, fp_collect, l, JSCAN_NOTE_CANONICAL, notes) || (*notes & JSCAN_NOTE_JANSSON))
            return l->oom ? -1 : 1;
        return l->oom ? -1 : 0;
    }
    if (body[0] != '{') return 1;
    if (jscan_check(body, len, JSCAN_NOTE_CANONICAL, notes) || (*notes & JSCAN_NOTE_JANSSON)) return 1;
    fp_obj top;
    if (fp_members((fp_span){body, len, 0}, &top, fp_body_keys, 1)) return 1;
    fp_span list = top.val[0];
    if (!list.p) return fp_collect(body, len, l) ? -1 : 0;
    if (list.p[0] != '[') return 1; /* "events" must be an array: jansson's 400 */
    if (jscan_array_trusted(list.p, list.n, fp_collect, l)) return l->oom ? -1 : 1;
    return l->oom ? -1 : 0;
}

int fastpath_build(const char *body, size_t len, size_t max_batch, batch *b) {
    fp_list l = {0};
    unsigned notes = 0;
    int rc = fp_events(body, len, &l, &notes);
    if (rc != 0) {
        free(l.items);
        return rc;
    }
    if (l.n > max_batch) {
        memset(b, 0, sizeof *b);
        b->n = l.n;
        free(l.items);
        return FASTPATH_TOO_MANY;
    }
    if (batch_init(b, l.n)) {
        free(l.items);
        return -1;
    }
    sbuf_reserve(&b->records, len); /* records are smaller than the events they come from: no regrowth */
    for (size_t i = 0; i < l.n; i++) {
        rc = fp_event(b, i, l.items[i], notes);
        if (rc != 0) {
            batch_free(b);
            free(l.items);
            return rc;
        }
    }
    free(l.items);
    return FASTPATH_BUILT;
}
