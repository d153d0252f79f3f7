/* influx_ids.c -- see influx_ids.h. */
#include "influx_ids.h"
#include "influx_points.h"
#include "lineproto.h"

#include <string.h>

static void influx_ids_tag(sbuf *b, const char *key, const char *value) {
    if (!value || !*value) return; /* InfluxDB has no empty tag values */
    sbuf_addc(b, ',');
    sbuf_adds(b, key);
    sbuf_addc(b, '=');
    lineproto_tag(b, value);
}

void influx_ids_line(sbuf *b, const store_item *it, const record_fields *f, uint64_t ns, const char *stored_at,
                     const char *home) {
    lineproto_measurement(b, INFLUX_IDS_MEASUREMENT);
    influx_ids_tag(b, "domain", it->domain);
    influx_ids_tag(b, "entity_id", it->entity_id);
    influx_ids_tag(b, "event_type", it->event_type);
    influx_ids_tag(b, INFLUX_HOME_TAG, influx_points_home_value(home)); /* issue 18: as HA's point (ha_point.h) */
    influx_points_registry_tags(b, it->json, f); /* GET /api/v1/events' area, floor, device, label, platform */
    sbuf_adds(b, " event_id=");
    lineproto_field_string(b, it->event_id, strlen(it->event_id));
    sbuf_adds(b, ",stored_at=");
    lineproto_field_string(b, stored_at, strlen(stored_at));
    sbuf_adds(b, ",record=");
    lineproto_field_string(b, it->json, it->json_len);
    sbuf_printf(b, " %llu\n", (unsigned long long)ns);
}
