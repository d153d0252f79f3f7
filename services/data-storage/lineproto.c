/* lineproto.c -- see lineproto.h. */
#include "lineproto.h"
#include "json_text.h"

#include <math.h>
#include <string.h>

/* The measurement form of name[i]: CR/LF cannot be carried (they end the
 * line): ' '; a backslash that would escape the next byte of the line (our
 * escape of ',' or ' ', or the ',' after the name) cannot be written either
 * (influxd does not unescape "\\"): '/'. Found by tests/fuzz/fuzz_lineproto. */
static char lineproto_measurement_char(const char *p) {
    if (*p == '\n' || *p == '\r') return ' ';
    if (*p == '\\' && (p[1] == '\0' || p[1] == ',' || p[1] == ' ' || p[1] == '\n' || p[1] == '\r')) return '/';
    return *p;
}

void lineproto_measurement(sbuf *b, const char *name) {
    for (const char *p = name; *p; p++) {
        char c = lineproto_measurement_char(p);
        if (c == ',' || c == ' ') sbuf_addc(b, '\\');
        sbuf_addc(b, c);
    }
}

static char lineproto_tag_char(char c) {
    if (c == '\\') return '/';
    if (c == '\n' || c == '\r' || c == '\t') return ' ';
    return c;
}

void lineproto_tag(sbuf *b, const char *s) {
    for (const char *p = s; *p; p++) {
        char c = lineproto_tag_char(*p);
        if (c == ',' || c == '=' || c == ' ') sbuf_addc(b, '\\');
        sbuf_addc(b, c);
    }
}

void lineproto_tag_form(sbuf *b, const char *s) {
    for (const char *p = s; *p; p++) sbuf_addc(b, lineproto_tag_char(*p));
}

void lineproto_field_string(sbuf *b, const char *s, size_t n) {
    sbuf_addc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '"' && s[i] != '\\') {
            run++;
            continue;
        }
        sbuf_add(b, s + i - run, run);
        run = 0;
        sbuf_addc(b, '\\');
        sbuf_addc(b, s[i]);
    }
    sbuf_add(b, s + n - run, run);
    sbuf_addc(b, '"');
}

int lineproto_field_float(sbuf *b, double v) {
    if (!isfinite(v)) return -1;
    json_text_real(b, v);
    return 0;
}

void influxql_string(sbuf *b, const char *s) {
    sbuf_addc(b, '\'');
    for (const char *p = s; *p; p++) {
        if (*p == '\n') {
            sbuf_add(b, "\\n", 2);
            continue;
        }
        if (*p == '\\' || *p == '\'') sbuf_addc(b, '\\');
        sbuf_addc(b, *p);
    }
    sbuf_addc(b, '\'');
}

void influxql_ident(sbuf *b, const char *s) {
    sbuf_addc(b, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '\n') {
            sbuf_add(b, "\\n", 2);
            continue;
        }
        if (*p == '\\' || *p == '"') sbuf_addc(b, '\\');
        sbuf_addc(b, *p);
    }
    sbuf_addc(b, '"');
}
