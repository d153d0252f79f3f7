/* sim_http.c -- the simulator's front door: one listener that serves the
 * WebSocket upgrade at /api/websocket and a few plain-HTTP control endpoints.
 *
 * Why hand-parsed HTTP instead of evhttp: the WebSocket upgrade needs the raw
 * bufferevent after the request, and evhttp does not hand its connection
 * over. The control endpoints are tiny (no keep-alive, no bodies), so a
 * minimal parser is enough: read the head, answer, close. */
#include "sim.h"

#include "auth.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/util.h>

#define HTTP_MAX_HEAD 8192
#define HTTP_MAX_BODY 65536
#define HTTP_MAX_INJECT (24 << 20) /* POST /api/sim/inject: a test may send a huge event */

static void http_conn_free(sim_http_conn *h)
{
    sim *s = h->s;
    if (h->prev) h->prev->next = h->next;
    else s->http_conns = h->next;
    if (h->next) h->next->prev = h->prev;
    if (h->bev) bufferevent_free(h->bev);
    free(h);
}

void http_free_all(sim *s)
{
    while (s->http_conns) http_conn_free(s->http_conns);
    if (s->listener) evconnlistener_free(s->listener);
    s->listener = NULL;
}

void sim_stats_json(sim *s, simbuf *out)
{
    int clients = 0, authed = 0;
    size_t pending = 0;
    for (sim_client *c = s->clients; c; c = c->next) {
        clients++;
        authed += c->authed;
        pending += ws_pending_bytes(c->ws);
    }
    simbuf_printf(out,
                "{\"sent\":%lld,\"deliveries\":%lld,\"generated\":%lld,\"clients\":%d,\"authenticated\":%d,"
                "\"subscribed\":%d,\"subscriptions\":%lld,\"paused_backpressure\":%lld,\"backpressure\":%s,"
                "\"paused\":%s,\"generating\":%s,\"count_reached\":%s,\"mode\":\"%s\",\"rate\":%lld,\"count\":%lld,"
                "\"connections_total\":%lld,\"drops\":%lld,\"pending_bytes\":%zu,\"entities\":%zu,"
                "\"always_on\":%s,\"history\":%s,\"history_calls\":%lld,\"history_rows\":%lld,"
                "\"history_fail\":%lld,\"history_purged\":%lld,\"registry_calls\":%lld,\"registry_changes\":%lld}",
                s->sent, s->deliveries, s->generated, clients, authed, proto_subscribed_clients(s),
                proto_subscriptions(s), s->paused_backpressure, s->backpressure ? "true" : "false",
                s->paused ? "true" : "false", house_generating(s) ? "true" : "false",
                s->count > 0 && (s->always_on ? s->generated : s->sent) >= s->count ? "true" : "false",
                s->load_mode ? "load" : "house",
                s->rate, s->count, s->connections_total, s->drops, pending, s->nentities,
                s->always_on ? "true" : "false", s->history_on ? "true" : "false", s->history_calls,
                s->history_rows, s->history_fail, s->history_purged, s->reg_calls, s->reg_changes);
}

static void http_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    sim_http_conn *h = arg;
    if (h->responded) http_conn_free(h);
}

static void http_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    http_conn_free(arg);
}

static void respond(sim_http_conn *h, int status, const char *reason, const char *body)
{
    struct evbuffer *out = bufferevent_get_output(h->bev);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                        "Connection: close\r\n\r\n%s",
                        status, reason, strlen(body), body);
    h->responded = 1;
    bufferevent_disable(h->bev, EV_READ);
}

static void json_reply(sim_http_conn *h, int status, const char *reason, simbuf *b)
{
    respond(h, status, reason, b->p ? b->p : "{}");
    simbuf_free(b);
}

static const char *header(char *head, const char *name, char *val, size_t n)
{
    size_t nl = strlen(name);
    for (char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t') v++;
            size_t l = strcspn(v, "\r");
            while (l && (v[l - 1] == ' ' || v[l - 1] == '\t')) l--;
            if (l >= n) l = n - 1;
            memcpy(val, v, l);
            val[l] = '\0';
            return val;
        }
    }
    return NULL;
}

static int has_token(const char *v, const char *tok)
{
    size_t tl = strlen(tok);
    for (; v && *v; v++)
        if (strncasecmp(v, tok, tl) == 0) return 1;
    return 0;
}

static void upgrade(sim_http_conn *h, char *head, size_t head_len)
{
    sim *s = h->s;
    char up[64], conn[128], key[64], ver[16];
    if (!has_token(header(head, "Upgrade", up, sizeof up), "websocket")
        || !has_token(header(head, "Connection", conn, sizeof conn), "upgrade")
        || !header(head, "Sec-WebSocket-Key", key, sizeof key)) {
        respond(h, 400, "Bad Request", "{\"message\":\"Can \\\"Upgrade\\\" only to \\\"WebSocket\\\".\"}");
        return;
    }
    if (!header(head, "Sec-WebSocket-Version", ver, sizeof ver) || strcmp(ver, "13") != 0) {
        respond(h, 400, "Bad Request", "{\"message\":\"Unsupported Sec-WebSocket-Version\"}");
        return;
    }
    struct bufferevent *bev = h->bev;
    evbuffer_drain(bufferevent_get_input(bev), head_len);
    bufferevent_set_timeouts(bev, NULL, NULL);
    sim_client *c = proto_client_new(s);
    if (!c) {
        respond(h, 500, "Internal Server Error", "{}");
        return;
    }
    if (ws_server_accept(s->base, bev, key, SIM_MAX_INBOUND, &proto_ws_callbacks, c, &c->ws) != 0) {
        proto_client_free(c);
        respond(h, 500, "Internal Server Error", "{}");
        return;
    }
    h->bev = NULL; /* now owned by the ws_conn */
    http_conn_free(h);
    log_info("WebSocket client connected");
    proto_client_start(c);
}

static int control_authorized(char *head)
{
    char v[512];
    return auth_value_ok(header(head, "Authorization", v, sizeof v));
}

static void route(sim_http_conn *h, const char *method, const char *path, char *head, size_t head_len,
                  const char *body, size_t body_len)
{
    sim *s = h->s;
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    simbuf b = {0};
    if (strcmp(path, "/api/websocket") == 0) {
        if (get) upgrade(h, head, head_len);
        else respond(h, 405, "Method Not Allowed", "{\"message\":\"Method not allowed\"}");
    } else if (strcmp(path, "/health") == 0 && get) {
        simbuf_printf(&b, "{\"status\":\"healthy\",\"service\":\"ha-simulator\",\"ha_version\":\"%s\"}", SIM_HA_VERSION);
        json_reply(h, 200, "OK", &b);
    } else if (strcmp(path, "/api/sim/stats") == 0 && get) {
        if (s->sent_log) fflush(s->sent_log);
        if (s->truth_log) fflush(s->truth_log);
        if (s->history_file) fflush(s->history_file);
        sim_stats_json(s, &b);
        json_reply(h, 200, "OK", &b);
    } else if (post && !strncmp(path, "/api/sim/", 9) && !control_authorized(head)) {
        /* The control endpoints change what the "house" does: with a HomeIQ API
         * token set (as make run does), they need it, like every HomeIQ API. */
        respond(h, 401, "Unauthorized", "{\"message\":\"API token required: send 'Authorization: Bearer <token>'\"}");
    } else if (strcmp(path, "/api/sim/drop") == 0 && post) {
        long long before = s->drops;
        proto_drop_all(s);
        log_info("dropped %lld WebSocket connection(s) on request", s->drops - before);
        simbuf_printf(&b, "{\"dropped\":%lld}", s->drops - before);
        json_reply(h, 200, "OK", &b);
    } else if ((strcmp(path, "/api/sim/pause") == 0 || strcmp(path, "/api/sim/resume") == 0) && post) {
        s->paused = strcmp(path, "/api/sim/pause") == 0;
        house_start_stop(s);
        log_info("generation %s", s->paused ? "paused" : "resumed");
        simbuf_printf(&b, "{\"paused\":%s}", s->paused ? "true" : "false");
        json_reply(h, 200, "OK", &b);
    } else if (!strncmp(path, "/api/sim/history/", 17) && post) {
        /* fail/N: the next N history calls fail; off / on: unload / load the history component */
        const char *what = path + 17;
        if (!strncmp(what, "fail/", 5)) s->history_fail = strtoll(what + 5, NULL, 10);
        else if (!strcmp(what, "off") || !strcmp(what, "on")) s->history_on = !strcmp(what, "on");
        log_info("history: %s (component %s, next %lld call(s) fail)", what, s->history_on ? "loaded" : "absent",
                 s->history_fail);
        simbuf_printf(&b, "{\"history\":%s,\"history_fail\":%lld}", s->history_on ? "true" : "false",
                    s->history_fail);
        json_reply(h, 200, "OK", &b);
    } else if (!strncmp(path, "/api/sim/registry/", 18) && post) {
        int status = reg_control(s, path + 18, &b);
        json_reply(h, status, status == 200 ? "OK" : status == 400 ? "Bad Request" : "Not Found", &b);
    } else if (strcmp(path, "/api/sim/inject") == 0 && post) {
        /* The body, byte for byte, as the "event" of an event message to every
         * events subscription of its event_type (or of all types), as HA routes
         * it: how a test plays an HA that sends odd JSON. */
        int n = house_inject(s, body, body_len);
        simbuf_printf(&b, "{\"delivered\":%d}", n);
        json_reply(h, 200, "OK", &b);
    } else if (!strcmp(path, "/health") || !strncmp(path, "/api/sim/", 9)) {
        respond(h, 405, "Method Not Allowed", "{\"message\":\"Method not allowed\"}");
    } else {
        respond(h, 404, "Not Found", "{\"message\":\"Not found\"}");
    }
}

static void http_read_cb(struct bufferevent *bev, void *arg)
{
    sim_http_conn *h = arg;
    if (h->responded) return;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (p.pos < 0) {
        if (evbuffer_get_length(in) > HTTP_MAX_HEAD)
            respond(h, 431, "Request Header Fields Too Large", "{\"message\":\"header too large\"}");
        return;
    }
    size_t head_len = (size_t)p.pos + 4;
    if (head_len > HTTP_MAX_HEAD) {
        respond(h, 431, "Request Header Fields Too Large", "{\"message\":\"header too large\"}");
        return;
    }
    char *head = malloc(head_len + 1);
    if (!head) {
        http_conn_free(h);
        return;
    }
    evbuffer_copyout(in, head, head_len);
    head[head_len] = '\0';
    /* Wait for a (small) body so that closing does not reset the socket. */
    char cl[32];
    long long body = header(head, "Content-Length", cl, sizeof cl) ? atoll(cl) : 0;
    int inject = strncmp(head, "POST /api/sim/inject ", 21) == 0;
    if (body < 0 || body > (inject ? HTTP_MAX_INJECT : HTTP_MAX_BODY)) {
        free(head);
        respond(h, 413, "Payload Too Large", "{\"message\":\"body too large\"}");
        return;
    }
    if (evbuffer_get_length(in) < head_len + (size_t)body) {
        free(head);
        return;
    }
    char method[16], target[512];
    if (sscanf(head, "%15s %511s HTTP/1.", method, target) != 2) {
        free(head);
        respond(h, 400, "Bad Request", "{\"message\":\"bad request line\"}");
        return;
    }
    target[strcspn(target, "?")] = '\0';
    char *data = NULL;
    if (inject && body > 0) {
        data = malloc((size_t)body);
    }
    if (strcmp(target, "/api/websocket") != 0) {
        evbuffer_drain(in, head_len);
        if (data) evbuffer_remove(in, data, (size_t)body);
        else evbuffer_drain(in, (size_t)body);
    }
    route(h, method, target, head, head_len, data, data ? (size_t)body : 0);
    free(data);
    free(head);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    sim *s = arg;
    sim_http_conn *h = calloc(1, sizeof *h);
    struct bufferevent *bev = h ? bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (!bev) {
        free(h);
        evutil_closesocket(fd);
        return;
    }
    h->s = s;
    h->bev = bev;
    h->next = s->http_conns;
    if (s->http_conns) s->http_conns->prev = h;
    s->http_conns = h;
    struct timeval tmo = {10, 0};
    bufferevent_set_timeouts(bev, &tmo, &tmo);
    bufferevent_setcb(bev, http_read_cb, http_write_cb, http_event_cb, h);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int http_listen(sim *s, const char *bind, int port)
{
    char addr[300];
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    snprintf(addr, sizeof addr, strchr(bind, ':') ? "[%s]:%d" : "%s:%d", bind, port);
    if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0) {
        log_error("SIMULATOR_BIND=%s is not an IP address", bind);
        return -1;
    }
    s->listener = evconnlistener_new_bind(s->base, accept_cb, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
                                          (struct sockaddr *)&ss, sslen);
    if (!s->listener) {
        log_error("cannot listen on %s: %s", addr, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return -1;
    }
    log_info("HA simulator listening on http://%s (WebSocket at /api/websocket)", addr);
    return 0;
}
