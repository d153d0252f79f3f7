/* registry.h -- HA's entity/device/area/floor/label registries, put on each event
 * before it is spooled (issue 11: "know the house").
 *
 * Why here, and why on each event: HomeIQ stores an event with the area, floor,
 * device and labels its entity had *when HA fired it*. websocket-ingestion is the
 * only HA client, and its spool is the only ordered, durable path to storage; so the
 * context is resolved here and travels inside each spooled event as one extra member,
 *   "homeiq_registry":{"area_id":…,"area":…,"floor_id":…,"floor":…,"device_id":…,
 *                      "device":…,"manufacturer":…,"model":…,"labels":[…],
 *                      "platform":…,"entity_category":…}
 * Enrichment copies it into the record (docs/EVENTS.md section 3) and stays stateless:
 * an enrichment restart, a storage outage or a spool replay can never pair an event
 * with a context other than its own (there is no snapshot to lose or to re-send).
 *
 * Ordering: HA answers commands in order with the events it sends on the connection.
 * After a *_registry_updated event the changed registry is read again (debounced,
 * REGISTRY_DEBOUNCE_MS); the events that follow the update -- the update event itself
 * included -- are held in memory until that answer arrived and are then spooled with
 * the new context, in their order; events before it were spooled with the old one.
 * Known limit: two updates closer together than one reload round trip (debounce + HA's
 * answer) are not told apart -- the events between them get the later context (the
 * updates' "changes" hold the old values, so undoing the later one is the way to fix it).
 * The same holds from each (re)connect until the first load. A hold never outlives
 * REGISTRY_HOLD_MAX_MS or REGISTRY_HOLD_MAX_BYTES (then the events go with the context
 * known, counted), a lost connection or shutdown (released at once).
 *
 * Degrading: a registry HA does not know (older HA: floors, labels -> unknown_command)
 * or may not list (a non-admin token -> unauthorized) is left out: its fields are null
 * (no entity registry at all: events carry no homeiq_registry). /health says which and
 * why; event ingestion never waits for, nor stops over, the registries.
 *
 * Ownership: registry_new borrows the ha_client (it must outlive the registry); the
 * sink receives each event's final text, valid during the call. */
#ifndef HOMEIQ_REGISTRY_H
#define HOMEIQ_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ha_client.h"
#include "sbuf.h"

struct event_base;
typedef struct registry registry;

/* The five registry_updated event types, comma-separated (subscribed besides the configured ones). */
#define REGISTRY_EVENT_TYPES                                                                                  \
    "entity_registry_updated,device_registry_updated,area_registry_updated,floor_registry_updated,"          \
    "label_registry_updated"

typedef struct registry_opts {
    long debounce_ms;          /* after an update event, wait this long for more before reloading */
    long hold_max_ms;          /* longest an event waits for a reload */
    size_t hold_max_bytes;     /* most event bytes held */
} registry_opts;

typedef void (*registry_sink_fn)(const char *json, size_t len, void *arg);

int registry_new(struct event_base *base, const registry_opts *o, ha_client *ha, registry_sink_fn sink, void *arg,
                 registry **out);
/* One event from HA (the "event" member's text, validated by ha_client): to the sink
 * now with its context, or held until the reload it waits for. */
void registry_on_event(registry *r, const char *json, size_t len);
/* Writes `json` (an HA event object) to `out` with "homeiq_registry" added: 0, or 1
 * when no context is known for it (out untouched). For events not from the live
 * stream (backfill): they get the context known now. r may be NULL (returns 1). */
int registry_annotate(registry *r, const char *json, size_t len, sbuf *out);
/* Spools the held events now, with the context known so far (counted as unresolved):
 * for a reader that is about to spool copies of them from elsewhere (backfill). */
void registry_release_held(registry *r);
/* /health's "registry" object (new reference). */
json_t *registry_health(const registry *r);
/* Releases held events to the sink and frees. NULL is fine. */
void registry_free(registry *r);

#endif
