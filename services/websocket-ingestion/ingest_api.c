/* ingest_api.c -- the HTTP side of websocket-ingestion:
 *  GET  /health                  200 only when it can do its job (see below)
 *  POST /api/v1/events/forward   events from other producers, through the
 *                                same spool and forwarder as HA's; answered
 *                                200 {"accepted":N} only once they are fsync'ed
 *  GET  /metrics                 (httpd adds it)
 *
 * Health is 200 only when HA is authenticated and subscribed (unless HA is
 * disabled: forward-only mode), the spool is under SPOOL_MAX_BYTES and
 * downstream has not been failing for DOWNSTREAM_UNHEALTHY_S. Otherwise 503
 * with "reason": spool_full | auth_invalid | connecting | downstream_unreachable
 * (the first that applies, in that order; "reasons" lists all). The Python
 * original answered 200 while it had given up reconnecting. */
#include "ingest.h"
#include "backfill_api.h"

#include "event.h"
#include "log.h"

#include <event2/http.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct ingest_pending {
    struct evhttp_request *req;
    uint64_t end_seq;           /* durable once durable_seq >= end_seq */
    size_t count;
    ingest_pending *next;
};

/* ---- /health -------------------------------------------------------------- */

static json_t *ingest_time_json(long long wall_us) {
    if (wall_us <= 0) return json_null();
    char buf[EVENT_TIME_LEN];
    event_time_format(wall_us, buf);
    return json_string(buf);
}

static json_t *ingest_ha_json(ingest *in, const ha_client_stats *hs) {
    if (!in->ha) return json_pack("{s:b,s:s}", "enabled", 0, "state", "disabled");
    return json_pack("{s:b,s:s,s:s,s:I,s:I,s:o,s:s,s:s,s:I}", "enabled", 1, "state", ha_state_name(hs->state),
                     "url", in->ha_url, "connects", (json_int_t)hs->connects, "disconnects",
                     (json_int_t)hs->disconnects, "subscribed_since", ingest_time_json(hs->subscribed_since_us),
                     "last_error", hs->last_error, "ha_version", hs->ha_version, "bad_messages",
                     (json_int_t)hs->bad_messages);
}

static void ingest_health(struct evhttp_request *req, void *arg) {
    ingest *in = arg;
    if (httpd_require_method(req, EVHTTP_REQ_GET)) return;
    spool_stats ss;
    ingest_forwarder_stats fs;
    ha_client_stats hs = {0};
    spool_get_stats(in->sp, &ss);
    ingest_forwarder_get_stats(in->fw, &fs);
    if (in->ha) ha_client_get_stats(in->ha, &hs);

    json_t *reasons = json_array();
    if (ss.full) json_array_append_new(reasons, json_string("spool_full"));
    if (in->ha && (hs.auth_invalid || hs.state == HA_AUTH_INVALID))
        json_array_append_new(reasons, json_string("auth_invalid"));
    else if (in->ha && hs.state != HA_SUBSCRIBED)
        json_array_append_new(reasons, json_string("connecting"));
    int downstream_down = fs.failing_since_us && service_mono_us() - fs.failing_since_us >= in->unhealthy_after_us;
    if (downstream_down) json_array_append_new(reasons, json_string("downstream_unreachable"));
    int healthy = json_array_size(reasons) == 0;

    json_t *bfj = backfill_api_json(in);
    long long last_event = in->last_event_us;
    json_t *body = json_pack(
        "{s:s,s:s,s:o,s:o,s:o,s:o,"
        "s:{s:I,s:I,s:I,s:I,s:I,s:b,s:I,s:I},"
        "s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},"
        "s:{s:s,s:b,s:i,s:I,s:I,s:o,s:s}}",
        "status", healthy ? "healthy" : "unhealthy", "service", "websocket-ingestion", "reason",
        healthy ? json_null() : json_incref(json_array_get(reasons, 0)), "reasons", reasons, "home_assistant",
        ingest_ha_json(in, &hs), "last_event_time", ingest_time_json(last_event),
        "spool", "depth", (json_int_t)(ss.next_seq - ss.acked_seq), "unsent", (json_int_t)(ss.next_seq - ss.read_seq),
        "bytes", (json_int_t)ss.bytes, "max_bytes", (json_int_t)ss.max_bytes, "segments", (json_int_t)ss.segments,
        "full", ss.full, "fsyncs", (json_int_t)ss.fsyncs, "next_seq", (json_int_t)ss.next_seq,
        "events", "received", (json_int_t)in->events_received, "accepted", (json_int_t)in->events_accepted,
        "forwarded", (json_int_t)fs.events_acked, "rejected_downstream", (json_int_t)fs.events_rejected,
        "dropped", (json_int_t)in->events_dropped, "refused_at_ingestion", (json_int_t)in->events_refused,
        "dead_lettered", (json_int_t)fs.events_dead_lettered, "quarantined", (json_int_t)fs.events_quarantined,
        "downstream", "url", in->downstream_url, "reachable", !fs.failing_since_us, "inflight", fs.inflight,
        "batches_ok", (json_int_t)fs.batches_ok, "batches_failed", (json_int_t)fs.batches_failed, "last_ok",
        ingest_time_json(fs.last_ok_us), "last_error", fs.last_error);
    json_object_set_new(body, "backfill", bfj);
    if (in->reg) json_object_set_new(body, "registry", registry_health(in->reg));
    httpd_reply_json(req, healthy ? 200 : 503, body);
}

/* ---- /api/v1/events/forward ------------------------------------------------ */

/* The event object to spool: the HA envelope {"type":"event","event":{...}} is unwrapped. */
static json_t *ingest_unwrap(json_t *e) {
    json_t *inner = json_object_get(e, "event");
    const char *type = json_string_value(json_object_get(e, "type"));
    if (type && !strcmp(type, "event") && json_is_object(inner)) return inner;
    return e;
}

static void ingest_forward(struct evhttp_request *req, void *arg) {
    ingest *in = arg;
    if (httpd_require_method(req, EVHTTP_REQ_POST)) return;
    json_t *body, *events;
    const char *err;
    if (httpd_read_json(req, &body) != 0) return;
    if (event_unpack_batch(body, &events, &err) != 0) {
        json_decref(body);
        httpd_reply_error(req, 400, "%s", err);
        return;
    }
    json_decref(body);
    size_t n = json_array_size(events), total = 0;
    char **texts = calloc(n ? n : 1, sizeof *texts);
    for (size_t i = 0; texts && i < n; i++) {
        json_t *e = ingest_unwrap(json_array_get(events, i));
        if (!json_is_object(e)) {
            httpd_reply_error(req, 400, "event %zu is not a JSON object", i);
            goto out;
        }
        texts[i] = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!texts[i] || strlen(texts[i]) > SPOOL_MAX_RECORD) {
            httpd_reply_error(req, 413, "event %zu is too large", i);
            goto out;
        }
        total += strlen(texts[i]);
    }
    if (!texts) {
        httpd_reply_error(req, 500, "out of memory");
        goto out;
    }
    if (!spool_fits(in->sp, n, total)) {
        in->events_dropped += n;
        metrics_add(in->m_dropped_full, (double)n);
        httpd_reply_error(req, 503, "spool full (SPOOL_MAX_BYTES reached); nothing accepted, retry later");
        goto out;
    }
    uint64_t seq = 0;
    for (size_t i = 0; i < n; i++) {
        if (spool_append(in->sp, texts[i], strlen(texts[i]), &seq) != 0) {
            /* cannot happen after spool_fits; the appended ones are forwarded anyway */
            httpd_reply_error(req, 500, "spool append failed after %zu event(s)", i);
            goto out;
        }
    }
    in->events_accepted += n;
    metrics_add(in->m_accepted, (double)n);
    if (n == 0) {
        httpd_reply_json(req, 200, json_pack("{s:i}", "accepted", 0));
        goto out;
    }
    ingest_pending *p = calloc(1, sizeof *p);
    if (!p) {
        httpd_reply_error(req, 500, "out of memory");
        goto out;
    }
    p->req = req;
    p->end_seq = seq + 1;
    p->count = n;
    if (in->pending_tail) in->pending_tail->next = p;
    else in->pending_head = p;
    in->pending_tail = p;
out:
    for (size_t i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    json_decref(events);
}

void ingest_api_durable(ingest *in, uint64_t durable_seq) {
    while (in->pending_head && in->pending_head->end_seq <= durable_seq) {
        ingest_pending *p = in->pending_head;
        in->pending_head = p->next;
        if (!in->pending_head) in->pending_tail = NULL;
        httpd_reply_json(p->req, 200, json_pack("{s:I}", "accepted", (json_int_t)p->count));
        free(p);
    }
}

void ingest_api_shutdown(ingest *in) {
    while (in->pending_head) {
        ingest_pending *p = in->pending_head;
        in->pending_head = p->next;
        httpd_reply_error(p->req, 503, "shutting down before the events were durable; retry");
        free(p);
    }
    in->pending_tail = NULL;
}

int ingest_api_init(ingest *in) {
    if (httpd_route(in->hd, "/health", ingest_health, in) != 0) return -1;
    if (httpd_route(in->hd, "/api/v1/events/forward", ingest_forward, in) != 0) return -1;
    return backfill_api_init(in);
}

/* ---- gauges ------------------------------------------------------------------ */

static double ingest_g_spool_bytes(void *arg) {
    spool_stats ss;
    spool_get_stats(((ingest *)arg)->sp, &ss);
    return (double)ss.bytes;
}

static double ingest_g_spool_depth(void *arg) {
    spool_stats ss;
    spool_get_stats(((ingest *)arg)->sp, &ss);
    return (double)(ss.next_seq - ss.acked_seq);
}

static double ingest_g_spool_fsyncs(void *arg) {
    spool_stats ss;
    spool_get_stats(((ingest *)arg)->sp, &ss);
    return (double)ss.fsyncs;
}

static double ingest_g_spool_full(void *arg) {
    spool_stats ss;
    spool_get_stats(((ingest *)arg)->sp, &ss);
    return ss.full;
}

static double ingest_g_ha_subscribed(void *arg) {
    ingest *in = arg;
    if (!in->ha) return 0;
    ha_client_stats hs;
    ha_client_get_stats(in->ha, &hs);
    return hs.state == HA_SUBSCRIBED;
}

static double ingest_g_ha_disconnects(void *arg) {
    ingest *in = arg;
    if (!in->ha) return 0;
    ha_client_stats hs;
    ha_client_get_stats(in->ha, &hs);
    return (double)hs.disconnects;
}

void ingest_api_metrics(ingest *in) {
    metrics_gauge_fn("homeiq_ingestion_spool_bytes", "Bytes in the spool's segment files", NULL,
                     ingest_g_spool_bytes, in);
    metrics_gauge_fn("homeiq_ingestion_spool_depth", "Events spooled and not yet acknowledged downstream", NULL,
                     ingest_g_spool_depth, in);
    metrics_gauge_fn("homeiq_ingestion_spool_fsyncs", "Group fsyncs since start", NULL, ingest_g_spool_fsyncs, in);
    metrics_gauge_fn("homeiq_ingestion_spool_full", "1 while the spool is at SPOOL_MAX_BYTES", NULL,
                     ingest_g_spool_full, in);
    metrics_gauge_fn("homeiq_ingestion_ha_subscribed", "1 while authenticated and subscribed to HA", NULL,
                     ingest_g_ha_subscribed, in);
    metrics_gauge_fn("homeiq_ingestion_ha_disconnects", "HA connections lost or failed since start", NULL,
                     ingest_g_ha_disconnects, in);
}
