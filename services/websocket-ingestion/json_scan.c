/* json_scan.c -- see json_scan.h. A recursive-descent checker (RFC 8259)
 * that returns positions instead of values. */
#include "json_scan.h"

#include <string.h>

typedef struct jscan {
    const char *p, *end, *start;
} jscan;

static int jscan_value(jscan *s, int depth);

static void jscan_ws(jscan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int jscan_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* One UTF-8 sequence starting at s->p (first byte >= 0x80); strict: no
 * overlongs, no surrogates, max U+10FFFF. */
static int jscan_utf8(jscan *s) {
    const unsigned char *u = (const unsigned char *)s->p;
    size_t left = (size_t)(s->end - s->p);
    unsigned c = u[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return -1;
    if (left < n) return -1;
    if (u[1] < lo || u[1] > hi) return -1;
    for (size_t i = 2; i < n; i++)
        if (u[i] < 0x80 || u[i] > 0xBF) return -1;
    s->p += n;
    return 0;
}

static int jscan_string(jscan *s) {
    s->p++; /* opening quote */
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c < 0x20) return -1;
        if (c == '\\') {
            if (++s->p >= s->end) return -1;
            char e = *s->p;
            if (e == 'u') {
                if (s->end - s->p < 5) return -1;
                for (int i = 1; i <= 4; i++)
                    if (!jscan_hex(s->p[i])) return -1;
                s->p += 5;
            } else if (e && strchr("\"\\/bfnrt", e)) {
                s->p++;
            } else return -1;
        } else if (c >= 0x80) {
            if (jscan_utf8(s) != 0) return -1;
        } else {
            s->p++;
        }
    }
    return -1;
}

static int jscan_digits(jscan *s) {
    const char *b = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    return s->p > b ? 0 : -1;
}

static int jscan_number(jscan *s) {
    if (*s->p == '-') s->p++;
    if (s->p >= s->end) return -1;
    if (*s->p == '0') s->p++;
    else if (jscan_digits(s) != 0) return -1;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (jscan_digits(s) != 0) return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (jscan_digits(s) != 0) return -1;
    }
    return 0;
}

static int jscan_literal(jscan *s, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0) return -1;
    s->p += n;
    return 0;
}

/* Object or array body; when fn is set, reports members/elements (top level). */
static int jscan_container(jscan *s, int depth, jscan_member_fn mfn, jscan_elem_fn efn, void *arg) {
    char close = *s->p == '{' ? '}' : ']';
    int is_obj = close == '}';
    int stopped = 0;
    if (depth >= JSCAN_MAX_DEPTH) return -1;
    s->p++;
    jscan_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    for (;;) {
        const char *key = NULL;
        size_t klen = 0;
        if (is_obj) {
            if (s->p >= s->end || *s->p != '"') return -1;
            key = s->p + 1;
            if (jscan_string(s) != 0) return -1;
            klen = (size_t)(s->p - 1 - key);
            jscan_ws(s);
            if (s->p >= s->end || *s->p != ':') return -1;
            s->p++;
            jscan_ws(s);
        }
        const char *v = s->p;
        if (jscan_value(s, depth + 1) != 0) return -1;
        if (!stopped) {
            if (mfn) stopped = mfn(key, klen, v, (size_t)(s->p - v), arg);
            else if (efn) stopped = efn(v, (size_t)(s->p - v), arg);
        }
        jscan_ws(s);
        if (s->p >= s->end) return -1;
        if (*s->p == ',') {
            s->p++;
            jscan_ws(s);
            continue;
        }
        if (*s->p != close) return -1;
        s->p++;
        return 0;
    }
}

static int jscan_value(jscan *s, int depth) {
    jscan_ws(s);
    if (s->p >= s->end) return -1;
    switch (*s->p) {
    case '{':
    case '[': return jscan_container(s, depth, NULL, NULL, NULL);
    case '"': return jscan_string(s);
    case 't': return jscan_literal(s, "true");
    case 'f': return jscan_literal(s, "false");
    case 'n': return jscan_literal(s, "null");
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) return jscan_number(s);
        return -1;
    }
}

static int jscan_top(const char *p, size_t len, char want, jscan_member_fn mfn, jscan_elem_fn efn, void *arg,
                     size_t *err_pos) {
    jscan s = {p, p + len, p};
    int rc;
    jscan_ws(&s);
    if (want) {
        if (s.p >= s.end || *s.p != want) rc = -1;
        else rc = jscan_container(&s, 0, mfn, efn, arg);
    } else {
        rc = jscan_value(&s, 0);
    }
    if (rc == 0) {
        jscan_ws(&s);
        if (s.p != s.end) rc = -1;
    }
    if (rc != 0 && err_pos) *err_pos = (size_t)(s.p - s.start);
    return rc;
}

int jscan_validate(const char *p, size_t len, size_t *err_pos) {
    return jscan_top(p, len, 0, NULL, NULL, NULL, err_pos);
}

int jscan_object(const char *p, size_t len, jscan_member_fn fn, void *arg) {
    return jscan_top(p, len, '{', fn, NULL, arg, NULL);
}

int jscan_array(const char *p, size_t len, jscan_elem_fn fn, void *arg) {
    return jscan_top(p, len, '[', NULL, fn, arg, NULL);
}

char jscan_first(const char *p, size_t len) {
    jscan s = {p, p + len, p};
    jscan_ws(&s);
    return s.p < s.end ? *s.p : '\0';
}
