/* storage_maint.h -- the store's upkeep on the event loop: retention steps on
 * a timer, and the disk guard.
 *
 * Why here and not in a backend: both are decisions about *when* (a timer
 * that backs off while batches arrive) and *whether to accept* a batch (free
 * disk), made the same way for every backend; the backend only offers
 * store_ops.maintain (one small purge step). The guard refuses a batch (503,
 * ingestion keeps it spooled) before the disk is so full that SQLite itself
 * fails mid-commit, and never deletes anything to make room.
 *
 * Ownership: borrows the service and the store, which outlive it. */
#ifndef HOMEIQ_STORAGE_MAINT_H
#define HOMEIQ_STORAGE_MAINT_H

#include "config.h"
#include "service.h"
#include "store.h"

#include <event2/http.h>
#include <jansson.h>

#define STORAGE_MAINT_CONFIG_VARS                                                                                \
    CONFIG_INT("STATISTICS", "1", 0, 1, "1 = update long-term statistics (5-minute and hourly rows, docs/STATISTICS.md) with each batch: sqlite in its transaction, influxdb computed before its ack (written then, or by the next flush: INFLUXDB_STATISTICS_FLUSH_MS)"), \
    CONFIG_INT("INFLUXDB_STATISTICS", "1", 0, 1, "influxdb: 0 = do not write the statistics (homeiq_statistics) even when STATISTICS=1"), \
    CONFIG_INT("INFLUXDB_STATISTICS_FLUSH_MS", "0", 0, 600000, "influxdb 1.x: 0 = each batch's statistics rows written before its ack; N = rows of acknowledged batches written at most every N ms (coalesced, off the ack path: at a steady trickle influxd does about a quarter less work, GET /api/v1/statistics lags by up to N ms; bounded by the three INFLUXDB_STATISTICS_* below; opt-in, docs/STATISTICS.md)"), \
    CONFIG_INT("INFLUXDB_STATISTICS_FLUSH_CHUNK_BYTES", "1048576", 1024, 100000000, "influxdb, with INFLUXDB_STATISTICS_FLUSH_MS: the most line protocol one request of a statistics flush carries (keep it below influxd's [http] max-body-size, 25000000 by default); a larger backlog is written in several requests, the mark with the last"), \
    CONFIG_INT("INFLUXDB_STATISTICS_MAX_PENDING_ROWS", "50000", 1, 100000000, "influxdb, with INFLUXDB_STATISTICS_FLUSH_MS: statistics rows of acknowledged batches kept unwritten at most (about 300 bytes each); from there a batch waits for the flush before its ack, and answers 503 when the flush fails"), \
    CONFIG_INT("INFLUXDB_STATISTICS_STOP_FLUSH_MS", "5000", 0, 600000, "influxdb, with INFLUXDB_STATISTICS_FLUSH_MS: at a clean stop (SIGTERM) the queued statistics rows are written for at most this long (0 = not at all); what is left is recomputed by the next start"), \
    CONFIG_INT("RETENTION_DAYS", "0", 0, 1000000, "purge raw events older than this many days, after their statistics are committed (0 = keep every event); influxdb: the policy of a database HomeIQ creates, else checked"),      \
    CONFIG_TEXT("RETENTION_OVERRIDES", NULL, "sqlite: raw-event retention per domain or entity, NAME=DAYS,... e.g. \"sensor.grid_energy=0,light=7\" (0 = keep forever)"), \
    CONFIG_INT("STATISTICS_5MIN_RETENTION_DAYS", "10", 1, 1000000, "purge 5-minute statistics older than this (hourly: kept); influxdb: policy homeiq_stats_5min"), \
    CONFIG_INT("STATISTICS_CATCHUP_CHUNK", "500", 10, 1000000, "influxdb: raw states one step of the statistics catch-up reads (history stored before statistics, stats_influx_catchup.h); it computes whole hours, so an hour holding more takes one step"), \
    CONFIG_INT("PURGE_STEP_ROWS", "1000", 1, 1000000, "sqlite: most rows one purge step deletes, and most pages it frees by incremental_vacuum; each statement is sized by its measured cost to end within PURGE_STEP_BUDGET_MS, which is the real bound"),            \
    CONFIG_INT("PURGE_COMMIT_FSYNC", "0", 0, 1, "sqlite: 1 = a purge step's commit fsyncs the WAL (synchronous=FULL) like a batch's; 0 = it does not (synchronous=NORMAL for that transaction): the next batch's fsync or checkpoint makes it durable, and a purge step lost to a power cut is purged again"), \
    CONFIG_INT("PURGE_STEP_BUDGET_MS", "4", 1, 60000, "sqlite: a purge step stops starting statements after this much time, commits and yields to the loop"), \
    CONFIG_INT("PURGE_INTERVAL_MS", "60000", 10, 86400000, "how often retention runs; steps follow each other every PURGE_STEP_MS"),  \
    CONFIG_INT("PURGE_STEP_MS", "20", 0, 60000, "pause between two purge steps while there is more to purge (the loop serves batches meanwhile)"),                    \
    CONFIG_INT("SQLITE_WAL_CHECKPOINTER", "1", 0, 1, "sqlite: 1 = WAL checkpoints (every 32 MiB of WAL) by a thread off the event loop, so no batch or purge step waits for one; 0 = inline in the commit that fills the WAL (SQLite's default)"), \
    CONFIG_INT("SQLITE_VACUUM_ON_START", "0", 0, 1, "sqlite: 1 = convert an old file to auto_vacuum=INCREMENTAL and SQLITE_PAGE_SIZE (one VACUUM)"), \
    CONFIG_INT("SQLITE_PAGE_SIZE", "4096", 4096, 65536, "sqlite: page size of a new file, a power of two (an existing file keeps its own unless SQLITE_VACUUM_ON_START=1); 16384 takes ~20 % less CPU per event in a burst of 1,000-event batches but ~15 % more, and 2.7x the bytes written, in a trickle of small batches (docs/BENCHMARKS.md)"), \
    CONFIG_INT("STORAGE_MIN_FREE_BYTES", "67108864", 0, 1LL << 50, "sqlite: below this much free disk in DATA_DIR, writes get 503 disk_low (nothing is acked that cannot be stored)")

/* The table of the variables above, for the modules that read them
 * (storage_maint.c, retention_sqlite.c, store_sqlite.c). */
extern const config_var storage_maint_vars[];

typedef struct storage_maint storage_maint;

int storage_maint_new(service *svc, store *st, storage_maint **out);
void storage_maint_free(storage_maint *m);

/* 1 when a write must be refused now (the 503 is answered), else 0. */
int storage_maint_refuse_write(storage_maint *m, struct evhttp_request *req);
/* Adds "disk" to a /health object; 0 ok, -1 unhealthy with *reason. */
int storage_maint_health(storage_maint *m, json_t *health, const char **reason);

#endif
