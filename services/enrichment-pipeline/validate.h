/* validate.h -- the validate stage: the checks that decide whether an event is
 * stored as a record or dead-lettered. They run once, here, on the parsed view
 * (input.h); nothing downstream re-validates differently, which is how the
 * original Python HomeIQ lost everything (two validators that disagreed). */
#ifndef HOMEIQ_ENRICH_VALIDATE_H
#define HOMEIQ_ENRICH_VALIDATE_H

#include "event.h"
#include "input.h"

#include <stdint.h>

/* HA's longest entity id (homeassistant.const.MAX_LENGTH_STATE_ENTITY_ID). */
#define VALIDATE_ENTITY_ID_MAX EVENT_ENTITY_ID_MAX /* lib/event.h */

typedef struct validate_result {
    const char *entity_id;  /* borrowed; NULL when the event has none (non-state events only) */
    size_t domain_len;      /* entity_id[0, domain_len) is the domain; the object id follows the dot */
    int64_t time_us;        /* time_fired, microseconds since the epoch, UTC */
} validate_result;

/* HA's valid_entity_id(): "<domain>.<object_id>", each [a-z0-9_]+ without a
 * leading or trailing underscore, no "__" anywhere, at most 255 characters.
 * Returns 0 (and *domain_len) when valid, else -1 and a static reason in *why. */
int validate_entity_id(const char *s, size_t len, size_t *domain_len, const char **why);

/* Every check for one event. 0, or -1 with *rej set. */
int validate_event(const input_view *v, validate_result *out, enrich_reject *rej);

#endif
