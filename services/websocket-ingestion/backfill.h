/* backfill.h -- fetches from HA's recorder the state changes ingestion missed.
 *
 * Why: HA never replays events. While ingestion is down, or its link to HA is,
 * or HA restarts, state changes happen that nobody heard; HA's recorder keeps
 * them (10 days by default) and serves them over the WebSocket API. On every
 * successful subscribe this module asks for the gap between the high-water
 * mark (hwm.h) and now, turns each history row into a state_changed event in
 * HA's shape marked "origin":"HOMEIQ_BACKFILL", and appends it to the spool:
 * from there it travels the same ack contract as a live event, and identities
 * (docs/EVENTS.md §8) make the live twin and the backfilled one one record.
 *
 * Steps (docs/BACKFILL.md): subscribe first (ha_client), then get_states for
 * the entity list, then history/history_during_period from mark - overlap to
 * now + overlap, in time windows and entity chunks, one request at a time with
 * a pause between (HA drops a client that lags 4096 messages; one answer in
 * memory at a time bounds ingestion's memory). Live events keep flowing: the
 * requests are asynchronous on the same loop. A failed request is retried
 * with backoff, never skipped; an HA without the history component is
 * reported (health, log) and the gap is declared lost; live ingestion goes on.
 *
 * Owner: main.c (ingest). Uses: ha_client (hooks + requests), spool (append),
 * hwm (hold / complete). */
#ifndef HOMEIQ_BACKFILL_H
#define HOMEIQ_BACKFILL_H

#include <stddef.h>
#include <stdint.h>

#include "ha_client.h"
#include "hwm.h"
#include "spool.h"

struct event_base;
typedef struct backfill backfill;

typedef struct backfill_opts {
    int enabled;                /* BACKFILL */
    int64_t max_age_us;         /* BACKFILL_MAX_AGE: never ask for older (HA's recorder keeps 10 days) */
    int64_t overlap_us;         /* BACKFILL_OVERLAP_S: re-read before the mark / after now */
    int64_t window_us;          /* BACKFILL_WINDOW_S: time span per request */
    int chunk_entities;         /* BACKFILL_CHUNK_ENTITIES: entity ids per request */
    long interval_ms;           /* BACKFILL_INTERVAL_MS: pause between requests (rate limit) */
    long delay_ms;              /* BACKFILL_DELAY_S: wait after subscribing before reading history (HA's
                                   recorder commits every commit_interval, 5 s by default: a change fired
                                   just before the subscribe is not in its database yet) */
    long timeout_ms;            /* BACKFILL_TIMEOUT_S: a request not answered in time is sent again */
    long retry_min_ms, retry_max_ms;
    const char *import_path;    /* where an import's request and progress are kept (copied) */
    /* Where a history row goes: 0, or the spool's error code (SPOOL_EFULL: the request is
     * read again later). NULL: spool_append. ingestion routes rows through the registry
     * (registry_on_row): behind the live events received before the answer, held ones
     * included -- so the live copy of an event, not the history copy, is the one stored
     * (identities make the second a duplicate) -- and with registry context. */
    int (*append)(const char *json, size_t len, void *arg);
    /* Called when a run completes, before the mark moves past its gap: rows `append`
     * accepted but still holds must reach the spool now (a crash must not leave the mark
     * past a row that was never spooled). NULL: append spools at once. */
    void (*flush)(void *arg);
    void *append_arg;
} backfill_opts;

typedef struct backfill_stats {
    const char *state;          /* off idle listing fetching retrying done interrupted unsupported */
    const char *kind;           /* of the current / last run: "gap" (after the mark) or "import" */
    int64_t from_us, to_us;     /* the window of the current / last run; 0 = none */
    size_t entities, entities_done; /* entity-chunk progress within the current time window */
    int64_t windows, windows_done;
    uint64_t events;            /* events spooled by the current / last run */
    uint64_t events_total, requests_total, failures_total, runs;
    double duration_s;          /* of the last finished run, or so far */
    char last_error[200];
} backfill_stats;

int backfill_new(struct event_base *base, const backfill_opts *o, ha_client *ha, spool *sp, hwm *hw,
                 backfill **out);
void backfill_get_stats(const backfill *b, backfill_stats *st);

/* homeiqctl import-history: read the last `since_us` of history (all entities, or the n
 * given) into the spool, after any gap run; resumable (progress kept in opts.import_path)
 * and idempotent (identities). 0 = started/queued, 1 = an import is already under way
 * (watch it), -1 = backfill is off. */
int backfill_import(backfill *b, int64_t since_us, const char *const *entity_ids, size_t n);
void backfill_import_status(const backfill *b, int *pending, int64_t *from, int64_t *to, int64_t *next);
/* Registers its /metrics series. */
void backfill_metrics(backfill *b);
void backfill_free(backfill *b);

/* One history row to the event text (exposed for the unit test). `entity` is the raw
 * (still JSON-escaped) entity id, `row` a compressed history row, `prev_state` the
 * previous row's new_state text or NULL. Appends the event to *ev and its new_state
 * to *state_out (both reset first); *time_us = last_updated. 0, or -1 (bad row). */
struct sbuf;
int backfill_row_event(const char *entity, size_t elen, const char *row, size_t rlen, const char *prev_state,
                       struct sbuf *ev, struct sbuf *state_out, int64_t *time_us);

#endif
