/* store_text.h -- builds a store_batch straight from a POST body's text.
 *
 * Why: building a jansson tree of a 1,000-event body, checking it, and dumping
 * every record back to text cost about 200,000 instructions per event -- four
 * fifths of data-storage's CPU. This module reads the body once, byte by byte,
 * and writes each record's stored text (the exact text json_text_dump would
 * produce from the tree: compact, same escapes, same numbers, minus event_id
 * and stored_at) while it picks up the few fields storage needs.
 *
 * It handles the common case only: {"events":[...]} (with an optional empty
 * "dead_letters") or a bare array, every event valid, nothing unusual. For
 * anything else -- malformed JSON, an invalid event, duplicate keys, \u0000,
 * integers beyond 18 digits, deep nesting, dead letters to store -- it declines
 * and the caller takes the general path (jansson), which owns every error
 * message and edge case. So behaviour is the general path's, only cheaper.
 *
 * Records are not kept as trees (item->record is NULL), so only backends that
 * need nothing but the item fields and text may use it (store_ops.text_batches). */
#ifndef HOMEIQ_STORE_TEXT_H
#define HOMEIQ_STORE_TEXT_H

#include "store.h"

#include <stddef.h>

/* 0: *b is ready (caller frees it with store_batch_free);
 * 1: declined, *b is empty -- use the general path;
 * -1: out of memory, *b is empty. */
int store_text_prepare(const char *text, size_t len, long max_batch, store_batch *b);

#endif
