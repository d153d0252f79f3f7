/* input.h -- the parse stage: recognise which of the three accepted shapes an
 * event has and find its fields, without judging their values.
 *
 * Why a separate stage: the original Python HomeIQ lost every event twice
 * because one component's idea of the event shape differed from another's.
 * Here the shapes are recognised in exactly one place, and everything after it
 * works on one view (input_view) whatever the sender used:
 *   - the HA event object   {"event_type","data":{entity_id,old_state,new_state},
 *                            "time_fired","origin","context"}
 *   - the WebSocket envelope {"type":"event","event":{...HA event...},"id":N}
 *   - the flat form         {"event_type","entity_id","state","timestamp"|"time_fired",
 *                            "attributes"?, "old_state"?, "origin"?, "context"?}
 * All pointers in the view are borrowed from the raw event. */
#ifndef HOMEIQ_ENRICH_INPUT_H
#define HOMEIQ_ENRICH_INPUT_H

#include "enrich.h"

typedef enum input_shape { INPUT_HA_EVENT, INPUT_ENVELOPE, INPUT_FLAT } input_shape;

typedef struct input_view {
    input_shape shape;
    const json_t *event;          /* the HA event (envelope unwrapped) or the flat object */
    const char *event_type;       /* non-empty */
    int is_state_changed;
    const json_t *entity_id;      /* as found (any JSON type), or NULL */
    const json_t *time;           /* time_fired / timestamp as found, or NULL */
    const char *time_key;         /* its key name, for messages */
    const json_t *origin;         /* as found, or NULL */
    const json_t *context;        /* object or NULL */
    const json_t *new_state;      /* HA State object or NULL */
    const json_t *old_state;      /* HA State object or NULL */
    const json_t *state;          /* the new state value: string, or NULL (removed) */
    const json_t *old_state_value;/* the old state value: string, or NULL (added) */
    const json_t *attributes;     /* object or NULL */
    const json_t *data;           /* the event's data object (non-state events), or NULL */
    const json_t *registry;       /* "homeiq_registry" (websocket-ingestion's registry.c) when an object, or NULL */
} input_view;

/* Fills *v from `raw`. 0, or -1 with *rej set (not an object, no event_type,
 * a member of the wrong JSON type). */
int input_parse(const json_t *raw, input_view *v, enrich_reject *rej);

#endif
