/* store_text.c -- see store_text.h.
 *
 * The grammar is lib/json_scan's (one JSON reader across the system, so the
 * readers can never disagree again): the body is validated once by
 * jscan_check, which also notes what jansson would read differently
 * (JSCAN_NOTE_JANSSON, JSCAN_NOTE_DUP_KEY: declined, the general path owns
 * them) and whether the text is already what json_text_dump() writes. Then
 * the validated text is walked without checking again (jscan_*_trusted):
 * each event's members are copied as they are when the body was canonical,
 * else re-written by jscan_canonical (spacing, escapes, numbers), which gives
 * byte for byte json_text_dump() of jansson's tree of the same input.
 * Since issue 15's second pass the validating scan (jscan_check_items) also
 * notes each event's members as it goes -- the captured strings, the record
 * fields, whether a member storage drops or a wrong type is there -- and each
 * event's own notes: an event whose text is already its record (canonical,
 * nothing to drop), or is once the whitespace between its tokens is removed
 * (st_squeeze), is then built from those notes without any walk
 * (st_event_noted); any other takes the walk above (st_event), as do the
 * events past the notes' bound (st_note_max: the notes of a body are kept
 * to its own size and 8,192 events, so a waiting request holds little more
 * than its body).
 * Every function returns 0 (parsed), 1 (declined: the general path will
 * decide) or -1 (out of memory). */
#include "store_text.h"
#include "json_scan.h"
#include "json_text.h"
#include "sbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Top-level members storage reads or checks. */
enum { F_EVENT_TYPE, F_TIME_FIRED, F_ENTITY_ID, F_CONTEXT_ID, F_DOMAIN, F_NCAPTURE, F_STRING = F_NCAPTURE,
       F_NUMBER, F_OBJECT, F_DROP, F_OTHER };

#define ST_GAPS 512 /* whitespace runs of one event st_squeeze maps; more: the walk */

typedef struct st_parser {
    int canonical;              /* the event (past the notes' bound: the body) has no JSCAN_NOTE_CANONICAL
                                   note: copy spans as they are */
    long max_batch;
    store_batch *b;
    int rc;                     /* 0, 1 declined, -1 out of memory: stops the walk */
    sbuf out;                   /* stored text of the current event */
    sbuf val[F_NCAPTURE];       /* decoded captured strings, NUL-terminated */
    char type[F_NCAPTURE];      /* first byte of each captured value, 0 = absent */
    size_t emitted;             /* members written to out */
    size_t items_cap;
    record_fields *fields;      /* the current item's: where the SQLite writer's members are in out */
    uint32_t gap_at[ST_GAPS], gap_rm[ST_GAPS]; /* st_squeeze: each whitespace run's start, bytes removed to its end */
} st_parser;

/* ---- one event -------------------------------------------------------- */

/* What event_record_check() and store_item_prepare() look at, by key. */
static int st_field(const char *k, size_t n) {
#define ST_F(name, field) {name, sizeof name - 1, field}
    static const struct {
        const char *name;
        size_t len;
        int field;
    } known[] = {
        ST_F("event_type", F_EVENT_TYPE), ST_F("time_fired", F_TIME_FIRED), ST_F("entity_id", F_ENTITY_ID),
        ST_F("context_id", F_CONTEXT_ID), ST_F("domain", F_DOMAIN), ST_F("state", F_STRING), ST_F("old_state", F_STRING),
        ST_F("object_id", F_STRING), ST_F("origin", F_STRING), ST_F("context_parent_id", F_STRING),
        ST_F("context_user_id", F_STRING), ST_F("unit_of_measurement", F_STRING), ST_F("device_class", F_STRING),
        ST_F("state_class", F_STRING), ST_F("friendly_name", F_STRING), ST_F("value", F_NUMBER), ST_F("old_value", F_NUMBER),
        ST_F("duration_in_state", F_NUMBER), ST_F("attributes", F_OBJECT), ST_F("data", F_OBJECT), ST_F("event_id", F_DROP),
        ST_F("stored_at", F_DROP), ST_F("home_id", F_DROP), /* home_id: the request's (store_batch_set_home) */
    };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (known[i].len == n && memcmp(known[i].name, k, n) == 0) return known[i].field;
    return F_OTHER;
#undef ST_F
}

/* A member's type is known from its first byte; null is allowed for all checked members. */
static int st_type_ok(int field, unsigned char first) {
    if (first == 'n') return 1;
    switch (field) {
    case F_CONTEXT_ID:
    case F_DOMAIN:
    case F_STRING: return first == '"';
    case F_NUMBER: return first == '-' || (first >= '0' && first <= '9');
    case F_OBJECT: return first == '{';
    default: return 1;
    }
}

/* One member of the event object: its canonical text to out, the captures. */
static int st_member(const char *key, size_t klen, const char *val, size_t vlen, void *arg) {
    st_parser *s = arg;
    size_t mark = s->out.len;
    if (s->emitted) sbuf_addc(&s->out, ',');
    size_t key_at = s->out.len;
    if (s->canonical) sbuf_add(&s->out, key - 1, klen + 2);
    else jscan_canonical(&s->out, key - 1, klen + 2);
    size_t kout = s->out.len - key_at - 2; /* the key as stored, without its quotes */
    int field = st_field(s->out.data + key_at + 1, kout);
    if (!vlen || !st_type_ok(field, (unsigned char)*val)) return s->rc = 1;
    sbuf_addc(&s->out, ':');
    size_t val_at = s->out.len;
    if (s->canonical) sbuf_add(&s->out, val, vlen);
    else jscan_canonical(&s->out, val, vlen);
    int rf = record_fields_key(s->out.data + key_at + 1, kout);
    if (rf >= 0) record_fields_note(s->fields, rf, val_at, s->out.len - val_at);
    if (field < F_NCAPTURE) {
        s->type[field] = *val;
        sbuf_reset(&s->val[field]);
        if (*val == '"') jscan_string_decode(&s->val[field], val, vlen);
    }
    if (field == F_DROP) s->out.len = mark; /* event_id, stored_at belong to storage */
    else s->emitted++;
    return 0;
}

/* The event object (validated text), as one top-level member list, into s->out and the captures. */
static int st_event_members(st_parser *s, const char *ev, size_t len) {
    sbuf_reset(&s->out);
    memset(s->type, 0, sizeof s->type);
    s->emitted = 0;
    sbuf_addc(&s->out, '{');
    if (jscan_object_trusted(ev, len, st_member, s) != 0) return 1;
    if (s->rc) return s->rc;
    sbuf_addc(&s->out, '}');
    for (int f = 0; f < F_NCAPTURE; f++) sbuf_addc(&s->val[f], '\0');
    if (sbuf_failed(&s->out)) return -1;
    for (int f = 0; f < F_NCAPTURE; f++)
        if (sbuf_failed(&s->val[f])) return -1;
    return 0;
}

static const char *st_captured(const st_parser *s, int f) { return s->type[f] == '"' ? s->val[f].data : NULL; }

/* event_record_check() on the captures; any failure declines (the general path dead-letters it). */
static int st_event_check(const st_parser *s, int64_t *time_us) {
    const char *type = st_captured(s, F_EVENT_TYPE), *tf = st_captured(s, F_TIME_FIRED);
    if (!type || !*type || !tf || event_time_parse(tf, time_us) != 0) return 1;
    char eid = s->type[F_ENTITY_ID];
    if (eid == '"' && !*s->val[F_ENTITY_ID].data) return 1;
    if (eid != '"' && eid != 0 && eid != 'n') return 1;
    if ((eid == 0 || eid == 'n') && strcmp(type, "state_changed") == 0) return 1;
    return 0;
}

/* Fills it from the parsed event: one allocation holds text, entity id and type. */
static int st_item_fill(st_parser *s, store_item *it, int64_t time_us, const char *json, size_t jlen) {
    const char *type = st_captured(s, F_EVENT_TYPE), *entity = st_captured(s, F_ENTITY_ID);
    const char *ctx = st_captured(s, F_CONTEXT_ID), *dom = st_captured(s, F_DOMAIN);
    size_t tlen = strlen(type), elen = entity ? strlen(entity) : 0;
    /* state_changed: entity + time only (event_identity_parts would parse time_fired again) */
    if (strcmp(type, "state_changed") == 0
            ? event_identity_state_changed(entity ? entity : "", time_us, it->event_id) != 0
            : event_identity_parts(type, entity ? entity : "", st_captured(s, F_TIME_FIRED), ctx ? ctx : "",
                                   it->event_id) != 0)
        return -1;
    char *mem = malloc(jlen + 1 + tlen + 1 + (entity ? elen + 1 : 0));
    if (!mem) return -1;
    memcpy(mem, json, jlen);
    mem[jlen] = '\0';
    memcpy(mem + jlen + 1, type, tlen + 1);
    if (entity) memcpy(mem + jlen + 1 + tlen + 1, entity, elen + 1);
    it->json = mem;
    it->json_len = jlen;
    it->event_type = mem + jlen + 1;
    it->entity_id = entity ? mem + jlen + 1 + tlen + 1 : NULL;
    it->time_us = time_us;
    it->record = NULL;
    /* store_item_domain(): the record's domain string, else the entity id's prefix */
    const char *src = dom;
    size_t dn = dom ? strlen(dom) : 0;
    if (!src && it->entity_id) {
        const char *dot = strchr(it->entity_id, '.');
        if (dot) src = it->entity_id, dn = (size_t)(dot - it->entity_id);
    }
    if (!src || dn >= sizeof it->domain) dn = 0;
    if (dn) memcpy(it->domain, src, dn);
    it->domain[dn] = '\0';
    return 0;
}

/* The next item of the batch, cleared; NULL: out of memory. */
static store_item *st_item_new(st_parser *s) {
    store_batch *b = s->b;
    if (b->nitems == s->items_cap) {
        size_t cap = s->items_cap ? s->items_cap * 2 : 256;
        store_item *items = realloc(b->items, cap * sizeof *items);
        if (!items) return NULL;
        b->items = items;
        s->items_cap = cap;
    }
    store_item *it = &b->items[b->nitems];
    memset(it, 0, sizeof *it);
    it->index = (int)b->nitems;
    b->nitems++;
    return it;
}

/* The walk: the event's members re-written into its record (see the top). */
static int st_event(st_parser *s, const char *ev, size_t len) {
    if (*ev != '{' || (long)s->b->nitems >= s->max_batch) return 1;
    store_item *it = st_item_new(s);
    if (!it) return -1;
    int64_t time_us;
    s->fields = &it->fields;
    int rc = st_event_members(s, ev, len);
    if (rc == 0) rc = st_event_check(s, &time_us);
    if (rc == 0) rc = st_item_fill(s, it, time_us, s->out.data, s->out.len);
    it->fields.noted = rc == 0;
    return rc;
}

/* ---- the body --------------------------------------------------------- */

/* An event's notes from the body's scan; offsets count from the event's '{'. */
struct store_text_note {
    uint32_t cap_off[F_NCAPTURE], cap_len[F_NCAPTURE]; /* the captured members' values; len 0 = absent */
    record_fields fields;       /* the writer's members (valid for the record when plain) */
    unsigned char canonical;    /* no JSCAN_NOTE_CANONICAL note inside the event */
    unsigned char plain;        /* canonical or only spaced (JSCAN_NOTE_WS alone), an object, nothing dropped,
                                   every checked member's type right: the event's text is its record, or is
                                   once its whitespace is squeezed out (st_event_noted) */
};

/* The event being scanned: absolute spans until it ends. */
typedef struct st_current {
    const char *cap[F_NCAPTURE], *rf[RF_N];
    size_t cap_len[F_NCAPTURE], rf_len[RF_N];
    int bad;                    /* a member the walk must see: dropped, or a type the walk declines */
} st_current;

typedef struct st_scan {
    store_text_body *t;
    size_t cap;
    size_t note_cap, note_max;  /* t->note's room; how many events get notes (st_note_max) */
    long max_batch;
    int rc;                     /* 0, 1 declined, -1 out of memory: what the scan gives */
    int have_events;
    st_current cur;
} st_scan;

/* A top-level member of an event (raw key): one lookup for what store_text
 * and record_fields read, by length, so most keys cost a switch and a
 * compare. *rf: RF_* or -1; returns F_*. */
static int st_key(const char *k, size_t n, int *rf) {
#define ST_K(name, f, r)                                                      \
    if (memcmp(k, name, n) == 0) {                                         \
        *rf = r;                                                              \
        return f;                                                             \
    }
    *rf = -1;
    switch (n) {
    case 4: ST_K("area", F_OTHER, RF_AREA) ST_K("data", F_OBJECT, -1) break;
    case 5:
        ST_K("state", F_STRING, RF_STATE) ST_K("value", F_NUMBER, RF_VALUE) ST_K("floor", F_OTHER, RF_FLOOR)
        ST_K("model", F_OTHER, RF_MODEL) break;
    case 6:
        ST_K("domain", F_DOMAIN, -1) ST_K("origin", F_STRING, -1) ST_K("device", F_OTHER, RF_DEVICE)
        ST_K("labels", F_OTHER, RF_LABELS) break;
    case 7: ST_K("area_id", F_OTHER, RF_AREA_ID) ST_K("home_id", F_DROP, -1) break;
    case 8:
        ST_K("floor_id", F_OTHER, RF_FLOOR_ID) ST_K("platform", F_OTHER, RF_PLATFORM) ST_K("event_id", F_DROP, -1)
        break;
    case 9:
        ST_K("entity_id", F_ENTITY_ID, RF_ENTITY_ID) ST_K("object_id", F_STRING, -1)
        ST_K("device_id", F_OTHER, RF_DEVICE_ID) ST_K("old_state", F_STRING, -1) ST_K("old_value", F_NUMBER, -1)
        ST_K("stored_at", F_DROP, -1) break;
    case 10:
        ST_K("event_type", F_EVENT_TYPE, RF_EVENT_TYPE) ST_K("time_fired", F_TIME_FIRED, -1)
        ST_K("context_id", F_CONTEXT_ID, -1) ST_K("attributes", F_OBJECT, RF_ATTRIBUTES) break;
    case 11: ST_K("state_class", F_STRING, RF_STATE_CLASS) break;
    case 12: ST_K("device_class", F_STRING, -1) ST_K("manufacturer", F_OTHER, RF_MANUFACTURER) break;
    case 13: ST_K("friendly_name", F_STRING, -1) break;
    case 15: ST_K("context_user_id", F_STRING, -1) ST_K("entity_category", F_OTHER, RF_CATEGORY) break;
    case 17: ST_K("context_parent_id", F_STRING, -1) ST_K("duration_in_state", F_NUMBER, -1) break;
    case 19: ST_K("unit_of_measurement", F_STRING, -1) break;
    default: break;
    }
    return F_OTHER;
#undef ST_K
}

/* A member of an event, during the body's scan. */
static int st_scan_member(const char *key, size_t klen, const char *val, size_t vlen, void *arg) {
    st_current *c = &((st_scan *)arg)->cur;
    int rf, field = st_key(key, klen, &rf);
    if (field == F_DROP || !st_type_ok(field, (unsigned char)*val)) c->bad = 1;
    if (field < F_NCAPTURE) c->cap[field] = val, c->cap_len[field] = vlen;
    if (rf >= 0) c->rf[rf] = val, c->rf_len[rf] = vlen;
    return 0;
}

/* An event ended: its span and notes; the next one starts clear. */
static void st_scan_event(const char *val, size_t vlen, unsigned notes, void *arg) {
    st_scan *sc = arg;
    store_text_body *t = sc->t;
    st_current *c = &sc->cur;
    if (sc->rc) goto clear;
    if ((long)t->n >= sc->max_batch) { /* the general path answers 400 */
        sc->rc = 1;
        goto clear;
    }
    if (t->n == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 256;
        store_text_span *ev = realloc(t->ev, cap * sizeof *ev);
        if (!ev) {
            sc->rc = -1;
            goto clear;
        }
        t->ev = ev;
        sc->cap = cap;
    }
    t->ev[t->n++] = (store_text_span){(size_t)(val - t->text), vlen};
    if (t->n > sc->note_max) goto clear; /* past the notes' bound: walked (st_event) */
    if (t->nnote == sc->note_cap) {
        size_t cap = sc->note_cap ? sc->note_cap * 2 : 256;
        if (cap > sc->note_max) cap = sc->note_max;
        store_text_note *nt = realloc(t->note, cap * sizeof *nt);
        if (!nt) {
            sc->rc = -1;
            goto clear;
        }
        t->note = nt;
        sc->note_cap = cap;
    }
    store_text_note *nt = &t->note[t->nnote++];
    nt->canonical = !(notes & JSCAN_NOTE_CANONICAL);
    nt->plain = (notes & JSCAN_NOTE_CANONICAL & ~JSCAN_NOTE_WS) == 0 && !c->bad && *val == '{' && vlen <= UINT32_MAX;
    if (nt->plain) {
        t->nplain++;
        for (int f = 0; f < F_NCAPTURE; f++) {
            nt->cap_off[f] = c->cap[f] ? (uint32_t)(c->cap[f] - val) : 0;
            nt->cap_len[f] = (uint32_t)c->cap_len[f];
        }
        for (int f = 0; f < RF_N; f++)
            record_fields_note(&nt->fields, f, c->rf[f] ? (size_t)(c->rf[f] - val) : 0, c->rf_len[f]);
        nt->fields.noted = 1;
    }
clear:
    memset(c, 0, sizeof *c);
}

static int st_scan_events(st_scan *sc, const char *arr, size_t len) {
    if (jscan_first(arr, len) != '[') return 1;
    sc->have_events = 1;
    return sc->rc;
}

static int st_count_dead(const char *val, size_t vlen, void *arg) {
    (void)val, (void)vlen;
    (*(size_t *)arg)++;
    return 0;
}

/* {"events":[...]} with an optional "dead_letters" array beside it. Keys are
 * compared raw: an escaped key declines. */
static int st_scan_top(const char *key, size_t klen, const char *val, size_t vlen, void *arg) {
    st_scan *sc = arg;
    if (klen == 6 && memcmp(key, "events", 6) == 0 && !sc->have_events) {
        sc->rc = st_scan_events(sc, val, vlen);
    } else if (klen == 12 && memcmp(key, "dead_letters", 12) == 0 && !sc->t->dead.len && vlen && *val == '[') {
        size_t n = 0;
        if (jscan_array_trusted(val, vlen, st_count_dead, &n) != 0 || (long)n > sc->max_batch) return sc->rc = 1;
        sc->t->dead = (store_text_span){(size_t)(val - sc->t->text), vlen};
        sc->t->ndead = n;
    } else {
        sc->rc = 1;
    }
    return sc->rc;
}

/* How many events of a len-byte body get notes: their notes take no more
 * than the body's own bytes (or ST_NOTES_MIN events', ~47 KB), and never more
 * than ST_NOTES_MAX events' (~1.5 MB) -- review F1: at ~184 bytes each, a
 * 16 MiB body of 305,000 small events held 56 MB of notes, for the whole
 * request, waiting included. The events past it are walked (st_event), as
 * all were before the notes; a normal body (1,000-5,000 events of a few
 * hundred bytes) is noted whole. */
#define ST_NOTES_MIN 256
#define ST_NOTES_MAX 8192
static size_t st_note_max(size_t len) {
    size_t n = len / sizeof(store_text_note);
    return n < ST_NOTES_MIN ? ST_NOTES_MIN : n > ST_NOTES_MAX ? ST_NOTES_MAX : n;
}

int store_text_scan(const char *text, size_t len, long max_batch, store_text_body *t) {
    st_scan sc;
    memset(&sc, 0, sizeof sc);
    sc.t = t;
    sc.max_batch = max_batch;
    sc.note_max = st_note_max(len);
    unsigned notes = 0;
    memset(t, 0, sizeof *t);
    t->text = text;
    t->len = len;
    const jscan_items h = {"events", st_scan_top, st_scan_member, st_scan_event, &sc};
    char first = text ? jscan_first(text, len) : '\0';
    int rc = 1;
    if (!text || jscan_check_items(text, len, &h, JSCAN_NOTE_CANONICAL, &notes) != 0) rc = 1; /* 400: general path */
    else if (notes & (JSCAN_NOTE_JANSSON | JSCAN_NOTE_DUP_KEY)) rc = 1; /* jansson reads it differently */
    else if (first == '[') rc = sc.rc;
    else if (first == '{') rc = sc.rc ? sc.rc : sc.have_events ? 0 : 1;
    t->canonical = !(notes & JSCAN_NOTE_CANONICAL);
    if (rc != 0) store_text_body_free(t);
    return rc;
}

void store_text_body_free(store_text_body *t) {
    free(t->ev);
    free(t->note);
    t->ev = NULL;
    t->note = NULL;
    t->n = t->nnote = t->nplain = 0;
}

/* Bytes of whitespace st_squeeze removed before input offset x (a token boundary). */
static uint32_t st_removed_before(const st_parser *s, size_t ngaps, uint32_t x) {
    size_t lo = 0, hi = ngaps; /* the first gap starting at or after x */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->gap_at[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo ? s->gap_rm[lo - 1] : 0;
}

/* A spaced event whose only difference from its record is the whitespace
 * between tokens (its strings, numbers and keys canonical): the text without
 * it into s->out, and the noted spans moved to where they are there. 0, or 1
 * when it has more runs than s->gap_at holds (the walk takes it). */
static int st_squeeze(st_parser *s, const char *ev, size_t len, record_fields *rf) {
    const char *p = ev, *end = ev + len, *run = ev;
    size_t ngaps = 0;
    uint32_t removed = 0;
    sbuf_reset(&s->out);
    while (p < end) {
        char c = *p;
        if (c == '"') {
            p = jscan_string_end(p, end);
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (ngaps == ST_GAPS) return 1;
            sbuf_add(&s->out, run, (size_t)(p - run));
            const char *w = p;
            while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
            removed += (uint32_t)(p - w);
            s->gap_at[ngaps] = (uint32_t)(w - ev);
            s->gap_rm[ngaps++] = removed;
            run = p;
        } else {
            p++;
        }
    }
    sbuf_add(&s->out, run, (size_t)(p - run));
    for (int f = 0; f < RF_N; f++) {
        if (!rf->len[f]) continue;
        uint32_t b = rf->off[f], e = b + rf->len[f];
        rf->off[f] = b - st_removed_before(s, ngaps, b);
        rf->len[f] = e - st_removed_before(s, ngaps, e) - rf->off[f];
    }
    return 0;
}

/* An event the scan found plain: its item from the notes, its text copied as
 * its record (spaced: squeezed), nothing walked. Same checks and item as st_event. */
static int st_event_noted(st_parser *s, const char *ev, size_t len, const store_text_note *nt) {
    if ((long)s->b->nitems >= s->max_batch) return 1;
    record_fields rf = nt->fields;
    if (!nt->canonical) {
        if (st_squeeze(s, ev, len, &rf) != 0) return st_event(s, ev, len);
        if (sbuf_failed(&s->out)) return -1;
    }
    store_item *it = st_item_new(s);
    if (!it) return -1;
    for (int f = 0; f < F_NCAPTURE; f++) {
        const char *v = nt->cap_len[f] ? ev + nt->cap_off[f] : NULL;
        s->type[f] = v ? *v : 0;
        sbuf_reset(&s->val[f]);
        if (v && *v == '"' && !memchr(v + 1, '\\', nt->cap_len[f] - 2)) sbuf_add(&s->val[f], v + 1, nt->cap_len[f] - 2);
        else if (v && *v == '"') jscan_string_decode(&s->val[f], v, nt->cap_len[f]);
        sbuf_addc(&s->val[f], '\0');
        if (sbuf_failed(&s->val[f])) return -1;
    }
    int64_t time_us;
    int rc = st_event_check(s, &time_us);
    if (rc == 0) rc = nt->canonical ? st_item_fill(s, it, time_us, ev, len)
                                    : st_item_fill(s, it, time_us, s->out.data, s->out.len);
    if (rc == 0) it->fields = rf;
    return rc;
}

int store_text_prepare_range(const store_text_body *t, size_t from, size_t to, store_batch *b) {
    st_parser s;
    memset(&s, 0, sizeof s);
    memset(b, 0, sizeof *b);
    s.b = b;
    s.max_batch = (long)(to - from);
    s.canonical = t->canonical;
    int rc = 0;
    for (size_t i = from; i < to && rc == 0; i++) {
        const char *ev = t->text + t->ev[i].off;
        s.canonical = i < t->nnote ? t->note[i].canonical : t->canonical;
        if (i < t->nnote && t->note[i].plain) rc = st_event_noted(&s, ev, t->ev[i].len, &t->note[i]);
        else rc = st_event(&s, ev, t->ev[i].len);
    }
    sbuf_free(&s.out);
    for (int f = 0; f < F_NCAPTURE; f++) sbuf_free(&s.val[f]);
    if (rc != 0) store_batch_free(b);
    return rc;
}

int store_text_prepare(const char *text, size_t len, long max_batch, store_batch *b) {
    store_text_body t;
    memset(b, 0, sizeof *b);
    int rc = store_text_scan(text, len, max_batch, &t);
    if (rc == 0 && t.ndead) rc = 1; /* dead letters to store: the general path */
    if (rc == 0) rc = store_text_prepare_range(&t, 0, t.n, b);
    store_text_body_free(&t);
    return rc;
}
