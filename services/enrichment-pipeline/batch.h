/* batch.h -- one request's worth of events: enrich each, build the single
 * storage request, and map storage's per-record answer back to the positions
 * of the caller's input.
 *
 * Why its own module: the ack contract lives here. Every input position ends
 * up in exactly one place -- a record in storage's "events" (index map kept in
 * record_input) or a dead letter with its reason -- and the caller's answer is
 * built only from storage's 200 answer for this very batch. Pure (no I/O), so
 * the mapping is unit-tested without sockets. */
#ifndef HOMEIQ_ENRICH_BATCH_H
#define HOMEIQ_ENRICH_BATCH_H

#include "enrich.h"
#include "sbuf.h"

#include <stddef.h>

/* Records and dead letters are kept as the JSON text storage gets (json_text),
 * so the fast path (fastpath.c) and the jansson path build the same bytes. */
typedef struct batch {
    size_t n;                   /* input events */
    size_t nrecords;            /* records in `records` */
    sbuf records;               /* "{\"events\":[rec,rec,...": the head of storage's body, then the records */
    size_t *record_input;       /* record_input[j] = input index of record j */
    size_t record_cap;          /* room in record_input */
    sbuf dead_letters;          /* "dl,dl,...": {"error","event","source"} for storage */
    json_t *rejected;           /* array: {"index","error"} -- our validation failures */
    size_t reasons[ENRICH_REASON_COUNT]; /* rejections per reason, for metrics */
    unsigned char *reject_reason; /* per entry of `rejected`: its reason, 0 = an upstream dead letter (not logged) */
    size_t reject_cap;          /* room in reject_reason */
    size_t fast;                /* events the fast path enriched (no jansson tree) */
} batch;

/* Enriches every element of `events` (a JSON array). 0, or -1 on out of memory
 * (the batch is then freed). */
int batch_build(const json_t *events, batch *b);

/* For fastpath.c: a batch of n events (0: not known yet, set b->n when it
 * is), empty; 0 or -1. */
int batch_init(batch *b, size_t n);
/* For fastpath.c: appends event `index` (a jansson tree) the jansson way:
 * a record, or a dead letter with its reason. 0 or -1 (out of memory). */
int batch_add_event(batch *b, size_t index, const json_t *raw);
/* For fastpath.c: starts record text for input `index` in b->records (the
 * caller appends the record object text; out of memory fails b->records). */
void batch_begin_record(batch *b, size_t index);

/* The storage request body {"events":[...],"dead_letters":[...]}; malloc'd, NUL-terminated. */
char *batch_storage_body(const batch *b, size_t *len);
/* The same bytes, made from the record text itself (appended to, no copy):
 * the batch keeps its index map and rejects but no longer its text, so
 * a request holds one copy of its events, not two (issue 15: bounded memory).
 * NULL when out of memory (the text is then gone too: answer 503). */
char *batch_take_storage_body(batch *b, size_t *len);

/* Logs each event this batch dead-lettered, with its reason: called once
 * data-storage stored the dead letters (its 200), so a body that is then refused
 * whole (400, 413, a retry) logs none. */
void batch_log_rejects(const batch *b);

/* Maps storage's 200 answer to ours:
 * {"success":true,"processed":N,"stored":S,"duplicates":D,"dead_lettered":K,
 *  "rejected":[{"index":<input index>,"error":"..."}]} sorted by index.
 * 0 and *reply (new reference), or -1 with err when storage's answer does not
 * follow the contract (not JSON, success not true, an index out of range). */
int batch_map_reply(const batch *b, const char *body, size_t len, json_t **reply, char *err, size_t errlen);

void batch_free(batch *b);

#endif
