/* influx_registry.h -- GET /api/v1/registry on InfluxDB (issue 11): the current
 * registry context per entity, kept as the small measurement homeiq_registry.
 *
 * Design: one point per *change* of an entity's context, tag entity_id, string field
 * "context" (the record's eleven registry members as one JSON object, the form the
 * SQLite registry table keeps), at the time of the event that carried it. Written
 * after a batch is committed and before it is acknowledged (as stats_influx.c does),
 * so the ack contract covers it: a crash in between re-sends the batch. Which contexts
 * are changes is decided against an in-memory map entity -> last context written;
 * after a restart the map is empty and each entity's first context is written once
 * more, which is harmless: the reader walks an entity's points newest first while the
 * context stays the same, so "since" is the first event of the current context
 * whatever was written twice, and points of late (older) events just sort in.
 * "last_seen" is the newest event of the entity in the HomeIQ events measurement
 * (null on the homeassistant schema, which has no such measurement).
 * Works on both InfluxDB schemas: it reads only the record.
 *
 * Why not one overwritten point per entity: InfluxDB cannot write conditionally,
 * so an older event arriving late (backfill, a re-sent batch) would overwrite the
 * newer context; points at event times order themselves.
 *
 * Ownership: borrows the stats_influx_io of store_influx.c (which outlives it); the
 * batch is handed in one at a time by store_influx's FIFO. */
#ifndef HOMEIQ_INFLUX_REGISTRY_H
#define HOMEIQ_INFLUX_REGISTRY_H

#include "stats_influx.h"
#include "store.h"

#define INFLUX_REGISTRY_MEASUREMENT "homeiq_registry"

typedef struct influx_registry influx_registry;
typedef void (*influx_registry_done_fn)(int rc, const char *err, void *arg);

/* events_measurement: HomeIQ's events measurement for last_seen, or NULL. 0/-1. */
int influx_registry_open(const stats_influx_io *io, const char *events_measurement, influx_registry **out);
/* After the batch committed: writes the contexts that changed, then done(0) -- or done(-1, why). */
void influx_registry_batch(influx_registry *r, const store_batch *b, influx_registry_done_fn done, void *arg);
/* GET /api/v1/registry: rows {"entity_id","since","last_seen",<context>}, by entity_id (then home;
 * another home's rows carry "home_id"). home: NULL = every home (issue 18: the home_id tag). */
void influx_registry_read(influx_registry *r, const char *home, const char *entity_id, long limit, store_rows_cb cb,
                          void *arg);
void influx_registry_close(influx_registry *r);

#endif
