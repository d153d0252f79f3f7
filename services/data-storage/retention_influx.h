/* retention_influx.h -- InfluxDB retention: the retention policies HomeIQ
 * creates or checks at start-up (InfluxDB 1.x).
 *
 * Why policies and not deletes: InfluxDB drops whole expired shards itself,
 * cheaply; a DELETE per purge step would write tombstones into every shard.
 * What HomeIQ owns and what it only checks:
 *  - raw events go to the database's DEFAULT policy. When HomeIQ creates the
 *    database, it creates it with the policy "homeiq_raw" (DURATION
 *    RETENTION_DAYS, INF for 0) as the default. When the database exists, its
 *    default policy is the user's: HomeIQ never changes it; a duration other
 *    than RETENTION_DAYS is a warning in the log and in /health.
 *  - 5-minute statistics: policy "homeiq_stats_5min" (DURATION
 *    STATISTICS_5MIN_RETENTION_DAYS), hourly: "homeiq_stats_hour" (INF).
 *    Created when missing; an existing one with another duration is left as it
 *    is and warned about the same way.
 *  - RETENTION_OVERRIDES (per entity / domain) are applied by DELETE in
 *    retention_influx_purge.c; a rule can only shorten, so one asking for
 *    more than the default policy (0 = forever, or longer) is warned about
 *    here the same way.
 * Nothing is acknowledged before this finished (store_influx keeps
 * database_ready false, /health says influxdb_database_missing).
 *
 * Ownership: borrows the query function of store_influx.c (and its ctx). */
#ifndef HOMEIQ_RETENTION_INFLUX_H
#define HOMEIQ_RETENTION_INFLUX_H

#include "httpc.h"

#include <jansson.h>

#define RETENTION_INFLUX_RP_RAW "homeiq_raw"
#define STATS_INFLUX_RP_5MIN "homeiq_stats_5min"
#define STATS_INFLUX_RP_HOUR "homeiq_stats_hour"

typedef struct retention_influx retention_influx;

/* query: an InfluxQL statement without db= (server-wide). Reads
 * RETENTION_DAYS and STATISTICS_5MIN_RETENTION_DAYS. 0/-1. */
int retention_influx_open(const char *db, int (*query)(void *ctx, const char *sql, httpc_done_cb cb, void *arg),
                          void *ctx, retention_influx **out);
void retention_influx_close(retention_influx *r);

/* Creates the database and policies as needed and checks the others. done:
 * rc 0 ready; -1 failed (unreachable = 1 when InfluxDB did not answer), why. */
typedef void (*retention_influx_done_fn)(int rc, int unreachable, const char *why, void *arg);
int retention_influx_ensure(retention_influx *r, retention_influx_done_fn done, void *arg);

/* {"retention_days","statistics_5min_retention_days","default_policy",
 *  "default_policy_duration_s","warnings":[...]} */
json_t *retention_influx_info(const retention_influx *r);

#endif
