/* pyval.c -- see pyval.h. */
#include "pyval.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- float() of a string ---------------------------------------------- */

/* Length of the UTF-8 whitespace character Python's str.strip()/float()
 * skips at s (n bytes left), or 0. */
static size_t pyval_space_len(const unsigned char *s, size_t n) {
    if (n >= 1 && ((s[0] >= 0x09 && s[0] <= 0x0d) || (s[0] >= 0x1c && s[0] <= 0x20))) return 1;
    if (n >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
    if (n >= 3 && s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80) return 3;             /* U+1680 */
    if (n >= 3 && s[0] == 0xe2 && s[1] == 0x80 &&
        (s[2] <= 0x8a || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf)) return 3;      /* U+2000-200A, 2028, 2029, 202F */
    if (n >= 3 && s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) return 3;             /* U+205F */
    if (n >= 3 && s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80) return 3;             /* U+3000 */
    return 0;
}

static int pyval_isdigit(char c) { return c >= '0' && c <= '9'; }

/* Copies s without its underscores into out (cap bytes); -1 when an
 * underscore is not between two digits (PEP 515) or the text is too long. */
static int pyval_strip_underscores(const char *s, size_t n, char *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_') {
            if (i == 0 || i + 1 >= n || !pyval_isdigit(s[i - 1]) || !pyval_isdigit(s[i + 1])) return -1;
            continue;
        }
        if (k + 1 >= cap) return -1;
        out[k++] = s[i];
    }
    out[k] = '\0';
    return 0;
}

/* [sign] (digits [. digits*] | . digits) [(e|E) [sign] digits] and nothing else. */
static int pyval_is_decimal(const char *p) {
    if (*p == '+' || *p == '-') p++;
    size_t intd = strspn(p, "0123456789");
    p += intd;
    size_t fracd = 0;
    if (*p == '.') {
        p++;
        fracd = strspn(p, "0123456789");
        p += fracd;
    }
    if (intd + fracd == 0) return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        size_t expd = strspn(p, "0123456789");
        if (expd == 0) return 0;
        p += expd;
    }
    return *p == '\0';
}

static int pyval_float_text(char *buf, const char *s, size_t n, double *out);

int pyval_float_str(const char *s, size_t n, double *out) {
    const unsigned char *u = (const unsigned char *)s;
    size_t l;
    while (n && (l = pyval_space_len(u, n)) > 0) u += l, n -= l;
    /* trailing whitespace: try each known length at the end */
    for (;;) {
        size_t cut = 0;
        for (size_t k = 1; k <= 3 && k <= n && !cut; k++)
            if (pyval_space_len(u + n - k, k) == k) cut = k;
        if (!cut) break;
        n -= cut;
    }
    if (n == 0 || memchr(u, '\0', n)) return -1;
    char small[128];
    char *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf) return -1;
    int rc = pyval_float_text(buf, (const char *)u, n, out);
    if (buf != small) free(buf);
    return rc;
}

/* float() of the stripped text s (n bytes) using buf (n + 1 bytes). */
static int pyval_float_text(char *buf, const char *s, size_t n, double *out) {
    if (pyval_strip_underscores(s, n, buf, n + 1) != 0) return -1;
    const char *p = buf;
    int neg = 0;
    if (*p == '+' || *p == '-') neg = *p++ == '-';
    if (!strcasecmp(p, "inf") || !strcasecmp(p, "infinity")) {
        *out = neg ? -INFINITY : INFINITY;
        return 0;
    }
    if (!strcasecmp(p, "nan")) {
        *out = neg ? -NAN : NAN;
        return 0;
    }
    if (!pyval_is_decimal(buf)) return -1;
    *out = strtod(buf, NULL); /* overflow: +-HUGE_VAL (inf), as Python */
    return 0;
}

int pyval_float(const json_t *v, double *out) {
    switch (json_typeof(v)) {
    case JSON_TRUE: *out = 1.0; return 0;
    case JSON_FALSE: *out = 0.0; return 0;
    case JSON_INTEGER: *out = (double)json_integer_value(v); return 0;
    case JSON_REAL: *out = json_real_value(v); return 0;
    case JSON_STRING: return pyval_float_str(json_string_value(v), json_string_length(v), out);
    default: return -1;
    }
}

/* ---- repr(float) -------------------------------------------------------- */

void pyval_repr_float(sbuf *b, double v) {
    if (isnan(v)) {
        sbuf_adds(b, "nan");
        return;
    }
    if (isinf(v)) {
        sbuf_adds(b, v < 0 ? "-inf" : "inf");
        return;
    }
    char buf[40];
    for (int prec = 0; prec <= 16; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    /* buf: [-]d[.ddd]e(+|-)XX */
    const char *p = buf;
    if (*p == '-') sbuf_addc(b, *p++);
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (pyval_isdigit(*p) && nd < 23) digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int exp = atoi(p + 1);
    if (exp >= -4 && exp < 16) {
        int decpt = exp + 1;
        if (decpt <= 0) {
            sbuf_adds(b, "0.");
            for (int i = 0; i < -decpt; i++) sbuf_addc(b, '0');
            sbuf_add(b, digits, (size_t)nd);
        } else if (decpt >= nd) {
            sbuf_add(b, digits, (size_t)nd);
            for (int i = nd; i < decpt; i++) sbuf_addc(b, '0');
            sbuf_adds(b, ".0");
        } else {
            sbuf_add(b, digits, (size_t)decpt);
            sbuf_addc(b, '.');
            sbuf_add(b, digits + decpt, (size_t)(nd - decpt));
        }
        return;
    }
    sbuf_addc(b, digits[0]);
    if (nd > 1) {
        sbuf_addc(b, '.');
        sbuf_add(b, digits + 1, (size_t)(nd - 1));
    }
    sbuf_printf(b, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
}

/* ---- repr(str) ---------------------------------------------------------- */

/* Decodes one UTF-8 character (jansson strings are valid UTF-8). */
static uint32_t pyval_utf8(const unsigned char *s, size_t n, size_t *len) {
    if (s[0] < 0x80 || n < 2) return *len = 1, s[0];
    if ((s[0] & 0xe0) == 0xc0) return *len = 2, ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
    if ((s[0] & 0xf0) == 0xe0 && n >= 3)
        return *len = 3, ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
    if (n >= 4)
        return *len = 4, ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
                         ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
    return *len = 1, s[0];
}

/* Not str.isprintable(): controls, separators other than ' ', format
 * characters, private use, noncharacters (see pyval.h for the limits). */
static int pyval_unprintable(uint32_t c) {
    static const uint32_t ranges[][2] = {
        {0x0000, 0x001f}, {0x007f, 0x00a0}, {0x00ad, 0x00ad}, {0x0600, 0x0605}, {0x061c, 0x061c},
        {0x06dd, 0x06dd}, {0x070f, 0x070f}, {0x08e2, 0x08e2}, {0x1680, 0x1680}, {0x180e, 0x180e},
        {0x2000, 0x200f}, {0x2028, 0x202f}, {0x205f, 0x2064}, {0x2066, 0x206f}, {0x3000, 0x3000},
        {0xd800, 0xf8ff}, {0xfeff, 0xfeff}, {0xfff9, 0xfffb}, {0xfffe, 0xffff}, {0x110bd, 0x110bd},
        {0x1d173, 0x1d17a}, {0xe0001, 0xe0001}, {0xe0020, 0xe007f}, {0xf0000, 0x10ffff},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (c >= ranges[i][0] && c <= ranges[i][1]) return 1;
    return (c & 0xfffe) == 0xfffe;
}

static void pyval_repr_str(sbuf *b, const char *s, size_t n) {
    char q = (memchr(s, '\'', n) && !memchr(s, '"', n)) ? '"' : '\'';
    sbuf_addc(b, q);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len;
        uint32_t c = pyval_utf8(u + i, n - i, &len);
        if (c == (uint32_t)q || c == '\\') {
            sbuf_addc(b, '\\');
            sbuf_addc(b, (char)c);
        } else if (c == '\t') {
            sbuf_adds(b, "\\t");
        } else if (c == '\n') {
            sbuf_adds(b, "\\n");
        } else if (c == '\r') {
            sbuf_adds(b, "\\r");
        } else if (pyval_unprintable(c)) {
            if (c <= 0xff) sbuf_printf(b, "\\x%02x", c);
            else if (c <= 0xffff) sbuf_printf(b, "\\u%04x", c);
            else sbuf_printf(b, "\\U%08x", c);
        } else {
            sbuf_add(b, s + i, len);
        }
        i += len;
    }
    sbuf_addc(b, q);
}

/* ---- str() / repr() of JSON values ----------------------------------------- */

static void pyval_repr(sbuf *b, const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_NULL: sbuf_adds(b, "None"); break;
    case JSON_TRUE: sbuf_adds(b, "True"); break;
    case JSON_FALSE: sbuf_adds(b, "False"); break;
    case JSON_INTEGER: sbuf_printf(b, "%lld", (long long)json_integer_value(v)); break;
    case JSON_REAL: pyval_repr_float(b, json_real_value(v)); break;
    case JSON_STRING: pyval_repr_str(b, json_string_value(v), json_string_length(v)); break;
    case JSON_ARRAY: {
        size_t i;
        json_t *e;
        sbuf_addc(b, '[');
        json_array_foreach((json_t *)v, i, e) {
            if (i) sbuf_adds(b, ", ");
            pyval_repr(b, e);
        }
        sbuf_addc(b, ']');
        break;
    }
    case JSON_OBJECT: {
        const char *k;
        size_t klen;
        json_t *e;
        int first = 1;
        void *tmp;
        sbuf_addc(b, '{');
        json_object_keylen_foreach_safe((json_t *)v, tmp, k, klen, e) {
            if (!first) sbuf_adds(b, ", ");
            first = 0;
            pyval_repr_str(b, k, klen);
            sbuf_adds(b, ": ");
            pyval_repr(b, e);
        }
        sbuf_addc(b, '}');
        break;
    }
    }
}

void pyval_str(sbuf *b, const json_t *v) {
    if (json_is_string(v)) sbuf_add(b, json_string_value(v), json_string_length(v));
    else pyval_repr(b, v);
}

/* ---- HA's digit tail ---------------------------------------------------- */

/* ^[^.]*\d+\.?\d+[^.]*$ : no dot and two adjacent digits, or exactly one dot
 * with a digit on each side. (Python's '$' also matches before a final '\n';
 * [^.] matches '\n' too, so that changes nothing.) */
int pyval_digit_tail(const char *s, size_t n, double *out) {
    const char *dot = memchr(s, '.', n);
    int match = 0;
    if (!dot) {
        for (size_t i = 0; i + 1 < n && !match; i++) match = pyval_isdigit(s[i]) && pyval_isdigit(s[i + 1]);
    } else {
        size_t d = (size_t)(dot - s);
        match = !memchr(dot + 1, '.', n - d - 1) && d > 0 && d + 1 < n && pyval_isdigit(s[d - 1]) &&
                pyval_isdigit(s[d + 1]);
    }
    if (!match) return 0;
    sbuf t;
    sbuf_init(&t);
    for (size_t i = 0; i < n; i++)
        if (pyval_isdigit(s[i]) || s[i] == '.') sbuf_addc(&t, s[i]);
    *out = t.data && !sbuf_failed(&t) ? strtod(t.data, NULL) : NAN; /* NAN: dropped as non-finite */
    sbuf_free(&t);
    return 1;
}
