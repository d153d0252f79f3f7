/* stats_influx_recover.h -- after a start, the InfluxDB statistics rows of
 * acknowledged batches that no flush wrote (stats_influx_flush.h), recomputed
 * before any new row is written.
 *
 * Why: with INFLUXDB_STATISTICS_FLUSH_MS a batch is acknowledged before its
 * rows are stored, so a SIGKILL (or a stop, or a flush that never succeeded)
 * can leave stored states without their rows. The flush writes a mark -- the
 * feed's commit sequence of the last batch whose rows are all stored
 * (homeiq_statistics_written, time 0 in the hourly policy) -- so the states
 * without rows are exactly those with feed entries after it. Each of those
 * entities' states is recomputed in runs (split where two are more than 15
 * minutes apart, at most 2,000 states a run and a request) by the slow path
 * (stats_influx_recompute: the late-state recomputation, which reads the
 * stored rows and raw points), so its rows equal those of a run that never
 * stopped, and no request reads the stored states between two runs. No mark (a database from before the flush, or kept with the
 * flush off): every row was written before its ack; the mark is set to the
 * feed's latest point. With the flush off, a mark left by an earlier run is
 * recovered once and set to 0.
 *
 * Runs once, before the first batch's statistics or catch-up step (both wait
 * for it); a failure fails that caller and is tried again by the next.
 *
 * Ownership: borrows the stats_influx (its io, policies and flush), which
 * outlives it; owns its list of entities. Free only after the HTTP client. */
#ifndef HOMEIQ_STATS_INFLUX_RECOVER_H
#define HOMEIQ_STATS_INFLUX_RECOVER_H

#include "stats_influx.h"

#include <jansson.h>

typedef struct stats_influx_recover stats_influx_recover;

int stats_influx_recover_new(stats_influx *s, stats_influx_recover **out);
void stats_influx_recover_free(stats_influx_recover *r);

/* 1 once the rows are recovered (nothing was missing, or they are written). */
int stats_influx_recover_done(const stats_influx_recover *r);
/* Recovers (or waits for the recovery under way): done(0) when done, -1 with
 * err. limit: the feed sequence of the caller's batch (INT64_MAX: no batch
 * under way) -- a mark set here for want of one stays at or below it, since
 * that batch's rows are written before its ack (the first batch after a start
 * takes the slow path) and a later one's are not. */
void stats_influx_recover_run(stats_influx_recover *r, int64_t limit, stats_influx_done_fn done, void *arg);

/* {"done":bool,"mark":seq,"entities":N,"spans":N (runs of states recomputed),"requests":N (recomputations),
 *  "runs":N (recoveries started),"failures":N,"last_error":"..."} */
json_t *stats_influx_recover_info(const stats_influx_recover *r);

#endif
