/* input.c -- the parse stage; see input.h for why it exists. */
#include "input.h"

#include <string.h>

/* A member that must be an object or null/absent. */
static int input_object_or_null(const json_t *parent, const char *key, const char *where,
                                const json_t **out, enrich_reject *rej) {
    const json_t *v = json_object_get(parent, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_object(v))
        return enrich_fail(rej, ENRICH_BAD_SHAPE, "%s%s is not an object or null", where, key);
    *out = v;
    return 0;
}

/* The "state" string of an HA State object (NULL object -> NULL). */
static int input_state_value(const json_t *state_obj, const char *which, const json_t **out,
                             enrich_reject *rej) {
    *out = NULL;
    if (!state_obj) return 0;
    const json_t *s = json_object_get(state_obj, "state");
    if (!s) return enrich_fail(rej, ENRICH_BAD_STATE, "%s.state is missing", which);
    if (!json_is_string(s)) return enrich_fail(rej, ENRICH_BAD_STATE, "%s.state is not a string", which);
    *out = s;
    return 0;
}

/* {"type":"event","event":{...}} -- or an object whose only event is "event". */
static int input_is_envelope(const json_t *raw) {
    const json_t *ev = json_object_get(raw, "event");
    if (!ev) return 0;
    const json_t *type = json_object_get(raw, "type");
    if (json_is_string(type) && strcmp(json_string_value(type), "event") == 0) return 1;
    return json_object_get(raw, "event_type") == NULL && json_is_object(ev);
}

static void input_time(const json_t *obj, input_view *v) {
    v->time_key = "time_fired";
    v->time = json_object_get(obj, "time_fired");
    if (!v->time) { /* the flat form's name; HA itself never sends "timestamp" */
        v->time_key = "timestamp";
        v->time = json_object_get(obj, "timestamp");
    }
    if (!v->time) v->time_key = "time_fired";
}

/* The HA event object: everything state-related lives under "data". */
static int input_ha_event(const json_t *ev, input_view *v, enrich_reject *rej) {
    const json_t *data = json_object_get(ev, "data");
    if (!json_is_object(data)) return enrich_fail(rej, ENRICH_BAD_SHAPE, "data is not an object");
    v->data = data;
    if (!v->is_state_changed) {
        v->entity_id = json_object_get(data, "entity_id");
        return 0;
    }
    if (input_object_or_null(data, "new_state", "data.", &v->new_state, rej) ||
        input_object_or_null(data, "old_state", "data.", &v->old_state, rej))
        return -1;
    if (!v->new_state && !v->old_state)
        return enrich_fail(rej, ENRICH_BAD_SHAPE, "state_changed with neither old_state nor new_state");
    if (input_state_value(v->new_state, "new_state", &v->state, rej) ||
        input_state_value(v->old_state, "old_state", &v->old_state_value, rej))
        return -1;
    /* data.entity_id is HA's; the State objects carry the same id. */
    v->entity_id = json_object_get(data, "entity_id");
    if (!v->entity_id && v->new_state) v->entity_id = json_object_get(v->new_state, "entity_id");
    if (!v->entity_id && v->old_state) v->entity_id = json_object_get(v->old_state, "entity_id");
    const json_t *attrs = v->new_state ? json_object_get(v->new_state, "attributes") : NULL;
    if (attrs && !json_is_null(attrs) && !json_is_object(attrs))
        return enrich_fail(rej, ENRICH_BAD_SHAPE, "new_state.attributes is not an object");
    v->attributes = json_is_object(attrs) ? attrs : NULL;
    return 0;
}

/* A flat state member: a string, null, or a whole HA State object. */
static int input_flat_state(const json_t *flat, const char *key, const json_t **state_obj,
                            const json_t **value, enrich_reject *rej) {
    const json_t *s = json_object_get(flat, key);
    *state_obj = NULL;
    *value = NULL;
    if (!s || json_is_null(s)) return 0;
    if (json_is_string(s)) {
        *value = s;
        return 0;
    }
    if (json_is_object(s)) {
        *state_obj = s;
        return input_state_value(s, key, value, rej);
    }
    return enrich_fail(rej, ENRICH_BAD_STATE, "%s is not a string, object or null", key);
}

/* The flat form: {"event_type","entity_id","state","timestamp",...}. */
static int input_flat(const json_t *flat, input_view *v, enrich_reject *rej) {
    v->entity_id = json_object_get(flat, "entity_id");
    if (!v->is_state_changed) return 0;

    const json_t *unused;
    if (json_object_get(flat, "state")) {
        if (input_flat_state(flat, "state", &unused, &v->state, rej)) return -1;
        if (unused) return enrich_fail(rej, ENRICH_BAD_STATE, "state is not a string or null");
    } else if (json_object_get(flat, "new_state")) {
        if (input_flat_state(flat, "new_state", &v->new_state, &v->state, rej)) return -1;
    } else {
        return enrich_fail(rej, ENRICH_BAD_SHAPE, "flat state_changed event has no \"state\"");
    }
    if (input_flat_state(flat, "old_state", &v->old_state, &v->old_state_value, rej)) return -1;

    const json_t *attrs = json_object_get(flat, "attributes");
    if (!attrs && v->new_state) attrs = json_object_get(v->new_state, "attributes");
    if (attrs && !json_is_null(attrs) && !json_is_object(attrs))
        return enrich_fail(rej, ENRICH_BAD_SHAPE, "attributes is not an object");
    v->attributes = json_is_object(attrs) ? attrs : NULL;
    return 0;
}

int input_parse(const json_t *raw, input_view *v, enrich_reject *rej) {
    memset(v, 0, sizeof *v);
    if (!json_is_object(raw)) return enrich_fail(rej, ENRICH_NOT_OBJECT, "event is not a JSON object");
    const json_t *ev = raw;
    v->shape = INPUT_HA_EVENT;
    if (input_is_envelope(raw)) {
        ev = json_object_get(raw, "event");
        if (!json_is_object(ev)) return enrich_fail(rej, ENRICH_BAD_SHAPE, "envelope's event is not an object");
        v->shape = INPUT_ENVELOPE;
    }
    /* HA events always carry "data"; flat ones never need it (also inside an envelope) */
    if (!json_object_get(ev, "data")) v->shape = INPUT_FLAT;
    v->event = ev;

    const json_t *et = json_object_get(ev, "event_type");
    if (!json_is_string(et) || json_string_length(et) == 0)
        return enrich_fail(rej, ENRICH_MISSING_EVENT_TYPE, "event_type is %s",
                           et ? "not a non-empty string" : "missing");
    v->event_type = json_string_value(et);
    v->is_state_changed = strcmp(v->event_type, "state_changed") == 0;
    input_time(ev, v);
    v->origin = json_object_get(ev, "origin");
    if (input_object_or_null(ev, "context", "", &v->context, rej)) return -1;
    v->registry = json_object_get(ev, "homeiq_registry");
    if (!json_is_object(v->registry)) v->registry = NULL; /* anything else: no context, not a reject */

    if (v->shape == INPUT_FLAT) return input_flat(ev, v, rej);
    return input_ha_event(ev, v, rej);
}
