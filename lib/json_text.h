/* json_text.h -- compact JSON text from jansson values, fast and exact.
 *
 * Why: data-storage keeps each record as exactly this text, and enrichment
 * writes its request to storage with it (json_dumps cost a fifth of
 * enrichment's CPU: jansson escapes byte by byte through a callback). Storage
 * promises to return every field exactly as posted. jansson keeps
 * key order and string bytes, but prints reals with 17 digits (21.3 comes back
 * as 21.300000000000001). This serializer prints each real with the fewest
 * digits that read back to the same double, strings as UTF-8 (only '"', '\\'
 * and control characters escaped), so the stored text is compact, exact and
 * readable. */
#ifndef HOMEIQ_JSON_TEXT_H
#define HOMEIQ_JSON_TEXT_H

#include <jansson.h>
#include "sbuf.h"

/* Appends the compact JSON text of `j`. */
void json_text_dump(const json_t *j, sbuf *out);
/* Appends `s` (n bytes, UTF-8) as a quoted JSON string. */
void json_text_string(sbuf *out, const char *s, size_t n);
/* Appends the escape json_text_string() writes for c (a control character,
 * '"' or '\\'): the short forms, else \u00XX. */
void json_text_escape_char(sbuf *out, unsigned char c);
/* The length (2..4) of the valid UTF-8 sequence at p (p[0] >= 0x80, `left`
 * bytes available), or 0 when it is not one: strict, no overlongs, no
 * surrogates, at most U+10FFFF (what jansson and lib/json_scan accept). */
size_t json_text_utf8_len(const unsigned char *p, size_t left);
/* The longest prefix of s[0..len) of at most max bytes that does not cut a
 * UTF-8 sequence in two: for messages quoting user text with "%.*s", which
 * must stay valid UTF-8 to travel in JSON. */
int json_text_utf8_prefix(const char *s, size_t len, size_t max);
/* Appends the shortest text that reads back as `v` (always with '.' or 'e'). */
void json_text_real(sbuf *out, double v);

#endif
