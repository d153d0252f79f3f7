/* ingest_sink.c -- a fast stand-in for enrichment-pipeline, for the ingestion
 * benchmark only (bench/ingestion.sh): POST /api/v1/events counts the events of
 * the JSON array (validated with json_scan) and answers 200 at once, so the
 * benchmark measures ingestion, not enrichment or storage.
 * GET /stats -> {"requests":N,"events":N,"bytes":N}. Env SINK_PORT. */
#include <event2/buffer.h>
#include <stdlib.h>

#include "config.h"
#include "httpd.h"
#include "json_scan.h"
#include "log.h"
#include "metrics.h"
#include "service.h"

typedef struct sink {
    long long requests, events, bytes;
} sink;

static int sink_count(const char *v, size_t l, void *arg) {
    (void)v;
    (void)l;
    (*(long long *)arg)++;
    return 0;
}

static void sink_events(struct evhttp_request *req, void *arg) {
    sink *s = arg;
    if (httpd_require_method(req, EVHTTP_REQ_POST)) return;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = (const char *)evbuffer_pullup(in, -1);
    long long n = 0;
    if (jscan_array(body, len, sink_count, &n) != 0) {
        httpd_reply_error(req, 400, "not a JSON array");
        return;
    }
    s->requests++;
    s->events += n;
    s->bytes += (long long)len;
    httpd_reply_json(req, 200, json_pack("{s:b,s:I,s:[]}", "success", 1, "processed", (json_int_t)n, "rejected"));
}

static void sink_stats(struct evhttp_request *req, void *arg) {
    sink *s = arg;
    httpd_reply_json(req, 200, json_pack("{s:I,s:I,s:I}", "requests", (json_int_t)s->requests, "events",
                                         (json_int_t)s->events, "bytes", (json_int_t)s->bytes));
}

int main(void) {
    service *svc;
    httpd *h;
    sink s = {0};
    long long port;
    if (service_new("ingest-sink", &svc) != 0 || config_long("SINK_PORT", 8002, 0, 65535, &port) != 0) return 1;
    httpd_opts o = {.port = (int)port, .max_body = 64u << 20};
    if (httpd_new(service_base(svc), &o, &h) != 0) return 1;
    httpd_route(h, "/api/v1/events", sink_events, &s);
    httpd_route(h, "/stats", sink_stats, &s);
    service_run(svc);
    httpd_free(h);
    metrics_free_all();
    service_free(svc);
    return 0;
}
