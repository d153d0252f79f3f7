/* Unit tests for lib/httpd.c + lib/httpc.c over real loopback sockets:
 * the async client talks to the server on one libevent loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include <unistd.h>
#include <netinet/in.h>

#include "httpc.h"
#include "httpd.h"
#include "metrics.h"

typedef struct {
    long status;
    char body[512];
    int done;
} result;

static void echo_handler(struct evhttp_request *req, void *arg) {
    (void)arg;
    if (httpd_require_method(req, EVHTTP_REQ_POST)) return;
    json_t *body;
    if (httpd_read_json(req, &body)) return;
    httpd_reply_json(req, 200, json_pack("{so}", "echo", body));
}

static void on_done(const httpc_response *res, void *arg) {
    result *r = arg;
    r->status = res->status;
    snprintf(r->body, sizeof r->body, "%s", res->error ? res->error : res->body);
    r->done = 1;
}

static result request(struct event_base *base, httpc *c, const char *method, const char *url, const char *body,
                      size_t len) {
    result r = {0};
    httpc_request req = {.method = method, .url = url, .body = body, .body_len = len, .timeout_ms = 5000};
    assert_int_equal(httpc_send(c, &req, on_done, &r), 0);
    while (!r.done) event_base_loop(base, EVLOOP_ONCE);
    return r;
}

/* The one integer parser of query parameters (storage's filters, admin's stream, stats). */
static void test_param_long(void **state) {
    (void)state;
    long long x = -1;
    assert_int_equal(httpd_param_long("0", 0, 10, &x), 0);
    assert_int_equal(x, 0);
    assert_int_equal(httpd_param_long("4000000000000000000", 0, 4000000000000000000LL, &x), 0);
    assert_int_equal(x, 4000000000000000000LL);
    const char *bad[] = {"", "-1", "+1", " 1", "1 ", "1x", "11", "99999999999999999999", "4000000000000000001", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(httpd_param_long(bad[i], 0, i == 8 ? 4000000000000000000LL : 10, &x), -1);
    assert_int_equal(httpd_param_long(NULL, 0, 10, &x), -1);
}

static void test_server_client(void **state) {
    (void)state;
    struct event_base *base = event_base_new();
    httpd *h;
    httpd_opts o = {.port = 0, .max_body = 1024};
    assert_int_equal(httpd_new(base, &o, &h), 0);
    assert_int_equal(httpd_route(h, "/echo", echo_handler, NULL), 0);
    metric *m = metrics_counter("test_requests_total", "Requests.", NULL);
    metrics_add(m, 3);
    httpc *c;
    assert_int_equal(httpc_new(base, &c), 0);
    char url[128], murl[128], nurl[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo?x=1", httpd_port(h));
    snprintf(murl, sizeof murl, "http://127.0.0.1:%d/metrics", httpd_port(h));
    snprintf(nurl, sizeof nurl, "http://127.0.0.1:%d/nope", httpd_port(h));

    result r = request(base, c, "POST", url, "{\"a\":1}", 7);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"echo\":{\"a\":1}}");

    /* an integer beyond 64 bits is valid JSON: read as a double, not refused */
    r = request(base, c, "POST", url, "{\"big\":123456789012345678901234}", 32);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"big\":1.2345678901234569e23"));

    r = request(base, c, "POST", url, "{\"a\":1,}", 8);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "malformed JSON at byte"));
    assert_non_null(strstr(r.body, "\"position\":"));

    char big[2048];
    memset(big, ' ', sizeof big);
    big[0] = '[';
    big[sizeof big - 1] = ']';
    r = request(base, c, "POST", url, big, sizeof big);
    assert_int_equal(r.status, 413);

    r = request(base, c, "GET", url, NULL, 0);
    assert_int_equal(r.status, 405);

    r = request(base, c, "GET", nurl, NULL, 0);
    assert_int_equal(r.status, 404);

    r = request(base, c, "GET", murl, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "test_requests_total 3"));

    /* connection refused: status 0 with an error text */
    r = request(base, c, "GET", "http://127.0.0.1:1/", NULL, 0);
    assert_int_equal(r.status, 0);
    assert_true(strlen(r.body) > 0);

    /* the blocking helper */
    long status;
    char *body;
    httpc_request req = {.method = "GET", .url = murl};
    /* the server only runs while the loop runs, so test the blocking path on an error */
    req.url = "http://127.0.0.1:1/";
    assert_int_equal(httpc_fetch(&req, &status, &body), -1);
    assert_int_equal(status, 0);
    free(body);

    httpc_free(c);
    httpd_free(h);
    metrics_free_all();
    event_base_free(base);
}


/* ---- a plain evhttp server that tells the client which TCP connection it used ---- */

typedef struct {
    long status;
    int port;               /* the client's source port as the server saw it */
    size_t body_len;
    char error[256];
    double total_s;
    int done;
} cres;

static void on_cres(const httpc_response *res, void *arg) {
    cres *r = arg;
    r->status = res->status;
    r->body_len = res->body_len;
    r->port = res->status == 200 ? atoi(res->body) : 0;
    snprintf(r->error, sizeof r->error, "%s", res->error ? res->error : "");
    r->total_s = res->total_s;
    r->done++;
}

static int peer_port(struct evhttp_request *req) {
    char *addr;
    ev_uint16_t port;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &port);
    return port;
}

typedef struct {
    struct evhttp_request *req;
    struct event *ev;
} slow_reply;

static void slow_fire(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    slow_reply *s = arg;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "%d", peer_port(s->req));
    evhttp_send_reply(s->req, 200, "OK", b);
    evbuffer_free(b);
    event_free(s->ev);
    free(s);
}

/* /port: the client port; /slow?ms=N: the same after N ms; /big?n=N: N bytes;
 * /len: "port len" of the request body, plus checks of the request headers. */
static void gen_handler(struct evhttp_request *req, void *arg) {
    struct event_base *base = arg;
    const char *uri = evhttp_request_get_uri(req);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evbuffer *b = evbuffer_new();
    if (!evhttp_find_header(in, "Host")) {
        evhttp_send_reply(req, 400, "no Host", b);
    } else if (strncmp(uri, "/slow?ms=", 9) == 0) {
        slow_reply *s = calloc(1, sizeof *s);
        s->req = req;
        s->ev = evtimer_new(base, slow_fire, s);
        long ms = atol(uri + 9);
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        evtimer_add(s->ev, &tv);
    } else if (strncmp(uri, "/big?n=", 7) == 0) {
        size_t n = (size_t)atol(uri + 7);
        char *p = malloc(n);
        memset(p, 'x', n);
        p[0] = '7';
        p[1] = ' ';
        evbuffer_add(b, p, n);
        free(p);
        evhttp_send_reply(req, 200, "OK", b);
    } else if (strcmp(uri, "/len?a=1&b=%202") == 0) {
        const char *ct = evhttp_find_header(in, "Content-Type");
        const char *auth = evhttp_find_header(in, "Authorization");
        const char *x = evhttp_find_header(in, "X-Test");
        int ok = ct && strcmp(ct, "application/json") == 0 && auth && strcmp(auth, "Basic dXNlcjpwdw==") == 0 &&
                 x && strcmp(x, "yes") == 0;
        evbuffer_add_printf(b, "%d %zu", peer_port(req), evbuffer_get_length(evhttp_request_get_input_buffer(req)));
        evhttp_send_reply(req, ok ? 200 : 400, "OK", b);
    } else {
        evbuffer_add_printf(b, "%d", peer_port(req));
        evhttp_send_reply(req, 200, "OK", b);
    }
    evbuffer_free(b);
}

static cres creq(struct event_base *base, httpc *c, const httpc_request *req) {
    cres r = {0};
    assert_int_equal(httpc_send(c, req, on_cres, &r), 0);
    while (!r.done) event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(r.done, 1);
    return r;
}

static void run_for(struct event_base *base, int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static void test_keepalive_pool_timeout(void **state) {
    (void)state;
    struct event_base *base = event_base_new();
    struct evhttp *srv = evhttp_new(base);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(srv, "127.0.0.1", 0);
    assert_non_null(bs);
    evhttp_set_gencb(srv, gen_handler, base);
    evhttp_set_max_body_size(srv, 32u << 20);
    evhttp_set_timeout(srv, 1); /* the server drops connections idle for 1 s */
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl);
    int port = ntohs(sin.sin_port);
    char url[128], slow[128], big[128], len[128], lh[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/port", port);
    snprintf(lh, sizeof lh, "http://localhost:%d/port", port);
    snprintf(slow, sizeof slow, "http://127.0.0.1:%d/slow?ms=300", port);
    snprintf(big, sizeof big, "http://127.0.0.1:%d/big?n=%d", port, 16 << 20);
    snprintf(len, sizeof len, "http://127.0.0.1:%d/len?a=1&b=%%202#frag", port);
    httpc *c;
    assert_int_equal(httpc_new(base, &c), 0);

    /* keep-alive: sequential requests share one connection */
    httpc_request get = {.method = "GET", .url = url, .timeout_ms = 5000};
    cres a = creq(base, c, &get), b = creq(base, c, &get);
    assert_int_equal(a.status, 200);
    assert_int_equal(b.status, 200);
    assert_int_equal(a.port, b.port);

    /* concurrent requests each get their own connection */
    httpc_request sreq = {.method = "GET", .url = slow, .timeout_ms = 5000};
    cres s[3] = {{0}};
    for (int i = 0; i < 3; i++) assert_int_equal(httpc_send(c, &sreq, on_cres, &s[i]), 0);
    assert_int_equal(httpc_inflight(c), 3);
    while (!s[0].done || !s[1].done || !s[2].done) event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(httpc_inflight(c), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(s[i].status, 200);
    assert_true(s[0].port != s[1].port && s[1].port != s[2].port && s[0].port != s[2].port);
    assert_true(s[0].total_s < 1.0);

    /* the server closed the idle connections: a new one is made transparently */
    run_for(base, 1500);
    cres d = creq(base, c, &get);
    assert_int_equal(d.status, 200);
    assert_true(d.port != a.port);

    /* a "localhost" name */
    get.url = lh;
    assert_int_equal(creq(base, c, &get).status, 200);

    /* whole-request deadline */
    httpc_request treq = {.method = "GET", .url = slow, .timeout_ms = 100};
    cres t = creq(base, c, &treq);
    assert_int_equal(t.status, 0);
    assert_non_null(strstr(t.error, "timed out"));
    assert_true(t.total_s < 0.25);

    /* 16 MiB request body, headers, basic auth, path + query; 16 MiB response.
     * New connections from here get a long server timeout: client and server
     * share this one loop, and on a loaded machine (sanitizers, other jobs)
     * 16 MiB can take over a second, which the 1 s idle timeout above would
     * cut ("connection closed before the response"). */
    evhttp_set_timeout(srv, 30);
    size_t n = 16u << 20;
    char *body = malloc(n);
    memset(body, ' ', n);
    const char *hdrs[] = {"X-Test: yes", "Expect:", NULL};
    httpc_request preq = {.method = "POST", .url = len, .body = body, .body_len = n, .headers = hdrs,
                          .userpwd = "user:pw", .timeout_ms = 20000};
    cres p = creq(base, c, &preq);
    assert_int_equal(p.status, 200);
    free(body);
    httpc_request breq = {.method = "GET", .url = big, .timeout_ms = 20000};
    cres g = creq(base, c, &breq);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.body_len, n);

    /* httpc_free cancels what is in flight, calling back once */
    cres x = {0};
    assert_int_equal(httpc_send(c, &sreq, on_cres, &x), 0);
    event_base_loop(base, EVLOOP_NONBLOCK);
    httpc_free(c);
    assert_int_equal(x.done, 1);
    assert_int_equal(x.status, 0);
    assert_string_equal(x.error, "cancelled");

    run_for(base, 400); /* lets the server finish its slow replies */
    evhttp_free(srv);
    event_base_free(base);
}

/* ---- a raw server that answers the first request of each connection with
 * keep-alive, then closes on the second without answering: the client must
 * retry on a fresh connection. ---- */

static int raw_conns;
static struct bufferevent *raw_bevs[8];

static void raw_forget(struct bufferevent *bev) {
    for (int i = 0; i < 8; i++)
        if (raw_bevs[i] == bev) raw_bevs[i] = NULL;
}

static void raw_read(struct bufferevent *bev, void *arg) {
    (void)arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0) return;
    evbuffer_drain(in, (size_t)end.pos + 4);
    void *cbarg;
    bufferevent_getcb(bev, NULL, NULL, NULL, &cbarg);
    if (cbarg) {           /* second request on this connection: close */
        raw_forget(bev);
        bufferevent_free(bev);
        return;
    }
    bufferevent_setcb(bev, raw_read, NULL, NULL, (void *)1);
    evbuffer_add_printf(bufferevent_get_output(bev), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
}

static void raw_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int socklen, void *arg) {
    (void)sa, (void)socklen, (void)arg;
    struct bufferevent *bev = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
    if (raw_conns < 8) raw_bevs[raw_conns] = bev;
    raw_conns++;
    bufferevent_setcb(bev, raw_read, NULL, NULL, NULL);
    bufferevent_enable(bev, EV_READ);
}

/* A handed-over body (httpc_request.body_take, issue 15: one copy of a batch,
 * not three): sent without a copy and freed by httpc when the request is done,
 * also when the peer answers before the body left (a 413 on a 4 MB body: the
 * connection may still be writing from it, which ASan would catch) and when
 * the request cannot even start (LeakSanitizer would catch a leak). */
static void test_body_take(void **state) {
    (void)state;
    struct event_base *base = event_base_new();
    httpd *h;
    httpd_opts o = {.port = 0, .max_body = 1024};
    assert_int_equal(httpd_new(base, &o, &h), 0);
    assert_int_equal(httpd_route(h, "/echo", echo_handler, NULL), 0);
    httpc *c;
    assert_int_equal(httpc_new(base, &c), 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", httpd_port(h));

    char *small = malloc(7);
    memcpy(small, "{\"a\":2}", 7);
    httpc_request req = {.method = "POST", .url = url, .body_take = small, .body_len = 7, .timeout_ms = 5000};
    cres r = creq(base, c, &req);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, strlen("{\"echo\":{\"a\":2}}"));

    size_t n = 4u << 20;
    char *big = malloc(n);
    memset(big, ' ', n);
    big[0] = '[';
    big[n - 1] = ']';
    req.body_take = big;
    req.body_len = n;
    r = creq(base, c, &req);
    assert_true(r.status == 413 || r.status == 0); /* the answer, or the reset when it closed mid-body */
    run_for(base, 200); /* whatever the connection still does with the body */

    req.body_take = malloc(4);
    memcpy(req.body_take, "{}{}", 4);
    req.body_len = 4;
    req.url = "not a url";
    assert_int_equal(httpc_send(c, &req, on_cres, &r), -1);

    httpc_free(c);
    httpd_free(h);
    metrics_free_all();
    event_base_free(base);
}

/* A shared body (httpc_shared, issue 15: ingestion's batch is kept for
 * retries and sent by reference, not copied into each request): the request
 * holds a reference, so the owner gets its buffer back only when no request
 * holds it any more; sent twice (a retry), answered correctly both times; a
 * peer answering before a 4 MB body left keeps it alive until the connection
 * let go (ASan: no use after free; LSan: no leak). */
static void test_body_shared(void **state) {
    (void)state;
    struct event_base *base = event_base_new();
    httpd *h;
    httpd_opts o = {.port = 0, .max_body = 1024};
    assert_int_equal(httpd_new(base, &o, &h), 0);
    assert_int_equal(httpd_route(h, "/echo", echo_handler, NULL), 0);
    httpc *c;
    assert_int_equal(httpc_new(base, &c), 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/echo", httpd_port(h));

    char *small = malloc(7);
    memcpy(small, "{\"a\":2}", 7);
    httpc_shared *sh = httpc_shared_new(small);
    assert_non_null(sh);
    httpc_request req = {.method = "POST", .url = url, .body_shared = sh, .body_len = 7, .timeout_ms = 5000};
    for (int i = 0; i < 2; i++) { /* the same bytes again, as a retry sends them */
        cres r = creq(base, c, &req);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, strlen("{\"echo\":{\"a\":2}}"));
    }
    run_for(base, 50);
    assert_ptr_equal(httpc_shared_release(sh), small); /* nobody else holds it: the owner's again, not copied */
    free(small);

    size_t n = 4u << 20;
    char *big = malloc(n);
    memset(big, ' ', n);
    big[0] = '[';
    big[n - 1] = ']';
    sh = httpc_shared_new(big);
    req.body_shared = sh;
    req.body_len = n;
    result r = {0};
    assert_int_equal(httpc_send(c, &req, on_done, &r), 0);
    assert_null(httpc_shared_release(sh)); /* the request holds it: freed by the last holder */
    while (!r.done) event_base_loop(base, EVLOOP_ONCE);
    assert_true(r.status == 413 || r.status == 0); /* the answer, or the reset when it closed mid-body */
    run_for(base, 200);

    httpc_free(c);
    httpd_free(h);
    metrics_free_all();
    event_base_free(base);
}

static void test_retry_on_stale_connection(void **state) {
    (void)state;
    struct event_base *base = event_base_new();
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct evconnlistener *l = evconnlistener_new_bind(base, raw_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                                       -1, (struct sockaddr *)&sin, sizeof sin);
    assert_non_null(l);
    socklen_t sl = sizeof sin;
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &sl);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(sin.sin_port));
    httpc *c;
    assert_int_equal(httpc_new(base, &c), 0);
    httpc_request req = {.method = "POST", .url = url, .body = "{}", .body_len = 2, .timeout_ms = 5000};
    assert_int_equal(creq(base, c, &req).status, 200);
    assert_int_equal(creq(base, c, &req).status, 200); /* closed on the reused one, retried */
    assert_int_equal(raw_conns, 2);
    httpc_free(c);
    for (int i = 0; i < 8; i++)
        if (raw_bevs[i]) bufferevent_free(raw_bevs[i]);
    evconnlistener_free(l);
    event_base_free(base);
}

/* ---- https against an in-process TLS server with a self-signed cert for "localhost" ---- */

static struct bufferevent *tls_bevcb(struct event_base *base, void *arg) {
    return bufferevent_openssl_socket_new(base, -1, SSL_new(arg), BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

/* Set when a test had to skip (openssl(1) missing): main() then exits 77, which
 * ctest reports as skipped (cmocka itself counts a skip as a pass). */
static int skipped;

static void test_https(void **state) {
    (void)state;
    char dir[] = "/tmp/homeiq-httpc-XXXXXX", cmd[512], cert[128], key[128];
    assert_non_null(mkdtemp(dir));
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 1 -subj /CN=localhost "
             "-addext subjectAltName=DNS:localhost >/dev/null 2>&1", key, cert);
    if (system(cmd) != 0) {
        print_message("openssl(1) could not make a test certificate: https not tested\n");
        skipped = 1;
        skip();
    }
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    assert_int_equal(SSL_CTX_use_certificate_chain_file(sctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(sctx, key, SSL_FILETYPE_PEM), 1);
    struct event_base *base = event_base_new();
    struct evhttp *srv = evhttp_new(base);
    evhttp_set_bevcb(srv, tls_bevcb, sctx);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(srv, "127.0.0.1", 0);
    assert_non_null(bs);
    evhttp_set_gencb(srv, gen_handler, base);
    evhttp_set_timeout(srv, 1);
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl);
    int port = ntohs(sin.sin_port);
    char good[128], byip[128];
    snprintf(good, sizeof good, "https://localhost:%d/port", port);
    snprintf(byip, sizeof byip, "https://127.0.0.1:%d/port", port);
    httpc_request req = {.method = "GET", .url = good, .timeout_ms = 5000};

    /* not signed by a trusted CA: refused */
    httpc *c;
    assert_int_equal(httpc_new(base, &c), 0);
    cres r = creq(base, c, &req);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.error, "tls:"));
    httpc_free(c);

    /* trusted (OpenSSL's default verify paths honour SSL_CERT_FILE) */
    setenv("SSL_CERT_FILE", cert, 1);
    assert_int_equal(httpc_new(base, &c), 0);
    cres a = creq(base, c, &req), b = creq(base, c, &req);
    assert_int_equal(a.status, 200);
    assert_int_equal(b.status, 200);
    assert_int_equal(a.port, b.port);  /* kept alive */
    run_for(base, 1500);               /* server drops the idle TLS connection */
    cres d = creq(base, c, &req);
    assert_int_equal(d.status, 200);
    assert_true(d.port != a.port);
    /* the certificate names localhost, not 127.0.0.1: refused */
    req.url = byip;
    r = creq(base, c, &req);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.error, "tls:"));
    httpc_free(c);
    unsetenv("SSL_CERT_FILE");

    evhttp_free(srv);
    event_base_free(base);
    SSL_CTX_free(sctx);
    unlink(cert);
    unlink(key);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_server_client), cmocka_unit_test(test_keepalive_pool_timeout),
                                       cmocka_unit_test(test_retry_on_stale_connection), cmocka_unit_test(test_https),
                                       cmocka_unit_test(test_param_long), cmocka_unit_test(test_body_take),
                                       cmocka_unit_test(test_body_shared)};
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    return failed ? failed : skipped ? 77 : 0;
}
