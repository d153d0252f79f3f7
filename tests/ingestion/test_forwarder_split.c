/* test_forwarder_split.c -- the forwarder under lib/delivery's contract,
 * against a real HTTP server on loopback (lib httpd on the same loop) that
 * behaves like a downstream with poisoned events: it refuses (400, 413 or
 * 422) any batch holding a "poison" event and stores the others.
 *
 * Before issue 14 the forwarder retried a refused batch forever and started
 * no later batch: the spool head never moved (these tests time out with
 * acked == 0 on that code). Now: the batch is split until the poisoned events
 * are alone, each is sent on as a dead letter (reason + raw bytes), every good
 * event is delivered exactly once, the spool head moves to the end, and
 * downstream is not reported as failing. (New file: test_forwarder.c belongs
 * to the issue-17 rework.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delivery.h"
#include "ingest_forwarder.h"
#include "httpd.h"
#include "json_scan.h"
#include "metrics.h"
#include "spool.h"

#define MAXN 4096

typedef struct fx {
    char dir[128];
    struct event_base *base;
    spool *sp;
    httpd *hd;
    httpc *hc;
    forwarder *fw;
    int refuse_status;         /* what a batch with poison gets */
    int delivered[MAXN];       /* times each good event n was stored */
    int dead[MAXN];            /* dead letters per n */
    char dead_error[256];
    int requests, refused;
    size_t max_body_seen;
    int health_status;         /* what GET /health answers (the probe after a cut) */
    int cuts_seen, probes;
} fx;

static fx *g_fx;

typedef struct scan_ctx {
    int poison;
    int n[MAXN];
    int is_dead[MAXN];
    int count;
} scan_ctx;

static int elem_cb(const char *v, size_t l, void *arg) {
    scan_ctx *c = arg;
    json_t *j = json_loadb(v, l, 0, NULL);
    assert_non_null(j);
    const char *type = json_string_value(json_object_get(j, "event_type"));
    if (type && !strcmp(type, DELIVERY_DEAD_TYPE)) {
        /* the raw event travels as a string (maybe truncated): recover n from it */
        const char *raw = json_string_value(json_object_get(j, "event"));
        assert_non_null(raw);
        assert_int_equal(sscanf(raw, "{\"n\":%d", &c->n[c->count]), 1);
        c->is_dead[c->count++] = 1;
        snprintf(g_fx->dead_error, sizeof g_fx->dead_error, "%s", json_string_value(json_object_get(j, "error")));
    } else {
        if (json_object_get(j, "poison")) c->poison = 1;
        c->n[c->count] = (int)json_integer_value(json_object_get(j, "n"));
        c->is_dead[c->count++] = 0;
    }
    json_decref(j);
    return 0;
}

/* Closes the connection without an answer, from the loop (not inside evhttp's callback). */
static void cut_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    evhttp_connection_free(arg);
}

static void health_cb(struct evhttp_request *req, void *arg) {
    fx *f = arg;
    f->probes++;
    httpd_reply_json(req, f->health_status, json_pack("{s:s}", "status", f->health_status == 200 ? "healthy" : "unhealthy"));
}

static void downstream_cb(struct evhttp_request *req, void *arg) {
    fx *f = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len >= DELIVERY_BIG_BODY && evbuffer_search(in, "\"cut\":true", 10, NULL).pos >= 0) {
        /* like a limit in front of the peer that cuts every large body holding this event */
        f->cuts_seen++;
        struct timeval zero = {0, 0};
        event_base_once(f->base, -1, EV_TIMEOUT, cut_cb, evhttp_request_get_connection(req), &zero);
        return;
    }
    if (len > f->max_body_seen) f->max_body_seen = len;
    static scan_ctx c;
    memset(&c, 0, sizeof c);
    f->requests++;
    assert_int_equal(jscan_array((const char *)evbuffer_pullup(in, -1), len, elem_cb, &c), 0);
    if (c.poison) {
        f->refused++;
        httpd_reply_json(req, f->refuse_status, json_pack("{s:s}", "error", "malformed JSON at byte 7"));
        return;
    }
    for (int i = 0; i < c.count; i++) {
        if (c.is_dead[i]) f->dead[c.n[i]]++;
        else f->delivered[c.n[i]]++;
    }
    httpd_reply_json(req, 200, json_pack("{s:b,s:i,s:[]}", "success", 1, "processed", c.count, "rejected"));
}

static fx *fx_new(size_t batch_max, size_t batch_bytes, int inflight) {
    fx *f = calloc(1, sizeof *f);
    g_fx = f;
    snprintf(f->dir, sizeof f->dir, "/tmp/homeiq-fwd-split.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->base = event_base_new();
    f->refuse_status = 400;
    spool_opts so = {.dir = f->dir, .fsync_ms = 10};
    assert_int_equal(spool_open(f->base, &so, &f->sp), 0);
    httpd_opts ho = {.port = 0, .max_body = 64u << 20};
    assert_int_equal(httpd_new(f->base, &ho, &f->hd), 0);
    httpd_route(f->hd, "/api/v1/events", downstream_cb, f);
    httpd_route(f->hd, "/health", health_cb, f);
    f->health_status = 200;
    assert_int_equal(httpc_new(f->base, &f->hc), 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/events", httpd_port(f->hd));
    forwarder_opts fo = {.url = url, .batch_max = batch_max, .batch_max_bytes = batch_bytes, .linger_ms = 5,
                         .max_inflight = inflight, .timeout_ms = 5000, .retry_min_ms = 10, .retry_max_ms = 50};
    assert_int_equal(forwarder_new(f->base, f->hc, f->sp, &fo, &f->fw), 0);
    return f;
}

static void on_written(void *arg) { forwarder_kick(((fx *)arg)->fw); }

static void fx_free(fx *f) {
    forwarder_stop(f->fw);
    httpc_free(f->hc);
    forwarder_free(f->fw);
    httpd_free(f->hd);
    spool_close(f->sp);
    metrics_free_all();
    event_base_free(f->base);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
}

static void run_ms(fx *f, int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
}

static uint64_t acked(fx *f) {
    spool_stats st;
    spool_get_stats(f->sp, &st);
    return st.acked_seq;
}

static void wait_acked(fx *f, uint64_t n) {
    for (int i = 0; i < 1000 && acked(f) < n; i++) run_ms(f, 10);
    assert_int_equal(acked(f), n);
}

static int is_poison(int i) { return i % 97 == 13 || i == 500 || i == 501; }

static void append_events(fx *f, int n) {
    char buf[96];
    for (int i = 0; i < n; i++) {
        int l = is_poison(i) ? snprintf(buf, sizeof buf, "{\"n\":%d,\"poison\":true}", i)
                             : snprintf(buf, sizeof buf, "{\"n\":%d}", i);
        assert_int_equal(spool_append(f->sp, buf, (size_t)l, NULL), 0);
    }
}

static void check_outcome(fx *f, int n) {
    for (int i = 0; i < n; i++) {
        if (is_poison(i)) {
            assert_int_equal(f->dead[i], 1);
            assert_int_equal(f->delivered[i], 0);
        } else {
            if (f->delivered[i] != 1) fprintf(stderr, "event %d delivered %d times\n", i, f->delivered[i]);
            assert_int_equal(f->delivered[i], 1);
            assert_int_equal(f->dead[i], 0);
        }
    }
    forwarder_stats fs;
    forwarder_get_stats(f->fw, &fs);
    assert_int_equal(fs.failing_since_us, 0); /* refusals are not an outage: health stays green */
    assert_int_equal(fs.retrying, 0);
}

static void run_mixed(int status, int inflight) {
    fx *f = fx_new(100, 1u << 20, inflight);
    f->refuse_status = status;
    spool_set_listener(f->sp, on_written, NULL, f);
    append_events(f, 2000);
    wait_acked(f, 2000);
    check_outcome(f, 2000);
    assert_true(strstr(f->dead_error, "malformed JSON at byte 7") != NULL); /* downstream's reason is kept */
    forwarder_stats fs;
    forwarder_get_stats(f->fw, &fs);
    int poisoned = 0;
    for (int i = 0; i < 2000; i++) poisoned += is_poison(i);
    assert_int_equal(fs.events_dead_lettered, (uint64_t)poisoned);
    fx_free(f);
}

static void test_split_400(void **state) { (void)state; run_mixed(400, 4); }
static void test_split_413_inflight1(void **state) { (void)state; run_mixed(413, 1); }
static void test_split_422(void **state) { (void)state; run_mixed(422, 3); }

/* Finding 3 at the forwarder: bodies stay within FORWARD_BATCH_MAX_BYTES, and
 * a record that cannot fit alone is dead-lettered at once (truncated raw,
 * its size), never sent (downstream would cut the connection forever). */
static void test_oversized_record_dead_lettered(void **state) {
    (void)state;
    fx *f = fx_new(1000, 64 * 1024, 2);
    spool_set_listener(f->sp, on_written, NULL, f);
    char buf[512];
    for (int i = 0; i < 300; i++) {
        if (i == 150) {
            size_t big = 200 * 1024;
            char *b = malloc(big);
            memset(b, 'a', big);
            int h = snprintf(b, 64, "{\"n\":%d,\"pad\":\"", i);
            b[h] = 'a';
            memcpy(b + big - 2, "\"}", 2);
            assert_int_equal(spool_append(f->sp, b, big, NULL), 0);
            free(b);
            continue;
        }
        int l = snprintf(buf, sizeof buf, "{\"n\":%d,\"pad\":\"%0400d\"}", i, 0);
        assert_int_equal(spool_append(f->sp, buf, (size_t)l, NULL), 0);
    }
    wait_acked(f, 300);
    assert_true(f->max_body_seen <= 64 * 1024);
    for (int i = 0; i < 300; i++) {
        assert_int_equal(f->delivered[i] + f->dead[i], 1);
        assert_int_equal(f->dead[i], i == 150 ? 1 : 0);
    }
    assert_true(strstr(f->dead_error, "FORWARD_BATCH_MAX_BYTES") != NULL);
    fx_free(f);
}

/* lib/delivery's cut rule at ingestion: a body >= 1 MiB whose connection is
 * cut is retried; a strike counts only when the probe of /health right after
 * the cut says 200, and the 3rd strike refuses the body (split; the event
 * alone dead-lettered with the reason). Before, ingestion counted every cut
 * whatever the peer's health: 3 cuts while it was down dead-lettered a good
 * event. */
static void test_cut_rule(void **state) {
    (void)state;
    fx *f = fx_new(100, 8u << 20, 1);
    f->health_status = 503;
    char buf[96];
    for (int i = 0; i < 20; i++) {
        if (i == 10) { /* 1.2 MiB, cut every time */
            size_t big = 1200 * 1024;
            char *b = malloc(big);
            memset(b, 'c', big);
            int h = snprintf(b, 64, "{\"n\":%d,\"cut\":true,\"pad\":\"", i);
            b[h] = 'c';
            memcpy(b + big - 2, "\"}", 2);
            assert_int_equal(spool_append(f->sp, b, big, NULL), 0);
            free(b);
            continue;
        }
        int l = snprintf(buf, sizeof buf, "{\"n\":%d}", i);
        assert_int_equal(spool_append(f->sp, buf, (size_t)l, NULL), 0);
    }
    spool_set_listener(f->sp, on_written, NULL, f);
    forwarder_kick(f->fw);
    forwarder_stats fs;
    for (int i = 0; i < 1000; i++) { /* (httpc may re-send once on a fresh connection: count the forwarder's cuts) */
        forwarder_get_stats(f->fw, &fs);
        if (fs.cuts >= 5 && f->probes >= 5) break;
        run_ms(f, 10);
    }
    forwarder_get_stats(f->fw, &fs);
    assert_true(fs.cuts >= 5);                /* retried past DELIVERY_SUSPECT_TRIES ... */
    assert_true(f->probes >= 5);              /* ... each cut probed ... */
    assert_int_equal(fs.events_dead_lettered, 0); /* ... and none counted: the peer said 503 */
    assert_int_equal(fs.batches_split, 0);
    assert_int_equal(f->dead[10], 0);
    f->health_status = 200;                   /* healthy now: three more cuts refuse the body */
    wait_acked(f, 20);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(f->delivered[i], i == 10 ? 0 : 1);
        assert_int_equal(f->dead[i], i == 10 ? 1 : 0);
    }
    forwarder_get_stats(f->fw, &fs);
    assert_int_equal(fs.events_dead_lettered, 1);
    assert_true(strstr(f->dead_error, "-byte request") != NULL); /* the reason names the cut */
    fx_free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_400),
        cmocka_unit_test(test_split_413_inflight1),
        cmocka_unit_test(test_split_422),
        cmocka_unit_test(test_oversized_record_dead_lettered),
        cmocka_unit_test(test_cut_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
