/* httpc.c -- see httpc.h. libevent's own HTTP client (evhttp_connection +
 * evhttp_make_request) on the process' loop, TLS through bufferevent_openssl
 * (lib/tls). Replaces libcurl, whose dependency tree (libssh2, GnuTLS via
 * librtmp, LDAP, Kerberos, nghttp2...) alone cost ~4.4 MB of idle RSS per
 * process.
 *
 * Keep-alive: a small pool of connections per (scheme, host, port). Each
 * request takes an idle connection or opens a new one, so concurrent requests
 * never queue behind each other inside one evhttp_connection. A connection is
 * used for one TCP lifetime only: when it closes (server closed an idle
 * connection, "Connection: close", error) it is retired and a fresh one is
 * made next time; we never let evhttp reconnect an old (TLS) bufferevent.
 * A request that fails on a reused connection before any response byte is
 * retried once on a fresh connection (our POSTs are idempotent: storage
 * dedups).
 *
 * Deadlines: one timer per request. It first fires at the connect timeout
 * (5 s) on a fresh connection to check the socket is connected, then at the
 * whole-request deadline, where evhttp_cancel_request aborts the request.
 *
 * evhttp frees a request right after its callback and must not see its
 * connection freed from inside one, so retired connections are freed from a
 * zero-delay timer (the "reaper"). */
#include "httpc.h"
#include "bev_read.h"
#include "url.h"

#include "log.h"
#include "tls.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>

#define HTTPC_DEFAULT_TIMEOUT_MS 30000L
#define HTTPC_CONNECT_TIMEOUT_MS 5000L
#define HTTPC_MAX_IDLE_PER_PEER 4

typedef struct httpc_conn {
    httpc *client;
    struct evhttp_connection *evcon;
    int https;
    char host[256];
    int port;
    int busy;       /* a request is using it */
    int used;       /* requests completed on it (>0: a kept-alive reuse) */
    int closed;     /* its TCP connection closed: never reuse */
    int retired;    /* waiting for the reaper */
    int nodelay;    /* TCP_NODELAY set on its socket */
    struct httpc_conn *next;
} httpc_conn;

typedef struct httpc_call {
    httpc *client;
    httpc_conn *conn;
    struct evhttp_request *req;
    struct event *timer;
    httpc_done_cb cb;
    void *arg;
    /* what is needed to (re)issue the request */
    enum evhttp_cmd_type cmd;
    int https;
    char host[256];
    int port;
    char *target;           /* path + query */
    char **headers;         /* "Name: value" copies, NULL-terminated */
    char *auth;             /* "Basic ..." or NULL */
    struct httpc_shared *body;
    size_t body_len;
    int has_body;
    long timeout_ms;
    struct timespec start;
    struct timespec deadline;
    int connect_check;      /* the timer is at the connect timeout */
    int got_response;       /* response headers arrived */
    int retried;
    int retry_pending;      /* the timer fires at 0 to re-issue */
    enum evhttp_request_error err;
    int err_set;
    char errbuf[768];
    struct httpc_call *prev, *next;
} httpc_call;

struct httpc {
    struct event_base *base;
    struct evdns_base *dns;
    SSL_CTX *ssl_ctx;
    httpc_conn *conns;
    struct event *reaper;
    httpc_call *calls;
    int inflight;
};

static int httpc_issue(httpc_call *call);

/* ---- time ----------------------------------------------------------------- */

static double ts_diff(const struct timespec *a, const struct timespec *b) {
    return (double)(a->tv_sec - b->tv_sec) + (double)(a->tv_nsec - b->tv_nsec) / 1e9;
}

static long ms_left(const httpc_call *call) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double left = ts_diff(&call->deadline, &now) * 1000.0;
    return left > 0 ? (long)left + 1 : 0;
}

static void timer_in(struct event *ev, long ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* ---- connections ----------------------------------------------------------- */

static void conn_retire(httpc_conn *k) {
    if (k->retired) return;
    k->retired = 1;
    timer_in(k->client->reaper, 0);
}

static void conn_unlink_free(httpc *c, httpc_conn *k) {
    for (httpc_conn **pp = &c->conns; *pp; pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    }
    if (k->evcon) evhttp_connection_free(k->evcon);
    free(k);
}

static void reaper_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    httpc *c = arg;
    httpc_conn **pp = &c->conns;
    while (*pp) {
        httpc_conn *k = *pp;
        if (k->retired && !k->busy) {
            *pp = k->next;
            if (k->evcon) evhttp_connection_free(k->evcon);
            free(k);
        } else {
            pp = &k->next;
        }
    }
}

/* evhttp reports the TCP connection closing (idle close by the server,
 * "Connection: close", errors). Never free here: evhttp is mid-reset. */
static void conn_close_cb(struct evhttp_connection *evcon, void *arg) {
    (void)evcon;
    httpc_conn *k = arg;
    k->closed = 1;
    if (!k->busy) conn_retire(k);
}

/* evhttp leaves Nagle on: a request whose last segment is small then waits
 * for the peer's delayed ACK (40 ms). The socket exists once the connect has
 * started (after name resolution), so this is tried whenever we touch it. */
static void conn_nodelay(httpc_conn *k) {
    if (k->nodelay) return;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(k->evcon);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    int one = 1;
    if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0) k->nodelay = 1;
}

static int host_needs_dns(const char *host) {
    unsigned char tmp[16];
    if (evutil_inet_pton(AF_INET, host, tmp) == 1 || evutil_inet_pton(AF_INET6, host, tmp) == 1) return 0;
    if (strcasecmp(host, "localhost") == 0) return 0;
    size_t n = strlen(host);
    /* mDNS names are known only to the system resolver (nss-mdns) */
    return !(n > 6 && strcasecmp(host + n - 6, ".local") == 0);
}

static httpc_conn *conn_new(httpc *c, int https, const char *host, int port) {
    httpc_conn *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    k->client = c;
    k->https = https;
    snprintf(k->host, sizeof k->host, "%s", host);
    k->port = port;
    struct bufferevent *bev = NULL;
    if (https) {
        if (!c->ssl_ctx && !(c->ssl_ctx = tls_client_ctx_new(NULL, 0))) goto fail;
        SSL *ssl = tls_client_ssl_new(c->ssl_ctx, host, 0);
        if (!ssl || !(bev = tls_client_bev_new(c->base, ssl))) goto fail;
    }
    struct evdns_base *dns = NULL;
    if (host_needs_dns(host)) {
        if (!c->dns) c->dns = evdns_base_new(c->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
        dns = c->dns; /* NULL: blocking getaddrinfo */
    }
    k->evcon = evhttp_connection_base_bufferevent_new(c->base, dns, bev, host, (unsigned short)port);
    if (!k->evcon) {
        if (bev) bufferevent_free(bev);
        goto fail;
    }
    /* Our servers bind 127.0.0.1, and the connect tries only the first
     * address: for "localhost" that must be IPv4. */
    if (strcasecmp(host, "localhost") == 0) evhttp_connection_set_family(k->evcon, AF_INET);
    evhttp_connection_set_retries(k->evcon, 0);
    /* a 1 MB request in 256 KB writes, not libevent's 16 KB (bev_read.h) */
    bufferevent_set_max_single_write(evhttp_connection_get_bufferevent(k->evcon), BEV_IO_MAX);
    evhttp_connection_set_closecb(k->evcon, conn_close_cb, k);
    k->next = c->conns;
    c->conns = k;
    return k;
fail:
    free(k);
    return NULL;
}

/* An idle, open connection to the peer, or a new one. */
static httpc_conn *conn_get(httpc *c, int https, const char *host, int port, int fresh) {
    if (!fresh) {
        for (httpc_conn *k = c->conns; k; k = k->next) {
            if (!k->busy && !k->closed && !k->retired && k->https == https && k->port == port &&
                strcmp(k->host, host) == 0)
                return k;
        }
    }
    return conn_new(c, https, host, port);
}

/* A request finished on `k`: keep it for reuse unless it closed or the pool
 * for this peer already holds enough idle connections. */
static void conn_release(httpc *c, httpc_conn *k, int ok) {
    k->busy = 0;
    if (!ok || k->closed) {
        conn_retire(k);
        return;
    }
    k->used++;
    int idle = 0;
    for (httpc_conn *o = c->conns; o; o = o->next)
        if (o != k && !o->busy && !o->closed && !o->retired && o->https == k->https && o->port == k->port &&
            strcmp(o->host, k->host) == 0)
            idle++;
    if (idle >= HTTPC_MAX_IDLE_PER_PEER) conn_retire(k);
}

/* ---- calls ----------------------------------------------------------------- */

/* A request body, shared by its call and the output-buffer chains that point
 * into it (evbuffer_add_reference: the body is not copied into each request).
 * A peer may answer before the whole body left (a 413), so the call cannot
 * free it while the connection might still write from it: whoever lets go
 * last frees it. One loop thread: plain counting. */
struct httpc_shared {
    int refs;
    char *data;
};

static void body_unref(httpc_shared *b) {
    if (b && --b->refs == 0) {
        free(b->data);
        free(b);
    }
}

httpc_shared *httpc_shared_new(char *data) {
    httpc_shared *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->refs = 1;
    b->data = data;
    return b;
}

char *httpc_shared_release(httpc_shared *b) {
    if (!b) return NULL;
    if (b->refs > 1) {
        b->refs--;
        return NULL;
    }
    char *data = b->data;
    free(b);
    return data;
}

static void body_chain_done(const void *data, size_t len, void *arg) {
    (void)data;
    (void)len;
    body_unref(arg);
}

static void call_free(httpc_call *call) {
    if (call->timer) event_free(call->timer);
    for (char **h = call->headers; h && *h; h++) free(*h);
    free(call->headers);
    free(call->target);
    free(call->auth);
    body_unref(call->body);
    free(call);
}

static void call_unlink(httpc *c, httpc_call *call) {
    if (call->prev) call->prev->next = call->next;
    else c->calls = call->next;
    if (call->next) call->next->prev = call->prev;
    c->inflight--;
}

/* Delivers the result to the owner exactly once and frees the call. */
static void call_finish(httpc_call *call, long status, const char *body, size_t body_len, const char *error) {
    httpc *c = call->client;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    httpc_response res = {
        .status = status,
        .body = body ? body : "",
        .body_len = body ? body_len : 0,
        .error = status == 0 ? (error && *error ? error : "no response") : NULL,
        .total_s = ts_diff(&now, &call->start),
    };
    call_unlink(c, call);
    evtimer_del(call->timer);
    call->cb(&res, call->arg);
    call_free(call);
}

static const char *req_error_text(enum evhttp_request_error e) {
    switch (e) {
    case EVREQ_HTTP_TIMEOUT: return "timeout";
    case EVREQ_HTTP_EOF: return "connection closed before the response";
    case EVREQ_HTTP_INVALID_HEADER: return "invalid response header";
    case EVREQ_HTTP_BUFFER_ERROR: return "connection error";
    case EVREQ_HTTP_REQUEST_CANCEL: return "cancelled";
    case EVREQ_HTTP_DATA_TOO_LONG: return "response too large";
    }
    return "request failed";
}

/* Describes why a request got no response. */
static void describe_failure(httpc_call *call, int sockerr) {
    if (call->errbuf[0]) return;
    struct bufferevent *bev = call->conn && call->conn->evcon ? evhttp_connection_get_bufferevent(call->conn->evcon)
                                                              : NULL;
    char tls[200];
    if (call->https && bev && tls_describe_error(bev, tls, sizeof tls)) {
        snprintf(call->errbuf, sizeof call->errbuf, "%s", tls);
        return;
    }
    int dnserr = bev ? bufferevent_socket_get_dns_error(bev) : 0;
    if (dnserr) {
        snprintf(call->errbuf, sizeof call->errbuf, "could not resolve %s: %s", call->host,
                 evutil_gai_strerror(dnserr));
    } else if (call->err_set && call->err != EVREQ_HTTP_BUFFER_ERROR) {
        snprintf(call->errbuf, sizeof call->errbuf, "%s:%d: %s", call->host, call->port, req_error_text(call->err));
    } else if (call->conn && !call->conn->closed) {
        /* never connected (evhttp closes the socket before telling us, so
         * errno is usually ENOTCONN from that, not the connect error) */
        if (sockerr && sockerr != ENOTCONN)
            snprintf(call->errbuf, sizeof call->errbuf, "failed to connect to %s port %d: %s", call->host,
                     call->port, evutil_socket_error_to_string(sockerr));
        else
            snprintf(call->errbuf, sizeof call->errbuf, "failed to connect to %s port %d", call->host, call->port);
    } else {
        snprintf(call->errbuf, sizeof call->errbuf, "%s:%d: %s", call->host, call->port,
                 call->got_response ? "connection error while reading the response" : "no response");
    }
}

static void req_error_cb(enum evhttp_request_error e, void *arg) {
    httpc_call *call = arg;
    call->err = e;
    call->err_set = 1;
}

static int req_header_cb(struct evhttp_request *req, void *arg) {
    (void)req;
    httpc_call *call = arg;
    call->got_response = 1;
    if (call->conn) conn_nodelay(call->conn);
    return 0;
}

/* evhttp's completion callback; req is NULL (or has no status) on failure. */
static void req_done_cb(struct evhttp_request *req, void *arg) {
    int sockerr = EVUTIL_SOCKET_ERROR();
    httpc_call *call = arg;
    httpc *c = call->client;
    httpc_conn *k = call->conn;
    call->req = NULL;
    long status = req ? evhttp_request_get_response_code(req) : 0;
    if (status > 0) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(in);
        char *body = malloc(n + 1);
        if (!body) {
            conn_release(c, k, 0);
            call_finish(call, 0, NULL, 0, "out of memory");
            return;
        }
        evbuffer_remove(in, body, n);
        body[n] = '\0';
        const char *conn_hdr = evhttp_find_header(evhttp_request_get_input_headers(req), "Connection");
        conn_release(c, k, !(conn_hdr && strcasecmp(conn_hdr, "close") == 0));
        call_finish(call, status, body, n, NULL);
        free(body);
        return;
    }
    /* No response. A kept-alive connection the server closed just as we sent
     * on it: retry once on a fresh connection (from the loop, not from inside
     * evhttp). */
    int reused = k && k->used > 0;
    describe_failure(call, sockerr);
    if (k) conn_release(c, k, 0);
    call->conn = NULL;
    if (reused && !call->got_response && !call->retried && !(call->err_set && call->err == EVREQ_HTTP_TIMEOUT) &&
        ms_left(call) > 0) {
        log_debug("httpc: %s on a reused connection, retrying on a fresh one", call->errbuf);
        call->retried = 1;
        call->retry_pending = 1;
        call->errbuf[0] = '\0';
        call->err_set = 0;
        timer_in(call->timer, 0);
        return;
    }
    call_finish(call, 0, NULL, 0, call->errbuf);
}

/* Aborts the running evhttp request (no evhttp callback follows). */
static void call_cancel_req(httpc_call *call) {
    if (!call->req) return;
    struct evhttp_request *req = call->req;
    call->req = NULL;
    evhttp_cancel_request(req);
    if (call->conn) {
        call->conn->closed = 1;
        conn_release(call->client, call->conn, 0);
        call->conn = NULL;
    }
}

static int conn_is_connected(httpc_conn *k) {
    struct bufferevent *bev = evhttp_connection_get_bufferevent(k->evcon);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    return fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &len) == 0;
}

static void call_timer_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    httpc_call *call = arg;
    if (call->retry_pending) {
        call->retry_pending = 0;
        if (httpc_issue(call) != 0) call_finish(call, 0, NULL, 0, call->errbuf[0] ? call->errbuf : "retry failed");
        return;
    }
    long left = ms_left(call);
    if (call->connect_check) {
        call->connect_check = 0;
        if (call->conn) conn_nodelay(call->conn);
        if (call->conn && !conn_is_connected(call->conn) && left > 0) {
            snprintf(call->errbuf, sizeof call->errbuf, "connection to %s port %d timed out after %ld ms",
                     call->host, call->port, HTTPC_CONNECT_TIMEOUT_MS);
            call_cancel_req(call);
            call_finish(call, 0, NULL, 0, call->errbuf);
            return;
        }
        if (left > 0) {
            timer_in(call->timer, left);
            return;
        }
    }
    snprintf(call->errbuf, sizeof call->errbuf, "%s:%d: request timed out after %ld ms", call->host, call->port,
             call->timeout_ms);
    call_cancel_req(call);
    call_finish(call, 0, NULL, 0, call->errbuf);
}

/* Sends the call on a pooled (first try) or fresh (retry) connection. */
static int httpc_issue(httpc_call *call) {
    httpc *c = call->client;
    httpc_conn *k = conn_get(c, call->https, call->host, call->port, call->retried);
    if (!k) {
        snprintf(call->errbuf, sizeof call->errbuf, "cannot create a connection to %s port %d", call->host,
                 call->port);
        return -1;
    }
    struct evhttp_request *req = evhttp_request_new(req_done_cb, call);
    if (!req) return -1;
    evhttp_request_set_error_cb(req, req_error_cb);
    evhttp_request_set_header_cb(req, req_header_cb);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char hostport[300];
    int ipv6 = strchr(call->host, ':') != NULL;
    int defport = call->port == (call->https ? 443 : 80);
    if (defport) snprintf(hostport, sizeof hostport, ipv6 ? "[%s]" : "%s", call->host);
    else snprintf(hostport, sizeof hostport, ipv6 ? "[%s]:%d" : "%s:%d", call->host, call->port);
    evhttp_add_header(h, "Host", hostport);
    evhttp_add_header(h, "User-Agent", "homeiq/1.0");
    evhttp_add_header(h, "Accept", "*/*");
    int has_type = 0;
    for (char **p = call->headers; p && *p; p++) {
        char *colon = strchr(*p, ':');
        if (!colon) continue;
        *colon = '\0';
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        if (strcasecmp(*p, "Content-Type") == 0) has_type = 1;
        if (strcasecmp(*p, "Expect") == 0 || strcasecmp(*p, "Host") == 0 || strcasecmp(*p, "Content-Length") == 0) {
            *colon = ':';
            continue;   /* ours, or (an empty Expect:) a curl-ism */
        }
        if (*v) evhttp_add_header(h, *p, v);
        *colon = ':';
    }
    if (call->has_body && !has_type) evhttp_add_header(h, "Content-Type", "application/json");
    if (call->auth) evhttp_add_header(h, "Authorization", call->auth);
    if (call->has_body || call->cmd == EVHTTP_REQ_POST || call->cmd == EVHTTP_REQ_PUT ||
        call->cmd == EVHTTP_REQ_PATCH) {
        char len[32];
        snprintf(len, sizeof len, "%zu", call->body_len);
        evhttp_add_header(h, "Content-Length", len);
        if (call->body_len) {
            call->body->refs++;
            if (evbuffer_add_reference(evhttp_request_get_output_buffer(req), call->body->data, call->body_len,
                                       body_chain_done, call->body) != 0) {
                call->body->refs--;
                evhttp_request_free(req);
                return -1;
            }
        }
    }
    long left = ms_left(call);
    /* evhttp's own read/write timeout only backs up our deadline timer */
    struct timeval io = {left / 1000 + 2, 0};
    evhttp_connection_set_timeout_tv(k->evcon, &io);
    k->busy = 1;
    call->conn = k;
    call->got_response = 0;
    call->req = req;
    if (evhttp_make_request(k->evcon, req, call->cmd, call->target) != 0) {
        /* evhttp_make_request frees req on failure */
        call->req = NULL;
        call->conn = NULL;
        k->closed = 1;
        conn_release(c, k, 0);
        snprintf(call->errbuf, sizeof call->errbuf, "cannot send the request to %s port %d", call->host,
                 call->port);
        return -1;
    }
    conn_nodelay(k);
    /* a fresh connection gets the connect timeout checked first */
    call->connect_check = k->used == 0 && left > HTTPC_CONNECT_TIMEOUT_MS;
    timer_in(call->timer, call->connect_check ? HTTPC_CONNECT_TIMEOUT_MS : left);
    return 0;
}

/* ---- request setup ------------------------------------------------------------ */

static int parse_method(const char *m, enum evhttp_cmd_type *out) {
    static const struct { const char *name; enum evhttp_cmd_type cmd; } tab[] = {
        {"GET", EVHTTP_REQ_GET},       {"POST", EVHTTP_REQ_POST},       {"PUT", EVHTTP_REQ_PUT},
        {"DELETE", EVHTTP_REQ_DELETE}, {"HEAD", EVHTTP_REQ_HEAD},       {"PATCH", EVHTTP_REQ_PATCH},
        {"OPTIONS", EVHTTP_REQ_OPTIONS},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        if (strcasecmp(m, tab[i].name) == 0) {
            *out = tab[i].cmd;
            return 0;
        }
    }
    return -1;
}

/* http[s]://host[:port][/path][?query][#frag]; IPv6 literals in brackets. */
static int parse_url(const char *url, httpc_call *call) {
    url_parts u;
    if (url_split(url, "http", "https", &u) != 0) return -1;
    call->https = u.tls;
    call->port = u.port;
    memcpy(call->host, u.host, sizeof call->host);
    int slash = url_target_needs_slash(&u);
    call->target = malloc(u.target_len + 2);
    if (!call->target) return -1;
    char *t = call->target;
    if (slash) *t++ = '/';
    memcpy(t, u.target, u.target_len);
    t[u.target_len] = '\0';
    return 0;
}

/* The body first: a handed-over one (body_take) is owned by the call from here on. */
static int call_setup_body(httpc_call *call, const httpc_request *req) {
    if (req->body_shared) {
        call->body = req->body_shared;
        call->body->refs++;
        call->has_body = 1;
        call->body_len = req->body_len;
        return 0;
    }
    if (!req->body && !req->body_take) return 0;
    call->body = calloc(1, sizeof *call->body);
    if (!call->body) {
        free(req->body_take);
        return -1;
    }
    call->body->refs = 1;
    call->has_body = 1;
    call->body_len = req->body_len;
    if (req->body_take) {
        call->body->data = req->body_take;
        return 0;
    }
    call->body->data = malloc(req->body_len ? req->body_len : 1);
    if (!call->body->data) return -1;
    memcpy(call->body->data, req->body, req->body_len);
    return 0;
}

static int call_setup(httpc_call *call, const httpc_request *req) {
    const char *method = req->method ? req->method : (req->body || req->body_take || req->body_shared ? "POST" : "GET");
    if (call_setup_body(call, req) != 0) return -1;
    if (!req->url || parse_method(method, &call->cmd) != 0 || parse_url(req->url, call) != 0) return -1;
    size_t nh = 0;
    while (req->headers && req->headers[nh]) nh++;
    call->headers = calloc(nh + 1, sizeof *call->headers);
    if (!call->headers) return -1;
    for (size_t i = 0; i < nh; i++)
        if (!(call->headers[i] = strdup(req->headers[i]))) return -1;
    if (req->userpwd) {
        size_t n = strlen(req->userpwd);
        size_t cap = 6 + 4 * ((n + 2) / 3) + 1;
        call->auth = malloc(cap);
        if (!call->auth) return -1;
        memcpy(call->auth, "Basic ", 6);
        EVP_EncodeBlock((unsigned char *)call->auth + 6, (const unsigned char *)req->userpwd, (int)n);
    }
    call->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : HTTPC_DEFAULT_TIMEOUT_MS;
    clock_gettime(CLOCK_MONOTONIC, &call->start);
    call->deadline = call->start;
    call->deadline.tv_sec += call->timeout_ms / 1000;
    call->deadline.tv_nsec += (call->timeout_ms % 1000) * 1000000L;
    if (call->deadline.tv_nsec >= 1000000000L) {
        call->deadline.tv_sec++;
        call->deadline.tv_nsec -= 1000000000L;
    }
    return 0;
}

/* ---- API ---------------------------------------------------------------------- */

int httpc_new(struct event_base *base, httpc **out) {
    /* evhttp writes with plain writev: a peer that closes early (413 before
     * the whole body was sent) would kill a program that kept SIGPIPE's
     * default action (curl used MSG_NOSIGNAL). */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
    httpc *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->base = base;
    c->reaper = evtimer_new(base, reaper_cb, c);
    if (!c->reaper) {
        free(c);
        return -1;
    }
    *out = c;
    return 0;
}

int httpc_send(httpc *c, const httpc_request *req, httpc_done_cb cb, void *arg) {
    httpc_call *call = calloc(1, sizeof *call);
    if (!call) {
        free(req->body_take);
        return -1;
    }
    call->client = c;
    call->cb = cb;
    call->arg = arg;
    call->timer = evtimer_new(c->base, call_timer_cb, call);
    if (!call->timer) free(req->body_take); /* call_setup would have owned it */
    if (!call->timer || call_setup(call, req) != 0) {
        if (req->url) log_debug("httpc: cannot start %s request", req->method ? req->method : "");
        call_free(call);
        return -1;
    }
    call->next = c->calls;
    if (c->calls) c->calls->prev = call;
    c->calls = call;
    c->inflight++;
    if (httpc_issue(call) != 0) {
        call_unlink(c, call);
        call_free(call);
        return -1;
    }
    return 0;
}

int httpc_inflight(const httpc *c) { return c->inflight; }

void httpc_free(httpc *c) {
    if (!c) return;
    while (c->calls) {
        httpc_call *call = c->calls;
        call_cancel_req(call);
        call_finish(call, 0, NULL, 0, "cancelled");
    }
    while (c->conns) conn_unlink_free(c, c->conns);
    if (c->dns) evdns_base_free(c->dns, 0);
    if (c->ssl_ctx) SSL_CTX_free(c->ssl_ctx);
    event_free(c->reaper);
    free(c);
}

typedef struct {
    int done;
    long status;
    char *body;
    int failed;
} httpc_fetch_result;

static void fetch_done(const httpc_response *res, void *arg) {
    httpc_fetch_result *r = arg;
    r->done = 1;
    r->status = res->status;
    r->failed = res->status == 0;
    const char *s = res->status ? res->body : res->error;
    size_t n = res->status ? res->body_len : strlen(s);
    r->body = malloc(n + 1);
    if (r->body) {
        memcpy(r->body, s, n);
        r->body[n] = '\0';
    }
}

int httpc_fetch(const httpc_request *req, long *status, char **body) {
    *status = 0;
    *body = NULL;
    httpc_fetch_result r = {0};
    struct event_base *base = event_base_new();
    httpc *c = NULL;
    if (!base || httpc_new(base, &c) != 0) {
        if (base) event_base_free(base);
        *body = strdup("out of memory");
        return -1;
    }
    if (httpc_send(c, req, fetch_done, &r) != 0) {
        *body = strdup("invalid request (method or URL)");
    } else {
        while (!r.done && event_base_loop(base, EVLOOP_ONCE) == 0) {}
    }
    httpc_free(c);
    event_base_free(base);
    if (!r.done) return -1;
    *status = r.status;
    *body = r.body ? r.body : strdup("out of memory");
    return r.failed || !r.body ? -1 : 0;
}
