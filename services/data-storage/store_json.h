/* store_json.h -- the exact text a record is stored as.
 *
 * Why: storage promises to return every field exactly as posted. jansson keeps
 * key order and string bytes, but prints reals with 17 digits (21.3 comes back
 * as 21.300000000000001). This serializer prints each real with the fewest
 * digits that read back to the same double, strings as UTF-8 (only '"', '\\'
 * and control characters escaped), so the stored text is compact, exact and
 * readable. */
#ifndef HOMEIQ_STORE_JSON_H
#define HOMEIQ_STORE_JSON_H

#include <jansson.h>
#include "sbuf.h"

/* Appends the compact JSON text of `j`. */
void store_json_dump(const json_t *j, sbuf *out);
/* Appends `s` (n bytes, UTF-8) as a quoted JSON string. */
void store_json_string(sbuf *out, const char *s, size_t n);
/* Appends the shortest text that reads back as `v` (always with '.' or 'e'). */
void store_json_real(sbuf *out, double v);

#endif
