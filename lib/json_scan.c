/* json_scan.c -- see json_scan.h. A recursive-descent checker (RFC 8259)
 * that returns positions instead of values, and on request notes what a
 * jansson reader / the json_text writer would do differently with the text. */
#include "json_scan.h"

#include "json_text.h"
#include "sbuf.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define JSCAN_KEYS 256
#define JSCAN_STRICT_BIT 0x80000000u /* internal: jscan_top runs in strict mode */

static _Thread_local const char *jscan_last_why; /* keys remembered for the duplicate check, all open objects together */

typedef struct jscan {
    const char *p, *end, *start;
    unsigned want, notes;      /* JSCAN_NOTE_* asked for / found */
    const char *key[JSCAN_KEYS];
    size_t klen[JSCAN_KEYS], nkeys;
    sbuf tmp;                  /* a real re-printed by json_text_real */
    const char *pair_low;      /* hex of the low surrogate after a checked high one */
    int trusted;               /* text already validated: skip values, do not check them */
    int strict;                /* refuse what jansson cannot represent (jscan_strict) */
    int in_key;                /* scanning a key (strict: \u0000 refused there) */
    int esc;                   /* the last string scanned had an escape */
    const char *why;           /* strict: why the text was refused */
    const jscan_hooks *hk;     /* jscan_strict_objects: members of each object and of its nest_key member */
    size_t nest_klen;
    jscan_collect *col;        /* jscan_collect_items: wanted members of each item */
    const jscan_node *node_next; /* the node of the object about to be scanned (collect) */
    const jscan_items *items;  /* jscan_check_items: the body's items and their members */
    size_t items_klen;
    int items_next;            /* the array about to be scanned holds the items */
} jscan;

static int jscan_value(jscan *s, int depth);

static inline __attribute__((always_inline)) void jscan_ws_run(jscan *s) {
    const char *p = s->p, *end = s->end;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    s->p = p;
    s->notes |= s->want & JSCAN_NOTE_WS;
}

/* Called between every two tokens: the compact case (no whitespace) inline. */
static inline __attribute__((always_inline)) void jscan_ws(jscan *s) {
    if (s->p < s->end && (unsigned char)*s->p <= ' ' && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        jscan_ws_run(s);
}

static int jscan_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned jscan_hexval(const char *h) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = h[i];
        v = v << 4 | (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* A \u escape (valid hex at h): does jansson read it as json_text writes it back? */
static void jscan_note_u(jscan *s, const char *h) {
    unsigned v = jscan_hexval(h);
    /* jansson refuses \u0000 in keys and a surrogate that is not half of a pair */
    int paired = v >= 0xD800 && v <= 0xDBFF && s->end - h >= 10 && h[4] == '\\' && h[5] == 'u' &&
                 jscan_hex(h[6]) && jscan_hex(h[7]) && jscan_hex(h[8]) && jscan_hex(h[9]) &&
                 jscan_hexval(h + 6) >= 0xDC00 && jscan_hexval(h + 6) <= 0xDFFF;
    if (v >= 0xDC00 && v <= 0xDFFF && s->pair_low == h) paired = 1; /* the low half of a checked pair */
    if (paired && v <= 0xDBFF) s->pair_low = h + 6;
    if (v == 0 || (v >= 0xD800 && v <= 0xDFFF && !paired)) s->notes |= s->want & JSCAN_NOTE_JANSSON;
    /* json_text writes \u00xx (lowercase) only for control characters without a short form */
    int canon = v < 0x20 && v != '\b' && v != '\f' && v != '\n' && v != '\r' && v != '\t' &&
                !(h[2] >= 'A' && h[2] <= 'F') && !(h[3] >= 'A' && h[3] <= 'F');
    if (!canon) s->notes |= s->want & JSCAN_NOTE_ESCAPE;
}


/* Strict mode: a \u escape jansson refuses (it cannot hold it in a C string
 * or in UTF-8): a surrogate that is not half of a pair, \u0000 in a key.
 * A high surrogate checks its low half and skips it. */
static int jscan_strict_u(jscan *s, const char *h) {
    unsigned v = jscan_hexval(h);
    if (v == 0 && s->in_key) return s->why = "\\u0000 in an object key", -1;
    if (v >= 0xDC00 && v <= 0xDFFF) return s->why = "a lone low surrogate escape (\\udc00-\\udfff)", -1;
    if (v < 0xD800 || v > 0xDBFF) return 0;
    if (s->end - h < 10 || h[4] != '\\' || h[5] != 'u' || !jscan_hex(h[6]) || !jscan_hex(h[7]) ||
        !jscan_hex(h[8]) || !jscan_hex(h[9]) || jscan_hexval(h + 6) < 0xDC00 || jscan_hexval(h + 6) > 0xDFFF)
        return s->why = "a lone high surrogate escape (\\ud800-\\udbff)", -1;
    s->p += 6; /* the low half: checked here, the caller moves past the high one */
    return 0;
}

/* Strict mode: a number jansson refuses. Integers beyond 64 bits are read as
 * reals (lib/httpd); a real that overflows a double is refused. */
static int jscan_strict_number(jscan *s, const char *b, const char *e, int real, size_t idigits, const char *xb) {
    if (!real && idigits <= 18) return 0;
    /* a real below 1e300 cannot overflow: strtod only for the few that may */
    long exp10 = 0;
    if (xb && e - xb <= 3)
        for (const char *d = xb; d < e; d++) exp10 = exp10 * 10 + (*d - '0');
    if (!(xb && e - xb > 3) && (xb && xb[-1] == '-' ? 0 : exp10) + (long)idigits <= 300) return 0;
    size_t n = (size_t)(e - b);
    char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf) return s->why = "out of memory", -1;
    memcpy(buf, b, n);
    buf[n] = '\0';
    double v = strtod(buf, NULL);
    if (buf != small) free(buf);
    if (isinf(v)) return s->why = "a number too large for a double (e.g. 1e400)", -1;
    return 0;
}

/* One UTF-8 sequence starting at s->p (first byte >= 0x80); strict: no
 * overlongs, no surrogates, max U+10FFFF (json_text_utf8_len's rules). */
static int jscan_utf8(jscan *s) {
    size_t n = json_text_utf8_len((const unsigned char *)s->p, (size_t)(s->end - s->p));
    if (!n) return -1;
    s->p += n;
    return 0;
}

/* 1 for bytes a string holds as is: printable ASCII but '"' and '\\'. */
static const unsigned char jscan_plain[256] = {
    [0x20] = 1, [0x21] = 1, [0x23 ... 0x5B] = 1, [0x5D ... 0x7F] = 1,
};

#if defined(__SSE2__)
/* How many of the 16 bytes at p are plain (jscan_plain) before the first that
 * is not: '"', '\\', a control byte (< 0x20) or a UTF-8 byte (>= 0x80, negative
 * as a signed byte); 16 when all are. x86-64 always has SSE2. */
static inline unsigned jscan_plain16(const unsigned char *p) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                                _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
    unsigned m = (unsigned)_mm_movemask_epi8(stop);
    return m ? (unsigned)__builtin_ctz(m) : 16u;
}

/* Where the first '"' or '\\' is among the 16 bytes at p; 16 when neither is. */
static inline unsigned jscan_quote16(const char *p) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    unsigned m = (unsigned)_mm_movemask_epi8(
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
    return m ? (unsigned)__builtin_ctz(m) : 16u;
}
#endif

/* The hot loop: plain runs with the position in a register (s->p may alias
 * the text, so the compiler cannot keep it there itself). */
static int jscan_string(jscan *s) {
    const unsigned char *p = (const unsigned char *)s->p + 1, *end = (const unsigned char *)s->end;
    s->esc = 0;
    for (;;) {
#if defined(__SSE2__)
        for (;;) { /* 16 bytes at a time while none ends the run */
            if (end - p < 16) {
                while (p < end && jscan_plain[*p]) p++;
                break;
            }
            unsigned k = jscan_plain16(p);
            p += k;
            if (k < 16) break;
        }
#else
        while (end - p >= 4 && jscan_plain[p[0]] && jscan_plain[p[1]] && jscan_plain[p[2]] && jscan_plain[p[3]])
            p += 4;
        while (p < end && jscan_plain[*p]) p++;
#endif
        s->p = (const char *)p;
        if (p >= end) return -1;
        unsigned char c = *p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c < 0x20) return -1;
        if (c == '\\') {
            s->esc = 1;
            if (++s->p >= s->end) return -1;
            char e = *s->p;
            if (e == 'u') {
                if (s->end - s->p < 5) return -1;
                for (int i = 1; i <= 4; i++)
                    if (!jscan_hex(s->p[i])) return -1;
                if (s->strict && jscan_strict_u(s, s->p + 1) != 0) return -1;
                if (s->want) jscan_note_u(s, s->p + 1);
                s->p += 5;
            } else if (e && strchr("\"\\/bfnrt", e)) {
                if (e == '/') s->notes |= s->want & JSCAN_NOTE_ESCAPE; /* json_text writes '/' */
                s->p++;
            } else return -1;
        } else if (jscan_utf8(s) != 0) { /* c >= 0x80 */
            return -1;
        }
        p = (const unsigned char *)s->p;
    }
}

static int jscan_digits(jscan *s) {
    const char *b = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    return s->p > b ? 0 : -1;
}

/* "-?I.F" that json_text_real prints back as is, told from the text alone:
 * I without a leading zero, F not ending in 0, at most 15 digits in all, at
 * least 1e-4. Up to 6 decimals its short form writes them; beyond, it prints
 * "%.15g", which for a decimal of at most 15 digits (DBL_DIG: the decimal
 * survives the round trip through its double) in [1e-4, 1e15) is those digits
 * in fixed notation, trailing zeros dropped (GPS coordinates, say).
 * Everything else is decided by printing. */
static int jscan_real_plain(const char *b, const char *e) {
    if (*b == '-') b++;
    const char *dot = b;
    while (dot < e && *dot >= '0' && *dot <= '9') dot++;
    size_t ni = (size_t)(dot - b), nf = e > dot ? (size_t)(e - dot - 1) : 0;
    if (dot >= e || *dot != '.' || ni == 0 || nf == 0 || ni + nf > 15 || e[-1] == '0') return 0;
    for (const char *d = dot + 1; d < e; d++)
        if (*d < '0' || *d > '9') return 0; /* an exponent */
    if (*b != '0') return 1;
    if (ni != 1) return 0;
    for (int i = 1; i <= 4 && i <= (int)nf; i++)
        if (dot[i] != '0') return 1; /* 0.0001 or more */
    return 0;
}

/* A real (text b..e) that json_text_real would not print back as is. */
static int jscan_real_noncanonical(jscan *s, const char *b, const char *e) {
    if (jscan_real_plain(b, e)) return 0;
    char buf[64];
    size_t n = (size_t)(e - b);
    if (n >= sizeof buf) return 1;
    memcpy(buf, b, n);
    buf[n] = '\0';
    sbuf_reset(&s->tmp);
    json_text_real(&s->tmp, strtod(buf, NULL));
    return sbuf_failed(&s->tmp) || s->tmp.len != n || memcmp(s->tmp.data, b, n) != 0;
}

/* Does the real b..e overflow a double (jansson's numeric overflow)? Only
 * asked for the few reals whose exponent may reach it. */
static int jscan_real_overflows(const char *b, const char *e) {
    size_t n = (size_t)(e - b);
    char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf) return 1; /* say "maybe": the caller takes the careful path */
    memcpy(buf, b, n);
    buf[n] = '\0';
    int inf = isinf(strtod(buf, NULL));
    if (buf != small) free(buf);
    return inf;
}

static int jscan_number(jscan *s) {
    const char *b = s->p, *ib, *xb = NULL;
    int real = 0;
    if (*s->p == '-') s->p++;
    if (s->p >= s->end) return -1;
    ib = s->p;
    if (*s->p == '0') s->p++;
    else if (jscan_digits(s) != 0) return -1;
    size_t idigits = (size_t)(s->p - ib);
    if (s->p < s->end && *s->p == '.') {
        s->p++, real = 1;
        if (jscan_digits(s) != 0) return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++, real = 1;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        xb = s->p;
        if (jscan_digits(s) != 0) return -1;
    }
    if (s->strict && jscan_strict_number(s, b, s->p, real, idigits, xb) != 0) {
        s->p = b;
        return -1;
    }
    if (!s->want) return 0;
    /* jansson refuses integers beyond 64 bits and reals overflowing a double
     * (httpd then re-reads the whole body differently): flag well before that. */
    long exp10 = 0; /* a positive exponent (negative ones cannot overflow) */
    if (xb && xb[-1] != '-' && s->p - xb <= 3)
        for (const char *d = xb; d < s->p; d++) exp10 = exp10 * 10 + (*d - '0');
    if (real ? ((xb && s->p - xb > 3) || (long)idigits + exp10 > 300) && jscan_real_overflows(b, s->p)
             : idigits > 18)
        s->notes |= s->want & JSCAN_NOTE_JANSSON;
    if (s->want & JSCAN_NOTE_NUMBER) {
        if (real ? jscan_real_noncanonical(s, b, s->p) : (*b == '-' && ib[0] == '0'))
            s->notes |= JSCAN_NOTE_NUMBER; /* "-0" is the integer 0 */
    }
    return 0;
}

/* Remembers a key of the open object (its keys start at base); notes a repeat. */
/* *bits: a 64-bit filter of the object's keys so far (length, first and last
 * byte): the earlier keys are compared only when a key's bit was seen before. */
static void jscan_key_seen(jscan *s, size_t base, uint64_t *bits, const char *key, size_t klen) {
    if (s->trusted ? memchr(key, '\\', klen) != NULL : s->esc) s->notes |= s->want & JSCAN_NOTE_KEY_ESCAPE;
    if (!(s->want & JSCAN_NOTE_DUP_KEY)) return;
    uint64_t bit = (uint64_t)1 << (klen ? (klen * 7 + (unsigned char)key[0] * 3 + (unsigned char)key[klen - 1]) & 63 : 0);
    for (size_t i = (*bits & bit) ? base : s->nkeys; i < s->nkeys; i++) { /* first and last byte before a call: most keys differ there */
        if (s->klen[i] == klen && (klen == 0 || (s->key[i][0] == key[0] && s->key[i][klen - 1] == key[klen - 1] &&
                                                 memcmp(s->key[i], key, klen) == 0))) {
            s->notes |= JSCAN_NOTE_DUP_KEY;
            return;
        }
    }
    if (s->nkeys == JSCAN_KEYS) {
        s->notes |= JSCAN_NOTE_DUP_KEY; /* too many to check: say "maybe" */
        return;
    }
    *bits |= bit;
    s->key[s->nkeys] = key;
    s->klen[s->nkeys++] = klen;
}

static int jscan_literal(jscan *s, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0) return -1;
    s->p += n;
    return 0;
}

/* The end of the string at p ('"') in validated text: the next quote not
 * escaped by an odd run of backslashes. */
static inline __attribute__((always_inline)) const char *jscan_skip_string(const char *p, const char *end) {
    p++;
#if defined(__SSE2__)
    /* 16 bytes at a time to the next '"' or '\\' (memchr per string cost more
     * in its calls than in its scanning: most strings are short); an escape
     * skips the byte after it */
    while (end - p >= 16) {
        unsigned k = jscan_quote16(p);
        p += k;
        if (k == 16) continue;
        if (*p == '"') return p + 1;
        p += 2;
    }
    while (p < end) {
        if (*p == '"') return p + 1;
        p += *p == '\\' ? 2 : 1;
    }
    return end;
#else
    for (;;) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q) return end;
        size_t bs = 0;
        while (q - bs > p && q[-1 - (ptrdiff_t)bs] == '\\') bs++;
        if (bs % 2 == 0) return q + 1;
        p = q + 1;
    }
#endif
}

/* The state of one skip: depth, inside a string. */
typedef struct jscan_skipper {
    int depth, in_str;
} jscan_skipper;

/* A closing bracket: 1 when it closes the skipped container. */
static inline int jscan_skip_close(jscan_skipper *k) {
    return --k->depth == 0;
}

/* Bytes p..stop one at a time; the end of the container when it closes
 * there, else NULL (*at: where to go on, past stop after an escape). */
static const char *jscan_skip_bytes(const char *p, const char *stop, const char *end, jscan_skipper *k,
                                    const char **at) {
    while (p < stop) {
        char c = *p;
        if (k->in_str) {
            if (c == '\\') p++;
            else if (c == '"') k->in_str = 0;
        } else if (c == '"') {
            k->in_str = 1;
        } else if (c == '{' || c == '[') {
            k->depth++;
        } else if ((c == '}' || c == ']') && jscan_skip_close(k)) {
            return p + 1;
        }
        p++;
    }
    *at = p < end ? p : end;
    return NULL;
}

#if defined(__SSE2__)
/* Bit i set where p[i] is c / where (p[i] | 0x20) is c, for the 64 bytes at p. */
typedef struct jscan_masks64 {
    uint64_t quote, bslash, open, close;
} jscan_masks64;

static inline jscan_masks64 jscan_masks(const char *p) {
    jscan_masks64 m = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));
        __m128i lo = _mm_or_si128(v, _mm_set1_epi8(0x20)); /* '[' -> '{', ']' -> '}' */
        m.quote |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('"'))) << (16 * i);
        m.bslash |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))) << (16 * i);
        m.open |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(lo, _mm_set1_epi8('{'))) << (16 * i);
        m.close |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(lo, _mm_set1_epi8('}'))) << (16 * i);
    }
    return m;
}

/* Bit i: the xor of bits 0..i (1 from an opening quote up to its closing one). */
static inline uint64_t jscan_prefix_xor(uint64_t x) {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
}
#endif

/* The end of the object or array at p in validated text. The skip goes 64
 * bytes at a time, strings told apart by the running parity of quotes (a block
 * with a backslash goes byte by byte). */
static const char *jscan_skip_container(const char *p, const char *end) {
    jscan_skipper k = {0, 0};
    const char *at = p, *done;
#if defined(__SSE2__)
    while (end - p >= 64) {
        jscan_masks64 m = jscan_masks(p);
        if (m.bslash) {
            if ((done = jscan_skip_bytes(p, p + 64, end, &k, &at))) return done;
            p = at;
            continue;
        }
        uint64_t inside = jscan_prefix_xor(m.quote) ^ (k.in_str ? ~(uint64_t)0 : 0);
        k.in_str = (int)(inside >> 63);
        uint64_t open = m.open & ~inside, close = m.close & ~inside;
        for (uint64_t b = open | close; b; b &= b - 1) {
            int i = __builtin_ctzll(b);
            if (open >> i & 1) k.depth++;
            else if (jscan_skip_close(&k)) return p + i + 1;
        }
        p += 64;
    }
#endif
    if ((done = jscan_skip_bytes(p, end, end, &k, &at))) return done;
    return end;
}

/* Moves past the value at s->p in validated text without checking it. */
static void jscan_skip(jscan *s) {
    const char *p = s->p, *end = s->end;
    int depth = 0;
    if (*p != '{' && *p != '[' && *p != '"') { /* number or literal */
        while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            p++;
        s->p = p;
        return;
    }
    if (*p != '"') {
        s->p = jscan_skip_container(p, end);
        return;
    }
    do {
        char c = *p;
        if (c == '"') {
            p = jscan_skip_string(p, end);
            continue;
        }
        if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') depth--;
        p++;
    } while (depth > 0 && p < end);
    s->p = p;
}

/* Object or array body; when fn is set, reports members/elements (top level). */
/* Short keys compared inline: a memcmp call per listed key cost more than the bytes. */
static inline int jscan_same(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

/* jscan_collect_items: the listed key of `node` that key is, else NULL; notes
 * what makes the item unusual (an escaped key, a listed key repeated). */
static const jscan_node_key *jscan_collect_key(jscan *s, const jscan_node *node, const char *key, size_t klen) {
    jscan_collect *c = s->col;
    if (s->esc) { /* the key just scanned */
        c->unusual = 1;
        return NULL;
    }
    for (int i = 0; i < node->nkeys; i++) {
        const jscan_node_key *k = &node->keys[i];
        if (k->klen != klen || !jscan_same(k->key, key, klen)) continue;
        if (c->spans[k->slot].p) {
            c->unusual = 1;
            return NULL;
        }
        return k;
    }
    return NULL;
}

/* jscan_collect_items: an item ended; its spans are cleared for the next. */
static void jscan_collect_emit(jscan_collect *c, const char *v, size_t n, unsigned notes) {
    c->item_fn(v, n, c->spans, c->unusual, notes, c->arg);
    for (int i = 0; i < c->nfilled; i++) c->spans[c->filled[i]] = (jscan_span){NULL, 0, 0};
    c->nfilled = c->unusual = 0;
}

static int jscan_container(jscan *s, int depth, jscan_member_fn mfn, jscan_elem_fn efn, void *arg) {
    char close = *s->p == '{' ? '}' : ']';
    int is_obj = close == '}';
    int stopped = 0;
    size_t key_base = s->nkeys;
    uint64_t key_bits = 0; /* jscan_key_seen's filter */
    const jscan_node *node = s->node_next; /* collect: this object's wanted members */
    int items = s->col && depth == 0 && !is_obj; /* collect: each element is an item */
    int body_items = s->items_next && !is_obj;    /* jscan_check_items: each element is an item */
    s->node_next = NULL;
    s->items_next = 0;
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
            s->in_key = 1;
            if (s->trusted) s->p = jscan_skip_string(s->p, s->end);
            else if (jscan_string(s) != 0) return -1;
            s->in_key = 0;
            klen = (size_t)(s->p - 1 - key);
            if (s->want) jscan_key_seen(s, key_base, &key_bits, key, klen);
            jscan_ws(s);
            if (s->p >= s->end || *s->p != ':') return -1;
            s->p++;
            jscan_ws(s);
        }
        const char *v = s->p;
        const jscan_node_key *wk = node && is_obj ? jscan_collect_key(s, node, key, klen) : NULL;
        unsigned item_saved = 0;
        if (items) { /* this element's own notes */
            item_saved = s->notes;
            s->notes = 0;
            if (s->p < s->end && *s->p == '{') s->node_next = s->col->root;
        } else if (wk && wk->child && s->p < s->end && *s->p == '{') {
            s->node_next = wk->child;
        } else if (s->items && depth == 0 && is_obj && klen == s->items_klen && !s->esc && s->p < s->end &&
                   *s->p == '[' && memcmp(key, s->items->items_key, klen) == 0) {
            s->items_next = 1;
        }
        if (body_items) { /* this item's own notes; an object's members reported */
            item_saved = s->notes;
            s->notes = 0;
            if (s->p < s->end && *s->p == '{') {
                if (jscan_container(s, depth + 1, s->items->member_fn, NULL, s->items->arg) != 0) return -1;
            } else if (jscan_value(s, depth + 1) != 0) {
                return -1;
            }
            s->items->end_fn(v, (size_t)(s->p - v), s->notes, s->items->arg);
            s->notes |= item_saved;
        } else if (s->hk && is_obj && mfn == s->hk->obj_fn && s->hk->nest_fn && klen == s->nest_klen && s->p < s->end &&
            *s->p == '{' && memcmp(key, s->hk->nest_key, klen) == 0) {
            if (jscan_container(s, depth + 1, s->hk->nest_fn, NULL, s->hk->arg) != 0) return -1;
        } else if (s->hk && !is_obj && efn && efn == s->hk->end_fn && s->p < s->end && *s->p == '{') {
            if (jscan_container(s, depth + 1, s->hk->obj_fn, NULL, s->hk->arg) != 0) return -1;
        } else if (s->trusted) {
            jscan_ws(s);
            v = s->p;
            if (v >= s->end) return -1;
            jscan_skip(s);
        } else if (jscan_value(s, depth + 1) != 0) {
            return -1;
        }
        s->node_next = NULL;
        if (wk) {
            s->col->spans[wk->slot] = (jscan_span){v, (size_t)(s->p - v), *v == '"' && s->esc};
            s->col->filled[s->col->nfilled++] = (unsigned char)wk->slot;
        }
        if (items) {
            jscan_collect_emit(s->col, v, (size_t)(s->p - v), s->notes);
            s->notes |= item_saved;
        }
        if (!stopped) {
            if (mfn) stopped = mfn(key, klen, v, (size_t)(s->p - v), arg);
            else if (efn) stopped = efn(v, (size_t)(s->p - v), arg);
            if (stopped && s->trusted) return 0; /* validated before: the rest need not be read */
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
        s->nkeys = key_base;
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
                     size_t *err_pos, unsigned notes_wanted, unsigned *notes, const jscan_hooks *hk,
                     jscan_collect *col, const jscan_items *items) {
    jscan s;
    int rc;
    s.p = s.start = p;
    s.end = p + len;
    s.want = 0; /* surrounding whitespace is no note */
    s.notes = 0;
    s.nkeys = 0;
    s.pair_low = NULL;
    s.trusted = 0;
    s.strict = notes_wanted & JSCAN_STRICT_BIT ? 1 : 0;
    s.in_key = s.esc = 0;
    s.why = NULL;
    s.hk = hk;
    s.nest_klen = hk && hk->nest_key ? strlen(hk->nest_key) : 0;
    s.col = col;
    s.node_next = col && want == '{' ? col->root : NULL; /* a lone object is the one item */
    s.items = items;
    s.items_klen = items && items->items_key ? strlen(items->items_key) : 0;
    s.items_next = items && want == '['; /* a bare array holds the items */
    notes_wanted &= ~JSCAN_STRICT_BIT;
    sbuf_init(&s.tmp);
    jscan_ws(&s);
    s.want = notes_wanted;
    if (want) {
        if (s.p >= s.end || *s.p != want) rc = -1;
        else rc = jscan_container(&s, 0, mfn, efn, arg);
    } else {
        rc = jscan_value(&s, 0);
    }
    if (rc == 0) {
        s.want = 0;
        jscan_ws(&s);
        if (s.p != s.end) rc = -1;
    }
    if (rc != 0 && err_pos) *err_pos = (size_t)(s.p - s.start);
    if (rc != 0 && s.strict) jscan_last_why = s.why ? s.why : "malformed JSON";
    if (notes) *notes = s.notes;
    sbuf_free(&s.tmp);
    return rc;
}

int jscan_validate(const char *p, size_t len, size_t *err_pos) {
    return jscan_top(p, len, 0, NULL, NULL, NULL, err_pos, 0, NULL, NULL, NULL, NULL);
}

int jscan_object(const char *p, size_t len, jscan_member_fn fn, void *arg) {
    return jscan_top(p, len, '{', fn, NULL, arg, NULL, 0, NULL, NULL, NULL, NULL);
}

int jscan_array(const char *p, size_t len, jscan_elem_fn fn, void *arg) {
    return jscan_top(p, len, '[', NULL, fn, arg, NULL, 0, NULL, NULL, NULL, NULL);
}

/* The trusted walk of one object or array (`open`): no notes, no checks
 * beyond finding the members; nothing to free (no reals are re-printed
 * without notes). */
static int jscan_trusted(const char *p, size_t len, char open, jscan_member_fn mfn, jscan_elem_fn efn, void *arg) {
    jscan s;
    s.p = s.start = p;
    s.end = p + len;
    s.want = s.notes = 0;
    s.nkeys = 0;
    s.pair_low = NULL;
    s.trusted = 1;
    s.strict = s.in_key = s.esc = 0;
    s.why = NULL;
    s.hk = NULL;
    s.nest_klen = 0;
    s.col = NULL;
    s.node_next = NULL;
    s.items = NULL;
    s.items_klen = 0;
    s.items_next = 0;
    jscan_ws(&s);
    if (s.p >= s.end || *s.p != open) return -1;
    return jscan_container(&s, 0, mfn, efn, arg);
}

int jscan_object_trusted(const char *p, size_t len, jscan_member_fn fn, void *arg) {
    return jscan_trusted(p, len, '{', fn, NULL, arg);
}

int jscan_check(const char *p, size_t len, unsigned want, unsigned *notes) {
    return jscan_top(p, len, 0, NULL, NULL, NULL, NULL, want, notes, NULL, NULL, NULL);
}

int jscan_object_notes(const char *p, size_t len, jscan_member_fn fn, void *arg, unsigned want, unsigned *notes) {
    return jscan_top(p, len, '{', fn, NULL, arg, NULL, want, notes, NULL, NULL, NULL);
}

int jscan_array_notes(const char *p, size_t len, jscan_elem_fn fn, void *arg, unsigned want, unsigned *notes) {
    return jscan_top(p, len, '[', NULL, fn, arg, NULL, want, notes, NULL, NULL, NULL);
}

int jscan_strict(const char *p, size_t len, size_t *err_pos, const char **why) {
    jscan_last_why = NULL;
    int rc = jscan_top(p, len, 0, NULL, NULL, NULL, err_pos, JSCAN_STRICT_BIT, NULL, NULL, NULL, NULL);
    if (why) *why = rc ? jscan_last_why : NULL;
    return rc;
}

const char *jscan_string_end(const char *p, const char *end) { return jscan_skip_string(p, end); }

int jscan_strict_objects(const char *p, size_t len, const jscan_hooks *h, size_t *err_pos, const char **why) {
    char first = jscan_first(p, len);
    int rc;
    jscan_last_why = NULL;
    if (first == '[') {
        rc = jscan_top(p, len, '[', NULL, h->end_fn, h->arg, err_pos, JSCAN_STRICT_BIT, NULL, h, NULL, NULL);
    } else {
        rc = jscan_top(p, len, '{', h->obj_fn, NULL, h->arg, err_pos, JSCAN_STRICT_BIT, NULL, h, NULL, NULL);
        if (rc == 0 && h->end_fn) h->end_fn(p, len, h->arg);
    }
    if (why) *why = rc ? jscan_last_why : NULL;
    return rc;
}

int jscan_collect_items(const char *p, size_t len, jscan_collect *c, unsigned want, unsigned *notes) {
    char first = jscan_first(p, len);
    c->nfilled = c->unusual = 0;
    memset(c->spans, 0, sizeof c->spans);
    if (first != '[' && first != '{') return -1;
    unsigned n = 0;
    int rc = jscan_top(p, len, first, NULL, NULL, NULL, NULL, want, &n, NULL, c, NULL);
    if (notes) *notes = n;
    if (rc != 0 || first == '[') return rc;
    const char *b = p, *e = p + len; /* the lone object, without the whitespace around it */
    while (b < e && (*b == ' ' || *b == '\t' || *b == '\n' || *b == '\r')) b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) e--;
    jscan_collect_emit(c, b, (size_t)(e - b), n);
    return 0;
}

int jscan_check_items(const char *p, size_t len, const jscan_items *h, unsigned want, unsigned *notes) {
    char first = jscan_first(p, len);
    unsigned n = 0;
    int rc = first == '[' || first == '{' ? jscan_top(p, len, first, first == '{' ? h->top_fn : NULL, NULL, h->arg,
                                                      NULL, want, &n, NULL, NULL, h)
                                          : jscan_top(p, len, 0, NULL, NULL, NULL, NULL, want, &n, NULL, NULL, NULL);
    if (notes) *notes = n;
    return rc;
}

char jscan_first(const char *p, size_t len) {
    jscan s;
    s.p = s.start = p;
    s.end = p + len;
    s.want = 0;
    jscan_ws(&s);
    return s.p < s.end ? *s.p : '\0';
}

int jscan_array_trusted(const char *p, size_t len, jscan_elem_fn fn, void *arg) {
    return jscan_trusted(p, len, '[', NULL, fn, arg);
}

/* ---- canonical text of validated JSON ------------------------------------ */

/* One decoded code point (never 0: such text carries a JANSSON note): as
 * UTF-8 when decoding, else as json_text_string() writes it. */
static void jscan_put_cp(sbuf *out, unsigned cp, int decode) {
    char u[4];
    size_t n;
    if (cp < 0x80) u[0] = (char)cp, n = 1;
    else if (cp < 0x800) u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3F)), u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    else
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3F)), u[2] = (char)(0x80 | (cp >> 6 & 0x3F)),
        u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    if (decode || (cp >= 0x20 && cp != '"' && cp != '\\')) sbuf_add(out, u, n);
    else json_text_escape_char(out, (unsigned char)cp);
}

/* The validated string at p ('"'): decoded, or re-escaped with its quotes.
 * Returns the position after its closing quote. */
static const char *jscan_put_string(sbuf *out, const char *p, const char *end, int decode) {
    const char *run = ++p;
    if (!decode) sbuf_addc(out, '"');
    while (p < end && *p != '"') {
        if (*p != '\\') {
            p++;
            continue;
        }
        sbuf_add(out, run, (size_t)(p - run));
        char e = p[1];
        unsigned cp;
        p += 2;
        switch (e) {
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            cp = end - p >= 4 ? jscan_hexval(p) : 0xFFFD;
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                unsigned lo = jscan_hexval(p + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00), p += 6;
            }
            break;
        default: cp = (unsigned char)e; /* " \ / */
        }
        jscan_put_cp(out, cp, decode);
        run = p;
    }
    if (p > end) p = end;
    sbuf_add(out, run, (size_t)(p - run));
    if (!decode) sbuf_addc(out, '"');
    return p < end ? p + 1 : end;
}

void jscan_string_decode(sbuf *out, const char *p, size_t len) {
    if (len && *p == '"') jscan_put_string(out, p, p + len, 1);
}

static int jscan_numch(char c) { return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'; }

void jscan_canonical(sbuf *out, const char *p, size_t len) {
    const char *end = p + len;
    while (p < end) {
        const char *b = p;
        char c = *p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            p++;
        } else if (c == '"') {
            p = jscan_put_string(out, p, end, 0);
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            int real = 0;
            while (p < end && jscan_numch(*p)) real |= *p == '.' || *p == 'e' || *p == 'E', p++;
            size_t n = (size_t)(p - b);
            if (!real) {
                if (n == 2 && b[0] == '-' && b[1] == '0') sbuf_addc(out, '0');
                else sbuf_add(out, b, n);
            } else {
                char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
                if (!buf) {
                    sbuf_add(out, b, n); /* cannot happen silently: the sbuf fails on */
                    out->failed = 1;     /* out of memory the same way */
                    continue;
                }
                memcpy(buf, b, n);
                buf[n] = '\0';
                json_text_real(out, strtod(buf, NULL));
                if (buf != small) free(buf);
            }
        } else { /* structure and literals: copied */
            while (p < end && !(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '"' || *p == '-' ||
                                (*p >= '0' && *p <= '9')))
                p++;
            sbuf_add(out, b, (size_t)(p - b));
        }
    }
}
