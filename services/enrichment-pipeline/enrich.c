/* enrich.c -- assemble one enriched record from a validated event.
 * See enrich.h for the stage overview and docs/EVENTS.md for every field. */
#include "enrich.h"
#include "json_text.h"

#include "event.h"
#include "input.h"
#include "normalize.h"
#include "timeofday.h"
#include "validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const enrich_reason_labels[ENRICH_REASON_COUNT] = {
    [ENRICH_OK] = "ok",
    [ENRICH_NOT_OBJECT] = "not_object",
    [ENRICH_MISSING_EVENT_TYPE] = "missing_event_type",
    [ENRICH_BAD_SHAPE] = "bad_shape",
    [ENRICH_MISSING_ENTITY_ID] = "missing_entity_id",
    [ENRICH_BAD_ENTITY_ID] = "bad_entity_id",
    [ENRICH_MISSING_TIME] = "missing_time",
    [ENRICH_BAD_TIME] = "bad_time",
    [ENRICH_BAD_STATE] = "bad_state",
    [ENRICH_RECORD_CHECK] = "record_check",
};

const char *enrich_reason_label(enrich_reason r) {
    return (r >= 0 && r < ENRICH_REASON_COUNT) ? enrich_reason_labels[r] : "unknown";
}

/* The reason travels as a JSON string (the dead letter, the answer): a message
 * cut by the buffer size, or quoting cut user text, must not end inside a
 * UTF-8 sequence (json_pack would then fail and the whole batch with it). */
static void enrich_message_utf8(char *m) {
    const unsigned char *u = (const unsigned char *)m;
    size_t len = strlen(m);
    for (size_t i = 0; i < len;) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = json_text_utf8_len(u + i, len - i);
        if (!n) {
            m[i] = '\0';
            return;
        }
        i += n;
    }
}

int enrich_fail(enrich_reject *rej, enrich_reason reason, const char *fmt, ...) {
    rej->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rej->message, sizeof rej->message, fmt, ap);
    va_end(ap);
    enrich_message_utf8(rej->message);
    return -1;
}

/* Shares a borrowed string (the record holds its own reference), else null. */
static json_t *enrich_string_or_null(const json_t *v) {
    return json_is_string(v) ? json_incref((json_t *)v) : json_null();
}

static void enrich_set(json_t *record, const char *key, json_t *value) {
    json_object_set_new_nocheck(record, key, value);
}

/* context_id / context_parent_id / context_user_id from HA's context object
 * (the event's, which HA sets equal to new_state.context). Flat senders may
 * instead give the record's own names at the top level. */
static void enrich_context(json_t *record, const input_view *v) {
    const json_t *ctx = v->context;
    if (!ctx && v->new_state) ctx = json_object_get(v->new_state, "context");
    if (!json_is_object(ctx)) ctx = NULL;
    const json_t *src = ctx ? ctx : (v->shape == INPUT_FLAT ? v->event : NULL);
    const char *id = ctx ? "id" : "context_id";
    const char *parent = ctx ? "parent_id" : "context_parent_id";
    const char *user = ctx ? "user_id" : "context_user_id";
    enrich_set(record, "context_id", enrich_string_or_null(src ? json_object_get(src, id) : NULL));
    enrich_set(record, "context_parent_id", enrich_string_or_null(src ? json_object_get(src, parent) : NULL));
    enrich_set(record, "context_user_id", enrich_string_or_null(src ? json_object_get(src, user) : NULL));
}

/* state -> "state" (verbatim) and "value" (number or null). */
static void enrich_state(json_t *record, const char *state_key, const char *value_key, const json_t *state) {
    double d;
    enrich_set(record, state_key, enrich_string_or_null(state));
    if (json_is_string(state) && normalize_value(json_string_value(state), json_string_length(state), &d) == 0)
        enrich_set(record, value_key, json_real(d));
    else
        enrich_set(record, value_key, json_null());
}

static json_t *enrich_attr_string(const json_t *attrs, const char *key) {
    return enrich_string_or_null(attrs ? json_object_get(attrs, key) : NULL);
}

/* Seconds between old and new last_changed; null when unknown or negative. */
static json_t *enrich_duration(const input_view *v) {
    if (!v->new_state || !v->old_state) return json_null();
    const char *n = json_string_value(json_object_get(v->new_state, "last_changed"));
    const char *o = json_string_value(json_object_get(v->old_state, "last_changed"));
    int64_t nu, ou;
    if (!n || !o || event_time_parse(n, &nu) || event_time_parse(o, &ou) || nu < ou) return json_null();
    return json_real((double)(nu - ou) / 1e6);
}

static void enrich_state_fields(json_t *record, const input_view *v) {
    const json_t *attrs = v->attributes;
    enrich_state(record, "state", "value", v->state);
    enrich_state(record, "old_state", "old_value", v->old_state_value);
    enrich_set(record, "unit_of_measurement", enrich_attr_string(attrs, "unit_of_measurement"));
    enrich_set(record, "device_class", enrich_attr_string(attrs, "device_class"));
    enrich_set(record, "state_class", enrich_attr_string(attrs, "state_class"));
    enrich_set(record, "friendly_name", enrich_attr_string(attrs, "friendly_name"));
    enrich_set(record, "attributes", attrs ? json_incref((json_t *)attrs) : json_null());
    enrich_set(record, "duration_in_state", enrich_duration(v));
    int changed = 1; /* added or removed entities changed state too */
    if (v->state && v->old_state_value)
        changed = strcmp(json_string_value(v->state), json_string_value(v->old_state_value)) != 0;
    enrich_set(record, "state_changed", json_boolean(changed));
}

/* The registry context websocket-ingestion put on the event (docs/EVENTS.md section 3):
 * the string members as strings (anything else null), labels as the list of its strings. */
static void enrich_registry(json_t *record, const json_t *reg) {
    for (size_t i = 0; i < ENRICH_REGISTRY_NSTRINGS; i++) {
        const char *k = enrich_registry_strings[i];
        enrich_set(record, k, enrich_string_or_null(json_object_get(reg, k)));
        if (i == ENRICH_REGISTRY_LABELS_AFTER) {
            json_t *labels = json_array(), *in = json_object_get(reg, "labels"), *l;
            size_t j;
            json_array_foreach(in, j, l) if (json_is_string(l)) json_array_append(labels, l);
            enrich_set(record, "labels", labels);
        }
    }
}

static json_t *enrich_build(const input_view *v, const validate_result *ok) {
    json_t *record = json_object();
    if (!record) return NULL;
    enrich_set(record, "event_type", json_string(v->event_type));
    if (ok->entity_id) {
        enrich_set(record, "entity_id", json_string(ok->entity_id));
        enrich_set(record, "domain", json_stringn(ok->entity_id, ok->domain_len));
        enrich_set(record, "object_id", json_string(ok->entity_id + ok->domain_len + 1));
    }
    char t[EVENT_TIME_LEN];
    event_time_format(ok->time_us, t);
    enrich_set(record, "time_fired", json_string(t));
    enrich_set(record, "origin", enrich_string_or_null(v->origin));
    enrich_context(record, v);
    if (v->is_state_changed) enrich_state_fields(record, v);

    const char *tod = NULL, *wd = NULL;
    if (timeofday_classify(ok->time_us, &tod, &wd) == 0) {
        enrich_set(record, "time_of_day", json_string(tod));
        enrich_set(record, "weekday", json_string(wd));
    }
    if (v->registry) enrich_registry(record, v->registry);
    if (!v->is_state_changed)
        enrich_set(record, "data", v->data ? json_incref((json_t *)v->data) : json_object());
    return record;
}

int enrich_event(const json_t *raw, json_t **record, enrich_reject *rej) {
    input_view v;
    validate_result ok;
    *record = NULL;
    rej->reason = ENRICH_OK;
    rej->message[0] = '\0';
    if (input_parse(raw, &v, rej) || validate_event(&v, &ok, rej)) return -1;

    json_t *r = enrich_build(&v, &ok);
    if (!r) return enrich_fail(rej, ENRICH_RECORD_CHECK, "out of memory");
    char err[200];
    if (event_record_check(r, err, sizeof err) != 0) {
        json_decref(r);
        return enrich_fail(rej, ENRICH_RECORD_CHECK, "record check: %s", err);
    }
    *record = r;
    return 0;
}
