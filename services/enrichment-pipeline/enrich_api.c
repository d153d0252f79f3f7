/* enrich_api.c -- see enrich_api.h. One POST is one pipeline run:
 *   parse   body -> JSON -> list of events            (400 / 413 here)
 *   enrich  each event -> record or dead letter       (batch.c, enrich.c)
 *   forward one storage request, answer from its answer (storage_client.c)
 * The request waits (asynchronously) for storage; nothing is acknowledged
 * before storage acknowledged it. */
#include "enrich_api.h"

#include "batch.h"
#include "delivery.h"
#include "event.h"
#include "fastpath.h"
#include "storage_client.h"
#include "log.h"
#include "metrics.h"
#include "service.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct enrich_api {
    httpc *client;
    storage_probe *health;
    storage_client_target target;
    size_t max_batch;
    int fast_path;
    metric *events_in, *events_out, *stored, *duplicates, *dead_lettered;
    metric *fast_events; /* events the fast path enriched (ENRICHMENT_FAST_PATH) */
    metric *rejected[ENRICH_REASON_COUNT];
    metric *rejected_by_storage;
    metric *stage_parse, *stage_enrich, *stage_forward;
    metric *answers_200, *answers_400, *answers_413, *answers_422, *answers_502, *answers_503;
    metric *inflight;
    metric *cuts;               /* storage cut a large body without an answer */
    delivery_cuts cut_strikes;  /* per body: see delivery.h SUSPECT */
};

/* One POST waiting for storage's answer; owned by the httpc callback. */
typedef struct enrich_api_pending {
    enrich_api *a;
    struct evhttp_request *req;
    batch b;
    size_t body_len;            /* of the request to storage */
    uint64_t body_digest;       /* of it, when >= DELIVERY_BIG_BODY (a cut can happen) */
} enrich_api_pending;

static double enrich_api_seconds_since(long long t0_us) { return (double)(service_mono_us() - t0_us) / 1e6; }

static void enrich_api_answer(enrich_api *a, struct evhttp_request *req, int status, json_t *body) {
    metric *m = status == 200 ? a->answers_200 : status == 413 ? a->answers_413 : status == 502 ? a->answers_502
              : status == 503 ? a->answers_503 : status == DELIVERY_REFUSED_STATUS ? a->answers_422 : a->answers_400;
    metrics_add(m, 1);
    httpd_reply_json(req, status, body);
}

static void enrich_api_answer_error(enrich_api *a, struct evhttp_request *req, int status, const char *msg) {
    enrich_api_answer(a, req, status, json_pack("{s:s}", "error", msg));
}

static void enrich_api_count_outcome(enrich_api *a, const batch *b, const json_t *reply) {
    batch_log_rejects(b);
    metrics_add(a->events_out, (double)b->nrecords);
    metrics_add(a->stored, (double)json_integer_value(json_object_get(reply, "stored")));
    metrics_add(a->duplicates, (double)json_integer_value(json_object_get(reply, "duplicates")));
    metrics_add(a->dead_lettered, (double)json_integer_value(json_object_get(reply, "dead_lettered")));
    for (int r = 1; r < ENRICH_REASON_COUNT; r++) metrics_add(a->rejected[r], (double)b->reasons[r]);
    size_t ours = json_array_size(b->rejected), all = json_array_size(json_object_get(reply, "rejected"));
    if (all > ours) metrics_add(a->rejected_by_storage, (double)(all - ours));
}

/* A cut after a large body is retried until the body was cut
 * DELIVERY_SUSPECT_TRIES times while storage was healthy (delivery.h).
 * Called before this answer updates the health state. */
static storage_client_outcome enrich_api_resolve_cut(enrich_api *a, const enrich_api_pending *p, storage_client_outcome o) {
    if (p->body_len < DELIVERY_BIG_BODY) return o;
    if (o == STORAGE_CLIENT_CUT) {
        metrics_add(a->cuts, 1);
        int healthy = storage_probe_ok(a->health);
        delivery_outcome d = delivery_cut(&a->cut_strikes, p->body_digest, p->body_len, healthy);
        log_warn("request %s: data-storage cut a %zu-byte request (storage %s): %s", httpd_request_id(p->req),
                 p->body_len, healthy ? "healthy before" : "already down",
                 d == DELIVERY_REFUSED ? "refused after repeated cuts" : "retried");
        return d == DELIVERY_REFUSED ? STORAGE_CLIENT_REFUSED : STORAGE_CLIENT_UNAVAILABLE;
    }
    if (o != STORAGE_CLIENT_UNAVAILABLE) delivery_cut_clear(&a->cut_strikes, p->body_digest, p->body_len);
    return o;
}

static void enrich_api_storage_done(const httpc_response *res, void *arg) {
    enrich_api_pending *p = arg;
    enrich_api *a = p->a;
    char err[512];
    metrics_observe(a->stage_forward, res->total_s);
    metrics_add(a->inflight, -1);
    storage_client_outcome o = enrich_api_resolve_cut(a, p, storage_client_classify(res, p->body_len));
    if (res->status == 0) storage_probe_note(a->health, 0, res->error);
    else if (res->status == 200) storage_probe_note(a->health, 1, NULL);
    if (o == STORAGE_CLIENT_STORED) {
        json_t *reply;
        if (batch_map_reply(&p->b, res->body, res->body_len, &reply, err, sizeof err) == 0) {
            enrich_api_count_outcome(a, &p->b, reply);
            enrich_api_answer(a, p->req, 200, reply);
        } else {
            log_error("request %s: %s", httpd_request_id(p->req), err);
            enrich_api_answer_error(a, p->req, 502, err);
        }
    } else {
        storage_client_error_text(res, err, sizeof err);
        log_warn("request %s: %s (%zu events not acknowledged)", httpd_request_id(p->req), err, p->b.n);
        enrich_api_answer_error(a, p->req, o == STORAGE_CLIENT_UNAVAILABLE ? 503 : DELIVERY_REFUSED_STATUS, err);
    }
    batch_free(&p->b);
    free(p);
}

static void enrich_api_answer_too_many(enrich_api *a, struct evhttp_request *req, size_t n) {
    char msg[128];
    snprintf(msg, sizeof msg, "batch of %zu events exceeds MAX_BATCH=%zu", n, a->max_batch);
    enrich_api_answer_error(a, req, 413, msg);
}

/* The batch's home (X-HomeIQ-Home, issue 18) is passed on to storage as is;
 * a malformed one is refused here (400), before anything is built. 0 or -1. */
static int enrich_api_home_check(enrich_api *a, struct evhttp_request *req) {
    const char *home = evhttp_find_header(evhttp_request_get_input_headers(req), EVENT_HOME_HEADER);
    char why[192], msg[240];
    if (!home || event_home_check(home, why, sizeof why) == 0) return 0;
    snprintf(msg, sizeof msg, EVENT_HOME_HEADER ": %s", why);
    enrich_api_answer_error(a, req, 400, msg);
    return -1;
}

/* Parse + enrich straight from the body text (fastpath.c): 0 with p->b built,
 * 1 when the body needs the jansson path, -1 after answering. The body is
 * read once either way: declining happens before anything is built. */
static int enrich_api_fast(enrich_api *a, struct evhttp_request *req, enrich_api_pending *p) {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (!a->fast_path || len == 0) return 1;
    const char *body = (const char *)evbuffer_pullup(in, -1);
    int rc = body ? fastpath_build(body, len, a->max_batch, &p->b) : 1;
    if (rc == FASTPATH_TOO_MANY) {
        enrich_api_answer_too_many(a, req, p->b.n);
        return -1;
    }
    if (rc < 0) {
        enrich_api_answer_error(a, req, 503, "out of memory");
        return -1;
    }
    return rc;
}

/* Parse stage: body -> array of events. 0, or -1 after answering. */
static int enrich_api_parse(enrich_api *a, struct evhttp_request *req, json_t **events) {
    json_t *body;
    const char *err;
    if (httpd_read_json(req, &body) != 0) {
        metrics_add(a->answers_400, 1);
        return -1;
    }
    int rc = event_unpack_batch(body, events, &err);
    json_decref(body);
    if (rc != 0) {
        enrich_api_answer_error(a, req, 400, err);
        return -1;
    }
    if (json_array_size(*events) > a->max_batch) {
        size_t n = json_array_size(*events);
        json_decref(*events);
        enrich_api_answer_too_many(a, req, n);
        return -1;
    }
    return 0;
}

/* Forward stage: hands the batch to storage; the answer comes in enrich_api_storage_done.
 * Memory (issue 15): while it waits, a request holds one copy of its events --
 * the storage body, made from the record text in place and sent without a
 * copy; the caller's request text was let go once the batch was built. */
static void enrich_api_forward(enrich_api *a, struct evhttp_request *req, enrich_api_pending *p) {
    size_t len = 0;
    char *body = batch_take_storage_body(&p->b, &len);
    const char *home = evhttp_find_header(evhttp_request_get_input_headers(req), EVENT_HOME_HEADER);
    p->body_len = len;
    if (body && len >= DELIVERY_BIG_BODY) p->body_digest = delivery_body_digest(body, len);
    if (!body || storage_client_send(a->client, &a->target, httpd_request_id(req), home, body, len, enrich_api_storage_done, p) != 0) {
        batch_free(&p->b); /* storage_client_send freed body */
        free(p);
        enrich_api_answer_error(a, req, 503, "cannot start the request to data-storage");
        return;
    }
    metrics_add(a->inflight, 1);
}

/* The caller's request text is in the batch now: give it back before waiting. */
static void enrich_api_drop_input(struct evhttp_request *req) {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void enrich_api_post_events(struct evhttp_request *req, void *arg) {
    enrich_api *a = arg;
    if (httpd_require_method(req, EVHTTP_REQ_POST) || enrich_api_home_check(a, req)) return;
    long long t0 = service_mono_us();
    enrich_api_pending *p = calloc(1, sizeof *p);
    if (!p) {
        enrich_api_answer_error(a, req, 503, "out of memory");
        return;
    }
    int fast = enrich_api_fast(a, req, p);
    if (fast < 0) {
        free(p);
        return;
    }
    if (fast == 0) { /* parse and enrich were one pass: all of it counts as enrich */
        metrics_observe(a->stage_parse, 0);
        metrics_observe(a->stage_enrich, enrich_api_seconds_since(t0));
        metrics_add(a->events_in, (double)p->b.n);
        metrics_add(a->fast_events, (double)p->b.fast);
    } else {
        json_t *events;
        if (enrich_api_parse(a, req, &events) != 0) {
            free(p);
            return;
        }
        metrics_observe(a->stage_parse, enrich_api_seconds_since(t0));
        metrics_add(a->events_in, (double)json_array_size(events));
        long long t1 = service_mono_us();
        if (batch_build(events, &p->b) != 0) {
            free(p);
            json_decref(events);
            enrich_api_answer_error(a, req, 503, "out of memory");
            return;
        }
        json_decref(events);
        metrics_observe(a->stage_enrich, enrich_api_seconds_since(t1));
    }
    enrich_api_drop_input(req);
    p->a = a;
    p->req = req;
    if (p->b.n == 0) { /* nothing to store: nothing to wait for */
        enrich_api_answer(a, req, 200, json_pack("{s:b, s:i, s:i, s:i, s:i, s:[]}", "success", 1, "processed", 0, "stored",
                                          0, "duplicates", 0, "dead_lettered", 0, "rejected"));
        batch_free(&p->b);
        free(p);
        return;
    }
    enrich_api_forward(a, req, p);
}

static void enrich_api_get_health(struct evhttp_request *req, void *arg) {
    enrich_api *a = arg;
    if (httpd_require_method(req, EVHTTP_REQ_GET)) return;
    if (storage_probe_ok(a->health)) {
        httpd_reply_json(req, 200, json_pack("{s:s, s:s, s:s}", "status", "healthy", "service",
                                             "enrichment-pipeline", "storage", "reachable"));
        return;
    }
    httpd_reply_json(req, 503, json_pack("{s:s, s:s, s:s, s:s}", "status", "unhealthy", "service",
                                         "enrichment-pipeline", "reason", "storage_unreachable", "detail",
                                         storage_probe_error(a->health)));
}

static double enrich_api_storage_up(void *arg) { return storage_probe_ok(arg) ? 1 : 0; }

static void enrich_api_metrics_new(enrich_api *a) {
    static const char *const stage_help = "Time per request in each pipeline stage";
    a->events_in = metrics_counter("homeiq_enrichment_events_in_total", "Events received", NULL);
    a->fast_events = metrics_counter("homeiq_enrichment_fast_path_events_total",
                                     "Events enriched straight from the request text (fast path)", NULL);
    a->events_out = metrics_counter("homeiq_enrichment_events_out_total",
                                    "Enriched records acknowledged (HTTP 200) by data-storage", NULL);
    a->stored = metrics_counter("homeiq_enrichment_events_stored_total", "Records data-storage stored as new", NULL);
    a->duplicates = metrics_counter("homeiq_enrichment_events_duplicate_total",
                                    "Records data-storage already had (retries)", NULL);
    a->dead_lettered = metrics_counter("homeiq_enrichment_dead_lettered_total",
                                       "Events data-storage put in its dead-letter store", NULL);
    for (int r = 1; r < ENRICH_REASON_COUNT; r++) {
        char label[64];
        snprintf(label, sizeof label, "reason=\"%s\"", enrich_reason_label((enrich_reason)r));
        a->rejected[r] = metrics_counter("homeiq_enrichment_rejected_total",
                                         "Events rejected (dead-lettered), by reason", label);
    }
    a->rejected_by_storage = metrics_counter("homeiq_enrichment_rejected_total",
                                             "Events rejected (dead-lettered), by reason", "reason=\"storage\"");
    a->stage_parse = metrics_histogram("homeiq_enrichment_stage_seconds", stage_help, "stage=\"parse\"",
                                       metrics_latency_bounds, metrics_latency_nbounds);
    a->stage_enrich = metrics_histogram("homeiq_enrichment_stage_seconds", stage_help, "stage=\"enrich\"",
                                        metrics_latency_bounds, metrics_latency_nbounds);
    a->stage_forward = metrics_histogram("homeiq_enrichment_stage_seconds", stage_help, "stage=\"forward\"",
                                         metrics_latency_bounds, metrics_latency_nbounds);
    static const char *const ans_help = "POST /api/v1/events answers by status";
    a->answers_200 = metrics_counter("homeiq_enrichment_requests_total", ans_help, "code=\"200\"");
    a->answers_400 = metrics_counter("homeiq_enrichment_requests_total", ans_help, "code=\"400\"");
    a->answers_413 = metrics_counter("homeiq_enrichment_requests_total", ans_help, "code=\"413\"");
    a->answers_422 = metrics_counter("homeiq_enrichment_requests_total", ans_help, "code=\"422\"");
    a->answers_502 = metrics_counter("homeiq_enrichment_requests_total", ans_help, "code=\"502\"");
    a->answers_503 = metrics_counter("homeiq_enrichment_requests_total", ans_help, "code=\"503\"");
    a->cuts = metrics_counter("homeiq_enrichment_storage_cuts_total",
                              "Large requests data-storage closed without an answer (retried, see delivery.h)", NULL);
    a->inflight = metrics_gauge("homeiq_enrichment_storage_requests_inflight", "Batches waiting for data-storage",
                                NULL);
    metrics_gauge_fn("homeiq_enrichment_storage_up", "1 when data-storage is reachable", NULL, enrich_api_storage_up,
                     a->health);
}

int enrich_api_new(httpd *server, httpc *client, storage_probe *h, const enrich_api_config *cfg, enrich_api **out) {
    enrich_api *a = calloc(1, sizeof *a);
    if (!a) return -1;
    a->client = client;
    a->health = h;
    a->max_batch = cfg->max_batch;
    a->fast_path = cfg->fast_path;
    if (storage_client_target_init(&a->target, cfg->storage_url, cfg->storage_timeout_ms) != 0) {
        free(a);
        return -1;
    }
    enrich_api_metrics_new(a);
    if (httpd_route(server, "/api/v1/events", enrich_api_post_events, a) || httpd_route(server, "/health", enrich_api_get_health, a)) {
        enrich_api_free(a);
        return -1;
    }
    *out = a;
    return 0;
}

void enrich_api_free(enrich_api *a) {
    if (!a) return;
    storage_client_target_free(&a->target);
    free(a);
}
