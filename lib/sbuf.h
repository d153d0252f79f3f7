/* sbuf.h -- a growable byte buffer for building SQL-free text: line protocol,
 * InfluxQL, JSON answers.
 *
 * Why: every backend builds long strings (a 10,000-line write, a 10,000-row
 * answer); one tiny append-only buffer with a sticky out-of-memory flag keeps
 * those builders free of per-call error checks: check sbuf_failed() once.
 * (In lib/ since enrichment builds its request to storage with it too.) */
#ifndef HOMEIQ_SBUF_H
#define HOMEIQ_SBUF_H

#include <stddef.h>
#include <string.h>

typedef struct sbuf {
    char *data;     /* always NUL-terminated when len > 0 or after sbuf_init */
    size_t len, cap;
    int failed;     /* an allocation failed; contents are incomplete */
} sbuf;

void sbuf_init(sbuf *b);
void sbuf_free(sbuf *b);
void sbuf_reset(sbuf *b);                 /* len = 0, keeps memory */
/* sbuf_add when the room has to be made first (sbuf_add's slow half). */
void sbuf_add_grow(sbuf *b, const char *s, size_t n);
/* Inline: the record builders append short pieces (keys, values) many times
 * per event; a call, a strlen and a reserve check each cost more than the copy. */
static inline void sbuf_add(sbuf *b, const char *s, size_t n) {
    if (b->len + n < b->cap && !b->failed) {
        if (n) memcpy(b->data + b->len, s, n); /* s may be NULL when n is 0 */
        b->len += n;
        b->data[b->len] = '\0';
    } else {
        sbuf_add_grow(b, s, n);
    }
}
static inline void sbuf_adds(sbuf *b, const char *s) { sbuf_add(b, s, strlen(s)); }
/* Room for `extra` more bytes in one allocation (a builder that knows its size
 * avoids the doubling's copies). 0, or -1 (and failed). */
int sbuf_reserve(sbuf *b, size_t extra);
/* Inline: builders append single characters a lot. */
static inline void sbuf_addc(sbuf *b, char c) {
    if (b->len + 2 <= b->cap && !b->failed) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
    } else {
        sbuf_add(b, &c, 1);
    }
}
void sbuf_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the contents to the caller (malloc'd, NUL-terminated) and resets b.
 * NULL when an allocation failed. */
char *sbuf_take(sbuf *b, size_t *len);
static inline int sbuf_failed(const sbuf *b) { return b->failed; }

#endif
