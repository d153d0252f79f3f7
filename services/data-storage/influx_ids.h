/* influx_ids.h -- the identity point of an event written as Home Assistant's
 * point (INFLUXDB_SCHEMA=homeassistant).
 *
 * Why: HA's point (influx_ha.c, ha_point.c) holds no event id and no HomeIQ
 * record, and InfluxDB overwrites an identical point silently. So on that
 * schema a re-posted state_changed event cannot be told from a new one, the
 * write path's duplicate check has nothing to read, and the dashboard's feed,
 * entities and stats (which count each stored event once) had to answer 501.
 * Each HA point therefore gets one more point, in the same /write and the same
 * line unit (a 400 bisected down to one event keeps them together):
 *
 *   homeiq_ids,domain=<d>,entity_id=<full id>,event_type=state_changed[,home_id=..][,area_id=..,device_id=..,
 *              floor_id=..,labels=,a,b,,platform=..] event_id="<id>",stored_at="<time>",record="<JSON>" <ns>
 *
 * at the time the duplicate check gave the event (time_fired in ns, its
 * sub-microsecond offset unique in the window). The duplicate check reads
 * `event_id` here as it reads it in HomeIQ's measurement; the feed and the
 * entity summary read `record` here as they read it there (same field names,
 * so the readers take `FROM "home_assistant_events","homeiq_ids"` and change
 * nothing else). The registry tags are those of HomeIQ's measurement
 * (influx_points_registry_tags), so GET /api/v1/events filters state_changed
 * events here as it filters the others there (influx_ha_query_from). HA's own points are unchanged: dashboards and queries written
 * for HA keep working (docs/INFLUX_READS.md).
 *
 * Ownership: appends to the caller's sbuf (sbuf_failed() tells an allocation
 * failure); the item is borrowed; no state. */
#ifndef HOMEIQ_INFLUX_IDS_H
#define HOMEIQ_INFLUX_IDS_H

#include "sbuf.h"
#include "store.h"

#include <stdint.h>

#define INFLUX_IDS_MEASUREMENT "homeiq_ids"
/* The FROM list of a read of every stored HomeIQ record on this schema. */
#define INFLUX_IDS_FROM_HA "\"home_assistant_events\",\"homeiq_ids\""
#define INFLUX_IDS_FROM_HOMEIQ "\"home_assistant_events\""

/* The identity point of `it` (written as HA's point) at `ns`, with the batch's
 * stored_at (event_time_format text) and home (the batch's; the default
 * home's point has no home_id tag, another home's carries it, issue 18). */
void influx_ids_line(sbuf *b, const store_item *it, const record_fields *f, uint64_t ns, const char *stored_at,
                     const char *home);

#endif
