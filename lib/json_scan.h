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
 *
 * Shared (lib/): enrichment reads HA events with it too. Its fast path needs to
 * know, besides validity, whether jansson would read a span differently from
 * its text and whether json_text would write it back byte for byte; the
 * *_notes / jscan_check variants report that (JSCAN_NOTE_*), at the cost of a
 * little work per string escape, number and key.
 */
#ifndef HOMEIQ_JSON_SCAN_H
#define HOMEIQ_JSON_SCAN_H

#include <stddef.h>

#include "event.h" /* EVENT_JSON_MAX_DEPTH */

struct sbuf;

#define JSCAN_MAX_DEPTH EVENT_JSON_MAX_DEPTH /* lib/event.h */

/* Notes: things seen in the text (only those asked for are looked for). */
#define JSCAN_NOTE_WS 1u         /* whitespace between tokens (json_text writes none) */
#define JSCAN_NOTE_ESCAPE 2u     /* a string escape json_text would write differently ("\/", "\u00e9") */
#define JSCAN_NOTE_KEY_ESCAPE 4u /* a key with any escape (raw key bytes != decoded key) */
#define JSCAN_NOTE_NUMBER 8u     /* a number json_text would print differently ("1e3", "-0", "7.50") */
#define JSCAN_NOTE_DUP_KEY 16u   /* an object repeats a key (or has too many keys to check) */
#define JSCAN_NOTE_JANSSON 32u   /* jansson would refuse it or read it specially: \u0000, a
                                    surrogate escape, an integer past 18 digits, a huge real */
#define JSCAN_NOTE_CANONICAL (JSCAN_NOTE_WS | JSCAN_NOTE_ESCAPE | JSCAN_NOTE_KEY_ESCAPE | JSCAN_NOTE_NUMBER | \
                              JSCAN_NOTE_DUP_KEY | JSCAN_NOTE_JANSSON)

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

/* Like jscan_validate / jscan_object / jscan_array, also reporting in *notes
 * the JSCAN_NOTE_* bits of `want` that occur anywhere inside (surrounding
 * whitespace excepted). With want = JSCAN_NOTE_CANONICAL and no note, the text
 * is exactly what json_text_dump() writes for jansson's tree of it. */
int jscan_check(const char *p, size_t len, unsigned want, unsigned *notes);
int jscan_object_notes(const char *p, size_t len, jscan_member_fn fn, void *arg, unsigned want, unsigned *notes);
int jscan_array_notes(const char *p, size_t len, jscan_elem_fn fn, void *arg, unsigned want, unsigned *notes);

/* jscan_validate, and also refuses what jansson (every other reader in
 * HomeIQ) cannot represent, so that text it accepts is read the same way by
 * every service: a real that overflows a double ("1e400"), a surrogate escape
 * that is not half of a pair ("\ud800"), "\u0000" in an object key. (\u0000
 * in a string value is fine: the services read with JSON_ALLOW_NUL; integers
 * beyond 64 bits are read as reals.) 0, or -1 with *err_pos and *why (a
 * static string; either may be NULL). */
int jscan_strict(const char *p, size_t len, size_t *err_pos, const char **why);

/* jscan_strict for one object or an array of objects (a WebSocket frame of HA
 * messages, coalesced or not), reporting in the same single pass: the members
 * of each object (obj_fn), the members of each object's member named nest_key
 * when that is an object (nest_fn: they come before obj_fn reports that
 * member), and each object or array element once it ended (end_fn, its span;
 * for a lone object the whole text). Callbacks' return values are ignored.
 * 0, or -1 with *err_pos and *why like jscan_strict; by then callbacks may
 * have run for what came before the problem (collect, act after success).
 * websocket-ingestion reads each event with it once (issue 15). */
typedef struct jscan_hooks {
    jscan_member_fn obj_fn, nest_fn;
    jscan_elem_fn end_fn;
    const char *nest_key;
    void *arg;
} jscan_hooks;
int jscan_strict_objects(const char *p, size_t len, const jscan_hooks *h, size_t *err_pos, const char **why);

/* One validating pass that also picks wanted members out of nested objects
 * (issue 15: enrichment reads each event once). The text is an array whose
 * elements are the items, or one object that is the single item. In each
 * item the members named by a tree of jscan_node are noted: a member whose
 * key a node lists gets its value's span in spans[slot], and when that value
 * is an object and the key has a child node, its members are looked up in the
 * child too. item_fn runs after each item with its span, the spans (cleared
 * again after the call), `unusual` (a listed key repeated in its object, or
 * any key with an escape in a listed object: the spans may not be what a
 * reader of the whole tree would pick) and the JSCAN_NOTE_* bits of `want`
 * found inside that item. 0, or -1 when the text is not valid (by then
 * item_fn may have run for the items before the problem: act after success);
 * *notes gets the notes of the whole text. */
typedef struct jscan_span {
    const char *p; /* NULL: absent */
    size_t n;
    int esc; /* a string with an escape */
} jscan_span;
typedef struct jscan_node jscan_node;
typedef struct jscan_node_key {
    const char *key;
    size_t klen;
    int slot;                /* index into spans, < JSCAN_COLLECT_SLOTS */
    const jscan_node *child; /* NULL: the value's members are not wanted */
} jscan_node_key;
struct jscan_node {
    const jscan_node_key *keys;
    int nkeys;
};
#define JSCAN_COLLECT_SLOTS 128
typedef void (*jscan_item_fn)(const char *val, size_t vlen, const jscan_span *spans, int unusual, unsigned notes,
                              void *arg);
typedef struct jscan_collect {
    const jscan_node *root;
    jscan_item_fn item_fn;
    void *arg;
    /* the scanner's: */
    jscan_span spans[JSCAN_COLLECT_SLOTS];
    unsigned char filled[JSCAN_COLLECT_SLOTS];
    int nfilled, unusual;
} jscan_collect;
int jscan_collect_items(const char *p, size_t len, jscan_collect *c, unsigned want, unsigned *notes);

/* One validating pass with notes over a batch body -- an array of items, or an
 * object whose member items_key is that array -- that reports what a reader of
 * the items needs, so no item is walked again (issue 15: data-storage reads
 * each event once): top_fn each member of a top-level object (after its
 * value was scanned), member_fn each member of each item that is an object
 * (raw key, value span), end_fn each item once it ended (its span and the
 * JSCAN_NOTE_* bits of `want` found inside it). A member callback returns 0
 * (non-zero: no more members of that object are reported; the scan goes on).
 * 0, or -1 when the text is not valid (callbacks may have run for
 * what came before the problem: act after success); *notes gets the notes of
 * the whole text. */
typedef void (*jscan_item_end_fn)(const char *val, size_t vlen, unsigned notes, void *arg);
typedef struct jscan_items {
    const char *items_key;
    jscan_member_fn top_fn, member_fn;
    jscan_item_end_fn end_fn;
    void *arg;
} jscan_items;
int jscan_check_items(const char *p, size_t len, const jscan_items *h, unsigned want, unsigned *notes);

/* jscan_object for text that one of the calls above already validated (a
 * member's span, say): nested values are skipped, not checked, which makes
 * finding a few members of a large object cheap. Invalid text gives garbage
 * spans, never a read outside [p, p+len). */
int jscan_object_trusted(const char *p, size_t len, jscan_member_fn fn, void *arg);

/* jscan_array for validated text, nested values skipped like above. */
int jscan_array_trusted(const char *p, size_t len, jscan_elem_fn fn, void *arg);

/* For text one of the calls above validated without a JSCAN_NOTE_JANSSON or
 * JSCAN_NOTE_DUP_KEY note: appends exactly what json_text_dump() writes for
 * jansson's tree of it -- no whitespace; strings decoded and re-escaped as
 * json_text_string() does; integers as written ("-0" is 0); reals re-printed
 * by json_text_real(). data-storage's text path builds stored records with
 * it, so no second JSON grammar is needed there. */
void jscan_canonical(struct sbuf *out, const char *p, size_t len);

/* The decoded bytes of a validated string value (p..p+len spans it, quotes
 * included), appended to out. */
void jscan_string_decode(struct sbuf *out, const char *p, size_t len);

/* Just past the end of the string starting at p ('"') in validated text (an
 * escaped quote does not end it); end when it does not end before. */
const char *jscan_string_end(const char *p, const char *end);

/* The first non-whitespace byte of p, or '\0' when there is none. */
char jscan_first(const char *p, size_t len);

#endif
