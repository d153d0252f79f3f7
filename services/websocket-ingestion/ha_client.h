/* ha_client.h -- the Home Assistant WebSocket client of websocket-ingestion.
 *
 * Why: HA pushes events over one long-lived WebSocket and never replays them,
 * so this connection must be authenticated, subscribed exactly once, watched
 * (application-level ping with a timeout) and re-established forever. The
 * Python original subscribed twice after a reconnect (duplicates), gave up
 * reconnecting while /health said 200, and logged the token; this module
 * keeps one explicit state machine instead:
 *
 *   WAITING --connect--> CONNECTING --open--> AUTHENTICATING --auth_ok-->
 *   SUBSCRIBING --all subscribe results ok--> SUBSCRIBED
 *   any error/close/pong timeout --> WAITING (backoff 1 s doubling to
 *   RECONNECT_MAX_DELAY, +-25 % jitter; reset once subscribed again)
 *   auth_invalid --> AUTH_INVALID (logged as a fatal configuration error;
 *   retried only every HA_AUTH_RETRY_S, 0 = never: no hammering, HA may ban IPs)
 *
 * Protocol (docs: ha-websocket-protocol.md section 1): the auth message is sent as soon as
 * the socket is open (HA accepts it before or after auth_required; an
 * auth_required arriving later is answered only if nothing was sent yet);
 * after auth_ok: supported_features {coalesce_messages:1}, then one
 * subscribe_events per configured event type ("*" = one subscription without
 * event_type), ids strictly increasing per connection. Frames may hold one
 * message or a JSON array of them. Each event message's "event" member is
 * handed to on_event as the exact bytes received.
 */
#ifndef HOMEIQ_HA_CLIENT_H
#define HOMEIQ_HA_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct event_base;

typedef struct ha_client ha_client;

typedef enum {
    HA_WAITING = 0,      /* not connected; a reconnect is scheduled */
    HA_CONNECTING,       /* TCP/TLS/upgrade in progress */
    HA_AUTHENTICATING,   /* auth sent, waiting for auth_ok */
    HA_SUBSCRIBING,      /* subscribe_events sent, waiting for results */
    HA_SUBSCRIBED,       /* events flowing */
    HA_AUTH_INVALID,     /* HA rejected the token */
} ha_state;

typedef struct ha_client_opts {
    const char *url;            /* ws:// or wss:// URL of /api/websocket (see ha_client_url) */
    const char *token;
    const char *event_types;    /* comma list; "*" = all; NULL/"" = state_changed */
    const char *ca_file;
    int insecure;
    long ping_interval_ms;      /* app-level ping period */
    long pong_timeout_ms;       /* no pong within this -> reconnect */
    long reconnect_min_ms;      /* first reconnect delay (1000) */
    long reconnect_max_ms;      /* cap (60000) */
    long auth_retry_ms;         /* after auth_invalid; 0 = never */
    long connect_timeout_ms;
    size_t max_msg_bytes;       /* largest accepted message (64 MiB) */
} ha_client_opts;

/* What the client's one scan of a frame saw of an event (issue 15: each event is
 * scanned once): spans into the message, valid during the call, NULL when absent. */
typedef struct ha_event_info {
    int strict;                 /* 1: the text passed jscan_strict's rules already */
    const char *event_type, *data, *time_fired; /* the event's first such members */
    size_t tlen, dlen, flen;
} ha_event_info;

/* One event: the "event" member's JSON text as received (valid during the call),
 * and what is known of it (never NULL; all zero when the frame took the slow way). */
typedef void (*ha_event_fn)(const char *event_json, size_t len, const ha_event_info *info, void *arg);

typedef struct ha_client_stats {
    ha_state state;
    uint64_t events;            /* event messages received */
    uint64_t connects;          /* connections that reached SUBSCRIBED */
    uint64_t disconnects;
    uint64_t bad_messages;      /* frames that were not valid JSON / unknown shape */
    long long last_event_us;    /* wall clock, 0 = never */
    long long subscribed_since_us;
    int auth_invalid;           /* the last authentication was rejected (until an auth_ok) */
    char last_error[200];       /* why the last connection ended / failed */
    char ha_version[32];
} ha_client_stats;

/* Turns HOME_ASSISTANT_URL into the WebSocket URL: http://h:p -> ws://h:p/api/websocket,
 * https -> wss, a ws(s):// URL is kept (a missing path becomes /api/websocket).
 * 0, or -1 when the scheme is not one of those. */
int ha_client_url(const char *in, char *out, size_t outlen);

int ha_client_new(struct event_base *base, const ha_client_opts *o, ha_event_fn on_event, void *arg,
                  ha_client **out);
/* Connects now (further reconnects are automatic). */
void ha_client_start(ha_client *c);
void ha_client_get_stats(const ha_client *c, ha_client_stats *st);
const char *ha_state_name(ha_state s);
/* Closes the connection (close frame is not waited for) and frees. NULL is fine. */
void ha_client_free(ha_client *c);

/* ---- hooks for other stages (backfill.c, registry.c) --------------------------------
 * on_subscribed runs each time every subscription was confirmed (first connect,
 * reconnect, HA restart); on_lost each time a connection ends. Each call adds one
 * stage's pair (at most HA_MAX_HOOKS), run in the order they were added. */
#define HA_MAX_HOOKS 4
typedef void (*ha_hook_fn)(void *arg);
void ha_client_set_hooks(ha_client *c, ha_hook_fn on_subscribed, ha_hook_fn on_lost, void *arg);

/* The raw text of a command's result message ({"id":N,"type":"result",...}),
 * valid during the call; NULL/0 when the connection ended first. */
typedef void (*ha_result_fn)(const char *msg, size_t len, void *arg);
#define HA_MAX_PENDING 8
/* Sends a command on the subscribed connection: `msg` (consumed) gets the next
 * id. The result message goes to cb, as text (no tree is built: history answers
 * are large). Returns the id, or -1 (not subscribed, too many pending, send failed). */
long long ha_client_request(ha_client *c, json_t *msg, ha_result_fn cb, void *arg);
/* Forgets a pending request (its answer, if it comes, is ignored). */
void ha_client_cancel(ha_client *c, long long id);

#endif
