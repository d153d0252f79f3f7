/* json_scan.h -- a validating JSON scanner that finds the byte spans of values
 * without building a tree.
 *
 * Why: every HA event message is {"type":"event","event":{...},"id":N} (or an
 * array of such messages when coalescing is on). Ingestion spools the "event"
 * member exactly as received, so it needs where that member starts and ends,
 * not a parsed document: parsing with jansson and printing it again would cost
 * ~25 us per 1 KB event and change the bytes. The scanner still checks the
 * full JSON grammar (strings, escapes, UTF-8, numbers, literals, nesting), so
 * the spool never holds text that would make a whole forwarded batch invalid.
 */
#ifndef HOMEIQ_JSON_SCAN_H
#define HOMEIQ_JSON_SCAN_H

#include <stddef.h>

#define JSCAN_MAX_DEPTH 512

/* Called for each member of an object; key is raw (between the quotes, escapes
 * not decoded), val spans the value's text. Return non-zero to stop. */
typedef int (*jscan_member_fn)(const char *key, size_t klen, const char *val, size_t vlen, void *arg);
/* Called for each element of an array. Return non-zero to stop. */
typedef int (*jscan_elem_fn)(const char *val, size_t vlen, void *arg);

/* Validates one complete JSON text (surrounding whitespace allowed). 0 or -1;
 * on -1 *err_pos (may be NULL) is the byte offset of the problem. */
int jscan_validate(const char *p, size_t len, size_t *err_pos);

/* Iterates the members of the object that `p` holds (validated on the way).
 * 0 = all members seen (or fn stopped), -1 = not a valid object. */
int jscan_object(const char *p, size_t len, jscan_member_fn fn, void *arg);

/* Iterates the elements of the array that `p` holds. 0 or -1 like above. */
int jscan_array(const char *p, size_t len, jscan_elem_fn fn, void *arg);

/* The first non-whitespace byte of p, or '\0' when there is none. */
char jscan_first(const char *p, size_t len);

#endif
