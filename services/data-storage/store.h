/* store.h -- the narrow interface between the HTTP API and a storage backend.
 *
 * Why: data-storage has one job -- commit batches durably, idempotently and
 * without losing anything -- and two very different places to do it (the
 * embedded SQLite file, a remote InfluxDB). The API layer prepares a batch
 * (validation, identity, exact JSON text) with store_batch_prepare(), hands it
 * to a backend through store_ops, and answers only from the backend's
 * callback, i.e. after the commit. Backends never see HTTP.
 *
 * Ownership: the caller owns a store_batch and the filter; the backend fills
 * the per-item status and counters and calls `cb` exactly once (maybe before
 * write_batch returns). Rows passed to a callback belong to the backend and
 * are valid only during the call. */
#ifndef HOMEIQ_STORE_H
#define HOMEIQ_STORE_H

#include <event2/event.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "record_fields.h"
#include "stats.h"

typedef enum {
    STORE_ITEM_PENDING = 0, /* valid, to be written */
    STORE_ITEM_STORED,
    STORE_ITEM_DUPLICATE,
    STORE_ITEM_REJECTED,    /* failed validation or refused by the database: dead-lettered */
    STORE_ITEM_SKIPPED,     /* acknowledged, deliberately not written (INFLUXDB_SCHEMA=homeassistant skips
                               what HA skips: removed entities, unknown/unavailable/"" states, filtered out) */
} store_item_status;

typedef struct store_item {
    int index;                  /* position in the request's "events" */
    store_item_status status;
    char *error;                /* reason when rejected (owned) */
    char *json;                 /* exact stored text of the record (owned) */
    size_t json_len;
    const json_t *record;       /* borrowed from the request body; NULL when built from text */
    char event_id[EVENT_ID_LEN];
    int64_t time_us;            /* time_fired */
    const char *entity_id;      /* borrowed from record, may be NULL */
    const char *event_type;     /* borrowed from record */
    char domain[64];            /* record's domain, else the entity id's prefix; "" if none */
    record_fields fields;       /* spans of the members the SQLite writer reads in json (store_item_fields) */
} store_item;

typedef struct store_dead_letter {
    char *source;   /* owned */
    char *error;    /* owned */
    char *raw;      /* owned: JSON text of the event as received */
} store_dead_letter;

typedef struct store_batch {
    store_item *items;
    size_t nitems;
    store_dead_letter *dead;    /* dead letters to write in the same commit */
    size_t ndead, dead_cap;
    int64_t stored_at_us;       /* set by the backend */
    size_t stored, duplicates, rejected_by_db, dead_lettered;
    size_t skipped;             /* STORE_ITEM_SKIPPED items */
    char home_id[EVENT_HOME_MAX + 1]; /* the request's home (X-HomeIQ-Home); "" = the default home */
} store_batch;

typedef struct store_filter {
    long limit;             /* 1..10000, default 100 */
    long offset;            /* >= 0 */
    const char *entity_id;  /* borrowed; NULL = any */
    const char *domain;
    const char *event_type;
    const char *area, *floor, *device, *label, *platform; /* HA registry ids (issue 11); NULL = any */
    const char *home_id;    /* home=: NULL = every home */
    int64_t start_us, end_us;   /* start inclusive, end exclusive */
    int has_start, has_end;
} store_filter;

#define STORE_MAX_LIMIT 10000

/* A query result: complete JSON object texts, newest first. */
typedef struct store_rows {
    char **json;
    size_t n, cap;
} store_rows;

typedef struct store store;

#include "store_read.h"

typedef void (*store_write_cb)(store_batch *b, int rc, const char *err, void *arg);
/* rc 0 rows; -1 backend unavailable (503); STORE_QUERY_UNSUPPORTED: the
 * backend cannot answer this query at all, err says why (501). */
typedef void (*store_rows_cb)(const store_rows *rows, int rc, const char *err, void *arg);
typedef int (*store_stats_row_fn)(const stats_row *r, void *arg);
/* An asynchronous statistics read: rc 0/-1; kind as stats_rows' *kind; rows
 * (oldest first, break markers left out) belong to the backend. */
typedef void (*store_stats_cb)(int rc, int kind, const stats_row *prev, int has_prev, const stats_row *rows, size_t n,
                               void *arg);
#define STORE_QUERY_UNSUPPORTED (-2)

typedef struct store_ops {
    const char *name;
    /* 1 when write_batch reads only the item fields and text, never
     * item->record: the API may then build batches with store_text_prepare(). */
    int text_batches;
    /* Pieces the API keeps with the backend at once (storage_api.c's slots);
     * 0: two for a text backend, else one. */
    int pieces;
    /* Commits the PENDING items and all dead letters in one durable step.
     * rc 0: committed (items now STORED, DUPLICATE or REJECTED);
     * rc -1: nothing reliably committed, backend unavailable (-> 503). */
    void (*write_batch)(store *s, store_batch *b, store_write_cb cb, void *arg);
    void (*query)(store *s, const store_filter *f, store_rows_cb cb, void *arg);
    void (*dead_letters)(store *s, long limit, store_rows_cb cb, void *arg);
    /* 0 healthy, -1 with a short machine-readable reason. Never blocks. */
    int (*health)(store *s, const char **reason);
    /* Backend facts for /health (new reference). */
    json_t *(*info)(store *s);
    /* Reads for the dashboard (store_read.h, served by query_api.c). Optional:
     * NULL = the backend does not offer it (the API answers 501 naming it). */
    void (*feed)(store *s, const store_feed_query *q, store_read_cb cb, void *arg);
    void (*entities)(store *s, const store_entity_query *q, store_read_cb cb, void *arg);
    void (*series)(store *s, const store_series_query *q, store_read_cb cb, void *arg);
    void (*stats)(store *s, const store_stats_query *q, store_read_cb cb, void *arg);
    /* Gives back caches while nothing is being written. Optional (NULL). */
    void (*release_memory)(store *s);
    /* Long-term statistics of one entity of one home (home NULL: the
     * default home; issue 18), oldest first, from the 5-minute
     * (hourly 0) or hourly table; *prev = the row before start_us when
     * *has_prev; *kind = stats_kind, or -1 when the entity has none (all
     * three are set before fn is first called). 0/-1.
     * Optional (NULL: the backend keeps no statistics it can read back). */
    int (*stats_rows)(store *s, const char *home, const char *entity_id, int hourly, int64_t start_us,
                      int64_t end_us, int *kind, stats_row *prev, int *has_prev, store_stats_row_fn fn, void *arg);
    /* One small retention step (purge, vacuum): 1 more to do, 0 done, -1
     * failed (try later). Optional. */
    int (*maintain)(store *s, int64_t now_us);
    /* The current registry context per entity (entity_id NULL = all, at most
     * `limit`), rows as JSON object texts. Optional (NULL: 501). Issue 11.
     * home: NULL = every home (issue 18; only with STORE_HOME_REGISTRY). */
    void (*registry)(store *s, const char *home, const char *entity_id, long limit, store_rows_cb cb, void *arg);
    /* Issue 18: STORE_HOME_* bits of the reads that honour a home (store_read.h). */
    unsigned home_reads;
    /* Dead letters of one home (home NULL = all); optional, set with
     * STORE_HOME_DEAD. */
    void (*dead_letters_home)(store *s, const char *home, long limit, store_rows_cb cb, void *arg);
    /* The same, for a backend that answers later (InfluxDB, ClickHouse), of
     * one home (NULL: the default home). Optional; set with
     * STORE_HOME_STATISTICS. rc STORE_QUERY_UNSUPPORTED: none kept (501). */
    void (*stats_fetch_home)(store *s, const char *home, const char *entity_id, int hourly, int64_t start_us,
                             int64_t end_us, store_stats_cb cb, void *arg);
    /* The homes with stored events, as {"home_id":..,"events":n} rows.
     * Optional (NULL: 501). */
    void (*homes)(store *s, store_rows_cb cb, void *arg);
    /* Cancels what is in flight (callbacks get rc -1) and frees everything. */
    void (*close)(store *s);
} store_ops;

struct store {
    const store_ops *ops;
    /* Pieces the API keeps with this backend at once when set by its open
     * (InfluxDB: INFLUXDB_WRITES_INFLIGHT); 0: ops->pieces. */
    int pieces;
};

/* STORAGE_BACKEND's default: main.c's table, and ha_config.c before the table is read. */
#define STORE_BACKEND_DEFAULT "sqlite"

/* Opens the backend named by STORAGE_BACKEND (sqlite|influxdb|clickhouse). */
int store_open(struct event_base *base, store **out);
void store_close(store *s);

/* Builds a batch from the request's events (a JSON array) and dead_letters
 * (array or NULL). Invalid events become REJECTED items with a dead letter
 * (source "data-storage"). 0, or -1 on out of memory. */
int store_batch_prepare(store_batch *b, json_t *events, json_t *dead_letters);
/* Adds a request's "dead_letters" entries (an array; NULL = none) to b. 0/-1. */
int store_batch_add_dead_letters(store_batch *b, json_t *dead_letters);
void store_batch_free(store_batch *b);
/* The item's record_fields: noted by store_text_prepare, else found by one walk of
 * its json now (and kept). NULL when it has no readable record. */
const record_fields *store_item_fields(store_item *it);
/* Adds a dead letter; raw is the JSON text (copied). 0/-1. */
int store_batch_add_dead(store_batch *b, const char *source, const char *error, const char *raw);

/* Puts a prepared batch in `home` (a checked home id; NULL or the default
 * home: nothing changes): every record's text gets "home_id" and its event_id
 * becomes event_identity_home() of the v2 one. Same result whichever path
 * prepared the batch. 0, or -1 on out of memory. */
int store_batch_set_home(store_batch *b, const char *home);
/* A record's home as stored (its "home_id" member; absent = the default home). */
#define STORE_HOME_KEY "home_id"

/* Applies one query parameter. 0, or -1 with a message naming the parameter. */
int store_filter_set(store_filter *f, const char *key, const char *value, char *err, size_t errlen);
void store_filter_init(store_filter *f);
/* Checks the combination (start <= end). 0/-1 as above. */
int store_filter_check(const store_filter *f, char *err, size_t errlen);

/* Appends `record_json` + event_id + stored_at as one object to rows. 0/-1. */
int store_rows_add_event(store_rows *r, const char *record_json, size_t len, const char *event_id, int64_t stored_at_us);
/* Appends one dead letter {"id","received_at","source","error","event"};
 * raw is JSON text (stored by us, so valid). 0/-1. */
int store_rows_add_dead(store_rows *r, long long id, int64_t received_at_us, const char *source, const char *error,
                        const char *raw);
int store_rows_add(store_rows *r, char *json); /* takes ownership */
void store_rows_free(store_rows *r);

/* A JSON number for "limit=" style parameters: strict decimal in [min,max]. */
int store_parse_long(const char *s, long min, long max, long *out);

#endif
