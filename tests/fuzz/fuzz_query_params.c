/* fuzz_query_params.c -- every query-parameter parser on arbitrary query
 * strings: lib/httpd's httpd_query_check_str (what httpd_query_check runs for
 * a request) and httpd_param_long; data-storage's GET /api/v1/events
 * (store_filter_set + store_filter_check), the read routes of query_api.c
 * (query_api_check_query), GET /api/v1/statistics (stats_api_check_query);
 * admin-api's live stream (admin_stream_parse). Input byte 0 picks the
 * route, the rest (up to a NUL) is the query string.
 *
 * Properties (any violation aborts):
 *  - no crash, leak or sanitizer report;
 *  - a refusal has a non-empty reason that the 400 answer can carry
 *    ({"error": reason} encodes: valid UTF-8; control characters are
 *    escaped by jansson and lib/log);
 *  - httpd_param_long accepts exactly plain decimals in range, reading the
 *    value written;
 *  - admin's stream filters, read back by data-storage's query parser, give
 *    exactly the entity_id/domain/event_type values the client sent. */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "admin.h"
#include "httpd.h"
#include "query_api.h"
#include "stats_api.h"
#include "store.h"

static void die(const char *what, const char *q) {
    fprintf(stderr, "fuzz_query_params: %s\nquery: %.300s\n", what, q ? q : "(none)");
    abort();
}

/* A refusal: a reason the answer can carry. */
static void check_reason(int rc, const char *err, const char *q) {
    if (rc == 0) return;
    if (!*err) die("refused without a reason", q);
    json_t *body = json_pack("{ss}", "error", err);
    if (!body) die("the reason cannot be sent as JSON (not UTF-8)", q);
    json_decref(body);
}

static int events_param(void *ctx, const char *k, const char *v, char *err, size_t n) {
    return store_filter_set(ctx, k, v, err, n);
}

/* GET /api/v1/events as storage_api.c reads it. */
static int storage_events(const char *q, char *err, size_t n) {
    struct evkeyvalq params;
    store_filter f;
    store_filter_init(&f);
    int rc = httpd_query_check_str(q, &params, events_param, &f, err, n);
    if (rc == 0) {
        rc = store_filter_check(&f, err, n);
        if (rc == 0 && (f.limit < 1 || f.limit > STORE_MAX_LIMIT)) die("limit out of range", q);
        if (rc == 0 && f.has_start && f.has_end && f.start_us > f.end_us) die("start after end accepted", q);
    }
    httpd_query_free(&params);
    return rc;
}

/* httpd_param_long on the first parameter's value, against a plain reading. */
static void param_long(const char *q) {
    static const long long lim[][2] = {{0, 1000}, {1, 10000}, {0, 4000000000000000000LL}, {5, 5}};
    for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++) {
        long long v = -1;
        int rc = httpd_param_long(q, lim[i][0], lim[i][1], &v);
        size_t len = strlen(q);
        int digits = len > 0 && len <= 19 && strspn(q, "0123456789") == len;
        if (!digits && rc == 0) die("httpd_param_long accepted more than digits", q);
        if (digits) {
            unsigned long long x = strtoull(q, NULL, 10);
            int in = x <= (unsigned long long)lim[i][1] && x >= (unsigned long long)lim[i][0];
            if ((rc == 0) != in) die("httpd_param_long: range", q);
            if (rc == 0 && v != (long long)x) die("httpd_param_long: value", q);
        }
    }
}

static int admin_filters_ok(const char *q, const char *filters) {
    /* what the client sent: the entity_id/domain/event_type parameters in order */
    struct evkeyvalq sent, back;
    TAILQ_INIT(&sent);
    TAILQ_INIT(&back);
    if (evhttp_parse_query_str(q, &sent) != 0) return 0;
    size_t fl = strlen(filters);
    int ok = fl == 0 || filters[0] == '&';
    if (ok && fl && evhttp_parse_query_str(filters + 1, &back) != 0) ok = 0;
    struct evkeyval *a = TAILQ_FIRST(&sent), *b = TAILQ_FIRST(&back);
    for (; ok && a; a = TAILQ_NEXT(a, next)) {
        if (strcmp(a->key, "entity_id") && strcmp(a->key, "domain") && strcmp(a->key, "event_type")) continue;
        ok = b && !strcmp(a->key, b->key) && !strcmp(a->value, b->value);
        if (ok) b = TAILQ_NEXT(b, next);
    }
    if (b) ok = 0; /* nothing injected */
    evhttp_clear_headers(&sent);
    evhttp_clear_headers(&back);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const routes[] = {"/api/v1/events/feed", "/api/v1/entities", "/api/v1/series",
                                         "/api/v1/stats", "/api/v1/registry"};
    if (size == 0) return 0;
    int which = data[0] % 10;
    char *q = malloc(size);
    memcpy(q, data + 1, size - 1);
    q[size - 1] = '\0';
    char err[256] = "";
    int rc;
    switch (which) {
    case 0:
        rc = storage_events(q, err, sizeof err);
        break;
    case 1: case 2: case 3: case 4: case 5:
        rc = query_api_check_query(routes[which - 1], q, err, sizeof err);
        break;
    case 6:
        rc = stats_api_check_query(q, err, sizeof err);
        break;
    case 7: case 8: {
        admin_stream_params p;
        /* 8: the Last-Event-ID header is the query text itself */
        rc = admin_stream_parse(q, which == 8 ? q : NULL, &p, err, sizeof err);
        if (rc == 0 && p.backlog > 1000) die("backlog out of range", q);
        if (rc == 0 && p.has_cursor && p.cursor < 0) die("a negative cursor", q);
        if (rc == 0 && !admin_filters_ok(q, p.filters)) die("stream filters differ from what was sent", q);
        free(p.filters);
        break;
    }
    default:
        param_long(q);
        rc = 0;
        break;
    }
    check_reason(rc, err, q);
    free(q);
    return 0;
}
