/* influx_summary.h -- the entity list and totals data-storage keeps for the
 * dashboard on InfluxDB, and their persisted form (the summary measurements).
 *
 * Why: InfluxDB 1.x keeps no per-series count, so "every entity with its last
 * state, last change and event count" and "events stored in total" are a scan
 * of every event unless someone keeps them. The write path keeps them in memory
 * (influx_query.c applies each acknowledged batch) and writes them back, one
 * point per entity, so a restart reads O(entities) points instead of O(events):
 *
 *   homeiq_summary,entity_id=<id>[,home_id=<home>] domain="sensor",count=12i,last_ns=..i,state="21.5",
 *                  state_ns=..i,changed_ns=..i,numeric=true,seq=<A>i <T>
 *   homeiq_homes[,home_id=<home>] events=..i,dead=..i,seq=<A>i <T>
 *   homeiq_totals seq=<A>i,events=..i,dead=..i,dead_ns=..i <T>
 *
 * T is the snapshot time (re-based hourly so a finite retention policy never
 * drops the snapshot; every entity is written again at a new T), A the feed
 * sequence (influx_query.h) through which the values are exact. An entity point
 * is exact through its own seq; the totals through theirs. Whatever was stored
 * after A is re-applied from homeiq_feed (O(events since the last snapshot)),
 * applying an event to an entity only when its feed sequence is above the
 * entity's seq -- so a point written twice, a snapshot that landed halfway or
 * a batch retried after a failure never counts an event twice (docs/INFLUX_READS.md).
 *
 * One entity per (entity id, home) (issue 18): two homes with the same entity
 * id are two entries, never summed; a home other than the default one is
 * the point's home_id tag (as on its events' points), so a snapshot written
 * before homes reads as the default home's. The totals are kept per home
 * too (homeiq_homes, one point per home, exact through its own seq like an
 * entity's), beside the totals of every home (homeiq_totals, unchanged): they
 * answer GET /api/v1/stats?home= and GET /api/v1/homes from memory.
 *
 * This file holds the pure part: the sorted table, applying one event, the
 * line protocol of a snapshot and reading its rows back. No I/O.
 * Ownership: the table owns its entities and their strings. */
#ifndef HOMEIQ_INFLUX_SUMMARY_H
#define HOMEIQ_INFLUX_SUMMARY_H

#include "sbuf.h"
#include "store.h"

#include <jansson.h>
#include <stdint.h>

#define INFLUX_SUMMARY_MEASUREMENT "homeiq_summary"
#define INFLUX_TOTALS_MEASUREMENT "homeiq_totals"
#define INFLUX_HOMES_MEASUREMENT "homeiq_homes"

typedef struct influx_entity {
    char *id, *domain, *state;
    char *home;     /* the home_id tag's value; NULL = the default home */
    long long count;
    int64_t last_ns, state_ns, t0_ns, changed_ns;
    int has_state, numeric, has_t0, has_changed;
    int mixed;      /* a state_changed with a numeric value but no digit in its state (e.g. "on" = 1.0) */
    int64_t seq;    /* exact through this feed sequence (read back from a snapshot; 0 = nothing counted) */
    int dirty;      /* changed since the last snapshot write */
} influx_entity;

typedef struct influx_entities {
    influx_entity *e; /* sorted by id, then home (the default home first) */
    size_t n, cap;
} influx_entities;

/* One home's totals (issue 18). */
typedef struct influx_home {
    char *home;     /* the home_id tag's value; NULL = the default home */
    long long events, dead;
    int64_t seq;    /* events exact through this feed sequence (0 = nothing counted) */
    int dirty;      /* changed since the last snapshot write */
} influx_home;

typedef struct influx_homes {
    influx_home *h; /* sorted by home (the default home first) */
    size_t n, cap;
} influx_homes;

/* What the totals point holds. */
typedef struct influx_totals {
    int64_t seq, events, dead, dead_ns, snap_ns;
    int found;
} influx_totals;

void influx_entities_clear(influx_entities *t);
/* Moves src into dst (dst cleared first); src is left empty. */
void influx_entities_move(influx_entities *dst, influx_entities *src);
/* home: the home_id tag's value (NULL or "": the default home). */
influx_entity *influx_entities_find(const influx_entities *t, const char *id, const char *home);
/* The first entry of id (of any home; the others follow it), or NULL. */
const influx_entity *influx_entities_first(const influx_entities *t, const char *id);
/* The entity `id` of home, inserted (sorted) when new; NULL when out of memory. */
influx_entity *influx_entities_get(influx_entities *t, const char *id, const char *home, const char *domain);
/* e's home as the tag's value ("" = the default home). */
const char *influx_entity_home(const influx_entity *e);

/* One stored event, counted as the entity queries would count it, when its feed
 * sequence `seq` is above the entity's (seq 0: always). 1 applied, 0 not (no
 * entity, or already counted), -1 out of memory. Marks the entity dirty. */
int influx_entities_apply(influx_entities *t, const store_item *it, const char *home, int64_t seq);

/* What influx_entities_apply reads of one stored event (the strings are borrowed): a batch that
 * finished while a restore ran is kept as these until the restore is done (influx_pending.h). */
typedef struct influx_fact {
    int64_t time_us;
    const char *entity_id;  /* NULL or "": no entity */
    const char *domain;     /* "" if none */
    const char *state;      /* a state_changed's state; NULL when it has none, or for another type */
    int state_changed, numeric;
} influx_fact;

/* The fact of a stored item; scratch may hold its state (free it after use). -1 out of memory. */
int influx_item_fact(const store_item *it, sbuf *scratch, influx_fact *f);
/* influx_entities_apply for a fact (same answers). */
int influx_entities_apply_fact(influx_entities *t, const influx_fact *f, const char *home, int64_t seq);

/* A stored record's text as a store_item (entity_id, event_type, domain,
 * time_us, record) for influx_entities_apply, and its home (the record's
 * "home_id" member, NULL for the default home; points into *hold); *hold
 * keeps the parsed record (json_decref after use). -1 when it is not a
 * readable record. */
int influx_record_item(const char *record, store_item *it, const char **home, json_t **hold);

void influx_homes_clear(influx_homes *t);
void influx_homes_move(influx_homes *dst, influx_homes *src);
/* The home (the tag's value, NULL or "": the default home), inserted when
 * new; NULL when out of memory. */
influx_home *influx_homes_get(influx_homes *t, const char *home);
/* The same without inserting (NULL when unknown). */
const influx_home *influx_homes_find(const influx_homes *t, const char *home);
/* Adds events and dead letters to home; events only when their feed sequence
 * seq is above the home's (seq 0: always). Marks it dirty. 0, -1 out of memory. */
int influx_homes_add(influx_homes *t, const char *home, long long events, long long dead, int64_t seq);

/* Lines of a snapshot at snap_ns: every entity and home (all) or the dirty
 * ones, each with seq = tot->seq, then the totals point. Clears the dirty marks. */
void influx_summary_lines(sbuf *b, influx_entities *t, influx_homes *h, int all, const influx_totals *tot);

/* One row of `SELECT * FROM homeiq_summary ... GROUP BY entity_id` into t. -1 out of memory. */
int influx_summary_row(influx_entities *t, json_t *tags, json_t *cols, json_t *vals);
/* One row of `SELECT * FROM homeiq_homes ... GROUP BY home_id` into t. -1 out of memory. */
int influx_homes_row(influx_homes *t, json_t *tags, json_t *cols, json_t *vals);
/* One row of `SELECT * FROM homeiq_totals ORDER BY time DESC LIMIT 1`. */
void influx_totals_row(influx_totals *tot, json_t *cols, json_t *vals);

/* ---- events per second of event time, per domain, over the last hour ----
 * What /api/v1/stats's window needs (the dashboard asks every 2 s), kept from
 * the same applied events, so the overview is answered from memory. Exact for
 * the seconds after `from_s` (when memory took over): events stored before
 * that are not in it, and the caller asks InfluxDB for a window reaching
 * back further. Ownership: the window owns its slots and domain names. */
#define INFLUX_WINDOW_S 3600

typedef struct influx_window_slot {
    int64_t sec;            /* the event-time second this slot counts (-1: empty) */
    long long total;
    long long *by_domain;   /* indexed like influx_window.domains; ndom entries */
    size_t ndom;
} influx_window_slot;

typedef struct influx_window {
    influx_window_slot slot[INFLUX_WINDOW_S];
    char **domains;         /* interned domain names ("" for none) */
    size_t ndomains;
    int64_t from_s;         /* exact for seconds > from_s (0: not in use) */
} influx_window;

/* Empties it and makes it exact from now_s on. */
void influx_window_reset(influx_window *w, int64_t now_s);
void influx_window_free(influx_window *w);
/* One stored event at time_us in domain (may be ""). -1 out of memory. */
int influx_window_add(influx_window *w, int64_t time_us, const char *domain);
/* Counts of second s (0 when not kept). */
long long influx_window_count(const influx_window *w, int64_t s);
/* Per-domain sums over seconds [from_s, to_s) as JSON members "d":n,... appended to b. */
void influx_window_domains(const influx_window *w, int64_t from_s, int64_t to_s, sbuf *b);

#endif
