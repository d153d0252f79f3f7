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
 * Updates closer together than one reload round trip (debounce + HA's answer) share one
 * hold, and the answer holds the registries after all of them (HA answers in order with its
 * events); each held event still gets the context of its own position: the later updates
 * are undone for the events before them (an entity/device update's "changes" give the old
 * values; area/floor/label updates carry none, so their entry is taken from the lists known
 * when the hold began -- exact unless the same area/floor/label changed twice in one hold).
 * The same holds from each (re)connect until the first load. A hold never outlives
 * REGISTRY_HOLD_MAX_MS or REGISTRY_HOLD_MAX_BYTES (then the events go with the context
 * known, counted, the reason in /health), a lost connection or shutdown (released at once);
 * a reload still unanswered after REGISTRY_HOLD_MAX_MS stops holding until HA answers.
 *
 * History rows (backfill) pass through here too (registry_on_row): behind the live events
 * already received (held ones included), with the context of their position -- the
 * registry as it is when they are read; HA keeps no history of its registries.
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

/* A history row (registry_on_row), not a live event: the sink does not mark it seen. */
#define REGISTRY_ROW 1u
/* The sink spools one event: 0, or the spool's error code. info: what ha_client's scan
 * saw of a live event sent on at once (its strictness holds for the annotated text too:
 * the context added is jansson's output); NULL for rows and for events that were held. */
typedef int (*registry_sink_fn)(const char *json, size_t len, unsigned flags, const ha_event_info *info, void *arg);

int registry_new(struct event_base *base, const registry_opts *o, ha_client *ha, registry_sink_fn sink, void *arg,
                 registry **out);
/* One event from HA (the "event" member's text, validated by ha_client): to the sink
 * now with its context, or held until the reload it waits for. */
void registry_on_event(registry *r, const char *json, size_t len, const ha_event_info *info);
/* One event not from the live stream (a backfilled history row), to the sink behind the
 * live events received before it: held with them when they are held (0), else spooled now
 * with the context known (the sink's code). A held row the spool refuses at release (full)
 * is logged and counted as dropped, as a live event would be. */
int registry_on_row(registry *r, const char *json, size_t len);
/* When history rows are held: spools every held event now, with the context known so far
 * (counted as unresolved) -- for backfill, before its mark moves past the rows. */
void registry_flush_rows(registry *r);
/* /health's "registry" object (new reference). */
json_t *registry_health(const registry *r);
/* Releases held events to the sink and frees. NULL is fine. */
void registry_free(registry *r);

#endif
