/* fuzz_lineproto.c -- data-storage's InfluxDB line protocol escapes
 * (lineproto.c) on arbitrary text: a line built from a measurement, one tag
 * and a string and a float field is read back by a reader that follows
 * InfluxDB 1.x's rules (measurement: '\,' '\ '; tags: '\,' '\=' '\ ', no
 * unescaping of '\\'; string fields: '\"' '\\'), and what it reads must be
 * what was meant: the measurement, the tag form of the tag (lineproto.h),
 * the exact string, the float to the bit. Input: measurement '\n' tag '\n'
 * string field (rest); a measurement holding CR or LF is skipped (no line
 * protocol can carry it; see tests/fuzz/README.md). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lineproto.h"
#include "sbuf.h"

static void die(const char *what, const char *line) {
    fprintf(stderr, "lineproto: %s\nline: %.400s\n", what, line);
    abort();
}

/* Reads up to an unescaped byte of `stops` (escapes: `esc`), unescaping them. */
static const char *lp_read(const char *p, const char *end, const char *stops, const char *esc, sbuf *out) {
    while (p < end && !strchr(stops, *p)) {
        if (*p == '\\' && p + 1 < end && strchr(esc, p[1])) p++;
        if (*p == '\n') return p; /* a line ends here whatever came before */
        sbuf_addc(out, *p++);
    }
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *d = (const char *)data, *end = d + size;
    if (memchr(d, '\0', size)) return 0; /* C strings: the callers never hold NUL */
    const char *nl1 = memchr(d, '\n', size);
    if (!nl1) return 0;
    const char *nl2 = memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1));
    if (!nl2) return 0;
    char *meas = strndup(d, (size_t)(nl1 - d)), *tag = strndup(nl1 + 1, (size_t)(nl2 - nl1 - 1));
    size_t slen = (size_t)(end - nl2 - 1);
    char *str = strndup(nl2 + 1, slen);
    double v = 0;
    memcpy(&v, data, size >= sizeof v ? sizeof v : 0);
    if (!*meas || strpbrk(meas, "\r\n") || !*tag) goto out;
    sbuf line, tf, m, t, s;
    sbuf_init(&line), sbuf_init(&tf), sbuf_init(&m), sbuf_init(&t), sbuf_init(&s);
    lineproto_measurement(&line, meas);
    sbuf_addc(&line, ',');
    sbuf_adds(&line, "k=");
    lineproto_tag(&line, tag);
    sbuf_adds(&line, " s=");
    lineproto_field_string(&line, str, slen);
    int has_f = lineproto_field_float(&tf, v) == 0;
    if (has_f != (isfinite(v) != 0)) die("a finite float refused or a non-finite one written", tf.data ? tf.data : "");
    sbuf_addc(&line, '\0');
    const char *p = line.data, *le = line.data + line.len - 1;
    p = lp_read(p, le, ", ", ", ", &m);
    sbuf_addc(&m, '\0');
    if (p >= le || *p != ',' || strcmp(m.data, meas) != 0) die("measurement not read back", line.data);
    if (strncmp(p, ",k=", 3) != 0) die("tag key not where expected", line.data);
    p = lp_read(p + 3, le, ", ", ",= ", &t);
    sbuf_addc(&t, '\0');
    sbuf want;
    sbuf_init(&want);
    lineproto_tag_form(&want, tag);
    sbuf_addc(&want, '\0');
    if (strcmp(t.data, want.data) != 0) die("tag not read back as its tag form", line.data);
    if (t.len > 1 && t.data[t.len - 2] == '\\') die("tag value ends in a backslash (influxd refuses it)", line.data);
    if (strncmp(p, " s=\"", 4) != 0) die("string field not where expected", line.data);
    p += 4;
    while (p < le && *p != '"') {
        if (*p == '\\' && p + 1 < le && (p[1] == '"' || p[1] == '\\')) p++;
        sbuf_addc(&s, *p++);
    }
    if (p >= le || p + 1 != le) die("string field not closed at the end of the line", line.data);
    if (s.len != slen || (slen && memcmp(s.data, str, slen) != 0)) die("string field not read back", line.data);
    if (has_f) {
        sbuf_addc(&tf, '\0');
        if (strtod(tf.data, NULL) != v) die("float not read back exactly", tf.data);
    }
    sbuf_free(&line), sbuf_free(&tf), sbuf_free(&m), sbuf_free(&t), sbuf_free(&s), sbuf_free(&want);
out:
    free(meas);
    free(tag);
    free(str);
    return 0;
}
