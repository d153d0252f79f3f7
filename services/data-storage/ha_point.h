/* ha_point.h -- the point Home Assistant's InfluxDB integration writes for a
 * state_changed event, as one line of line protocol (INFLUXDB_SCHEMA=homeassistant).
 *
 * Why a module of its own: users' Grafana dashboards query HA's schema
 * (`SELECT mean("value") FROM "°C" WHERE "entity_id" = 'kitchen'`), so every
 * rule of HA's _generate_event_to_json() decides whether their series keep
 * working: the measurement (override per entity/glob/domain, global override,
 * measurement_attr, default_measurement, entity id), the tags (domain, the
 * object id as entity_id, tags_attributes, static tags), the fields (value /
 * state, attributes as floats or <key>_str with the digit tail, the key_
 * rename, non-finite dropped, ignore_attributes) and which events write
 * nothing. The rules are those of ../shared/reference/ha-websocket-protocol.md
 * §3 and HA's EntityValues (per-entity settings: exact entity over the last
 * matching glob over the domain, key by key). Building the text is kept apart
 * from the transport (store_influx.c), like Fluent Bit's influxdb_bulk.c, so
 * the golden table in tests/storage/test_ha_point.c can pin it line by line.
 *
 * Output: tags and fields sorted by key (as influxdb-python writes them),
 * floats in Python repr form, time = time_fired truncated to `precision`,
 * always written in nanoseconds (the request may carry HomeIQ's own ns points
 * too; InfluxDB stores ns either way, so the stored point is the same).
 *
 * Ownership: ha_point_config owns its strings (ha_point_config_free). The
 * builder only appends to the caller's sbuf. */
#ifndef HOMEIQ_HA_POINT_H
#define HOMEIQ_HA_POINT_H

#include <jansson.h>
#include <stdint.h>
#include "ha_filter.h"
#include "sbuf.h"

typedef enum {
    HA_MEAS_UNIT_OF_MEASUREMENT = 0, /* default */
    HA_MEAS_DOMAIN_DEVICE_CLASS,
    HA_MEAS_ENTITY_ID,
} ha_measurement_attr;

typedef enum { HA_PREC_NS = 0, HA_PREC_US, HA_PREC_MS, HA_PREC_S } ha_precision;

/* component_config / _glob / _domain entry */
typedef struct ha_entity_conf {
    char *key;                  /* entity id, glob or domain */
    char *override_measurement; /* NULL = not set */
    ha_strlist ignore_attributes;
    int has_ignore;             /* ignore_attributes given (replaces lower-priority lists) */
} ha_entity_conf;

typedef struct ha_entity_confs {
    ha_entity_conf *v;
    size_t n;
} ha_entity_confs;

typedef struct ha_point_config {
    ha_measurement_attr measurement_attr;
    char *default_measurement;   /* NULL = not set */
    char *override_measurement;  /* NULL = not set */
    ha_strlist tag_keys, tag_values; /* static tags, same length */
    ha_strlist tags_attributes;
    ha_strlist registry_tags;    /* INFLUXDB_REGISTRY_TAGS: record fields (area, floor_id, labels...) as tags; issue 11 */
    ha_strlist ignore_attributes;
    ha_entity_confs by_entity, by_glob, by_domain;
    ha_precision precision;
    ha_filter filter;
} ha_point_config;

/* Adds an entry to one of the component_config lists; returns it (zeroed
 * apart from key), or NULL out of memory. */
ha_entity_conf *ha_point_config_entity(ha_entity_confs *list, const char *key);
void ha_point_config_free(ha_point_config *c);
/* Whether `name` may be in INFLUXDB_REGISTRY_TAGS (a registry field of the record, docs/EVENTS.md section 3). */
int ha_point_registry_tag_ok(const char *name);

typedef enum {
    HA_POINT_WRITTEN = 0,     /* one line appended */
    HA_POINT_SKIP_REMOVED,    /* new_state null: entity removed */
    HA_POINT_SKIP_UNKNOWN,    /* state "unknown" */
    HA_POINT_SKIP_UNAVAILABLE,/* state "unavailable" */
    HA_POINT_SKIP_EMPTY,      /* state "" */
    HA_POINT_SKIP_EXCLUDED,   /* include/exclude filter */
    HA_POINT_ERROR,           /* cannot be written (err says why): dead-letter it */
    HA_POINT_NSKIP
} ha_point_result;

/* Names for metrics and /health: "written", "removed", "unknown", ... */
const char *ha_point_result_name(ha_point_result r);

/* The tag a home other than the default one puts on its points (issue 18),
 * as HA's own `tags: {home_id: <home>}` would: reserved, so no static tag or
 * tags_attributes entry may use it (ha_config.c refuses one). */
#define HA_POINT_HOME_TAG "home_id"

/* Appends the HA point (with its trailing '\n') for a HomeIQ record of a
 * state_changed event (members entity_id, state, attributes) fired at
 * time_us. home: the home_id tag's value (NULL or "": none, the default
 * home), set after the static tags, as HA applies its `tags`. Nothing is
 * appended unless HA_POINT_WRITTEN. */
ha_point_result ha_point_build(const ha_point_config *c, const json_t *record, int64_t time_us, const char *home,
                               sbuf *out, char *err, size_t errlen);

#endif
