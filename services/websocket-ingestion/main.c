/* main.c -- homeiq-websocket-ingestion: reads the configuration, wires
 * HA client -> spool -> forwarder (+ the HTTP API) on one libevent loop, and
 * tears everything down on SIGTERM so nothing leaks and the spool is synced.
 *
 * The data flow lives in the two callbacks below: an HA event is appended to
 * the spool (never forwarded from memory); the spool tells the forwarder when
 * records reached the file and the API when they are durable. */
#include "ingest.h"

#include "auth.h"
#include "httpd.h"
#include "config.h"
#include "delivery.h"
#include "event.h"
#include "json_scan.h"
#include "log.h"
#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const config_var ingest_vars[] = {
    CONFIG_INT("WEBSOCKET_INGESTION_PORT", URL_INGESTION_PORT, 0, 65535, "HTTP port (/health, /metrics, /api/v1/events/forward)"),
    CONFIG_TEXT("WEBSOCKET_INGESTION_BIND", "127.0.0.1", "HTTP bind address"),
    CONFIG_TEXT("HOME_ASSISTANT_URL", "http://127.0.0.1:8123", "HA base URL http(s)://host:8123, or ws(s)://host:8123/api/websocket; 'none' = forward-only mode (no HA)"),
    CONFIG_TEXT("HOME_ASSISTANT_TOKEN", NULL, "HA long-lived access token (never logged)"),
    CONFIG_TEXT("HOME_ASSISTANT_TOKEN_FILE", NULL, "file holding the token, used when HOME_ASSISTANT_TOKEN is unset"),
    CONFIG_TEXT("HOME_ASSISTANT_CA_FILE", NULL, "wss: PEM CA bundle to verify HA's certificate (default: system CAs)"),
    CONFIG_BOOL("HOME_ASSISTANT_INSECURE", "0", "wss: 1 = do not verify HA's certificate and host name (only on request)"),
    CONFIG_TEXT("HOME_ASSISTANT_EVENT_TYPES", "state_changed", "comma list of event types to subscribe to; * = all"),
    CONFIG_INT("HA_PING_INTERVAL_S", "30", 1, 3600, "application-level ping period"),
    CONFIG_INT("HA_PONG_TIMEOUT_S", "10", 1, 3600, "reconnect when a pong takes longer"),
    CONFIG_INT("RECONNECT_MIN_DELAY_MS", "1000", 1, 3600000, "first reconnect delay (doubles per failure, +-25% jitter)"),
    CONFIG_INT("RECONNECT_MAX_DELAY", "60", 1, 86400, "reconnect delay cap, seconds"),
    CONFIG_INT("HA_AUTH_RETRY_S", "300", 0, 86400 * 7, "after auth_invalid, try the token again this often; 0 = never"),
    CONFIG_INT("HA_MAX_MESSAGE_BYTES", EVENT_STR(EVENT_RAW_MAX), 4096, EVENT_RAW_MAX, "largest WebSocket message accepted from HA"),
    CONFIG_TEXT("DATA_DIR", "./data", "data directory"),
    CONFIG_TEXT("SPOOL_DIR", NULL, "spool directory (default DATA_DIR/spool)"),
    CONFIG_INT("SPOOL_MAX_BYTES", "1073741824", 1 << 20, 1ll << 50, "spool size limit; at the limit new events are refused (health 503)"),
    CONFIG_INT("SPOOL_SEGMENT_BYTES", "67108864", 65536, 1ll << 32, "spool segment file size (capped to SPOOL_MAX_BYTES/8)"),
    CONFIG_INT("SPOOL_FSYNC_MS", "100", 0, 60000, "group fsync delay after an append"),
    URL_ENRICHMENT_VAR, /* events are forwarded with POST <url>/api/v1/events */
    CONFIG_TEXT("HOMEIQ_HOME_ID", "default",
                "this home's id, sent with every forward (X-HomeIQ-Home): 1-64 of a-z 0-9 _ -, unique per deployment, never changed"),
    CONFIG_INT("FORWARD_BATCH_MAX", "1000", 1, 100000, "events per forward request"),
    CONFIG_INT("FORWARD_BATCH_MAX_BYTES", "8388608", 1024, 1ll << 30, "most bytes per forward request, last record included (keep below enrichment's MAX_BODY_BYTES); a larger event is dead-lettered"),
    CONFIG_INT("FORWARD_INFLIGHT_MAX_BYTES", "8388608", 0, 1ll << 40, "most request bytes in flight together (0 = no bound): a batch read while others wait for their ack gets only the room left, so memory here and downstream stays bounded whatever FORWARD_BATCH_MAX"),
    CONFIG_INT("FORWARD_LINGER_MS", "20", 0, 60000, "while a batch is in flight, wait at most this long for the next one to fill"),
    CONFIG_INT("FORWARD_MAX_INFLIGHT", "4", 1, INGEST_FORWARDER_MAX_INFLIGHT, "batches sent and not yet acknowledged (1 = strictly ordered delivery)"),
    CONFIG_INT("FORWARD_TIMEOUT_MS", "30000", 100, 3600000, "forward request timeout"),
    CONFIG_INT("FORWARD_RETRY_MIN_MS", "100", 1, 3600000, "first retry delay after a failed forward (doubles)"),
    CONFIG_INT("FORWARD_RETRY_MAX_MS", "5000", 1, 3600000, "retry delay cap"),
    CONFIG_INT("DOWNSTREAM_UNHEALTHY_S", "30", 0, 86400, "health turns 503 after forwards failed this long"),
    CONFIG_INT("INGEST_MAX_BODY_BYTES", EVENT_STR(EVENT_BODY_MAX), 1024, 1ll << 30, "largest POST /api/v1/events/forward body"),
    CONFIG_BOOL("BACKFILL", "1", "after each (re)subscribe, read the state changes missed since the high-water mark from HA's history (docs/BACKFILL.md)"),
    CONFIG_INT("BACKFILL_MAX_AGE", "864000", 1, 86400ll * 3650, "never ask HA's history for changes older than this, seconds (HA's recorder keeps 10 days)"),
    CONFIG_INT("BACKFILL_OVERLAP_S", "10", 0, 3600, "re-read this much before the mark and after the subscribe (duplicates are harmless)"),
    CONFIG_INT("BACKFILL_WINDOW_S", "3600", 1, 86400ll * 30, "time span of one history request"),
    CONFIG_INT("BACKFILL_CHUNK_ENTITIES", "20", 1, 10000, "entity ids per history request"),
    CONFIG_INT("BACKFILL_INTERVAL_MS", "100", 0, 600000, "pause between history requests (rate limit)"),
    CONFIG_INT("BACKFILL_TIMEOUT_S", "120", 1, 3600, "a history request not answered in time is sent again"),
    CONFIG_INT("BACKFILL_DELAY_S", "6", 0, 3600, "wait after subscribing before reading history (HA's recorder commits every 5 s)"),
    CONFIG_BOOL("REGISTRY", "1", "read HA's entity/device/area/floor/label registries and put each event's context on it"),
    CONFIG_INT("REGISTRY_DEBOUNCE_MS", "100", 0, 60000, "after a *_registry_updated event, wait this long for more before reloading"),
    CONFIG_INT("REGISTRY_HOLD_MAX_MS", "10000", 1, 600000, "longest an event waits for a registry reload (then it goes with the context known)"),
    AUTH_CONFIG_VARS,
    HTTPD_CONFIG_VARS,
    CONFIG_END,
};

typedef struct ingest_cfg {
    long long port, ping_s, pong_s, rmin_ms, rmax_s, auth_retry_s, max_msg, spool_max, seg_bytes, fsync_ms;
    long long batch_max, batch_bytes, inflight_bytes, linger_ms, inflight, timeout_ms, retry_min, retry_max, unhealthy_s, max_body;
    long long bf_max_age, bf_overlap, bf_window, bf_chunk, bf_interval, bf_timeout, bf_delay;
    long long reg_debounce, reg_hold;
    int insecure, backfill, registry;
} ingest_cfg;

static int ingest_read_numbers(ingest_cfg *c) {
    int bad = 0;
    bad |= config_int(ingest_vars, "WEBSOCKET_INGESTION_PORT", &c->port);
    bad |= config_int(ingest_vars, "HA_PING_INTERVAL_S", &c->ping_s);
    bad |= config_int(ingest_vars, "HA_PONG_TIMEOUT_S", &c->pong_s);
    bad |= config_int(ingest_vars, "RECONNECT_MIN_DELAY_MS", &c->rmin_ms);
    bad |= config_int(ingest_vars, "RECONNECT_MAX_DELAY", &c->rmax_s);
    bad |= config_int(ingest_vars, "HA_AUTH_RETRY_S", &c->auth_retry_s);
    bad |= config_int(ingest_vars, "HA_MAX_MESSAGE_BYTES", &c->max_msg);
    bad |= config_int(ingest_vars, "SPOOL_MAX_BYTES", &c->spool_max);
    bad |= config_int(ingest_vars, "SPOOL_SEGMENT_BYTES", &c->seg_bytes);
    bad |= config_int(ingest_vars, "SPOOL_FSYNC_MS", &c->fsync_ms);
    bad |= config_int(ingest_vars, "FORWARD_BATCH_MAX", &c->batch_max);
    bad |= config_int(ingest_vars, "FORWARD_BATCH_MAX_BYTES", &c->batch_bytes);
    bad |= config_int(ingest_vars, "FORWARD_INFLIGHT_MAX_BYTES", &c->inflight_bytes);
    bad |= config_int(ingest_vars, "FORWARD_LINGER_MS", &c->linger_ms);
    bad |= config_int(ingest_vars, "FORWARD_MAX_INFLIGHT", &c->inflight);
    bad |= config_int(ingest_vars, "FORWARD_TIMEOUT_MS", &c->timeout_ms);
    bad |= config_int(ingest_vars, "FORWARD_RETRY_MIN_MS", &c->retry_min);
    bad |= config_int(ingest_vars, "FORWARD_RETRY_MAX_MS", &c->retry_max);
    bad |= config_int(ingest_vars, "DOWNSTREAM_UNHEALTHY_S", &c->unhealthy_s);
    bad |= config_int(ingest_vars, "INGEST_MAX_BODY_BYTES", &c->max_body);
    bad |= config_flag(ingest_vars, "HOME_ASSISTANT_INSECURE", &c->insecure);
    bad |= config_flag(ingest_vars, "BACKFILL", &c->backfill);
    bad |= config_int(ingest_vars, "BACKFILL_MAX_AGE", &c->bf_max_age);
    bad |= config_int(ingest_vars, "BACKFILL_OVERLAP_S", &c->bf_overlap);
    bad |= config_int(ingest_vars, "BACKFILL_WINDOW_S", &c->bf_window);
    bad |= config_int(ingest_vars, "BACKFILL_CHUNK_ENTITIES", &c->bf_chunk);
    bad |= config_int(ingest_vars, "BACKFILL_INTERVAL_MS", &c->bf_interval);
    bad |= config_int(ingest_vars, "BACKFILL_TIMEOUT_S", &c->bf_timeout);
    bad |= config_int(ingest_vars, "BACKFILL_DELAY_S", &c->bf_delay);
    bad |= config_flag(ingest_vars, "REGISTRY", &c->registry);
    bad |= config_int(ingest_vars, "REGISTRY_DEBOUNCE_MS", &c->reg_debounce);
    bad |= config_int(ingest_vars, "REGISTRY_HOLD_MAX_MS", &c->reg_hold);
    return bad ? -1 : 0;
}

/* ---- the data flow ------------------------------------------------------------ */

static int ingest_time_member(const char *k, size_t kl, const char *v, size_t vl, void *arg) {
    int64_t *t = arg;
    char buf[64];
    if (kl != 10 || memcmp(k, "time_fired", 10) != 0 || vl < 2 || vl - 2 >= sizeof buf || v[0] != '"') return 0;
    memcpy(buf, v + 1, vl - 2);
    buf[vl - 2] = '\0';
    if (event_time_parse(buf, t) != 0) *t = 0;
    return 1;
}

/* The high-water mark learns the HA time of each spooled live event (its time_fired):
 * from ha_client's scan when it saw the event, else by finding it. */
static void ingest_mark_seen(ingest *in, uint64_t seq, const char *json, size_t len, const ha_event_info *info) {
    if (!in->hw) return;
    int64_t t = 0;
    if (info && info->strict) {
        if (info->time_fired) ingest_time_member("time_fired", 10, info->time_fired, info->flen, &t);
    } else {
        jscan_object_trusted(json, len, ingest_time_member, &t);
    }
    if (t > 0) hwm_seen(in->hw, seq + 1, t);
}

/* An event other readers would refuse (lib/json_scan jscan_strict: 1e400, a
 * lone surrogate escape, \u0000 in a key) is refused here, at the first hop,
 * and spooled as its dead letter instead: HA does not resend, so refusing
 * must not mean dropping, and spooled as is it would be refused downstream. */
static int ingest_spool_event(ingest *in, const char *json, size_t len, const ha_event_info *info) {
    size_t pos = 0;
    const char *why = NULL;
    char reason[200];
    if (len > SPOOL_MAX_RECORD)
        snprintf(reason, sizeof reason, "refused at websocket-ingestion: event of %zu bytes is larger than a spool record may be", len);
    else if ((info && info->strict) || jscan_strict(json, len, &pos, &why) == 0) { /* ha_client checked it already */
        uint64_t seq;
        int rc = spool_append(in->sp, json, len, &seq);
        if (rc == 0) ingest_mark_seen(in, seq, json, len, info);
        return rc;
    } else {
        snprintf(reason, sizeof reason, "refused at websocket-ingestion: %s at byte %zu", why ? why : "invalid JSON", pos);
    }
    log_warn("event from home assistant %s; dead-lettered", reason + 33);
    in->events_refused++;
    sbuf dl;
    sbuf_init(&dl);
    delivery_dead_letter(&dl, "websocket-ingestion", reason, json, len);
    int rc = sbuf_failed(&dl) ? -1 : spool_append(in->sp, dl.data, dl.len, NULL);
    sbuf_free(&dl);
    return rc;
}

/* An HA event, with its registry context when there is one (registry.c), to the spool;
 * a history row (REGISTRY_ROW) as backfill spools it: not marked seen, a refusal returned
 * (backfill reads the request again). */
static int ingest_spool_ha_event(const char *json, size_t len, unsigned flags, const ha_event_info *info, void *arg) {
    ingest *in = arg;
    if (flags & REGISTRY_ROW) return spool_append(in->sp, json, len, NULL);
    int rc = ingest_spool_event(in, json, len, info);
    if (rc == 0) return 0;
    in->events_dropped++;
    if (rc == SPOOL_EFULL) {
        metrics_add(in->m_dropped_full, 1);
        if (in->events_dropped == 1 || in->events_dropped % 10000 == 0)
            log_error("spool full (SPOOL_MAX_BYTES): event dropped (%llu so far); downstream must catch up",
                      (unsigned long long)in->events_dropped);
    } else {
        metrics_add(in->m_dropped_big, 1);
        log_error("event of %zu bytes cannot be spooled; dropped", len);
    }
    return rc;
}

static void ingest_on_ha_event(const char *json, size_t len, const ha_event_info *info, void *arg) {
    ingest *in = arg;
    in->events_received++;
    in->last_event_us = service_now_us();
    metrics_add(in->m_received, 1);
    if (in->reg) registry_on_event(in->reg, json, len, info);
    else ingest_spool_ha_event(json, len, 0, info, in);
}

/* A backfilled history row through the registry (context, and behind held live events). */
static int ingest_backfill_row(const char *json, size_t len, void *arg) { return registry_on_row(arg, json, len); }
static void ingest_backfill_flush(void *arg) { registry_flush_rows(arg); }

static void ingest_on_written(void *arg) {
    ingest *in = arg;
    ingest_forwarder_kick(in->fw);
}

static void ingest_on_durable(uint64_t durable_seq, void *arg) {
    ingest *in = arg;
    if (in->hw) hwm_durable(in->hw, durable_seq);
    ingest_api_durable(in, durable_seq);
}

static void ingest_on_stop(void *arg) {
    ingest *in = arg;
    /* make everything durable now so waiting /forward callers get their 200 */
    if (in->pending_head) in->answered_at_stop = 1;
    spool_sync(in->sp);
}

/* ---- set-up -------------------------------------------------------------------- */

static int ingest_start_ha(ingest *in, const ingest_cfg *c, const char *url, const char *spool_dir) {
    if (ha_client_url(url, in->ha_url, sizeof in->ha_url) != 0) {
        log_error("HOME_ASSISTANT_URL=%s: expected http(s)://host:port or ws(s)://host:port/api/websocket", url);
        return -1;
    }
    char *token = config_secret("HOME_ASSISTANT_TOKEN");
    if (!token || !*token) {
        log_error("HOME_ASSISTANT_TOKEN (or HOME_ASSISTANT_TOKEN_FILE) is required (or HOME_ASSISTANT_URL=none)");
        free(token);
        return -1;
    }
    const char *types = config_text(ingest_vars, "HOME_ASSISTANT_EVENT_TYPES");
    char types_all[4096]; /* the registries' update events are subscribed too (unless "*" has them) */
    snprintf(types_all, sizeof types_all, "%s%s%s", types, c->registry ? "," : "", c->registry ? REGISTRY_EVENT_TYPES : "");
    ha_client_opts o = {
        .url = in->ha_url, .token = token, .event_types = types_all,
        .ca_file = config_text(ingest_vars, "HOME_ASSISTANT_CA_FILE"), .insecure = c->insecure,
        .ping_interval_ms = (long)c->ping_s * 1000, .pong_timeout_ms = (long)c->pong_s * 1000,
        .reconnect_min_ms = (long)c->rmin_ms, .reconnect_max_ms = (long)c->rmax_s * 1000,
        .auth_retry_ms = (long)c->auth_retry_s * 1000, .connect_timeout_ms = 10000,
        .max_msg_bytes = (size_t)c->max_msg,
    };
    if (c->insecure) log_warn("HOME_ASSISTANT_INSECURE=1: HA's TLS certificate is NOT verified");
    int rc = ha_client_new(in->base, &o, ingest_on_ha_event, in, &in->ha);
    memset(token, 0, strlen(token));
    free(token);
    if (rc != 0) return -1;
    if (hwm_open(spool_dir, in->ha_url, &in->hw) != 0) return -1;
    char import_path[4200];
    snprintf(import_path, sizeof import_path, "%s/import", spool_dir);
    backfill_opts bo = {
        .enabled = c->backfill, .max_age_us = c->bf_max_age * 1000000, .overlap_us = c->bf_overlap * 1000000,
        .window_us = c->bf_window * 1000000, .chunk_entities = (int)c->bf_chunk, .interval_ms = (long)c->bf_interval,
        .timeout_ms = (long)c->bf_timeout * 1000, .delay_ms = (long)c->bf_delay * 1000, .retry_min_ms = 1000, .retry_max_ms = 60000,
        .import_path = import_path,
    };
    registry_opts ro = {.debounce_ms = (long)c->reg_debounce, .hold_max_ms = (long)c->reg_hold};
    if (c->registry && registry_new(in->base, &ro, in->ha, ingest_spool_ha_event, in, &in->reg) != 0) return -1;
    if (in->reg) { /* history rows go to the spool after the live events already received, with context */
        bo.append = ingest_backfill_row;
        bo.flush = ingest_backfill_flush;
        bo.append_arg = in->reg;
    }
    if (backfill_new(in->base, &bo, in->ha, in->sp, in->hw, &in->bf) != 0) return -1;
    backfill_metrics(in->bf);
    log_info("home assistant: %s, event types %s, backfill %s", in->ha_url,
             config_text(ingest_vars, "HOME_ASSISTANT_EVENT_TYPES"), c->backfill ? "on" : "off");
    ha_client_start(in->ha);
    return 0;
}

static int ingest_setup(ingest *in, const ingest_cfg *c) {
    char spool_dir[4096];
    const char *sd = config_text(ingest_vars, "SPOOL_DIR");
    snprintf(spool_dir, sizeof spool_dir, "%s%s", sd ? sd : config_text(ingest_vars, "DATA_DIR"), sd ? "" : "/spool");
    long long seg = c->seg_bytes < c->spool_max / 8 ? c->seg_bytes : c->spool_max / 8; /* as --help says */
    spool_opts so = {.dir = spool_dir, .max_bytes = (uint64_t)c->spool_max, .segment_bytes = (uint64_t)seg,
                     .fsync_ms = (long)c->fsync_ms};
    if (spool_open(in->base, &so, &in->sp) != 0) return -1;

    snprintf(in->quarantine_path, sizeof in->quarantine_path, "%s/dead-letters.jsonl", spool_dir);
    char *down = url_join(config_text(ingest_vars, URL_ENRICHMENT_ENV), "api/v1/events");
    if (!down) return -1;
    snprintf(in->downstream_url, sizeof in->downstream_url, "%s", down);
    free(down);
    const char *home = config_text(ingest_vars, "HOMEIQ_HOME_ID");
    char why[192];
    if (event_home_check(home, why, sizeof why) != 0) {
        log_error("HOMEIQ_HOME_ID: %s", why);
        return -1;
    }
    snprintf(in->home_header, sizeof in->home_header, EVENT_HOME_HEADER ": %s", home);
    ingest_forwarder_opts fo = {
        .url = in->downstream_url, .batch_max = (size_t)c->batch_max, .batch_max_bytes = (size_t)c->batch_bytes,
        .inflight_max_bytes = (size_t)c->inflight_bytes,
        .linger_ms = (long)c->linger_ms, .max_inflight = (int)c->inflight, .timeout_ms = (long)c->timeout_ms,
        .retry_min_ms = (long)c->retry_min, .retry_max_ms = (long)c->retry_max,
        .quarantine_path = in->quarantine_path, .home_header = in->home_header,
    };
    if (httpc_new(in->base, &in->hc) != 0 || ingest_forwarder_new(in->base, in->hc, in->sp, &fo, &in->fw) != 0) return -1;
    spool_set_listener(in->sp, ingest_on_written, ingest_on_durable, in);
    in->unhealthy_after_us = c->unhealthy_s * 1000000;

    in->m_received = metrics_counter("homeiq_ingestion_events_received_total", "Events received from HA", NULL);
    in->m_accepted = metrics_counter("homeiq_ingestion_events_accepted_total",
                                     "Events accepted by POST /api/v1/events/forward", NULL);
    in->m_dropped_full = metrics_counter("homeiq_ingestion_events_dropped_total", "Events that could not be spooled",
                                         "reason=\"spool_full\"");
    in->m_dropped_big = metrics_counter("homeiq_ingestion_events_dropped_total", "Events that could not be spooled",
                                        "reason=\"too_large\"");
    ingest_api_metrics(in);

    httpd_opts ho = {.bind = config_text(ingest_vars, "WEBSOCKET_INGESTION_BIND"), .port = (int)c->port,
                     .max_body = (size_t)c->max_body, .timeout_s = 30};
    if (httpd_new(in->base, &ho, &in->hd) != 0 || ingest_api_init(in) != 0) return -1;

    const char *ha_url = config_text(ingest_vars, "HOME_ASSISTANT_URL");
    if (!strcasecmp(ha_url, "none") || !strcasecmp(ha_url, "off")) {
        log_info("HOME_ASSISTANT_URL=%s: forward-only mode (no HA connection; health ignores HA)", ha_url);
    } else if (ingest_start_ha(in, c, ha_url, spool_dir) != 0) {
        return -1;
    }
    /* unacknowledged records from a previous run go out first */
    ingest_forwarder_kick(in->fw);
    return 0;
}

static void ingest_teardown(ingest *in) {
    ha_client_free(in->ha);
    registry_free(in->reg);           /* held events go to the spool before it is synced */
    backfill_free(in->bf);
    int answering = in->answered_at_stop || in->pending_head != NULL;
    if (in->sp) spool_sync(in->sp); /* answers 200 for what this made durable */
    if (in->hw && in->sp) { /* everything appended is durable now: the mark can say so */
        spool_stats ss;
        spool_get_stats(in->sp, &ss);
        hwm_durable(in->hw, ss.durable_seq);
    }
    hwm_close(in->hw);
    ingest_api_shutdown(in);          /* 503 for anything else */
    if (answering) {
        /* Let those answers reach their clients: httpd_free() below closes every
         * connection at once, and a queued answer would be lost (the client saw
         * a dropped connection instead of 200/503). Bounded: 300 ms. */
        struct timeval tv = {0, 300 * 1000};
        event_base_loopexit(in->base, &tv);
        event_base_dispatch(in->base);
    }
    ingest_forwarder_stop(in->fw);
    httpc_free(in->hc);
    ingest_forwarder_free(in->fw);
    httpd_free(in->hd);
    spool_close(in->sp);
}

int main(int argc, char **argv) {
    int rc = config_parse_args(argc, argv,
                               "homeiq-websocket-ingestion: Home Assistant WebSocket -> durable spool -> "
                               "enrichment-pipeline",
                               ingest_vars);
    if (rc != 0) return rc > 0 ? 0 : 2;
    ingest in = {0};
    if (service_new("websocket-ingestion", &in.svc) != 0) return 1;
    in.base = service_base(in.svc);
    in.started_us = service_mono_us();
    srandom((unsigned)(time(NULL) ^ getpid()));
    ingest_cfg cfg = {0};
    int exit_code = 0;
    if (ingest_read_numbers(&cfg) != 0 || ingest_setup(&in, &cfg) != 0) {
        log_error("start-up failed");
        exit_code = 1;
    } else {
        service_on_stop(in.svc, ingest_on_stop, &in);
        service_run(in.svc);
    }
    ingest_teardown(&in);
    metrics_free_all();
    service_free(in.svc);
    return exit_code;
}
