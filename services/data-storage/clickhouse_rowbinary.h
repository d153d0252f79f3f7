/* clickhouse_rowbinary.h -- ClickHouse's RowBinary input format, for the events INSERT.
 *
 * Why: JSONEachRow made both sides pay for the record twice: data-storage escaped
 * every quote of each ~1 KB record into a JSON string, and clickhouse-server
 * unescaped it again, per event. RowBinary carries each string as a length and its
 * bytes (the record as stored, untouched), numbers as little-endian integers: the
 * cheapest input ClickHouse 18.16 and current releases both read. The INSERT names
 * its columns, so the order here is the statement's, not the table's.
 *
 * Ownership: appends to a caller's sbuf (binary: use its len, not strlen). */
#ifndef HOMEIQ_CLICKHOUSE_ROWBINARY_H
#define HOMEIQ_CLICKHOUSE_ROWBINARY_H

#include "sbuf.h"

#include <stddef.h>
#include <stdint.h>

/* String: LEB128 length, then the bytes. */
void ch_rb_string(sbuf *b, const char *p, size_t n);
/* A JSON string value's text ("..." with escapes) as a String, decoded; anything
 * else (null, a number, absent: p NULL) as "". */
void ch_rb_json_string(sbuf *b, const char *p, size_t n);
/* Array(String): count, then each string (ch_rb_string). */
void ch_rb_count(sbuf *b, uint64_t n);
void ch_rb_u32(sbuf *b, uint32_t v);
void ch_rb_u64(sbuf *b, uint64_t v);
void ch_rb_i64(sbuf *b, int64_t v);

#endif
