/* event.h -- the HomeIQ event model shared by all services.
 *
 * Two shapes travel between the services:
 *  - raw HA events (what ingestion spools and forwards; enrichment parses them);
 *  - enriched records (what enrichment sends to storage and storage serves),
 *    flat JSON objects described field by field in docs/EVENTS.md.
 * This module owns what they have in common: unpacking a request body into a
 * list of events, RFC 3339 time parsing/formatting, and a record's identity. */
#ifndef HOMEIQ_EVENT_H
#define HOMEIQ_EVENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits and record rules: defined once, here (issue 14) ---------------
 * Every service and lib/ module takes these from here; configuration
 * defaults quote them with EVENT_STR. Plain decimals, so they stringify. */
#define EVENT_STR_(x) #x
#define EVENT_STR(x) EVENT_STR_(x)
/* Nesting of any JSON text: lib/json_scan refuses deeper (jansson allows 2048),
 * so every service refuses it at the first hop. */
#define EVENT_JSON_MAX_DEPTH 512
/* Default largest HTTP request body of a service (16 MiB: MAX_BODY_BYTES,
 * INGEST_MAX_BODY_BYTES; lib/httpd's default). */
#define EVENT_BODY_MAX 16777216
/* Largest raw HA message / event (64 MiB): HA_MAX_MESSAGE_BYTES' default and
 * ceiling, the spool's largest record payload (plus its framing). */
#define EVENT_RAW_MAX 67108864
/* Longest entity id in bytes (HA's limit): enrichment's check, the query
 * parameters that name entities, admin-api's paths. */
#define EVENT_ENTITY_ID_MAX 255
/* Latest time a record may carry (9999-12-31T23:59:59.999999Z); earliest is
 * the Unix epoch (0). */
#define EVENT_TIME_MAX_US 253402300799999999LL

/* Accepts one event object, a JSON array of events, or {"events":[...]}.
 * On success *events is a new reference to an array (possibly empty).
 * On failure returns -1 and sets *err to a static message. */
int event_unpack_batch(json_t *body, json_t **events, const char **err);

/* Parses RFC 3339 / ISO 8601 ("2025-06-14T08:33:20.218734+00:00", "...Z",
 * fraction optional, up to 9 digits; offsets honoured) to microseconds since the
 * Unix epoch, UTC. 0 or -1. */
int event_time_parse(const char *s, int64_t *us);

/* Formats as "YYYY-MM-DDTHH:MM:SS.ffffffZ" (always 6 fraction digits).
 * `out` must hold EVENT_TIME_LEN bytes. */
#define EVENT_TIME_LEN 32
void event_time_format(int64_t us, char out[EVENT_TIME_LEN]);

/* The stable identity of an enriched record: hex of the first 16 bytes of
 * SHA-256 over event_type, entity_id, time_fired, context_id (missing = "").
 * For state_changed it is entity + last_updated only (docs/EVENTS.md, "Identity"):
 * the context is left out ("") and time_fired is taken as its microsecond,
 * re-formatted canonically, because a change read back from HA's recorder
 * has no context and its time went through a float. `out` holds EVENT_ID_LEN
 * bytes. 0, or -1 when time_fired is missing (or, for state_changed, unparseable). */
#define EVENT_ID_LEN 33
int event_identity(const json_t *record, char out[EVENT_ID_LEN]);
/* The same from the four (decoded) strings, "" for a missing one. 0/-1. */
int event_identity_parts(const char *event_type, const char *entity_id, const char *time_fired,
                         const char *context_id, char out[EVENT_ID_LEN]);
/* The identity of a state_changed of `entity_id` at `time_us`. 0/-1. */
int event_identity_state_changed(const char *entity_id, int64_t time_us, char out[EVENT_ID_LEN]);

/* Homes (issue 18: one HomeIQ for many homes). A home id is 1 to 64 bytes
 * of [a-z0-9_-], starting with a letter or digit; HOMEIQ_HOME_ID per
 * ingestion, carried hop to hop in the X-HomeIQ-Home header (docs/EVENTS.md,
 * "Homes"). The default home is "default": its identities are exactly the v2
 * identities above (stored data needs no migration); any other home's identity
 * is event_identity_home() of the v2 one, so two homes never share an id. */
#define EVENT_HOME_DEFAULT "default"
#define EVENT_HOME_MAX 64
#define EVENT_HOME_HEADER "X-HomeIQ-Home"
/* 0 when `home` is a valid home id, else -1 with a reason in err. */
int event_home_check(const char *home, char *err, size_t errlen);
/* 1 when `home` is NULL, "" or the default home. */
int event_home_is_default(const char *home);
/* The identity of a record of `home` whose v2 identity is `v2`: v2 itself for
 * the default home, else hex of the first 16 bytes of SHA-256 over
 * "\0home\x1f" <home> "\x1f" <v2> (a NUL no v2 preimage can hold, so no other
 * home's id can equal a default-home id). `out` may be `v2`. 0/-1. */
int event_identity_home(const char *home, const char *v2, char out[EVENT_ID_LEN]);

/* HA's float epoch seconds (the recorder's last_updated_ts, history's "lu"/"lc")
 * to the microsecond HA fired as ISO time: CPython's datetime.fromtimestamp rule
 * (modf, fraction * 1e6 in double arithmetic, round half to even). Exact for
 * 1970..2106 (docs/EVENTS.md). 0, or -1 when not finite / out of range. */
int event_time_from_epoch(double epoch_s, int64_t *us);

/* Checks an enriched record is storable: time_fired a parseable RFC 3339
 * string, event_type a non-empty string, entity_id a "domain.object" string
 * (required for state_changed, optional otherwise; any non-empty string --
 * the strict HA format is enrichment's check), state/old_state strings or
 * null, attributes an object when present, value/old_value numbers or null.
 * Returns 0, or -1 with a human-readable reason in err. */
int event_record_check(const json_t *record, char *err, size_t errlen);

/* Splits "domain.object_id"; 0 when the entity id is well-formed
 * (lowercase [a-z0-9_] both sides, non-empty, one dot). */
int event_entity_split(const char *entity_id, char *domain, size_t dlen, const char **object_id);

#endif
