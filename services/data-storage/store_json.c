/* store_json.c -- see store_json.h. */
#include "store_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void store_json_string(sbuf *out, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
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
    sbuf_add(out, s + n - run, run);
    sbuf_addc(out, '"');
}

void store_json_real(sbuf *out, double v) {
    char buf[40];
    if (!isfinite(v)) { /* not representable in JSON; jansson never produces it */
        sbuf_adds(out, "null");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    sbuf_adds(out, buf);
    if (!strpbrk(buf, ".eEn")) sbuf_adds(out, ".0"); /* keep it a real on re-read */
}

void store_json_dump(const json_t *j, sbuf *out) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        int first = 1;
        sbuf_addc(out, '{');
        json_object_foreach((json_t *)j, k, v) {
            if (!first) sbuf_addc(out, ',');
            first = 0;
            store_json_string(out, k, strlen(k));
            sbuf_addc(out, ':');
            store_json_dump(v, out);
        }
        sbuf_addc(out, '}');
        break;
    }
    case JSON_ARRAY: {
        sbuf_addc(out, '[');
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (i) sbuf_addc(out, ',');
            store_json_dump(json_array_get(j, i), out);
        }
        sbuf_addc(out, ']');
        break;
    }
    case JSON_STRING: store_json_string(out, json_string_value(j), json_string_length(j)); break;
    case JSON_INTEGER: sbuf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(j)); break;
    case JSON_REAL: store_json_real(out, json_real_value(j)); break;
    case JSON_TRUE: sbuf_adds(out, "true"); break;
    case JSON_FALSE: sbuf_adds(out, "false"); break;
    case JSON_NULL: sbuf_adds(out, "null"); break;
    }
}
