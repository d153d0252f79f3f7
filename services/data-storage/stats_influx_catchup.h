/* stats_influx_catchup.h -- InfluxDB statistics for history stored before
 * they existed (events written with INFLUXDB_STATISTICS=0, or by an older
 * HomeIQ): computed in the background, in small steps (the twin of
 * stats_catchup.h on SQLite).
 *
 * Why a recomputation forward and not a shift: InfluxDB has no transaction,
 * so every write must be harmless to repeat. Per entity and home (issue 18:
 * every entity_id tag of each home_id tag's points of the events measurement,
 * the default home's -- no tag -- included, in order) whose first raw state is older than
 * its first statistics row, the rows are computed again from its raw states,
 * oldest first, in chunks of whole hours (about STATISTICS_CATCHUP_CHUNK
 * states each), each from the carry the chunk before left: a row is then a
 * pure function of the raw points and of that carry, and writing it twice
 * writes the same point (InfluxDB overwrites a point of the same series and
 * time). Past the first existing row the pass goes on over the rows live
 * batches wrote -- their sums start from 0 without the history -- until a
 * chunk's last hourly row equals the stored one (a measurement: the hour the
 * history meets them), or up to the entity's latest state (a total, whose
 * later sums all move). The progress is a point of homeiq_statistics_catchup
 * per entity and home (time 0, in the hourly policy: never expires; another
 * home's carries its home_id tag, as its rows do) holding the next
 * chunk's start and the carry, written in the same request as the chunk's
 * hourly rows, after its 5-minute rows: a SIGKILL before it repeats the
 * chunk with the same values, one after it moves on -- nothing lost, nothing
 * counted twice. 5-minute rows older than the 5-minute policy cannot be
 * written (InfluxDB refuses points beyond a policy's duration): those periods
 * get their hourly rows only. A step runs only between two batches
 * (store_influx.c serialises them), and forgets the entity's running state
 * (stats_influx_forget). RETENTION_OVERRIDES' DELETEs wait for the pass.
 * InfluxDB 1.x only (the marks need a policy that never expires).
 *
 * Ownership: borrows the stats_influx (and its I/O), which outlives it; owns
 * its entity list and scratch. Close only with no request in flight (after
 * the httpc is freed). */
#ifndef HOMEIQ_STATS_INFLUX_CATCHUP_H
#define HOMEIQ_STATS_INFLUX_CATCHUP_H

#include "stats_influx.h"

#include <jansson.h>

#define STATS_INFLUX_CATCHUP_MEASUREMENT "homeiq_statistics_catchup"

typedef struct stats_influx_catchup stats_influx_catchup;

/* Reads STATISTICS_CATCHUP_CHUNK. 0, or -1 (bad config / out of memory). */
int stats_influx_catchup_open(stats_influx *s, stats_influx_catchup **out);
void stats_influx_catchup_close(stats_influx_catchup *c);

/* Starts one step (one or two queries, at most two writes): 1 = started,
 * done(arg) will be called once when it ended (whatever its result); 0 = the
 * pass is done (nothing started); -1 = could not start (done not called). */
int stats_influx_catchup_step(stats_influx_catchup *c, void (*done)(void *arg), void *arg);

int stats_influx_catchup_done(const stats_influx_catchup *c);

/* {"done":bool,"entities_checked":N,"entities_caught_up":N,"chunks":N,"states_read":N,"rows_written":N,
 *  "failures":N,"refused":N,"last_error":"...","current":"entity"|null,"current_home":"home"|null (the
 *  default home: null)} */
json_t *stats_influx_catchup_info(const stats_influx_catchup *c);

#endif
