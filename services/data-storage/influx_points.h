/* influx_points.h -- the points HomeIQ writes to InfluxDB (HomeIQ's own
 * schema): one per event in INFLUX_MEASUREMENT, one per dead letter in
 * INFLUX_DEAD_MEASUREMENT.
 *
 * Why a module of its own: what a point holds (which tags, which fields and
 * their fixed types) is a schema decision apart from how batches reach
 * InfluxDB (store_influx.c: transport and write queue). lineproto.c is the
 * generic, escape-exact line builder; this file decides what goes into the
 * lines. INFLUXDB_SCHEMA=homeassistant points are influx_ha.c's.
 *
 * Ownership: the functions append to the caller's sbuf (sbuf_failed() tells
 * an allocation failure) and keep no state; records and items are borrowed. */
#ifndef HOMEIQ_INFLUX_POINTS_H
#define HOMEIQ_INFLUX_POINTS_H

#include "sbuf.h"
#include "store.h"

#include <stdint.h>

#define INFLUX_MEASUREMENT "home_assistant_events"
#define INFLUX_DEAD_MEASUREMENT "homeiq_dead_letters"

/* INFLUXDB_EVENT_FIELDS: which fields an event point holds (docs/INFLUXDB.md).
 * full: event_id, stored_at, record, state, value, plus old_state, old_value,
 * duration_in_state, context_id, context_parent_id, context_user_id and
 * attributes, copies of what the record already holds, for users who query
 * them in InfluxQL. slim: only event_id, stored_at, record, state, value --
 * every field HomeIQ's own reads name (GET /api/v1/events, the feed, entities,
 * series, stats, statistics, the duplicate check, retention), about a third
 * less of influxd's CPU per event (docs/BENCHMARKS.md, issue 15). Tags are the
 * same either way, and a store may switch at any restart: points written
 * either way are read the same. */
typedef enum influx_event_fields { INFLUX_EVENT_FIELDS_FULL = 0, INFLUX_EVENT_FIELDS_SLIM } influx_event_fields;
/* The value of INFLUXDB_EVENT_FIELDS when unset (the one place to change it). */
#define INFLUX_EVENT_FIELDS_DEFAULT "full"
/* "full" / "slim" -> *out, 0; anything else -1. */
int influx_points_fields_parse(const char *text, influx_event_fields *out);
const char *influx_points_fields_name(influx_event_fields fields);

/* The tag every point of a home other than the default one carries (issue 18):
 * home_id=<id>. The default home's points have no such tag (their series are
 * unchanged), so a read selects it with "home_id" = ''. */
#define INFLUX_HOME_TAG "home_id"
/* The value a read compares INFLUX_HOME_TAG with: "" for the default home. */
const char *influx_points_home_value(const char *home);

/* The registry tags GET /api/v1/events filters on (area_id, device_id,
 * floor_id, labels as ",a,b,", platform), from the record's members (json:
 * the record's text, f: where its members are, store_item_fields); none for a
 * member that is missing or empty. Also on HA's identity points. */
void influx_points_registry_tags(sbuf *b, const char *json, const record_fields *f);

/* Reading a record's member from its text (v, n: the value's span, NULL/0 when
 * absent), as the points need it -- no jansson tree per record (issue 15):
 * a JSON string decoded into scratch (NUL-terminated; NULL when the value is
 * not a string), a JSON number as jansson reads it (0; -1 when not a number;
 * v must be inside NUL-terminated text, as a stored record is). */
const char *influx_points_text_string(sbuf *scratch, const char *v, size_t n);
int influx_points_text_number(const char *v, size_t n, double *out);

/* One line of the events measurement at time `ns`, with the batch's stored_at
 * (event_time_format text). Registry tags, the exact record as the string
 * field "record"; value/old_value/duration_in_state are floats, written only
 * when numeric; the fields as `fields` says (above). home: the batch's
 * (NULL/""/default: no tag). Read from the item's text (f: its
 * store_item_fields; one walk for the members those do not note), never from a
 * jansson tree. */
void influx_points_event(sbuf *b, const store_item *it, const record_fields *f, uint64_t ns, const char *stored_at,
                         const char *home, influx_event_fields fields);

/* One line of the dead-letter measurement at a per-process unique time: now,
 * or *last_ns + 1 when that is not later; *last_ns is updated. home: as above. */
void influx_points_dead(sbuf *b, const store_dead_letter *d, int64_t *last_ns, const char *home);

#endif
