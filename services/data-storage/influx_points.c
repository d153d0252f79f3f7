/* influx_points.c -- see influx_points.h. */
#include "influx_points.h"
#include "json_text.h"
#include "lineproto.h"
#include "service.h"

#include <string.h>

/* ",key=<tag form of value>"; nothing when the value is NULL or empty
 * (InfluxDB has no empty tag values). */
static void influx_points_tag(sbuf *b, const char *key, const char *value) {
    if (!value || !*value) return;
    sbuf_addc(b, ',');
    sbuf_adds(b, key);
    sbuf_addc(b, '=');
    lineproto_tag(b, value);
}

static const char *influx_points_member(const json_t *rec, const char *key) {
    return json_string_value(json_object_get(rec, key));
}

/* ",key=<string field>". */
static void influx_points_field_str(sbuf *b, const char *key, const char *v, size_t n) {
    sbuf_addc(b, ',');
    sbuf_adds(b, key);
    sbuf_addc(b, '=');
    lineproto_field_string(b, v, n);
}

/* ",key=<string field>" for a string member; nothing otherwise. */
static void influx_points_member_str(sbuf *b, const json_t *rec, const char *key) {
    const json_t *v = json_object_get(rec, key);
    if (json_is_string(v)) influx_points_field_str(b, key, json_string_value(v), json_string_length(v));
}

/* ",key=<float field>" for a finite numeric member; nothing otherwise. */
static void influx_points_member_float(sbuf *b, const json_t *rec, const char *key) {
    const json_t *v = json_object_get(rec, key);
    if (!json_is_number(v)) return;
    size_t mark = b->len;
    sbuf_addc(b, ',');
    sbuf_adds(b, key);
    sbuf_addc(b, '=');
    if (lineproto_field_float(b, json_number_value(v)) != 0) b->len = mark;
}

/* labels as one tag, ",a,b," (a label filter is then a regex on ",a,"); none: no tag. */
static void influx_points_labels(sbuf *b, const json_t *labels) {
    size_t i, n = 0;
    json_t *v;
    sbuf t;
    sbuf_init(&t);
    json_array_foreach(labels, i, v) {
        if (!json_is_string(v) || !json_string_length(v)) continue;
        sbuf_addc(&t, ',');
        sbuf_adds(&t, json_string_value(v));
        n++;
    }
    sbuf_addc(&t, ',');
    if (n && !sbuf_failed(&t)) influx_points_tag(b, "labels", t.data);
    sbuf_free(&t);
}

const char *influx_points_home_value(const char *home) { return event_home_is_default(home) ? "" : home; }

void influx_points_registry_tags(sbuf *b, const json_t *rec) { /* registry tags: issue 11 */
    influx_points_tag(b, "area_id", influx_points_member(rec, "area_id"));
    influx_points_tag(b, "device_id", influx_points_member(rec, "device_id"));
    influx_points_tag(b, "floor_id", influx_points_member(rec, "floor_id"));
    influx_points_labels(b, json_object_get(rec, "labels"));
    influx_points_tag(b, "platform", influx_points_member(rec, "platform"));
}

void influx_points_event(sbuf *b, const store_item *it, uint64_t ns, const char *stored_at, const char *home) {
    const json_t *rec = it->record;
    lineproto_measurement(b, INFLUX_MEASUREMENT);
    influx_points_registry_tags(b, rec);
    influx_points_tag(b, "device_class", influx_points_member(rec, "device_class"));
    influx_points_tag(b, "domain", it->domain);
    influx_points_tag(b, "entity_id", it->entity_id);
    influx_points_tag(b, "event_type", it->event_type);
    influx_points_tag(b, INFLUX_HOME_TAG, influx_points_home_value(home)); /* issue 18 */
    influx_points_tag(b, "unit_of_measurement", influx_points_member(rec, "unit_of_measurement"));
    sbuf_adds(b, " event_id=");
    lineproto_field_string(b, it->event_id, strlen(it->event_id));
    influx_points_field_str(b, "stored_at", stored_at, strlen(stored_at));
    influx_points_field_str(b, "record", it->json, it->json_len);
    influx_points_member_str(b, rec, "state");
    influx_points_member_float(b, rec, "value");
    influx_points_member_str(b, rec, "old_state");
    influx_points_member_float(b, rec, "old_value");
    influx_points_member_float(b, rec, "duration_in_state");
    influx_points_member_str(b, rec, "context_id");
    influx_points_member_str(b, rec, "context_parent_id");
    influx_points_member_str(b, rec, "context_user_id");
    const json_t *attrs = json_object_get(rec, "attributes");
    if (json_is_object(attrs)) {
        sbuf tmp;
        sbuf_init(&tmp);
        json_text_dump(attrs, &tmp);
        if (!sbuf_failed(&tmp)) influx_points_field_str(b, "attributes", tmp.data, tmp.len);
        else b->failed = 1;
        sbuf_free(&tmp);
    }
    sbuf_printf(b, " %llu\n", (unsigned long long)ns);
}

void influx_points_dead(sbuf *b, const store_dead_letter *d, int64_t *last_ns, const char *home) {
    int64_t ns = service_now_us() * 1000;
    if (ns <= *last_ns) ns = *last_ns + 1;
    *last_ns = ns;
    lineproto_measurement(b, INFLUX_DEAD_MEASUREMENT);
    influx_points_tag(b, INFLUX_HOME_TAG, influx_points_home_value(home));
    influx_points_tag(b, "source", d->source);
    sbuf_adds(b, " error=");
    lineproto_field_string(b, d->error, strlen(d->error));
    influx_points_field_str(b, "raw", d->raw, strlen(d->raw));
    sbuf_printf(b, " %lld\n", (long long)ns);
}
