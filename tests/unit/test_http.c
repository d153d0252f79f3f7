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

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_server_client)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
