/* ha_client.c -- see ha_client.h. Control messages (auth_*, result, pong) are
 * parsed with jansson; event messages, the hot path, only with json_scan so
 * the "event" member is handed on byte for byte. The token is only ever put
 * into the auth frame; neither it nor that frame is logged. */
#include "ha_client.h"
#include "ha_client_int.h"
#include "event.h"
#include "json_scan.h"

#include "log.h"
#include "service.h"
#include "url.h"
#include "ws.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HA_MAX_TYPES 32

struct ha_client {
    struct event_base *base;
    ha_client_opts o;
    char *url, *token, *ca_file;
    char *types[HA_MAX_TYPES]; /* NULL entry = "*" (no event_type) */
    int ntypes;
    ha_event_fn on_event;
    void *arg;

    ws_conn *ws;
    ha_state state;
    long long next_id;
    long long features_id, ping_id;
    long long sub_ids[HA_MAX_TYPES];
    int subs_ok;
    int attempt;

    struct event *reconnect_ev, *ping_ev, *pong_ev;
    ha_client_stats st;

    struct { ha_hook_fn on_subscribed, on_lost; void *arg; } hooks[HA_MAX_HOOKS]; /* registry's, then backfill's (its list commands go first) */
    int nhooks;
    struct { long long id; ha_result_fn cb; void *arg; } pend[HA_MAX_PENDING];
    int npend;

    struct ha_msg *msgs;          /* one frame's messages, collected by its one strict scan (ha_on_text) */
    size_t nmsgs, msgs_cap;
    int msgs_oom, in_frame;
};

static void ha_connect(ha_client *c);

const char *ha_state_name(ha_state s) {
    switch (s) {
    case HA_WAITING: return "waiting";
    case HA_CONNECTING: return "connecting";
    case HA_AUTHENTICATING: return "authenticating";
    case HA_SUBSCRIBING: return "subscribing";
    case HA_SUBSCRIBED: return "subscribed";
    case HA_AUTH_INVALID: return "auth_invalid";
    }
    return "?";
}

int ha_client_url(const char *in, char *out, size_t outlen) {
    static const struct { const char *in, *out; int is_ws; } schemes[] = {
        {"http://", "ws://", 0}, {"https://", "wss://", 0}, {"ws://", "ws://", 1}, {"wss://", "wss://", 1}};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t sl = strlen(schemes[i].in);
        if (strncasecmp(in, schemes[i].in, sl) != 0) continue;
        const char *rest = in + sl;
        size_t hostlen = strcspn(rest, "/?#");
        if (hostlen == 0) return -1;
        const char *path = rest + hostlen;
        size_t plen = url_trim_len(path, strlen(path));
        int n;
        if (schemes[i].is_ws && plen > 0) /* a WebSocket URL keeps its path */
            n = snprintf(out, outlen, "%s%.*s%s", schemes[i].out, (int)hostlen, rest, path);
        else /* an HA base URL: the API lives at <base>/api/websocket */
            n = snprintf(out, outlen, "%s%.*s%.*s/api/websocket", schemes[i].out, (int)hostlen, rest, (int)plen,
                         path);
        return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
    }
    return -1;
}

/* ---- timers and teardown -------------------------------------------------- */

static void ha_arm(struct event *ev, long ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static long ha_backoff_ms(ha_client *c) {
    long d = c->o.reconnect_min_ms;
    for (int i = 0; i < c->attempt && d < c->o.reconnect_max_ms; i++) d *= 2;
    if (d > c->o.reconnect_max_ms) d = c->o.reconnect_max_ms;
    long j = d / 4; /* +-25 % jitter: many clients must not reconnect in step */
    if (j > 0) d += (long)(random() % (2 * j + 1)) - j;
    if (c->attempt < 30) c->attempt++;
    return d > 0 ? d : 1;
}

/* The connection is over (error, close, timeout, protocol problem): frees it
 * and schedules the next attempt. */
static void ha_drop(ha_client *c, const char *why) {
    ha_state was = c->state;
    if (c->ws) {
        ws_free(c->ws);
        c->ws = NULL;
    }
    evtimer_del(c->ping_ev);
    evtimer_del(c->pong_ev);
    c->st.disconnects++;
    c->st.subscribed_since_us = 0;
    snprintf(c->st.last_error, sizeof c->st.last_error, "%s", why);
    while (c->npend > 0) { /* requests in flight get no answer */
        c->npend--;
        c->pend[c->npend].cb(NULL, 0, c->pend[c->npend].arg);
    }
    for (int i = 0; i < c->nhooks; i++)
        if (c->hooks[i].on_lost) c->hooks[i].on_lost(c->hooks[i].arg);
    if (was == HA_AUTH_INVALID) {
        if (c->o.auth_retry_ms > 0) {
            log_error("home assistant: not retrying for %ld s (auth_invalid: fix HOME_ASSISTANT_TOKEN)",
                      c->o.auth_retry_ms / 1000);
            ha_arm(c->reconnect_ev, c->o.auth_retry_ms);
        } else {
            log_error("home assistant: auth_invalid; not retrying (HA_AUTH_RETRY_S=0): fix the token and restart");
        }
        return;
    }
    c->state = HA_WAITING;
    long delay = ha_backoff_ms(c);
    log_warn("home assistant: connection %s (%s); reconnecting in %.1f s",
             was == HA_SUBSCRIBED ? "lost" : "failed", why, (double)delay / 1000.0);
    ha_arm(c->reconnect_ev, delay);
}

static void ha_reconnect_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    ha_connect(arg);
}

/* ---- sending --------------------------------------------------------------- */

/* Sends a command with the next id; returns the id, or -1 (connection dropped). */
static long long ha_send_cmd(ha_client *c, json_t *msg) {
    long long id = c->next_id++;
    json_object_set_new(msg, "id", json_integer(id));
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    int rc = text ? ws_send_text(c->ws, text, strlen(text)) : -1;
    free(text);
    if (rc != 0) {
        ha_drop(c, "cannot send to home assistant");
        return -1;
    }
    return id;
}

static int ha_send_auth(ha_client *c) {
    json_t *m = json_pack("{s:s,s:s}", "type", "auth", "access_token", c->token);
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    int rc = text ? ws_send_text(c->ws, text, strlen(text)) : -1;
    if (text) {
        memset(text, 0, strlen(text)); /* the token does not linger in freed memory */
        free(text);
    }
    return rc;
}

static void ha_ping_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    ha_client *c = arg;
    if (!c->ws) return;
    long long id = ha_send_cmd(c, json_pack("{s:s}", "type", "ping"));
    if (id < 0) return;
    c->ping_id = id;
    ha_arm(c->pong_ev, c->o.pong_timeout_ms);
}

static void ha_pong_timeout_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    ha_client *c = arg;
    char why[96];
    snprintf(why, sizeof why, "no pong within %ld ms", c->o.pong_timeout_ms);
    ha_drop(c, why);
}

static void ha_subscribe(ha_client *c) {
    c->state = HA_SUBSCRIBING;
    c->subs_ok = 0;
    c->features_id = ha_send_cmd(c, json_pack("{s:s,s:{s:i}}", "type", "supported_features", "features",
                                              "coalesce_messages", 1));
    if (c->features_id < 0) return;
    for (int i = 0; i < c->ntypes; i++) {
        json_t *m = json_pack("{s:s}", "type", "subscribe_events");
        if (c->types[i]) json_object_set_new(m, "event_type", json_string(c->types[i]));
        c->sub_ids[i] = ha_send_cmd(c, m);
        if (c->sub_ids[i] < 0) return;
    }
}

/* ---- receiving ------------------------------------------------------------- */

static void ha_handle_result(ha_client *c, json_t *m, long long id) {
    int ok = json_is_true(json_object_get(m, "success"));
    if (id == c->features_id) {
        if (!ok) log_info("home assistant: supported_features not accepted (older HA); frames stay single messages");
        return;
    }
    for (int i = 0; i < c->ntypes; i++) {
        if (id != c->sub_ids[i]) continue;
        if (!ok) {
            json_t *err = json_object_get(m, "error");
            const char *code = json_string_value(json_object_get(err, "code"));
            const char *msg = json_string_value(json_object_get(err, "message"));
            char why[200];
            snprintf(why, sizeof why, "subscribe_events(%s) failed: %s: %s", c->types[i] ? c->types[i] : "*",
                     code ? code : "?", msg ? msg : "?");
            log_error("home assistant: %s", why);
            ha_drop(c, why);
            return;
        }
        if (++c->subs_ok == c->ntypes && c->state == HA_SUBSCRIBING) {
            c->state = HA_SUBSCRIBED;
            c->attempt = 0;
            c->st.connects++;
            c->st.subscribed_since_us = service_now_us();
            log_info("home assistant: subscribed (%d subscription(s), HA %s)", c->ntypes,
                     c->st.ha_version[0] ? c->st.ha_version : "?");
            for (int h = 0; h < c->nhooks && c->state == HA_SUBSCRIBED; h++)
                if (c->hooks[h].on_subscribed) c->hooks[h].on_subscribed(c->hooks[h].arg);
        }
        return;
    }
}

static void ha_handle_control(ha_client *c, const char *msg, size_t len) {
    json_error_t jerr;
    json_t *m = json_loadb(msg, len, 0, &jerr);
    const char *type = json_string_value(json_object_get(m, "type"));
    if (!type) {
        c->st.bad_messages++;
        log_warn("home assistant: message without a type ignored");
        json_decref(m);
        return;
    }
    json_t *jid = json_object_get(m, "id");
    long long id = json_is_integer(jid) ? (long long)json_integer_value(jid) : -1;
    const char *ver = json_string_value(json_object_get(m, "ha_version"));
    if (ver) snprintf(c->st.ha_version, sizeof c->st.ha_version, "%s", ver);

    if (!strcmp(type, "auth_required")) {
        /* auth was sent on open already */
    } else if (!strcmp(type, "auth_ok")) {
        if (c->state != HA_AUTHENTICATING) {
            /* a second auth_ok would subscribe again: every event twice (found by tests/fuzz/fuzz_ha_message) */
            log_warn("home assistant: auth_ok while %s ignored", ha_state_name(c->state));
            json_decref(m);
            return;
        }
        log_info("home assistant: authenticated (HA %s)", ver ? ver : "?");
        c->st.auth_invalid = 0;
        ha_subscribe(c);
        if (c->ws) ha_arm(c->ping_ev, c->o.ping_interval_ms);
    } else if (!strcmp(type, "auth_invalid")) {
        const char *why = json_string_value(json_object_get(m, "message"));
        log_error("home assistant: auth_invalid: %s -- the token (HOME_ASSISTANT_TOKEN) was rejected",
                  why ? why : "no reason given");
        c->state = HA_AUTH_INVALID;
        c->st.auth_invalid = 1;
        ha_drop(c, "auth_invalid: the token was rejected");
    } else if (!strcmp(type, "result")) {
        ha_handle_result(c, m, id);
    } else if (!strcmp(type, "pong")) {
        if (id == c->ping_id) {
            evtimer_del(c->pong_ev);
            ha_arm(c->ping_ev, c->o.ping_interval_ms);
        }
    } else {
        log_debug("home assistant: message type %s ignored", type);
    }
    json_decref(m);
}

typedef struct ha_msg {
    const char *text, *type, *id, *event;
    size_t len, tlen, idlen, elen;
    ha_event_info ev;   /* the "event" member's members (strict scan only) */
} ha_msg;

static int ha_member_cb(const char *key, size_t klen, const char *val, size_t vlen, void *arg) {
    ha_msg *m = arg;
    if (klen == 4 && !memcmp(key, "type", 4)) m->type = val, m->tlen = vlen;
    else if (klen == 2 && !memcmp(key, "id", 2)) m->id = val, m->idlen = vlen;
    else if (klen == 5 && !memcmp(key, "event", 5)) m->event = val, m->elen = vlen;
    return 0;
}

/* ---- the one strict scan of a frame (issue 15) ------------------------------
 * A frame (one message or a coalesced array) is validated once with
 * jscan_strict's rules while its messages' members and their events' members
 * are noted; the messages are handled after the whole frame passed. An event
 * from such a frame needs no second check downstream (ha_event_info.strict).
 * A frame that fails goes the old way (ha_handle_one per message), so what is
 * refused, ignored or dead-lettered is exactly as before. */

typedef struct ha_scan {
    ha_client *c;
    ha_msg cur;          /* the message being scanned */
    ha_event_info nest;  /* members of its "event" member being scanned */
} ha_scan;

static int ha_scan_event_member(const char *key, size_t klen, const char *val, size_t vlen, void *arg) {
    ha_event_info *e = &((ha_scan *)arg)->nest;
    /* the first of each, as the trusted scans that read them before did */
    if (klen == 10 && !memcmp(key, "event_type", 10)) {
        if (!e->event_type) e->event_type = val, e->tlen = vlen;
    } else if (klen == 4 && !memcmp(key, "data", 4)) {
        if (!e->data) e->data = val, e->dlen = vlen;
    } else if (klen == 10 && !memcmp(key, "time_fired", 10)) {
        if (!e->time_fired) e->time_fired = val, e->flen = vlen;
    }
    return 0;
}

static int ha_scan_member(const char *key, size_t klen, const char *val, size_t vlen, void *arg) {
    ha_scan *sc = arg;
    ha_member_cb(key, klen, val, vlen, &sc->cur);
    if (klen == 5 && !memcmp(key, "event", 5)) { /* the last "event" counts, with its own members */
        sc->cur.ev = sc->nest;
        sc->cur.ev.strict = 1;
    }
    memset(&sc->nest, 0, sizeof sc->nest);
    return 0;
}

static int ha_scan_end(const char *val, size_t vlen, void *arg) {
    ha_scan *sc = arg;
    ha_client *c = sc->c;
    if (c->nmsgs == c->msgs_cap) {
        size_t cap = c->msgs_cap ? c->msgs_cap * 2 : 64;
        struct ha_msg *n = realloc(c->msgs, cap * sizeof *n);
        if (!n) c->msgs_oom = 1;
        else c->msgs = n, c->msgs_cap = cap;
    }
    sc->cur.text = val;
    sc->cur.len = vlen;
    if (c->nmsgs < c->msgs_cap) c->msgs[c->nmsgs++] = sc->cur;
    memset(&sc->cur, 0, sizeof sc->cur);
    memset(&sc->nest, 0, sizeof sc->nest);
    return 0;
}

static int ha_is_subscription(const ha_client *c, const ha_msg *m) {
    char buf[24];
    if (!m->id || m->idlen >= sizeof buf) return 0;
    memcpy(buf, m->id, m->idlen);
    buf[m->idlen] = '\0';
    long long id = strtoll(buf, NULL, 10);
    for (int i = 0; i < c->ntypes; i++)
        if (id == c->sub_ids[i]) return 1;
    return 0;
}

static int ha_handle_msg(ha_client *c, const char *msg, size_t len, const ha_msg *mp);

/* One message (an object), not yet scanned. Returns 1 when the connection was dropped. */
static int ha_handle_one(ha_client *c, const char *msg, size_t len) {
    ha_msg m = {0};
    if (jscan_object(msg, len, ha_member_cb, &m) != 0) {
        c->st.bad_messages++;
        log_warn("home assistant: a message that is not a JSON object was ignored");
        return 0;
    }
    return ha_handle_msg(c, msg, len, &m);
}

/* One scanned message. Returns 1 when the connection was dropped. */
static int ha_handle_msg(ha_client *c, const char *msg, size_t len, const ha_msg *mp) {
    ws_conn *ws = c->ws;
    ha_msg m = *mp;
    if (m.type && m.tlen == 7 && !memcmp(m.type, "\"event\"", 7) && m.event && m.elen > 0 && m.event[0] == '{') {
        if ((c->state != HA_SUBSCRIBING && c->state != HA_SUBSCRIBED) || !ha_is_subscription(c, &m)) {
            /* before subscribe_events, sub_ids are -1: "id":-1 matched them (found by tests/fuzz/fuzz_ha_message) */
            log_debug("home assistant: event for an unknown subscription ignored");
            return 0;
        }
        c->st.events++;
        c->st.last_event_us = service_now_us();
        c->on_event(m.event, m.elen, &m.ev, c->arg);
        return 0;
    }
    if (c->npend > 0 && m.type && m.tlen == 8 && !memcmp(m.type, "\"result\"", 8) && m.id && m.idlen < 24) {
        char buf[24];
        memcpy(buf, m.id, m.idlen);
        buf[m.idlen] = '\0';
        long long id = strtoll(buf, NULL, 10);
        for (int i = 0; i < c->npend; i++) {
            if (c->pend[i].id != id) continue;
            ha_result_fn cb = c->pend[i].cb;
            void *arg = c->pend[i].arg;
            c->pend[i] = c->pend[--c->npend];
            cb(msg, len, arg);
            return c->ws != ws;
        }
    }
    ha_handle_control(c, msg, len);
    return c->ws != ws;
}

static int ha_elem_cb(const char *val, size_t vlen, void *arg) { return ha_handle_one(arg, val, vlen); }

/* The frame through its one strict scan, then its messages; 0, or -1 when it
 * did not pass (nothing was handled: the caller takes the old way). */
static int ha_on_text_strict(ha_client *c, const char *msg, size_t len) {
    if (c->in_frame) return -1; /* not re-entered today; the old way would be right if it were */
    ha_scan sc;
    memset(&sc, 0, sizeof sc);
    sc.c = c;
    jscan_hooks h = {.obj_fn = ha_scan_member, .nest_fn = ha_scan_event_member, .end_fn = ha_scan_end,
                     .nest_key = "event", .arg = &sc};
    c->nmsgs = 0;
    c->msgs_oom = 0;
    if (jscan_strict_objects(msg, len, &h, NULL, NULL) != 0 || c->msgs_oom) return -1;
    c->in_frame = 1;
    for (size_t i = 0; i < c->nmsgs; i++) {
        const ha_msg *m = &c->msgs[i];
        if (m->len == 0 || jscan_first(m->text, m->len) != '{') { /* an array element that is no object */
            if (ha_handle_one(c, m->text, m->len)) break;
        } else if (ha_handle_msg(c, m->text, m->len, m)) {
            break;
        }
    }
    c->in_frame = 0;
    c->nmsgs = 0;
    return 0;
}

static void ha_on_text(ws_conn *ws, const char *msg, size_t len, void *arg) {
    (void)ws;
    ha_client *c = arg;
    char first = jscan_first(msg, len);
    int rc;
    if ((first == '[' || first == '{') && ha_on_text_strict(c, msg, len) == 0) return;
    if (first == '[') rc = jscan_array(msg, len, ha_elem_cb, c);
    else rc = first == '{' ? (ha_handle_one(c, msg, len), 0) : -1;
    if (rc != 0 && c->ws) {
        /* HA closes on invalid JSON from us; we do the same: the stream is not trustworthy */
        c->st.bad_messages++;
        ha_drop(c, "invalid JSON frame from home assistant");
    }
}

static void ha_on_open(ws_conn *ws, void *arg) {
    (void)ws;
    ha_client *c = arg;
    c->state = HA_AUTHENTICATING;
    if (ha_send_auth(c) != 0) ha_drop(c, "cannot send auth");
}

static void ha_on_close(ws_conn *ws, int code, const char *reason, void *arg) {
    (void)ws;
    ha_client *c = arg;
    char why[200];
    snprintf(why, sizeof why, "closed (%d%s%s)", code, *reason ? ": " : "", reason);
    ha_drop(c, why);
}

/* Connects (bev NULL: a socket to c->url; else over bev, ha_client_start_on). */
static void ha_connect_on(ha_client *c, struct bufferevent *bev) {
    static const ws_callbacks cbs = {ha_on_open, ha_on_text, ha_on_close};
    ws_client_opts wo = {
        .ca_file = c->ca_file, .insecure = c->o.insecure, .max_msg_bytes = c->o.max_msg_bytes,
        .connect_timeout_ms = (int)c->o.connect_timeout_ms,
    };
    if (c->state == HA_AUTH_INVALID) log_info("home assistant: trying the token again");
    c->state = HA_CONNECTING;
    c->next_id = 1;
    c->features_id = c->ping_id = -1;
    for (int i = 0; i < c->ntypes; i++) c->sub_ids[i] = -1;
    int rc = bev ? ws_client_attach(c->base, bev, c->url, &wo, &cbs, c, &c->ws)
                 : ws_client_connect(c->base, c->url, &wo, &cbs, c, &c->ws);
    if (rc != 0) {
        c->ws = NULL;
        ha_drop(c, "cannot start connecting (bad URL?)");
    }
}

static void ha_connect(ha_client *c) { ha_connect_on(c, NULL); }

/* ---- tests and fuzzing (ha_client_int.h) ----------------------------------- */

int ha_client_start_on(ha_client *c, struct bufferevent *bev) {
    evtimer_del(c->reconnect_ev);
    ha_connect_on(c, bev);
    return c->ws ? 0 : -1;
}

void ha_client_handle_text(ha_client *c, const char *msg, size_t len) { ha_on_text(c->ws, msg, len, c); }

/* ---- life cycle ------------------------------------------------------------ */

static int ha_parse_types(ha_client *c, const char *list) {
    if (!list || !*list) list = "state_changed";
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *b = p, *e = p + n;
        while (b < e && (*b == ' ' || *b == '\t')) b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t')) e--;
        if (e > b) {
            if (c->ntypes == HA_MAX_TYPES) return -1;
            int all = (e - b == 1 && *b == '*');
            c->types[c->ntypes] = all ? NULL : strndup(b, (size_t)(e - b));
            if (!all && !c->types[c->ntypes]) return -1;
            c->ntypes++;
            if (all) { /* "*" covers everything: one subscription only */
                for (int i = 0; i < c->ntypes; i++) free(c->types[i]);
                c->types[0] = NULL;
                c->ntypes = 1;
                return 0;
            }
        }
        p += n;
        if (*p == ',') p++;
    }
    return c->ntypes > 0 ? 0 : -1;
}

int ha_client_new(struct event_base *base, const ha_client_opts *o, ha_event_fn on_event, void *arg,
                  ha_client **out) {
    ha_client *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->base = base;
    c->o = *o;
    c->on_event = on_event;
    c->arg = arg;
    c->url = strdup(o->url);
    c->token = strdup(o->token ? o->token : "");
    c->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
    c->o.url = c->o.token = c->o.ca_file = c->o.event_types = NULL;
    if (c->o.reconnect_min_ms < 1) c->o.reconnect_min_ms = 1000;
    if (c->o.reconnect_max_ms < c->o.reconnect_min_ms) c->o.reconnect_max_ms = c->o.reconnect_min_ms;
    if (c->o.ping_interval_ms < 1) c->o.ping_interval_ms = 30000;
    if (c->o.pong_timeout_ms < 1) c->o.pong_timeout_ms = 10000;
    if (!c->o.max_msg_bytes) c->o.max_msg_bytes = EVENT_RAW_MAX;
    c->reconnect_ev = evtimer_new(base, ha_reconnect_cb, c);
    c->ping_ev = evtimer_new(base, ha_ping_cb, c);
    c->pong_ev = evtimer_new(base, ha_pong_timeout_cb, c);
    if (!c->url || !c->token || (o->ca_file && !c->ca_file) || !c->reconnect_ev || !c->ping_ev || !c->pong_ev ||
        ha_parse_types(c, o->event_types) != 0) {
        log_error("home assistant: bad configuration (HOME_ASSISTANT_EVENT_TYPES: at most %d types)", HA_MAX_TYPES);
        ha_client_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

void ha_client_start(ha_client *c) { ha_connect(c); }

void ha_client_set_hooks(ha_client *c, ha_hook_fn on_subscribed, ha_hook_fn on_lost, void *arg) {
    if (c->nhooks == HA_MAX_HOOKS) return;
    c->hooks[c->nhooks].on_subscribed = on_subscribed;
    c->hooks[c->nhooks].on_lost = on_lost;
    c->hooks[c->nhooks].arg = arg;
    c->nhooks++;
}

long long ha_client_request(ha_client *c, json_t *msg, ha_result_fn cb, void *arg) {
    if (!msg || !c->ws || c->state != HA_SUBSCRIBED || c->npend == HA_MAX_PENDING) {
        json_decref(msg);
        return -1;
    }
    long long id = ha_send_cmd(c, msg); /* on failure the connection is dropped */
    if (id < 0) return -1;
    c->pend[c->npend].id = id;
    c->pend[c->npend].cb = cb;
    c->pend[c->npend].arg = arg;
    c->npend++;
    return id;
}

void ha_client_cancel(ha_client *c, long long id) {
    for (int i = 0; i < c->npend; i++)
        if (c->pend[i].id == id) {
            c->pend[i] = c->pend[--c->npend];
            return;
        }
}

void ha_client_get_stats(const ha_client *c, ha_client_stats *st) {
    *st = c->st;
    st->state = c->state;
}

void ha_client_free(ha_client *c) {
    if (!c) return;
    ws_free(c->ws);
    if (c->reconnect_ev) event_free(c->reconnect_ev);
    if (c->ping_ev) event_free(c->ping_ev);
    if (c->pong_ev) event_free(c->pong_ev);
    for (int i = 0; i < c->ntypes; i++) free(c->types[i]);
    if (c->token) {
        memset(c->token, 0, strlen(c->token));
        free(c->token);
    }
    free(c->url);
    free(c->ca_file);
    free(c->msgs);
    free(c);
}
