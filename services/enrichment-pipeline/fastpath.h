/* fastpath.h -- enrich a request body straight from its text.
 *
 * Why: parsing each ~1 KB HA event into a jansson tree (and freeing it) was
 * ~70% of enrichment's CPU, yet a record needs only a dozen scalar members of
 * the event plus the attributes (or data) object, which storage gets as
 * compact JSON text anyway. This path scans the body once with the shared
 * validating scanner (lib/json_scan), picks the members out of the common
 * shape (HA event object, optionally in its WebSocket envelope) and writes the
 * record text directly, copying `attributes` / `data` verbatim when the scanner
 * says they are already exactly what json_text_dump would write, or leaving
 * out the whitespace between tokens when that is the only difference (so
 * spaced or pretty-printed JSON costs what compact JSON costs, issue 15).
 *
 * It must produce byte for byte the storage request of the jansson path
 * (batch_build + batch_storage_body); tests/enrichment/test_fastpath.c checks
 * that differentially. Anything unusual is left to jansson: a whole body it
 * cannot vouch for (invalid JSON, \u0000 or surrogate escapes, 64-bit integer
 * overflow, a repeated "events" key, not an event/array/{"events"} shape) is
 * declined, and single events that are not plain (flat form, escapes in
 * members it reads, repeated keys, non-canonical attributes, any event that
 * would be rejected) are parsed with jansson alone and go through enrich_event. */
#ifndef HOMEIQ_ENRICH_FASTPATH_H
#define HOMEIQ_ENRICH_FASTPATH_H

#include "batch.h"

#include <stddef.h>

#define FASTPATH_BUILT 0     /* *b holds the batch */
#define FASTPATH_DECLINED 1  /* use the jansson path for this body; *b untouched */
#define FASTPATH_TOO_MANY 2  /* more than max_batch events: b->n holds the count only */

/* Builds the batch of `body` (len bytes). One of FASTPATH_*, or -1 when out of memory. */
int fastpath_build(const char *body, size_t len, size_t max_batch, batch *b);

#endif
