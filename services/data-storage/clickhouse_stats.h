/* clickhouse_stats.h -- long-term statistics on STORAGE_BACKEND=clickhouse
 * (issue 18): the table `statistics` (5-minute and hourly rows per home and
 * entity), recomputed from the stored raw events after each batch's INSERT
 * and before its ack, and read back for GET /api/v1/statistics.
 *
 * Why this shape: the same rules and the same recomputation as InfluxDB's
 * (stats_influx.h; docs/STATISTICS.md): every row is a function of the stored
 * events and of the row before the range, so writing it twice is harmless; a
 * crash between the INSERT and the statistics leaves the batch unacknowledged
 * and its re-send (duplicates now) recomputes the same entities. Rows are
 * written with a version (ReplacingMergeTree(version), keyed by home,
 * entity, period, start): a recomputation replaces the rows it rewrites, and
 * reads take the highest version before any merge (LIMIT 1 BY).
 *
 * Ownership: made and freed by store_clickhouse.c, which outlives it; it
 * borrows the store's database and cluster names. One batch at a time per
 * entity is assumed (one storage writing a home; see docs/CLICKHOUSE.md). */
#ifndef HOMEIQ_CLICKHOUSE_STATS_H
#define HOMEIQ_CLICKHOUSE_STATS_H

#include "store.h"

#include <jansson.h>

typedef struct ch_stats ch_stats;

/* Reads CLICKHOUSE_STATISTICS. *out is NULL when it is 0. 0, or -1. */
int ch_stats_new(store *st, const char *db, ch_stats **out);
void ch_stats_free(ch_stats *s);

/* Recomputes the statistics of every entity with a STORED or DUPLICATE
 * state_changed item of b (committed), in `home`. done is called exactly
 * once: rc 0, or -1 with err (the batch must then not be acknowledged). */
typedef void (*ch_stats_done_fn)(int rc, const char *err, void *arg);
void ch_stats_batch(ch_stats *s, const store_batch *b, const char *home, ch_stats_done_fn done, void *arg);

/* store_ops.stats_fetch_home: one home's rows (home NULL: the default home). */
void ch_stats_fetch(ch_stats *s, const char *home, const char *entity_id, int hourly, int64_t start_us,
                    int64_t end_us, store_stats_cb cb, void *arg);

/* {"entities_updated","rows_written","batches","late_skipped","update_us"} */
json_t *ch_stats_info(const ch_stats *s);

#endif
