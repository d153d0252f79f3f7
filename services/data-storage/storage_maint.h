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

#include "service.h"
#include "store.h"

#include <event2/http.h>
#include <jansson.h>

#define STORAGE_MAINT_CONFIG_VARS                                                                                \
    {"STATISTICS", "1", "1 = update long-term statistics with each batch (0 leaves gaps: measurements only)"}, \
    {"RETENTION_DAYS", "0", "purge raw events older than this many days (0 = keep every event; influxdb: policy)"}, \
    {"RETENTION_OVERRIDES", NULL, "sqlite: per domain/entity days, e.g. \"sensor.grid_energy=0,light=7\" (0 = keep)"}, \
    {"STATISTICS_5MIN_RETENTION_DAYS", "10", "purge 5-minute statistics older than this (hourly: kept)"}, \
    {"PURGE_STEP_ROWS", "200", "sqlite: most rows deleted (and pages vacuumed) in one purge step"},            \
    {"PURGE_INTERVAL_MS", "60000", "how often retention runs; steps follow each other every PURGE_STEP_MS"},  \
    {"PURGE_STEP_MS", "100", "pause between two purge steps while there is more to purge"},                    \
    {"SQLITE_VACUUM_ON_START", "0", "sqlite: 1 = convert an old file to auto_vacuum=INCREMENTAL (one VACUUM)"}, \
    {"STORAGE_MIN_FREE_BYTES", "67108864", "sqlite: below this much free disk in DATA_DIR, answer 503 to writes"}

typedef struct storage_maint storage_maint;

int storage_maint_new(service *svc, store *st, storage_maint **out);
void storage_maint_free(storage_maint *m);

/* 1 when a write must be refused now (the 503 is answered), else 0. */
int storage_maint_refuse_write(storage_maint *m, struct evhttp_request *req);
/* Adds "disk" to a /health object; 0 ok, -1 unhealthy with *reason. */
int storage_maint_health(storage_maint *m, json_t *health, const char **reason);

#endif
