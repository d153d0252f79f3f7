/* fuzz_ha_message.c -- websocket-ingestion's HA message handler (ha_client.c)
 * on arbitrary messages from "Home Assistant".
 *
 * The client runs for real over a bufferevent pair (ha_client_int.h): the
 * harness answers the upgrade, the client sends auth on open; then every line
 * of the input (split at '\n') is handed to the handler as one text frame,
 * exactly as ws.c hands it over. When a message ends the connection
 * (auth_invalid, a bad frame, a failed subscription) the harness reconnects
 * (at most 3 times), as the reconnect timer would. Input byte 0 picks the
 * subscriptions. On subscription a hook sends a command (as backfill and the
 * registry do), so results to pending requests are handled too.
 *
 * Properties (any violation aborts):
 *  - no crash, leak or sanitizer report, whatever the messages;
 *  - an event reaches on_event only while connected and past auth_ok
 *    (subscribing or subscribed), as a JSON object every reader accepts;
 *    when ha_event_info says strict, jscan_strict accepts it and the spans
 *    given are its first event_type / data / time_fired members (issue 15);
 *  - a pending request's callback runs once: with a result message (a JSON
 *    object) or with NULL when the connection ended;
 *  - the hooks alternate: on_lost only after on_subscribed... never twice
 *    subscribed without a loss in between. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ha_client.h"
#include "ha_client_int.h"
#include "json_scan.h"
#include "log.h"
#include "ws.h"

typedef struct fz {
    ha_client *c;
    long events, results, lost_results, subscribed, lost;
    int live;          /* on_subscribed seen, on_lost not yet */
    long pending;      /* requests sent, callback not yet run */
} fz;

static void die(const char *what) {
    fprintf(stderr, "fuzz_ha_message: %s\n", what);
    abort();
}

typedef struct fz_first {
    const char *key, *val;
    size_t vlen;
} fz_first;

static int fz_first_member(const char *key, size_t klen, const char *val, size_t vlen, void *arg) {
    fz_first *f = arg;
    if (!f->val && klen == strlen(f->key) && !memcmp(key, f->key, klen)) f->val = val, f->vlen = vlen;
    return 0;
}

/* What the client's one scan reported of a member is the event's first such member. */
static void fz_check_span(const char *json, size_t len, const char *key, const char *val, size_t vlen) {
    fz_first f = {key, NULL, 0};
    if (jscan_object(json, len, fz_first_member, &f) != 0) die("an event that is not an object");
    if (f.val != val || f.vlen != vlen) die("ha_event_info names another span than the event's member");
}

static void on_event(const char *json, size_t len, const ha_event_info *info, void *arg) {
    fz *z = arg;
    ha_client_stats st;
    ha_client_get_stats(z->c, &st);
    if (st.state != HA_SUBSCRIBING && st.state != HA_SUBSCRIBED) die("an event before subscribing");
    if (len == 0 || json[0] != '{') die("an event that is not an object");
    if (jscan_validate(json, len, NULL) != 0) die("an event that is not valid JSON");
    if (!info) die("no ha_event_info");
    if (info->strict) { /* ingestion then skips its own jscan_strict: it must hold */
        if (jscan_strict(json, len, NULL, NULL) != 0) die("an event said strict that jscan_strict refuses");
        fz_check_span(json, len, "event_type", info->event_type, info->tlen);
        fz_check_span(json, len, "data", info->data, info->dlen);
        fz_check_span(json, len, "time_fired", info->time_fired, info->flen);
    } else if (info->event_type || info->data || info->time_fired) {
        die("spans without the strict scan");
    }
    z->events++;
}

static void on_result(const char *msg, size_t len, void *arg) {
    fz *z = arg;
    if (z->pending-- <= 0) die("a result callback without a request");
    if (!msg) {
        if (len) die("no message but a length");
        z->lost_results++;
        return;
    }
    if (len == 0 || jscan_first(msg, len) != '{' || jscan_validate(msg, len, NULL) != 0)
        die("a result that is not a JSON object");
    z->results++;
}

static void on_subscribed(void *arg) {
    fz *z = arg;
    if (z->live) die("subscribed twice without a loss");
    z->live = 1;
    z->subscribed++;
    if (ha_client_request(z->c, json_pack("{s:s}", "type", "config/entity_registry/list"), on_result, z) > 0)
        z->pending++;
}

static void on_lost(void *arg) {
    fz *z = arg;
    z->live = 0;
    z->lost++;
}

static struct event_base *base;

/* Plays HA's side of the upgrade on `srv`: reads the request, answers 101. */
static int answer_upgrade(struct bufferevent *srv) {
    struct evbuffer *in = bufferevent_get_input(srv);
    size_t n = evbuffer_get_length(in);
    char *req = malloc(n + 1);
    evbuffer_remove(in, req, n);
    req[n] = '\0';
    const char *k = strstr(req, "Sec-WebSocket-Key: ");
    char key[64] = "", acc[29];
    if (k) sscanf(k + 19, "%63[^\r]", key);
    free(req);
    if (!*key || ws_accept_value(key, acc) != 0) return -1;
    char resp[200];
    int len = snprintf(resp, sizeof resp,
                       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: %s\r\n\r\n", acc);
    bufferevent_write(srv, resp, (size_t)len);
    return 0;
}

static void loop_a_little(void) {
    for (int i = 0; i < 4; i++) event_base_loop(base, EVLOOP_NONBLOCK);
}

static int connected(ha_client *c) {
    ha_client_stats st;
    ha_client_get_stats(c, &st);
    return st.state == HA_AUTHENTICATING || st.state == HA_SUBSCRIBING || st.state == HA_SUBSCRIBED;
}

/* A new pair, the client on one end: connected (auth sent) or not. */
static struct bufferevent *connect_pair(fz *z) {
    struct bufferevent *pair[2];
    if (bufferevent_pair_new(base, 0, pair) != 0) abort();
    bufferevent_enable(pair[1], EV_READ | EV_WRITE);
    if (ha_client_start_on(z->c, pair[0]) != 0) die("ha_client_start_on refused a pair");
    loop_a_little();
    if (answer_upgrade(pair[1]) != 0) die("no upgrade request");
    loop_a_little();
    if (!connected(z->c)) die("not authenticating after the upgrade");
    return pair[1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const types[] = {"state_changed", "*", "state_changed,call_service", "a,b,c,d"};
    if (!base) {
        setenv("LOG_LEVEL", "error", 1);
        log_init("fuzz");
        base = event_base_new();
        if (!base) abort();
    }
    if (size == 0) return 0;
    fz z = {0};
    ha_client_opts o = {
        .url = "ws://127.0.0.1:1/api/websocket", .token = "fuzz-token", .event_types = types[data[0] % 4],
        .ping_interval_ms = 3600000, .pong_timeout_ms = 3600000, .reconnect_min_ms = 3600000,
        .reconnect_max_ms = 3600000, .auth_retry_ms = 3600000, .max_msg_bytes = 1 << 20,
    };
    if (ha_client_new(base, &o, on_event, &z, &z.c) != 0) die("ha_client_new");
    ha_client_set_hooks(z.c, on_subscribed, on_lost, &z);
    struct bufferevent *srv = connect_pair(&z);
    int reconnects = 0;
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        if (!connected(z.c)) { /* the last message ended the connection: reconnect */
            if (z.live) die("lost without on_lost");
            bufferevent_free(srv);
            if (reconnects++ == 3) {
                srv = NULL;
                break;
            }
            srv = connect_pair(&z);
        }
        ha_client_handle_text(z.c, p, (size_t)(e - p));
        loop_a_little();
        evbuffer_drain(bufferevent_get_input(srv), evbuffer_get_length(bufferevent_get_input(srv)));
        p = e + (nl ? 1 : 0);
    }
    ha_client_free(z.c); /* pending requests: freed without a callback (the client is gone) */
    if (srv) bufferevent_free(srv);
    event_base_loop(base, EVLOOP_NONBLOCK); /* deferred frees */
    return 0;
}
