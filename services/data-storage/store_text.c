/* store_text.c -- see store_text.h.
 *
 * Every function below returns 0 (parsed), 1 (declined: the general path will
 * decide) or -1 (out of memory). The stored text must be byte for byte what
 * json_text_dump() makes of jansson's tree of the same input, so:
 *  - strings: decoded, then re-escaped as json_text_string() does (only '"',
 *    '\\' and control characters escaped; UTF-8 kept as is, checked as jansson
 *    checks it); an unescaped run is copied verbatim;
 *  - integers: copied (they have no leading zeros), except "-0" which is 0;
 *  - reals: strtod, then json_text_real();
 *  - objects keep their member order; a duplicate key declines (jansson keeps
 *    the first position with the last value -- rare enough to leave to it). */
#include "store_text.h"
#include "sbuf.h"
#include "json_text.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_DEPTH 32 /* deeper declines (jansson allows 2048) */
#define ST_MAX_KEYS 64  /* members per object; more declines */

/* Top-level members storage reads or checks. */
enum { F_EVENT_TYPE, F_TIME_FIRED, F_ENTITY_ID, F_CONTEXT_ID, F_DOMAIN, F_NCAPTURE, F_STRING = F_NCAPTURE,
       F_NUMBER, F_OBJECT, F_DROP, F_OTHER };

typedef struct st_parser {
    const unsigned char *p, *end;
    sbuf out;                   /* stored text of the current event */
    sbuf val[F_NCAPTURE];       /* decoded captured strings, NUL-terminated */
    char type[F_NCAPTURE];      /* first byte of each captured value, 0 = absent */
    int depth;
    size_t items_cap;
} st_parser;

typedef struct st_key {
    uint32_t hash;
    size_t off, len; /* canonical key text in out, quotes included */
} st_key;

/* 1 for bytes a string copies verbatim: printable ASCII but '"' and '\\'. */
static const unsigned char st_plain[256] = {
    [0x20] = 1, [0x21] = 1, [0x23 ... 0x5B] = 1, [0x5D ... 0x7F] = 1,
};

static void st_ws(st_parser *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) s->p++;
}

/* Length of the valid UTF-8 sequence starting at p (lead byte >= 0x80), 0 if invalid. */
static size_t st_utf8(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    size_t n;
    uint32_t v;
    if (c < 0xC2) return 0;
    if (c < 0xE0) n = 2, v = c & 0x1F;
    else if (c < 0xF0) n = 3, v = c & 0x0F;
    else if (c < 0xF5) n = 4, v = c & 0x07;
    else return 0;
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (n == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) return 0;
    if (n == 4 && (v < 0x10000 || v > 0x10FFFF)) return 0;
    return n;
}

static int st_hex4(const unsigned char *p, const unsigned char *end, uint32_t *v) {
    if (end - p < 4) return -1;
    uint32_t r = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        r <<= 4;
        if (c >= '0' && c <= '9') r |= c - '0';
        else if (c >= 'a' && c <= 'f') r |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') r |= c - 'A' + 10;
        else return -1;
    }
    *v = r;
    return 0;
}

/* Appends one decoded code point (never 0): to dec as UTF-8, to out as json_text_string() would. */
static void st_put_codepoint(sbuf *out, sbuf *dec, uint32_t cp) {
    char u[4];
    size_t n;
    if (cp < 0x80) u[0] = (char)cp, n = 1;
    else if (cp < 0x800) u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3F)), u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    else
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3F)), u[2] = (char)(0x80 | (cp >> 6 & 0x3F)),
        u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    if (dec) sbuf_add(dec, u, n);
    if (cp >= 0x20 && cp != '"' && cp != '\\') {
        sbuf_add(out, u, n);
        return;
    }
    json_text_escape_char(out, (unsigned char)cp); /* the escape json_text_string() writes */
}

/* The escape at *pp ('\\'); moves *pp past it. */
static int st_escape(st_parser *s, const unsigned char **pp, sbuf *dec) {
    const unsigned char *p = *pp + 1, *end = s->end;
    uint32_t cp;
    if (p >= end) return 1;
    switch (*p) {
    case '"': cp = '"'; break;
    case '\\': cp = '\\'; break;
    case '/': cp = '/'; break;
    case 'b': cp = '\b'; break;
    case 'f': cp = '\f'; break;
    case 'n': cp = '\n'; break;
    case 'r': cp = '\r'; break;
    case 't': cp = '\t'; break;
    case 'u':
        if (st_hex4(p + 1, end, &cp)) return 1;
        p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (end - p < 7 || p[1] != '\\' || p[2] != 'u' || st_hex4(p + 3, end, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                return 1;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return 1;
        }
        if (cp == 0) return 1; /* \u0000: jansson's rules differ for keys and values */
        break;
    default: return 1;
    }
    *pp = p + 1;
    st_put_codepoint(&s->out, dec, cp);
    return 0;
}

/* The string at s->p ('"'): canonical text to out, decoded bytes to dec (if any). */
static int st_string(st_parser *s, sbuf *dec) {
    const unsigned char *p = s->p + 1, *end = s->end, *run = p;
    sbuf_addc(&s->out, '"');
    for (;;) {
        if (p >= end) return 1;
        unsigned c = *p;
        if (st_plain[c]) {
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = st_utf8(p, end);
            if (!n) return 1;
            p += n;
            continue;
        }
        sbuf_add(&s->out, (const char *)run, (size_t)(p - run));
        if (dec) sbuf_add(dec, (const char *)run, (size_t)(p - run));
        if (c == '"') break;
        if (c != '\\' || st_escape(s, &p, dec)) return 1; /* raw control character, bad escape */
        run = p;
    }
    sbuf_addc(&s->out, '"');
    s->p = p + 1;
    return 0;
}

static int st_number(st_parser *s) {
    const unsigned char *p = s->p, *end = s->end, *start = p;
    int real = 0;
    size_t digits = 0;
    if (p < end && *p == '-') p++;
    if (p < end && *p == '0') {
        p++, digits++;
        if (p < end && *p >= '0' && *p <= '9') return 1;
    } else {
        while (p < end && *p >= '0' && *p <= '9') p++, digits++;
        if (!digits) return 1;
    }
    if (p < end && *p == '.') {
        p++, real = 1;
        if (p >= end || *p < '0' || *p > '9') return 1;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++, real = 1;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return 1;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    size_t n = (size_t)(p - start);
    if (!real) {
        if (digits > 18) return 1; /* might overflow: jansson decides */
        if (n == 2 && start[0] == '-' && start[1] == '0') sbuf_addc(&s->out, '0');
        else sbuf_add(&s->out, (const char *)start, n);
    } else {
        char buf[64];
        if (n >= sizeof buf) return 1;
        memcpy(buf, start, n);
        buf[n] = '\0';
        double v = strtod(buf, NULL);
        if (isinf(v)) return 1; /* overflow: jansson's error */
        json_text_real(&s->out, v);
    }
    s->p = p;
    return 0;
}

static int st_literal(st_parser *s, const char *word, size_t n) {
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return 1;
    sbuf_add(&s->out, word, n);
    s->p += n;
    return 0;
}

static int st_value(st_parser *s);

/* Cheap on purpose: it only spares most memcmp calls of the duplicate check. */
static uint32_t st_hash(const char *k, size_t n) {
    return (uint32_t)n * 65599u ^ (unsigned char)k[n / 2] << 8 ^ (unsigned char)k[n - 2];
}

/* Parses a key into out and records it in keys[*n]; declines a duplicate. */
static int st_key_add(st_parser *s, st_key *keys, size_t *n) {
    if (s->p >= s->end || *s->p != '"' || *n == ST_MAX_KEYS) return 1;
    st_key *k = &keys[*n];
    k->off = s->out.len;
    if (st_string(s, NULL) || sbuf_failed(&s->out)) return 1;
    k->len = s->out.len - k->off;
    k->hash = st_hash(s->out.data + k->off, k->len);
    for (size_t i = 0; i < *n; i++)
        if (keys[i].hash == k->hash && keys[i].len == k->len &&
            memcmp(s->out.data + keys[i].off, s->out.data + k->off, k->len) == 0)
            return 1;
    (*n)++;
    st_ws(s);
    if (s->p >= s->end || *s->p != ':') return 1;
    s->p++;
    sbuf_addc(&s->out, ':');
    st_ws(s);
    return 0;
}

/* After a member or element: ',' (1 more follows) or the closing byte (0); -1 otherwise. */
static int st_next(st_parser *s, unsigned char close) {
    st_ws(s);
    if (s->p >= s->end) return -1;
    if (*s->p == ',') {
        s->p++;
        st_ws(s);
        return 1;
    }
    if (*s->p != close) return -1;
    s->p++;
    return 0;
}

static int st_object(st_parser *s) {
    st_key keys[ST_MAX_KEYS];
    size_t n = 0;
    if (++s->depth > ST_MAX_DEPTH) return 1;
    s->p++;
    sbuf_addc(&s->out, '{');
    st_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
    } else {
        for (;;) {
            if (st_key_add(s, keys, &n) || st_value(s)) return 1;
            int more = st_next(s, '}');
            if (more < 0) return 1;
            if (!more) break;
            sbuf_addc(&s->out, ',');
        }
    }
    sbuf_addc(&s->out, '}');
    s->depth--;
    return 0;
}

static int st_array(st_parser *s) {
    if (++s->depth > ST_MAX_DEPTH) return 1;
    s->p++;
    sbuf_addc(&s->out, '[');
    st_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
    } else {
        for (;;) {
            if (st_value(s)) return 1;
            int more = st_next(s, ']');
            if (more < 0) return 1;
            if (!more) break;
            sbuf_addc(&s->out, ',');
        }
    }
    sbuf_addc(&s->out, ']');
    s->depth--;
    return 0;
}

static int st_value(st_parser *s) {
    if (s->p >= s->end) return 1;
    switch (*s->p) {
    case '"': return st_string(s, NULL);
    case '{': return st_object(s);
    case '[': return st_array(s);
    case 't': return st_literal(s, "true", 4);
    case 'f': return st_literal(s, "false", 5);
    case 'n': return st_literal(s, "null", 4);
    default: return st_number(s);
    }
}

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

/* The event object at s->p, as one top-level member list, into s->out and the captures. */
static int st_event_members(st_parser *s) {
    st_key keys[ST_MAX_KEYS];
    size_t n = 0, emitted = 0;
    int dropped[2] = {0, 0};
    sbuf_reset(&s->out);
    memset(s->type, 0, sizeof s->type);
    s->depth = 1;
    s->p++;
    sbuf_addc(&s->out, '{');
    st_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
    } else {
        for (;;) {
            size_t mark = s->out.len;
            if (emitted) sbuf_addc(&s->out, ',');
            size_t key_at = s->out.len;
            if (st_key_add(s, keys, &n)) return 1;
            int field = st_field(s->out.data + key_at + 1, keys[n - 1].len - 2);
            if (s->p >= s->end || !st_type_ok(field, *s->p)) return 1;
            if (field < F_NCAPTURE) {
                s->type[field] = (char)*s->p;
                sbuf_reset(&s->val[field]);
                if (*s->p == '"' ? st_string(s, &s->val[field]) : st_value(s)) return 1;
            } else if (st_value(s)) {
                return 1;
            }
            if (field == F_DROP) { /* event_id, stored_at belong to storage */
                int which = s->out.data[key_at + 1] == 's';
                if (dropped[which]++) return 1;
                n--; /* its text goes; it cannot collide with a kept key */
                s->out.len = mark;
            } else {
                emitted++;
            }
            int more = st_next(s, '}');
            if (more < 0) return 1;
            if (!more) break;
        }
    }
    sbuf_addc(&s->out, '}');
    for (int f = 0; f < F_NCAPTURE; f++) sbuf_addc(&s->val[f], '\0');
    return sbuf_failed(&s->out) ? -1 : 0;
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
static int st_item_fill(st_parser *s, store_item *it, int64_t time_us) {
    const char *type = st_captured(s, F_EVENT_TYPE), *entity = st_captured(s, F_ENTITY_ID);
    const char *ctx = st_captured(s, F_CONTEXT_ID), *dom = st_captured(s, F_DOMAIN);
    size_t tlen = strlen(type), elen = entity ? strlen(entity) : 0, jlen = s->out.len;
    if (event_identity_parts(type, entity ? entity : "", st_captured(s, F_TIME_FIRED), ctx ? ctx : "",
                             it->event_id) != 0)
        return -1;
    char *mem = malloc(jlen + 1 + tlen + 1 + (entity ? elen + 1 : 0));
    if (!mem) return -1;
    memcpy(mem, s->out.data, jlen + 1);
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

static int st_event(st_parser *s, store_batch *b) {
    if (b->nitems == s->items_cap) {
        size_t cap = s->items_cap ? s->items_cap * 2 : 256;
        store_item *items = realloc(b->items, cap * sizeof *items);
        if (!items) return -1;
        b->items = items;
        s->items_cap = cap;
    }
    store_item *it = &b->items[b->nitems];
    memset(it, 0, sizeof *it);
    it->index = (int)b->nitems;
    b->nitems++;
    int64_t time_us;
    int rc = st_event_members(s);
    if (rc == 0) rc = st_event_check(s, &time_us);
    if (rc == 0) rc = st_item_fill(s, it, time_us);
    return rc;
}

/* ---- the body --------------------------------------------------------- */

static int st_events(st_parser *s, store_batch *b, long max_batch) {
    s->p++;
    st_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return 0;
    }
    for (;;) {
        if (s->p >= s->end || *s->p != '{' || (long)b->nitems >= max_batch) return 1;
        int rc = st_event(s, b);
        if (rc) return rc;
        int more = st_next(s, ']');
        if (more < 0) return 1;
        if (!more) return 0;
    }
}

/* Matches `word` at s->p and the ':' after it. */
static int st_member_is(st_parser *s, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return 0;
    s->p += n;
    st_ws(s);
    if (s->p >= s->end || *s->p != ':') return -1;
    s->p++;
    st_ws(s);
    return 1;
}

static int st_body(st_parser *s, store_batch *b, long max_batch) {
    st_ws(s);
    if (s->p >= s->end) return 1;
    if (*s->p == '[') {
        int rc = st_events(s, b, max_batch);
        if (rc) return rc;
    } else if (*s->p == '{') {
        int have_events = 0, have_dead = 0, m;
        s->p++;
        st_ws(s);
        for (;;) {
            if ((m = st_member_is(s, "\"events\"")) != 0) {
                if (m < 0 || have_events++ || s->p >= s->end || *s->p != '[') return 1;
                int rc = st_events(s, b, max_batch);
                if (rc) return rc;
            } else if ((m = st_member_is(s, "\"dead_letters\"")) != 0) {
                /* only an empty list: dead letters to store take the general path */
                if (m < 0 || have_dead++ || s->p >= s->end || *s->p != '[') return 1;
                s->p++;
                st_ws(s);
                if (s->p >= s->end || *s->p != ']') return 1;
                s->p++;
            } else {
                return 1;
            }
            int more = st_next(s, '}');
            if (more < 0) return 1;
            if (!more) break;
        }
        if (!have_events) return 1;
    } else {
        return 1;
    }
    st_ws(s);
    return s->p == s->end ? 0 : 1;
}

int store_text_prepare(const char *text, size_t len, long max_batch, store_batch *b) {
    st_parser s;
    memset(&s, 0, sizeof s);
    memset(b, 0, sizeof *b);
    s.p = (const unsigned char *)text;
    s.end = s.p + len;
    int rc = text ? st_body(&s, b, max_batch) : 1;
    sbuf_free(&s.out);
    for (int f = 0; f < F_NCAPTURE; f++) sbuf_free(&s.val[f]);
    if (rc != 0) store_batch_free(b);
    return rc;
}
