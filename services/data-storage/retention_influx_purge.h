/* retention_influx_purge.h -- RETENTION_OVERRIDES on InfluxDB 1.x: raw events
 * of one entity or domain deleted after their own number of days.
 *
 * Why DELETE here when retention_influx.h prefers policies: a policy applies
 * to a whole measurement, and the overrides are per entity / per domain (the
 * raw events of all entities share one measurement). So a rule with DAYS > 0
 * runs `DELETE FROM <events> WHERE <tag> AND time < <cut-off>` in steps of
 * one day (the oldest first; the oldest point is asked once), each step one
 * request on the storage_maint timer (store_ops.maintain), nothing else in
 * flight meanwhile. A domain rule spares the entities that have a rule of
 * their own. Statistics are written before a batch is acknowledged
 * (stats_influx.h), so any event old enough to be deleted has its statistics
 * committed already; stats_influx stops counting late events older than the
 * entity's own cut-off (retention_rules_days). A rule can only shorten: the
 * database's default policy still drops everything after its duration
 * (retention_influx.c warns when a rule asks for more).
 *
 * Ownership: borrows the query function of store_influx.c (with db=) and
 * its ctx, which outlive it. */
#ifndef HOMEIQ_RETENTION_INFLUX_PURGE_H
#define HOMEIQ_RETENTION_INFLUX_PURGE_H

#include "httpc.h"

#include <jansson.h>
#include <stdint.h>

typedef struct retention_influx_purge retention_influx_purge;

/* Reads RETENTION_OVERRIDES and PURGE_*; *out is NULL when no rule has
 * DAYS > 0 (nothing to delete). 0, or -1 (bad config / out of memory). */
int retention_influx_purge_open(const char *measurement,
                                int (*query)(void *ctx, const char *sql, httpc_done_cb cb, void *arg), void *ctx,
                                retention_influx_purge **out);
/* In flight: the request's callback must not run after this (cancel it first). */
void retention_influx_purge_close(retention_influx_purge *p);

/* One step (store_ops.maintain): starts one request. 1 = more to do (or one
 * in flight), 0 = every rule is done up to its cut-off, -1 = the last request
 * failed (tried again on the next step). */
int retention_influx_purge_step(retention_influx_purge *p, int64_t now_us);

/* {"overrides":{name:days},"deletes":N,"failures":N,"last_error":"...",
 *  "purged_before_ms":{name:ms}} */
json_t *retention_influx_purge_info(const retention_influx_purge *p);

#endif
