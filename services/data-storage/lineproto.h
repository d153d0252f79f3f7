/* lineproto.h -- InfluxDB line protocol and InfluxQL literals, escaped exactly.
 *
 * Why a module of its own: one wrong escape and InfluxDB either rejects the
 * line (the event is dead-lettered) or, worse, stores a different tag or field
 * than was sent, or an InfluxQL query can be injected through an entity id.
 * These rules were checked against a real influxd 1.6.7:
 *  - measurement: escape ',' and ' '; CR/LF become ' ' and a backslash
 *    before ',', ' ', CR/LF or the end becomes '/' (neither can be carried).
 *  - tag keys/values: escape ',', '=' and ' ' with a backslash. InfluxDB 1.x
 *    does NOT unescape "\\" in tags (it stores both backslashes) and rejects a
 *    tag value ending in a backslash; newlines end the line. So a tag holds the
 *    "tag form" of a value: '\' becomes '/', CR/LF/TAB become ' '. Tags are only
 *    used to filter; the exact value is always in the "record" field, and
 *    queries compare against the tag form of the filter value. (Real HA entity
 *    ids are [a-z0-9_.] and never contain these characters.)
 *  - string field values: escape '"' and '\'; newlines are allowed inside the
 *    quotes.
 *  - float fields: shortest round-trip decimal; never NaN/Inf.
 *  - InfluxQL string literals: single quotes, escape '\' and '\'' (and
 *    newline as \n). */
#ifndef HOMEIQ_LINEPROTO_H
#define HOMEIQ_LINEPROTO_H

#include <stddef.h>
#include "sbuf.h"

/* Appends the measurement name, escaped. */
void lineproto_measurement(sbuf *b, const char *name);
/* Appends a tag key or value: the tag form of `s`, escaped. */
void lineproto_tag(sbuf *b, const char *s);
/* Appends the tag form of `s` unescaped (what InfluxDB stores). */
void lineproto_tag_form(sbuf *b, const char *s);
/* Appends a string field value with its quotes: "..." */
void lineproto_field_string(sbuf *b, const char *s, size_t n);
/* Appends a float field value; -1 (nothing appended) when not finite. */
int lineproto_field_float(sbuf *b, double v);

/* Appends an InfluxQL string literal with its quotes: '...' */
void influxql_string(sbuf *b, const char *s);
/* Appends an InfluxQL identifier in double quotes: "..." */
void influxql_ident(sbuf *b, const char *s);

#endif
