/* json_text.c -- see json_text.h. */
#include "json_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void json_text_escape_char(sbuf *out, unsigned char c) {
    static const char hex[] = "0123456789abcdef";
    switch (c) {
    case '"': sbuf_add(out, "\\\"", 2); break;
    case '\\': sbuf_add(out, "\\\\", 2); break;
    case '\n': sbuf_add(out, "\\n", 2); break;
    case '\r': sbuf_add(out, "\\r", 2); break;
    case '\t': sbuf_add(out, "\\t", 2); break;
    case '\b': sbuf_add(out, "\\b", 2); break;
    case '\f': sbuf_add(out, "\\f", 2); break;
    default: {
        char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        sbuf_add(out, u, 6);
    }
    }
}

void json_text_string(sbuf *out, const char *s, size_t n) {
    sbuf_addc(out, '"');
    size_t run = 0; /* bytes copied verbatim, flushed in one append */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        sbuf_add(out, s + i - run, run);
        run = 0;
        json_text_escape_char(out, c);
    }
    sbuf_add(out, s + n - run, run);
    sbuf_addc(out, '"');
}

size_t json_text_utf8_len(const unsigned char *u, size_t left) {
    unsigned c = u[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 0;
    if (left < n || u[1] < lo || u[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (u[i] < 0x80 || u[i] > 0xBF) return 0;
    return n;
}

int json_text_utf8_prefix(const char *s, size_t len, size_t max) {
    if (len <= max) return (int)len;
    size_t n = max;
    /* back up over continuation bytes to the start of the cut sequence */
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    return (int)n;
}

/* Appends v as a decimal integer. */
static void json_text_int(sbuf *out, long long v) {
    char buf[24], *p = buf + sizeof buf;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do *--p = (char)('0' + u % 10); while (u /= 10);
    if (v < 0) *--p = '-';
    sbuf_add(out, p, (size_t)(buf + sizeof buf - p));
}

/* The common case without printf: v is the double nearest to a decimal m/10^k
 * with at most 6 decimals and 15 significant digits, within printf's %g fixed
 * range. Then "%.15g" prints exactly that decimal (DBL_DIG is 15) and it reads
 * back as v, so this is the text the general loop below would produce.
 * 0 when written, -1 to take the general path. */
static int json_text_real_short(sbuf *out, double v) {
    static const double pow10[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
    double a = fabs(v);
    if (!(a >= 1e-4 && a < 1e15)) return -1;
    for (int k = 0; k <= 6; k++) {
        double scaled = a * pow10[k];
        if (scaled >= 1e15) return -1;
        long long m = llround(scaled);
        if ((double)m / pow10[k] != a) continue; /* exact division: the value of the decimal text */
        long long ip = m / (long long)pow10[k], frac = m % (long long)pow10[k];
        if (v < 0) sbuf_addc(out, '-');
        json_text_int(out, ip);
        sbuf_addc(out, '.');
        if (k == 0) {
            sbuf_addc(out, '0');
            return 0;
        }
        char digits[8];
        for (int i = k - 1; i >= 0; i--) digits[i] = (char)('0' + frac % 10), frac /= 10;
        sbuf_add(out, digits, (size_t)k); /* no trailing zero: k is the smallest that fits */
        return 0;
    }
    return -1;
}

void json_text_real(sbuf *out, double v) {
    char buf[40];
    if (!isfinite(v)) { /* not representable in JSON; jansson never produces it */
        sbuf_adds(out, "null");
        return;
    }
    if (v == 0) { /* what the loop below prints for it, without printf */
        sbuf_adds(out, signbit(v) ? "-0.0" : "0.0");
        return;
    }
    if (json_text_real_short(out, v) == 0) return;
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    sbuf_adds(out, buf);
    if (!strpbrk(buf, ".eEn")) sbuf_adds(out, ".0"); /* keep it a real on re-read */
}

void json_text_dump(const json_t *j, sbuf *out) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        int first = 1;
        sbuf_addc(out, '{');
        json_object_foreach((json_t *)j, k, v) {
            if (!first) sbuf_addc(out, ',');
            first = 0;
            json_text_string(out, k, strlen(k));
            sbuf_addc(out, ':');
            json_text_dump(v, out);
        }
        sbuf_addc(out, '}');
        break;
    }
    case JSON_ARRAY: {
        sbuf_addc(out, '[');
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (i) sbuf_addc(out, ',');
            json_text_dump(json_array_get(j, i), out);
        }
        sbuf_addc(out, ']');
        break;
    }
    case JSON_STRING: json_text_string(out, json_string_value(j), json_string_length(j)); break;
    case JSON_INTEGER: json_text_int(out, (long long)json_integer_value(j)); break;
    case JSON_REAL: json_text_real(out, json_real_value(j)); break;
    case JSON_TRUE: sbuf_adds(out, "true"); break;
    case JSON_FALSE: sbuf_adds(out, "false"); break;
    case JSON_NULL: sbuf_adds(out, "null"); break;
    }
}
