/* test_forwarder.c -- the forwarder against a real HTTP server on loopback
 * (lib httpd, same event loop) that holds requests and answers them when and
 * how the test says: at most FORWARD_MAX_INFLIGHT requests in flight, batches
 * of at most FORWARD_BATCH_MAX, acknowledgements strictly in order (the spool's
 * ack cursor never passes an unanswered batch), a 503 is retried with the same
 * events, and a 200 with "rejected" entries is an acknowledgement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest_forwarder.h"
#include "httpd.h"
#include "json_scan.h"
#include "metrics.h"
#include "spool.h"

#define MAX_HELD 16

typedef struct held {
    struct evhttp_request *req;
    long long events;
    char first[64]; /* the first event's text */
} held;

static held reqs[MAX_HELD];
static int nheld, total_requests;

static int count_cb(const char *v, size_t l, void *arg) {
    held *h = arg;
    if (h->events++ == 0) snprintf(h->first, sizeof h->first, "%.*s", (int)l, v);
    return 0;
}

/* The client gave up on a held request (its timeout) and closed the
 * connection: libevent frees the request, so it must leave reqs unanswered. */
static void held_conn_closed(struct evhttp_connection *conn, void *arg) {
    (void)arg;
    for (int i = 0; i < nheld; i++) {
        if (evhttp_request_get_connection(reqs[i].req) != conn) continue;
        memmove(&reqs[i], &reqs[i + 1], (size_t)(nheld - i - 1) * sizeof reqs[0]);
        nheld--;
        i--;
    }
}

static void hold_cb(struct evhttp_request *req, void *arg) {
    (void)arg;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), held_conn_closed, NULL);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    held h = {req, 0, ""};
    assert_int_equal(jscan_array((const char *)evbuffer_pullup(in, -1), len, count_cb, &h), 0);
    assert_true(nheld < MAX_HELD);
    reqs[nheld++] = h;
    total_requests++;
}

/* Answers held request i and removes it. */
static void answer(int i, int status, const char *body) {
    struct evhttp_request *req = reqs[i].req;
    memmove(&reqs[i], &reqs[i + 1], (size_t)(nheld - i - 1) * sizeof reqs[0]);
    nheld--;
    httpd_reply_json(req, status, json_loads(body, 0, NULL));
}

typedef struct fx {
    char dir[128];
    struct event_base *base;
    spool *sp;
    httpd *hd;
    httpc *hc;
    ingest_forwarder *fw;
} fx;

static void on_written(void *arg) { ingest_forwarder_kick(((fx *)arg)->fw); }

static long fx_timeout_ms = 5000; /* the forwarder's request timeout in setup() */

static int setup(void **state) {
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/homeiq-fwd-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->base = event_base_new();
    spool_opts so = {.dir = f->dir, .fsync_ms = 10};
    assert_int_equal(spool_open(f->base, &so, &f->sp), 0);
    httpd_opts ho = {.port = 0};
    assert_int_equal(httpd_new(f->base, &ho, &f->hd), 0);
    httpd_route(f->hd, "/api/v1/events", hold_cb, NULL);
    assert_int_equal(httpc_new(f->base, &f->hc), 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/events", httpd_port(f->hd));
    ingest_forwarder_opts fo = {.url = url, .batch_max = 10, .batch_max_bytes = 1 << 20, .linger_ms = 5,
                         .max_inflight = 3, .timeout_ms = fx_timeout_ms, .retry_min_ms = 20, .retry_max_ms = 50};
    assert_int_equal(ingest_forwarder_new(f->base, f->hc, f->sp, &fo, &f->fw), 0);
    spool_set_listener(f->sp, on_written, NULL, f);
    nheld = total_requests = 0;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    while (nheld) answer(0, 503, "{}");
    ingest_forwarder_stop(f->fw);
    httpc_free(f->hc);
    ingest_forwarder_free(f->fw);
    httpd_free(f->hd);
    spool_close(f->sp);
    metrics_free_all();
    event_base_free(f->base);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Runs the loop for `ms` milliseconds. */
static void run_ms(fx *f, int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
}

/* Runs the loop until cond(f, arg) holds (checked every 5 ms), at most 10 s:
 * a wait on the condition, not on a guess of how long it takes (fsyncs take
 * 37-75 ms here, and more under ASan on a busy machine). Returns cond. */
static int run_until(fx *f, int (*cond)(fx *, long), long arg) {
    for (int i = 0; i < 2000 && !cond(f, arg); i++) run_ms(f, 5);
    return cond(f, arg);
}

static void run_until_held(fx *f, int n) {
    for (int i = 0; i < 300 && nheld < n; i++) run_ms(f, 10);
    if (nheld != n) {
        ingest_forwarder_stats fs;
        ingest_forwarder_get_stats(f->fw, &fs);
        fprintf(stderr, "held %d (first has %lld events), httpc in flight %d, forwarder in flight %d\n", nheld,
                nheld ? reqs[0].events : -1, httpc_inflight(f->hc), fs.inflight);
    }
    assert_int_equal(nheld, n);
}

static uint64_t acked(fx *f) {
    spool_stats st;
    spool_get_stats(f->sp, &st);
    return st.acked_seq;
}

static int acked_is(fx *f, long n) { return acked(f) == (uint64_t)n; }
static int failed_batches_are(fx *f, long n) {
    ingest_forwarder_stats fs;
    ingest_forwarder_get_stats(f->fw, &fs);
    return fs.batches_failed == (uint64_t)n;
}

static void append_n(fx *f, int from, int n) {
    char buf[32];
    for (int i = from; i < from + n; i++) {
        int l = snprintf(buf, sizeof buf, "{\"n\":%d}", i);
        assert_int_equal(spool_append(f->sp, buf, (size_t)l, NULL), 0);
    }
}

static void test_inflight_bound_and_in_order_acks(void **state) {
    fx *f = *state;
    append_n(f, 0, 45);
    run_until_held(f, 3);
    run_ms(f, 50);
    assert_int_equal(nheld, 3); /* FORWARD_MAX_INFLIGHT */
    for (int i = 0; i < 3; i++) assert_int_equal(reqs[i].events, 10);
    assert_string_equal(reqs[0].first, "{\"n\":0}");
    assert_string_equal(reqs[1].first, "{\"n\":10}");
    assert_string_equal(reqs[2].first, "{\"n\":20}");

    /* Later batches answered first: nothing may be trimmed yet, and the window
     * (sent but unacknowledged batches) stays full until the first is answered. */
    answer(2, 200, "{\"success\":true,\"processed\":10,\"rejected\":[]}");
    answer(1, 200, "{\"success\":true,\"processed\":10,\"rejected\":[]}");
    run_ms(f, 50);
    assert_int_equal(nheld, 1);
    assert_int_equal(acked(f), 0);

    /* The first batch fails: retried with the same events; still nothing trimmed. */
    int before = total_requests;
    answer(0, 503, "{\"error\":\"storage unavailable\"}");
    run_until_held(f, 1);
    assert_int_equal(total_requests, before + 1);
    assert_string_equal(reqs[0].first, "{\"n\":0}");
    assert_int_equal(reqs[0].events, 10);
    assert_int_equal(acked(f), 0);
    ingest_forwarder_stats fs;
    ingest_forwarder_get_stats(f->fw, &fs);
    assert_int_equal(fs.batches_failed, 1);
    assert_true(fs.failing_since_us > 0);

    /* Retry succeeds: the cursor jumps over every batch answered meanwhile. */
    answer(0, 200, "{\"success\":true,\"processed\":10}");
    run_until_held(f, 2); /* batches 30.. and 40.. (5 events, after the linger) */
    assert_int_equal(acked(f), 30);
    assert_string_equal(reqs[0].first, "{\"n\":30}");
    assert_int_equal(reqs[1].events, 5);
    /* 200 with rejected entries = acknowledged (dead-lettered downstream). */
    answer(0, 200, "{\"success\":true,\"processed\":10,\"rejected\":[{\"index\":3,\"error\":\"bad entity_id\"}]}");
    answer(0, 200, "{\"success\":true,\"processed\":5}");
    assert_true(run_until(f, acked_is, 45));
    ingest_forwarder_get_stats(f->fw, &fs);
    assert_int_equal(fs.events_acked, 45);
    assert_int_equal(fs.events_rejected, 1);
    assert_int_equal(fs.failing_since_us, 0);
}

static void test_linger_sends_partial_batch(void **state) {
    fx *f = *state;
    append_n(f, 0, 3);
    run_until_held(f, 1);
    assert_int_equal(reqs[0].events, 3);
    answer(0, 200, "{\"success\":true}");
    assert_true(run_until(f, acked_is, 3));
}

static void test_no_new_batches_while_retrying(void **state) {
    fx *f = *state;
    append_n(f, 0, 10);
    run_until_held(f, 1);
    answer(0, 500, "{}");
    assert_true(run_until(f, failed_batches_are, 1)); /* the 500 reached the ingest_forwarder */
    append_n(f, 10, 30); /* three full batches become readable during the retry wait */
    run_until_held(f, 1);
    /* only the retried batch is in flight: the failing one holds the line */
    assert_string_equal(reqs[0].first, "{\"n\":0}");
    run_ms(f, 30);
    assert_int_equal(nheld, 1);
    answer(0, 200, "{}");
    run_until_held(f, 3);
    assert_int_equal(acked(f), 10);
}

static int setup_short_timeout(void **state) {
    fx_timeout_ms = 300;
    int rc = setup(state);
    fx_timeout_ms = 5000;
    return rc;
}

static int total_requests_are(fx *f, long n) {
    (void)f;
    return total_requests == n;
}

/* A batch whose request times out (downstream hangs) is sent again, the same
 * events, and nothing is acknowledged until an answer comes. */
static void test_timeout_resends_the_same_batch(void **state) {
    fx *f = *state;
    append_n(f, 0, 5);
    run_until_held(f, 1);
    assert_string_equal(reqs[0].first, "{\"n\":0}");
    /* never answered: after FORWARD_TIMEOUT_MS (300 ms here) the client gives up */
    assert_true(run_until(f, total_requests_are, 2));
    assert_true(run_until(f, failed_batches_are, 1));
    assert_int_equal(acked(f), 0);
    /* the retry is the newest held request (the abandoned one may still be held:
     * the server side notices the closed connection only later) */
    int last = nheld - 1;
    assert_true(last >= 0);
    assert_string_equal(reqs[last].first, "{\"n\":0}");
    assert_int_equal(reqs[last].events, 5);
    answer(last, 200, "{\"success\":true,\"processed\":5}");
    assert_true(run_until(f, acked_is, 5));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_inflight_bound_and_in_order_acks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_linger_sends_partial_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_new_batches_while_retrying, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_resends_the_same_batch, setup_short_timeout, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
