/* influx_ha.h -- the InfluxDB backend's INFLUXDB_SCHEMA=homeassistant hook.
 *
 * Why a file of its own: store_influx.c owns the transport (queue, duplicate
 * check, chunking, bisecting a 400, dead letters) and should not learn HA's
 * rules; ha_point.c owns the rules and knows nothing of batches. This glue
 * decides, per prepared item, whether it becomes HA's point (state_changed),
 * is skipped as HA skips it (removed, unknown, unavailable, "", filtered out:
 * counted, acknowledged, never an error or a dead letter), is rejected (a
 * point InfluxDB cannot hold: dead-lettered with the reason), or is left to
 * HomeIQ's own measurement (every other event type). It also keeps the
 * counters for /metrics and /health and says where GET /api/v1/events finds
 * the records on this schema.
 *
 * Ownership: influx_ha owns its configuration; items and batches are the
 * caller's. influx_ha_open gives NULL for the homeiq schema, and every
 * function accepts NULL as "schema homeiq". */
#ifndef HOMEIQ_INFLUX_HA_H
#define HOMEIQ_INFLUX_HA_H

#include <jansson.h>
#include "sbuf.h"
#include "store.h"

typedef struct influx_ha influx_ha;

typedef enum {
    INFLUX_HA_NOT_MINE = 0, /* not a state_changed event, or schema homeiq: HomeIQ's line */
    INFLUX_HA_LINE,         /* HA's point appended to body */
    INFLUX_HA_NO_LINE,      /* skipped or rejected (item status set), nothing appended */
    INFLUX_HA_OOM,
} influx_ha_result;

/* Reads INFLUXDB_SCHEMA and the HA options. 0 (*out NULL for homeiq), -1 on a bad configuration. */
int influx_ha_open(influx_ha **out);
void influx_ha_free(influx_ha *h);
/* 1 when the item is a state_changed event written as HA's point (not kept
 * in HomeIQ's measurement: its identity point, influx_ids.h, is). */
int influx_ha_owns(const influx_ha *h, const store_item *it);
influx_ha_result influx_ha_line(influx_ha *h, store_batch *b, store_item *it, sbuf *body);
/* Where GET /api/v1/events with this filter reads its records (an InfluxQL
 * FROM list): HomeIQ's measurement; on this schema the identity points for
 * event_type=state_changed, HomeIQ's measurement for another event type, and
 * both without event_type. Returns the number of measurements (2: the page
 * is merged, influx_page.h). */
int influx_ha_query_from(const influx_ha *h, const store_filter *f, const char **from);
/* Adds "schema" (and the HA point counters) to /health's backend object. */
void influx_ha_info(const influx_ha *h, json_t *o);

#endif
