/* store_text.h -- builds a store_batch straight from a POST body's text.
 *
 * Why: building a jansson tree of a 1,000-event body, checking it, and dumping
 * every record back to text cost about 200,000 instructions per event -- four
 * fifths of data-storage's CPU. This module reads the body once, byte by byte,
 * and writes each record's stored text (the exact text json_text_dump would
 * produce from the tree: compact, same escapes, same numbers, minus event_id
 * and stored_at) while it picks up the few fields storage needs.
 *
 * It handles the common case only: {"events":[...]} (with an optional
 * "dead_letters" array) or a bare array, nothing unusual. For anything else --
 * malformed JSON, duplicate keys, \u0000, integers beyond 18 digits, deep
 * nesting -- store_text_scan declines and the caller takes the general path
 * (jansson), which owns every error message and edge case; an event the text
 * path cannot take (invalid, unusual) makes store_text_prepare_range decline
 * its range, which the caller then reads with jansson event by event. So
 * behaviour is the general path's, only cheaper.
 *
 * In pieces (issue 15): store_text_scan validates the body once and notes
 * where each event is, without copying any; storage_api.c then prepares and
 * commits the events a range at a time, so the records' stored text exists
 * for one bounded piece at a time, never for the whole body.
 *
 * Records are not kept as trees (item->record is NULL), so only backends that
 * need nothing but the item fields and text may use it (store_ops.text_batches). */
#ifndef HOMEIQ_STORE_TEXT_H
#define HOMEIQ_STORE_TEXT_H

#include "store.h"

#include <stddef.h>

typedef struct store_text_span {
    size_t off, len;            /* in store_text_body.text */
} store_text_span;

/* What the body's one scan noted in an event (store_text.c): where the
 * members storage reads are, and whether its text is its record as it is. */
typedef struct store_text_note store_text_note;

/* A validated body (borrowed text) and where its parts are. */
typedef struct store_text_body {
    const char *text;
    size_t len;
    int canonical;              /* the text is already what json_text_dump() writes */
    store_text_span *ev;        /* each element of "events" (owned) */
    store_text_note *note;      /* the first nnote events' (owned), beside ev: at most the body's
                                   size in bytes and 8,192 events (store_text.c st_note_max) */
    size_t n, nnote;
    size_t nplain;              /* events whose text is their record (built from the scan's notes alone) */
    store_text_span dead;       /* the "dead_letters" array; len 0 = none */
    size_t ndead;
} store_text_body;

/* Validates text once and notes its events (at most max_batch), dead
 * letters and each event's members storage reads (issue 15: no event is
 * walked again unless its record differs from its text by more than the
 * whitespace between tokens -- escapes, numbers written otherwise, event_id /
 * stored_at / home_id members -- or it is past the notes' bound, see `note`
 * above). 0: *t is ready (store_text_body_free); 1: declined, use the
 * general path for the whole body; -1: out of memory. *t is empty unless 0. */
int store_text_scan(const char *text, size_t len, long max_batch, store_text_body *t);
void store_text_body_free(store_text_body *t);

/* Builds *b from events [from, to) of a scanned body; item indexes count from
 * 0 (the caller adds `from`). 0: *b is ready (store_batch_free); 1: declined,
 * *b is empty -- read these events with jansson; -1: out of memory. */
int store_text_prepare_range(const store_text_body *t, size_t from, size_t to, store_batch *b);

/* The whole body as one batch (the tests' and fuzzers' view of the text
 * path): 0 ready; 1 declined (also when it has dead letters to store); -1. */
int store_text_prepare(const char *text, size_t len, long max_batch, store_batch *b);

#endif
