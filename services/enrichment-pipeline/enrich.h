/* enrich.h -- turn one raw Home Assistant event into one enriched record.
 *
 * This is the heart of the enrichment-pipeline: a pure function from a JSON
 * event (any of the three accepted input shapes) to either a flat record for
 * data-storage or a rejection with a reason. It does no I/O, so every rule can
 * be unit-tested directly, and it validates exactly once: an event that passes
 * here is storable (it also passes lib/event.h's event_record_check), an event
 * that fails is dead-lettered by the caller with the reason -- never dropped.
 *
 * Stages, each in its own file:
 *   input.c     parse:     recognise the shape, find the fields (no judgement)
 *   validate.c  validate:  entity_id (HA's rule), time_fired, state types
 *   normalize.c enrich:    numbers and binary states -> value
 *   timeofday.c enrich:    time_of_day / weekday in the configured TZ
 *   enrich.c    enrich:    assemble the record (this interface)
 * The field-by-field contract is docs/EVENTS.md. */
#ifndef HOMEIQ_ENRICH_H
#define HOMEIQ_ENRICH_H

#include <jansson.h>
#include <stddef.h>

/* Why an event was rejected; each has a metric label (enrich_reason_label). */
typedef enum enrich_reason {
    ENRICH_OK = 0,
    ENRICH_NOT_OBJECT,         /* the event is not a JSON object */
    ENRICH_MISSING_EVENT_TYPE, /* no (or empty / non-string) event_type */
    ENRICH_BAD_SHAPE,          /* data/new_state/old_state/context of the wrong type */
    ENRICH_MISSING_ENTITY_ID,  /* state_changed without an entity_id */
    ENRICH_BAD_ENTITY_ID,      /* entity_id breaks HA's format rule */
    ENRICH_MISSING_TIME,       /* no time_fired (or flat "timestamp") */
    ENRICH_BAD_TIME,           /* time not parseable as RFC 3339, or out of range */
    ENRICH_BAD_STATE,          /* a state value that is not a string */
    ENRICH_RECORD_CHECK,       /* our record failed event_record_check (a bug guard) */
    ENRICH_REASON_COUNT
} enrich_reason;

#define ENRICH_MSG_LEN 256

typedef struct enrich_reject {
    enrich_reason reason;
    char message[ENRICH_MSG_LEN];  /* human-readable, names the field */
} enrich_reject;

/* The registry context's record fields, in record order; "labels" (a list) comes after
 * the string at index ENRICH_REGISTRY_LABELS_AFTER. Shared with fastpath.c. */
#define ENRICH_REGISTRY_NSTRINGS 10
#define ENRICH_REGISTRY_LABELS_AFTER 7
static const char *const enrich_registry_strings[ENRICH_REGISTRY_NSTRINGS] = {
    "area_id", "area", "floor_id", "floor", "device_id", "device", "manufacturer", "model",
    "platform", "entity_category"};

/* Short stable label for metrics and logs ("bad_entity_id", ...). */
const char *enrich_reason_label(enrich_reason r);

/* Sets a rejection; returns -1 so callers can `return enrich_fail(...)`. */
int enrich_fail(enrich_reject *rej, enrich_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Enriches `raw`. On success returns 0 and *record is a new reference to the
 * enriched record. On failure returns -1, *record is NULL and *rej says why. */
int enrich_event(const json_t *raw, json_t **record, enrich_reject *rej);

#endif
