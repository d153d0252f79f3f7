/* clickhouse_rowbinary.c -- see clickhouse_rowbinary.h. */
#include "clickhouse_rowbinary.h"

#include <jansson.h>
#include <string.h>

void ch_rb_count(sbuf *b, uint64_t n) {
    do {
        unsigned char c = (unsigned char)(n & 0x7f);
        n >>= 7;
        if (n) c |= 0x80;
        sbuf_addc(b, (char)c);
    } while (n);
}

void ch_rb_string(sbuf *b, const char *p, size_t n) {
    ch_rb_count(b, n);
    if (n) sbuf_add(b, p, n);
}

void ch_rb_json_string(sbuf *b, const char *p, size_t n) {
    if (!p || n < 2 || p[0] != '"') {
        ch_rb_count(b, 0);
        return;
    }
    if (!memchr(p, '\\', n)) { /* the common case: the bytes between the quotes */
        ch_rb_string(b, p + 1, n - 2);
        return;
    }
    json_t *j = json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!json_is_string(j)) {
        json_decref(j);
        ch_rb_count(b, 0);
        return;
    }
    ch_rb_string(b, json_string_value(j), json_string_length(j));
    json_decref(j);
}

static void ch_rb_le(sbuf *b, uint64_t v, int bytes) {
    char out[8];
    for (int i = 0; i < bytes; i++) out[i] = (char)((v >> (8 * i)) & 0xff);
    sbuf_add(b, out, (size_t)bytes);
}

void ch_rb_u32(sbuf *b, uint32_t v) { ch_rb_le(b, v, 4); }
void ch_rb_u64(sbuf *b, uint64_t v) { ch_rb_le(b, v, 8); }
void ch_rb_i64(sbuf *b, int64_t v) { ch_rb_le(b, (uint64_t)v, 8); }
