/* store_read.h -- the read side data-storage offers beyond GET /api/v1/events:
 * a tail cursor (feed), the entity list, bucketed series and live totals.
 *
 * Why a separate header: these reads exist for the admin-api and its
 * dashboard (issue 12), which must never touch the database itself. Each is
 * an optional store_ops member, so a backend that cannot answer one
 * efficiently leaves it NULL and the API says so (501) instead of scanning.
 *
 * Ownership: queries are filled by query_api.c and borrowed by the backend
 * for the duration of the call; the backend copies what it keeps. The
 * callback's rows and `meta` (JSON members text, without braces, e.g.
 * "\"cursor\":42") belong to the backend and are valid only during the call. */
#ifndef HOMEIQ_STORE_READ_H
#define HOMEIQ_STORE_READ_H

#include <stdint.h>

struct store_rows;
struct store_filter;

typedef void (*store_read_cb)(const struct store_rows *rows, const char *meta, int rc, const char *err, void *arg);

/* GET /api/v1/events/feed: events in commit order after a cursor. */
typedef struct store_feed_query {
    const struct store_filter *f; /* entity_id, domain, event_type, area, home, limit (start/end/offset unused) */
    int64_t after;                /* cursor; rows with seq > after */
    int has_after;                /* 0: the latest `limit` matching events instead */
} store_feed_query;

/* GET /api/v1/entities */
typedef struct store_entity_query {
    const char *search;   /* substring of entity_id, or NULL */
    const char *domain;   /* exact, or NULL */
    long limit;           /* 1..10000 */
    const char *home_id;  /* home= (issue 18), NULL = every home */
} store_entity_query;

/* GET /api/v1/series */
typedef struct store_series_query {
    const char *entity_id;
    int64_t start_us, end_us; /* start inclusive, end exclusive, start < end */
    long points;              /* most buckets (numeric) */
    long max_segments;        /* most timeline segments */
    const char *home_id;      /* home= (issue 18), NULL = every home */
} store_series_query;

/* GET /api/v1/stats */
typedef struct store_stats_query {
    int64_t now_us;
    long window_s;            /* per-second counts over the last window_s seconds */
    const char *home_id;      /* home= (issue 18), NULL = every home */
} store_stats_query;

/* Reads that honour home= (store_ops.home_reads). A read asked for a home
 * by a backend without its bit is answered 501 naming home, never with
 * every home's rows. (GET /api/v1/events: store_filter.home_id, checked by
 * the backend's query itself.) */
#define STORE_HOME_FEED 0x01u
#define STORE_HOME_ENTITIES 0x02u
#define STORE_HOME_SERIES 0x04u
#define STORE_HOME_STATS 0x08u
#define STORE_HOME_DEAD 0x10u
#define STORE_HOME_REGISTRY 0x20u
#define STORE_HOME_STATISTICS 0x40u

#endif
