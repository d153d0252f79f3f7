/* clickhouse_retention.h -- RETENTION_DAYS on STORAGE_BACKEND=clickhouse
 * (issue 18): expired months dropped as partitions, the rest of the cut-off
 * month deleted by a mutation, every PURGE_INTERVAL_MS; reads never answer an
 * expired event (ClickHouse 18.16 can bring dropped parts back after a
 * restart). docs/CLICKHOUSE.md, "Retention".
 *
 * Ownership: made and freed by store_clickhouse.c, which outlives it; it
 * borrows the store's database and cluster names. */
#ifndef HOMEIQ_CLICKHOUSE_RETENTION_H
#define HOMEIQ_CLICKHOUSE_RETENTION_H

#include "sbuf.h"
#include "store.h"

#include <event2/event.h>
#include <jansson.h>

typedef struct ch_retention ch_retention;

/* Reads RETENTION_DAYS and PURGE_INTERVAL_MS (storage_maint_vars). *out is
 * NULL when RETENTION_DAYS=0 (keep every event). 0, or -1. */
int ch_retention_new(struct event_base *base, store *st, const char *db, const char *cluster, ch_retention **out);
/* Call after the store's requests were cancelled (their callbacks use it). */
void ch_retention_free(ch_retention *r);
/* The cut-off (epoch seconds, a whole hour; 0 = none): events fired before it are expired. */
int64_t ch_retention_cutoff_s(const ch_retention *r, int64_t now_us);
/* Appends " AND time >= toDateTime(cut-off)" when events expire (r may be NULL). */
void ch_retention_filter(const ch_retention *r, sbuf *q);
/* {"days","cutoff_s","rounds","partitions_dropped","deletes_issued","failures","last_error"?} */
json_t *ch_retention_info(const ch_retention *r);

#endif
