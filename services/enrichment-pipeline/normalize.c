/* normalize.c -- see normalize.h. The number grammar is checked by hand
 * before strtod() so that C-only extensions strtod accepts ("0x10", "inf",
 * "nan(...)") never pass, and PEP 515 underscores (which Python accepts and
 * strtod does not) do. The process never calls setlocale(), so strtod's
 * decimal point is '.'. */
#include "normalize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Longer numeric states than this are not numbers (HA states are <= 255 chars). */
#define NORMALIZE_NUMBER_MAX 300

static int normalize_is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int normalize_is_digit(char c) { return c >= '0' && c <= '9'; }

/* Copies digits [0-9] with PEP 515 underscores ("1_000") from s[*i] to buf,
 * dropping the underscores. Returns the number of digits (0 = none). */
static size_t normalize_digits(const char *s, size_t len, size_t *i, char *buf, size_t *b) {
    size_t n = 0;
    while (*i < len) {
        char c = s[*i];
        if (normalize_is_digit(c)) {
            buf[(*b)++] = c;
            n++;
            (*i)++;
        } else if (c == '_' && n > 0 && *i + 1 < len && normalize_is_digit(s[*i + 1])) {
            (*i)++;
        } else {
            break;
        }
    }
    return n;
}

/* buf (sign, digits, at most one '.', no exponent) as a double without
 * strtod when it has at most 15 significant digits and 22 decimals: then
 * m / 10^k is one correctly rounded division of two exact doubles, which is
 * strtod's answer (Clinger's fast path). 0, or -1 for strtod. */
static int normalize_decimal(const char *p, double *out) {
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    int neg = *p == '-', digits = 0, decimals = -1;
    unsigned long long m = 0;
    if (*p == '-' || *p == '+') p++;
    for (; *p; p++) {
        if (*p == '.') {
            decimals = 0;
            continue;
        }
        if (*p < '0' || *p > '9') return -1; /* an exponent */
        if ((digits || *p != '0') && ++digits > 15) return -1;
        m = m * 10 + (unsigned long long)(*p - '0');
        if (decimals >= 0 && ++decimals > 22) return -1;
    }
    double d = (double)m / pow10[decimals > 0 ? decimals : 0];
    *out = neg ? -d : d;
    return 0;
}

int normalize_number(const char *s, size_t len, double *out) {
    size_t start = 0, end = len;
    while (start < end && normalize_is_space(s[start])) start++;
    while (end > start && normalize_is_space(s[end - 1])) end--;
    if (end == start || end - start > NORMALIZE_NUMBER_MAX) return -1;

    char buf[NORMALIZE_NUMBER_MAX + 1];
    size_t i = start, b = 0;
    if (s[i] == '+' || s[i] == '-') buf[b++] = s[i++];
    size_t mantissa = normalize_digits(s, end, &i, buf, &b);
    if (i < end && s[i] == '.') {
        buf[b++] = s[i++];
        mantissa += normalize_digits(s, end, &i, buf, &b);
    }
    if (mantissa == 0) return -1; /* also rejects "inf", "nan", "." */
    if (i < end && (s[i] == 'e' || s[i] == 'E')) {
        buf[b++] = s[i++];
        if (i < end && (s[i] == '+' || s[i] == '-')) buf[b++] = s[i++];
        if (normalize_digits(s, end, &i, buf, &b) == 0) return -1;
    }
    if (i != end) return -1; /* "21,5", "0x10", "5 kWh" ... */
    buf[b] = '\0';

    double d;
    if (normalize_decimal(buf, out) == 0) return 0;
    d = strtod(buf, NULL);
    if (!isfinite(d)) return -1;
    *out = d;
    return 0;
}

typedef struct normalize_binary_state {
    const char *state;
    double value;
} normalize_binary_state;

/* HA's state_as_number() table (homeassistant/helpers/state.py), minus
 * "unknown" -> 0: an unknown state is not a reading of zero. */
static const normalize_binary_state normalize_binary_states[] = {
    {"on", 1}, {"off", 0},
    {"open", 1}, {"closed", 0},
    {"home", 1}, {"not_home", 0},
    {"locked", 1}, {"unlocked", 0},
    {"above_horizon", 1}, {"below_horizon", 0},
};

int normalize_binary(const char *s, size_t len, double *out) {
    for (size_t i = 0; i < sizeof normalize_binary_states / sizeof normalize_binary_states[0]; i++) {
        const char *st = normalize_binary_states[i].state;
        if (strlen(st) == len && memcmp(st, s, len) == 0) {
            *out = normalize_binary_states[i].value;
            return 0;
        }
    }
    return -1;
}

int normalize_value(const char *s, size_t len, double *out) {
    if (normalize_number(s, len, out) == 0) return 0;
    return normalize_binary(s, len, out);
}
