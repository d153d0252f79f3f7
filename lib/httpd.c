/* httpd.c -- see httpd.h. A thin layer over evhttp: routes go through one
 * trampoline so every answer carries a request id and unknown paths get a
 * JSON 404, the same way in every service. */
#include "httpd.h"
#include "bev_read.h"
#include "auth.h"
#include "config.h"
#include "event.h"
#include "json_text.h"
#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTPD_FD_RESERVE 128   /* descriptors kept for the service's own files and connections */

typedef struct httpd_route_entry {
    httpd *server;
    httpd_handler handler;
    void *arg;
    int open;                     /* answered without a token (auth_path_open) */
    struct httpd_route_entry *next;
} httpd_route_entry;

struct httpd {
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    struct evconnlistener *listener;
    struct event *resume;         /* while paused: re-checks the cap */
    int max_conns, fd_cap;        /* HTTP_MAX_CONNECTIONS; lowest free fd at which accepting pauses */
    int paused;
    int stopping;                 /* httpd_stop: no listener, every request answered 503 */
    metric *m_paused;
    int port;
    unsigned long long next_id;
    httpd_route_entry *routes;
    httpd_handler fallback;
    void *fallback_arg;
};

static void httpd_set_request_id(httpd *h, struct evhttp_request *req) {
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    if (evhttp_find_header(out, "X-Request-Id")) return;
    const char *in = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Request-Id");
    char id[64];
    if (in && strlen(in) < 64) {
        evhttp_add_header(out, "X-Request-Id", in);
        return;
    }
    snprintf(id, sizeof id, "%x-%llu", (unsigned)(h->port & 0xffff), ++h->next_id);
    evhttp_add_header(out, "X-Request-Id", id);
}

/* After httpd_stop: 503 and the connection closed; 1 when answered so. */
static int httpd_stopping_reply(const httpd *h, struct evhttp_request *req) {
    if (!h->stopping) return 0;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    httpd_reply_error(req, 503, "shutting down");
    return 1;
}

static void httpd_trampoline(struct evhttp_request *req, void *arg) {
    httpd_route_entry *r = arg;
    httpd_set_request_id(r->server, req);
    if (httpd_stopping_reply(r->server, req)) return;
    if (!r->open && auth_check(req) != 0) return;
    r->handler(req, r->arg);
}

static void httpd_not_found(struct evhttp_request *req, void *arg) {
    httpd *h = arg;
    httpd_set_request_id(h, req);
    if (httpd_stopping_reply(h, req)) return;
    if (h->fallback) { /* it checks the token itself (it may serve public files) */
        h->fallback(req, h->fallback_arg);
        return;
    }
    if (auth_check(req) != 0) return;
    httpd_reply_error(req, 404, "no such endpoint: %s", evhttp_request_get_uri(req));
}

/* ---- connection cap ----------------------------------------------------
 * libevent 2.1's evhttp has no connection limit, and a flood of idle clients
 * would take every file descriptor, leaving none for the service's own work
 * (spool segments, SQLite, its connections downstream). The kernel hands out
 * the lowest free descriptor, so the lowest free one says how many are in use
 * (every one below it is). After each accept, when that reaches the cap
 * (HTTP_MAX_CONNECTIONS beyond the descriptors open at start, and never closer
 * than HTTPD_FD_RESERVE to the process' limit), the listener is paused, so
 * further clients wait in the kernel's backlog, and is resumed once
 * connections have closed (idle ones close after the read timeout). */
static int httpd_lowest_free_fd(const httpd *h) {
    int fd = fcntl(evhttp_bound_socket_get_fd(h->sock), F_DUPFD_CLOEXEC, 0);
    if (fd >= 0) close(fd);
    return fd < 0 ? INT_MAX : fd;
}

static void httpd_resume_check(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    httpd *h = arg;
    if (httpd_lowest_free_fd(h) < h->fd_cap) {
        h->paused = 0;
        evconnlistener_enable(h->listener);
        log_info("accepting connections again");
        return;
    }
    struct timeval tv = {0, 100 * 1000};
    evtimer_add(h->resume, &tv);
}

static struct bufferevent *httpd_new_conn(struct event_base *base, void *arg) {
    httpd *h = arg;
    if (!h->paused && httpd_lowest_free_fd(h) >= h->fd_cap) {
        h->paused = 1;
        metrics_add(h->m_paused, 1);
        evconnlistener_disable(h->listener);
        log_warn("connection cap reached (HTTP_MAX_CONNECTIONS=%d): not accepting more until some close",
                 h->max_conns);
        httpd_resume_check(-1, 0, h);
    }
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    /* batch bodies are ~1 MB: reads of up to 256 KB, not libevent's 4 KB (a
     * loop turn, an epoll_wait, a FIONREAD ioctl and a readv each; bev_read.h) */
    if (bev && (bufferevent_set_max_single_read(bev, BEV_IO_MAX) != 0 || bufferevent_set_max_single_write(bev, BEV_IO_MAX) != 0 ||
                bev_read_more_install(bev) != 0)) {
        bufferevent_free(bev);
        return NULL;
    }
    return bev;
}

static void httpd_metrics(struct evhttp_request *req, void *arg) {
    (void)arg;
    if (httpd_require_method(req, EVHTTP_REQ_GET)) return;
    size_t len;
    char *text = metrics_render(&len);
    httpd_reply_text(req, 200, "text/plain; version=0.0.4", text, len);
    free(text);
}

static const config_var httpd_vars[] = {HTTPD_CONFIG_VARS, CONFIG_END};

/* The connection cap: opts->max_connections, else HTTP_MAX_CONNECTIONS, and
 * never more than the descriptors the process may open minus a reserve for
 * its own files and outgoing connections. Raises the soft descriptor limit to
 * the hard one first (Debian's default soft limit is 1024). */
static int httpd_conn_limit(const httpd *h, const httpd_opts *opts, int *max_conns, int *fd_cap) {
    struct rlimit rl;
    long long want = opts->max_connections;
    if (!want && config_int(httpd_vars, "HTTP_MAX_CONNECTIONS", &want) != 0)
        return -1;
    long long fds = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        fds = rl.rlim_cur == RLIM_INFINITY ? 1 << 20 : (long long)rl.rlim_cur;
    }
    long long room = fds - HTTPD_FD_RESERVE;
    if (room < 16) room = 16;
    if (want > room)
        log_warn("HTTP_MAX_CONNECTIONS=%lld: only %lld file descriptors may be open; at most about %lld connections",
                 want, fds, room);
    *max_conns = (int)want;
    long long cap = httpd_lowest_free_fd(h) + want;
    *fd_cap = (int)(cap < room ? cap : room);
    return 0;
}

int httpd_new(struct event_base *base, const httpd_opts *opts, httpd **out) {
    httpd *h = calloc(1, sizeof *h);
    if (!h) return -1;
    h->http = evhttp_new(base);
    if (!h->http) goto fail;
    const char *bind = opts->bind && *opts->bind ? opts->bind : "127.0.0.1";
    if (auth_bind_allowed(bind) != 0) goto fail;
    h->sock = evhttp_bind_socket_with_handle(h->http, bind, (ev_uint16_t)opts->port);
    if (!h->sock) {
        log_error("cannot listen on %s:%d (in use, or bad address)", bind, opts->port);
        goto fail;
    }
    struct sockaddr_storage ss;
    ev_socklen_t sl = sizeof ss;
    h->port = opts->port;
    if (getsockname(evhttp_bound_socket_get_fd(h->sock), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) h->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6) h->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    evhttp_set_max_body_size(h->http, (ev_ssize_t)(opts->max_body ? opts->max_body : EVENT_BODY_MAX));
    evhttp_set_max_headers_size(h->http, 64 * 1024);
    evhttp_set_timeout(h->http, opts->timeout_s > 0 ? opts->timeout_s : 30);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
    if (httpd_conn_limit(h, opts, &h->max_conns, &h->fd_cap) != 0) goto fail;
    h->listener = evhttp_bound_socket_get_listener(h->sock);
    h->resume = evtimer_new(base, httpd_resume_check, h);
    if (!h->resume) goto fail;
    h->m_paused = metrics_counter("homeiq_http_accept_paused_total",
                                  "Times the server stopped accepting at HTTP_MAX_CONNECTIONS", NULL);
    evhttp_set_bevcb(h->http, httpd_new_conn, h);
    evhttp_set_gencb(h->http, httpd_not_found, h);
    httpd_route(h, "/metrics", httpd_metrics, NULL);
    log_info("listening on http://%s:%d", bind, h->port);
    *out = h;
    return 0;
fail:
    if (h->http) evhttp_free(h->http);
    if (h->resume) event_free(h->resume);
    free(h);
    return -1;
}

int httpd_route(httpd *h, const char *path, httpd_handler handler, void *arg) {
    httpd_route_entry *r = calloc(1, sizeof *r);
    if (!r) return -1;
    r->server = h;
    r->handler = handler;
    r->arg = arg;
    r->open = auth_path_open(path);
    if (evhttp_set_cb(h->http, path, httpd_trampoline, r) != 0) {
        free(r);
        return -1;
    }
    r->next = h->routes;
    h->routes = r;
    return 0;
}

void httpd_fallback(httpd *h, httpd_handler handler, void *arg) {
    h->fallback = handler;
    h->fallback_arg = arg;
}

int httpd_port(const httpd *h) { return h->port; }

void httpd_stop(httpd *h) {
    if (!h || h->stopping) return;
    h->stopping = 1;
    event_del(h->resume);
    if (h->sock) evhttp_del_accept_socket(h->http, h->sock);
    h->sock = NULL;
    h->listener = NULL;
}

void httpd_free(httpd *h) {
    if (!h) return;
    evhttp_free(h->http);
    event_free(h->resume);
    while (h->routes) {
        httpd_route_entry *next = h->routes->next;
        free(h->routes);
        h->routes = next;
    }
    free(h);
}

int httpd_require_method(struct evhttp_request *req, int methods) {
    int m = (int)evhttp_request_get_command(req);
    if (m & methods) return 0;
    char allow[64] = "";
    if (methods & EVHTTP_REQ_GET) strcat(allow, "GET, ");
    if (methods & EVHTTP_REQ_POST) strcat(allow, "POST, ");
    if (methods & EVHTTP_REQ_PUT) strcat(allow, "PUT, ");
    if (methods & EVHTTP_REQ_DELETE) strcat(allow, "DELETE, ");
    size_t n = strlen(allow);
    if (n >= 2) allow[n - 2] = '\0';
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    httpd_reply_error(req, 405, "method not allowed (allowed: %s)", allow);
    return -1;
}

void httpd_reply_text(struct evhttp_request *req, int status, const char *content_type, const char *text,
                      size_t len) {
    struct evbuffer *buf = evbuffer_new();
    if (buf) evbuffer_add(buf, text, len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", content_type);
    evhttp_send_reply(req, status, NULL, buf);
    if (buf) evbuffer_free(buf);
}

/* Makes msg valid UTF-8 in place: a reason quoting a client's bytes (a
 * parameter name, or one cut by "%.64s") must still travel in
 * {"error":...}, which jansson refuses to build from invalid UTF-8 (the 400
 * went out as "{}"; found by tests/fuzz/fuzz_query_params). Each byte that
 * starts no valid sequence becomes '?'. */
static void httpd_utf8_clean(char *msg) {
    size_t len = strlen(msg);
    for (size_t i = 0; i < len;) {
        if ((unsigned char)msg[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = json_text_utf8_len((const unsigned char *)msg + i, len - i);
        if (n) i += n;
        else msg[i++] = '?';
    }
}

void httpd_reply_json(struct evhttp_request *req, int status, json_t *body) {
    if (!body) body = json_object();
    char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (!text) {
        httpd_reply_text(req, 500, "application/json", "{\"error\":\"cannot encode response\"}", 34);
        return;
    }
    httpd_reply_text(req, status, "application/json", text, strlen(text));
    free(text);
}

void httpd_reply_error(struct evhttp_request *req, int status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    httpd_utf8_clean(msg);
    log_debug("%s %s -> %d %s", evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "GET",
              evhttp_request_get_uri(req), status, msg);
    httpd_reply_json(req, status, json_pack("{ss}", "error", msg));
}

int httpd_read_json(struct evhttp_request *req, json_t **out) {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len == 0) {
        httpd_reply_error(req, 400, "empty body: expected JSON");
        return -1;
    }
    const char *data = (const char *)evbuffer_pullup(in, -1);
    const char *nul = memchr(data, '\0', len);
    if (nul) {
        /* A NUL byte is never valid JSON text, but jansson stops reading at one
         * and ignores what follows ("false\0junk"); lib/json_scan refuses it.
         * Refused here too, so every reader accepts the same texts (found by
         * tests/fuzz/fuzz_json_scan). */
        char msg[120];
        int pos = (int)(nul - data);
        snprintf(msg, sizeof msg, "malformed JSON at byte %d: a NUL byte", pos);
        httpd_reply_json(req, 400, json_pack("{sssi}", "error", msg, "position", pos));
        return -1;
    }
    json_error_t e;
    json_t *v = json_loadb(data, len, JSON_ALLOW_NUL, &e);
    if (!v && json_error_code(&e) == json_error_numeric_overflow) {
        /* Valid JSON with an integer beyond 64 bits (an HA attribute can hold
         * one): read integers as doubles rather than refuse the whole batch. */
        v = json_loadb(data, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
    }
    if (!v) {
        char msg[400];
        snprintf(msg, sizeof msg, "malformed JSON at byte %d (line %d, column %d): %s", e.position, e.line,
                 e.column, e.text);
        httpd_reply_json(req, 400, json_pack("{sssi}", "error", msg, "position", e.position));
        return -1;
    }
    *out = v;
    return 0;
}

const char *httpd_query_string(struct evhttp_request *req) {
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    return uri ? evhttp_uri_get_query(uri) : NULL;
}

int httpd_query_parse(struct evhttp_request *req, struct evkeyvalq *params) {
    TAILQ_INIT(params);
    const char *q = httpd_query_string(req);
    if (!q) return 0;
    return evhttp_parse_query_str(q, params);
}

const char *httpd_query_get(struct evkeyvalq *params, const char *key) { return evhttp_find_header(params, key); }

int httpd_query_check_str(const char *query, struct evkeyvalq *params,
                          int (*check)(void *ctx, const char *k, const char *v, char *err, size_t n), void *ctx,
                          char *err, size_t n) {
    TAILQ_INIT(params);
    if (query && evhttp_parse_query_str(query, params) != 0) {
        snprintf(err, n, "query string: cannot be parsed");
        return -1;
    }
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, params, next) {
        if (check(ctx, kv->key, kv->value, err, n) != 0) {
            httpd_utf8_clean(err);
            return -1;
        }
    }
    return 0;
}

int httpd_query_check(struct evhttp_request *req, struct evkeyvalq *params,
                      int (*check)(void *ctx, const char *k, const char *v, char *err, size_t n), void *ctx) {
    char err[256];
    if (httpd_query_check_str(httpd_query_string(req), params, check, ctx, err, sizeof err) != 0) {
        httpd_reply_error(req, 400, "%s", err);
        return -1;
    }
    return 0;
}

void httpd_query_free(struct evkeyvalq *params) { evhttp_clear_headers(params); }

int httpd_param_long(const char *v, long long min, long long max, long long *out) {
    if (!v || !*v || strlen(v) > 19) return -1;
    for (const char *p = v; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    errno = 0;
    long long x = strtoll(v, NULL, 10);
    if (errno || x < min || x > max) return -1;
    *out = x;
    return 0;
}

void httpd_request_abandon(struct evhttp_request *req) {
    if (req && !evhttp_request_get_connection(req)) evhttp_request_free(req);
}

const char *httpd_request_id(struct evhttp_request *req) {
    const char *id = evhttp_find_header(evhttp_request_get_output_headers(req), "X-Request-Id");
    return id ? id : "-";
}
