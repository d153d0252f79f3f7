/* ctl_validate.c -- `homeiqctl validate`: the migration / deployment check.
 *
 * Why: "every /health is 200" does not prove that events flow. So after the
 * health checks this posts one test event with a unique identity (a fresh
 * context id and time_fired = now) to ingestion's /api/v1/events/forward --
 * the same spool and forwarder real Home Assistant events go through -- and
 * polls storage's query API until that exact event (same context_id and
 * time_fired) is served. "Some events exist" would pass on a stale store; an
 * identity match cannot. One PASS/FAIL line per check; exit 0 only if all
 * pass. The test event stays in the store (entity sensor.homeiq_validation). */
#include "ctl.h"
#include "event.h"
#include "service.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CTL_VALIDATE_ENTITY "sensor.homeiq_validation"

typedef struct ctl_validation {
    char context_id[27];            /* ULID-shaped, unique per run */
    char time_fired[EVENT_TIME_LEN];
    int64_t time_us;
    int passed, failed;
} ctl_validation;

/* Prints one check's PASS/FAIL line and counts it. */
static void ctl_validate_result(ctl_validation *v, int ok, const char *msg) {
    printf("%s  %s\n", ok ? "PASS" : "FAIL", msg);
    fflush(stdout);
    if (ok) v->passed++;
    else v->failed++;
}

/* A 26-character ULID-shaped id: 48-bit millisecond time + 80 random bits,
 * Crockford base32, like Home Assistant's context ids. */
static void ctl_validate_ulid(int64_t time_us, char out[27]) {
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    unsigned char rnd[16] = {0};
    if (getentropy(rnd, sizeof rnd) != 0) {
        uint64_t x = (uint64_t)time_us ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ull;
        for (size_t i = 0; i < sizeof rnd; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
            rnd[i] = (unsigned char)x;
        }
    }
    uint64_t ms = (uint64_t)(time_us / 1000);
    for (int i = 9; i >= 0; i--, ms >>= 5) out[i] = b32[ms & 31];
    for (int i = 10; i < 26; i++) out[i] = b32[rnd[i - 10] & 31];
    out[26] = '\0';
}

/* The raw HA event (state_changed) carrying the run's identity. */
static char *ctl_validate_event_json(const ctl_validation *v) {
    json_t *ctx = json_pack("{s:s, s:n, s:n}", "id", v->context_id, "parent_id", "user_id");
    json_t *state = json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:O}", "entity_id", CTL_VALIDATE_ENTITY,
                              "state", "ok", "attributes", "friendly_name", "HomeIQ validation", "homeiq_run",
                              v->context_id, "last_changed", v->time_fired, "last_updated", v->time_fired,
                              "last_reported", v->time_fired, "context", ctx);
    json_t *ev = json_pack("{s:s, s:{s:s, s:n, s:o}, s:s, s:s, s:o}", "event_type", "state_changed", "data",
                           "entity_id", CTL_VALIDATE_ENTITY, "old_state", "new_state", state, "origin", "LOCAL",
                           "time_fired", v->time_fired, "context", ctx);
    char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    return text;
}

/* Posts the event to ingestion. 0 when accepted (200). */
static int ctl_validate_post(ctl_validation *v) {
    char *body = ctl_validate_event_json(v);
    if (!body) {
        ctl_validate_result(v, 0, "could not build the test event (out of memory)");
        return -1;
    }
    ctl_reply r;
    ctl_http("POST", ctl_service_url(CTL_INGESTION), "/api/v1/events/forward", body, 10000, &r);
    free(body);
    char why[300], msg[400];
    int ok = r.status == 200;
    if (ok) {
        snprintf(msg, sizeof msg, "websocket-ingestion accepted the test event (context_id %s, time_fired %s)",
                 v->context_id, v->time_fired);
    } else {
        ctl_reply_reason(&r, why, sizeof why);
        if (r.status)
            snprintf(msg, sizeof msg, "websocket-ingestion POST /api/v1/events/forward: HTTP %ld: %s", r.status,
                     why);
        else
            snprintf(msg, sizeof msg, "websocket-ingestion POST /api/v1/events/forward: no answer at %s: %s",
                     ctl_service_url(CTL_INGESTION), why);
    }
    ctl_validate_result(v, ok, msg);
    ctl_reply_free(&r);
    return ok ? 0 : -1;
}

/* 1 when `events` holds the run's event; fills event_id. */
static int ctl_validate_find(const ctl_validation *v, const json_t *events, char *event_id, size_t idlen) {
    size_t i;
    const json_t *e;
    json_array_foreach(events, i, e) {
        const char *ctx = json_string_value(json_object_get(e, "context_id"));
        const char *tf = json_string_value(json_object_get(e, "time_fired"));
        int64_t us;
        if (!ctx || !tf || strcmp(ctx, v->context_id) != 0) continue;
        if (event_time_parse(tf, &us) != 0 || us != v->time_us) continue;
        const char *id = json_string_value(json_object_get(e, "event_id"));
        snprintf(event_id, idlen, "%s", id ? id : "?");
        return 1;
    }
    return 0;
}

/* Polls storage until the event is served or the timeout passes. */
static void ctl_validate_poll(ctl_validation *v, long timeout_ms) {
    char start[EVENT_TIME_LEN];
    event_time_format(v->time_us - 1000000, start);
    char *qs = NULL;
    if (ctl_query_add(&qs, "entity_id", CTL_VALIDATE_ENTITY) || ctl_query_add(&qs, "start", start) ||
        ctl_query_add(&qs, "limit", "1000") || ctl_home_query(&qs)) {
        free(qs);
        ctl_validate_result(v, 0, "out of memory");
        return;
    }
    size_t plen = strlen(qs) + 32;
    char *path = malloc(plen);
    if (path) snprintf(path, plen, "/api/v1/events%s", qs);
    free(qs);
    long long t0 = service_mono_us(), deadline = t0 + timeout_ms * 1000LL;
    char last[300] = "no answer yet", event_id[64] = "", msg[512];
    int found = 0;
    while (path && !found) {
        ctl_reply r;
        ctl_http("GET", ctl_service_url(CTL_STORAGE), path, NULL, 5000, &r);
        const json_t *events = r.json ? json_object_get(r.json, "events") : NULL;
        if (r.status == 200 && json_is_array(events)) {
            found = ctl_validate_find(v, events, event_id, sizeof event_id);
            snprintf(last, sizeof last, "HTTP 200, %zu events of %s, none with context_id %s",
                     json_array_size(events), CTL_VALIDATE_ENTITY, v->context_id);
        } else {
            char why[256];
            ctl_reply_reason(&r, why, sizeof why);
            if (r.status) snprintf(last, sizeof last, "HTTP %ld: %s", r.status, why);
            else snprintf(last, sizeof last, "no answer: %s", why);
        }
        ctl_reply_free(&r);
        if (found || service_mono_us() >= deadline || ctl_interrupted) break;
        ctl_sleep_ms(200);
    }
    free(path);
    double took = (double)(service_mono_us() - t0) / 1e6;
    if (found)
        snprintf(msg, sizeof msg, "data-storage serves the test event after %.1f s (event_id %s)", took, event_id);
    else
        snprintf(msg, sizeof msg, "data-storage did not serve the test event within %.1f s (last answer: %s)",
                 (double)timeout_ms / 1000, last);
    ctl_validate_result(v, found, msg);
}

static void ctl_validate_usage(FILE *out) {
    fprintf(out,
            "usage: homeiqctl validate [--timeout DURATION] [--home ID]\n"
            "  1-3. GET /health of websocket-ingestion, enrichment-pipeline, data-storage is 200;\n"
            "  4.   POST a state_changed event for " CTL_VALIDATE_ENTITY " with a unique context id\n"
            "       to ingestion's /api/v1/events/forward (200 = durable in the spool);\n"
            "  5.   GET /api/v1/events on storage serves that exact event (context_id + time_fired)\n"
            "       within --timeout (default 30s); with --home ID, served as that home's event\n"
            "       (the ingestion's HOMEIQ_HOME_ID; also homeiqctl --home ID validate).\n"
            "  One PASS/FAIL line per check; exit 0 only when all pass. URLs: see homeiqctl --help.\n");
}

int ctl_cmd_validate(int argc, char **argv) {
    static const struct option opts[] = {
        {"timeout", required_argument, NULL, 't'}, {"home", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    long timeout_ms = 30000;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
        if (c == 't' && ctl_parse_duration_ms(optarg, &timeout_ms) == 0) continue;
        if (c == 'H' && ctl_home_set(optarg) == 0) continue;
        if (c == 'h') return ctl_validate_usage(stdout), CTL_OK;
        return ctl_validate_usage(stderr), CTL_USAGE;
    }
    if (optind < argc) return ctl_validate_usage(stderr), CTL_USAGE;

    ctl_validation v = {0};
    v.time_us = service_now_us();
    event_time_format(v.time_us, v.time_fired);
    ctl_validate_ulid(v.time_us, v.context_id);

    for (int i = 0; i < CTL_NSERVICES; i++) {
        ctl_health_result h;
        char msg[512];
        int ok = ctl_health_check((ctl_service)i, 5000, &h) == 0;
        if (ok) snprintf(msg, sizeof msg, "%s GET /health: 200", ctl_service_name((ctl_service)i));
        else if (h.status)
            snprintf(msg, sizeof msg, "%s GET /health: HTTP %ld: %s (at %s)", ctl_service_name((ctl_service)i),
                     h.status, h.reason, ctl_service_url((ctl_service)i));
        else
            snprintf(msg, sizeof msg, "%s GET /health: service down, no answer at %s: %s",
                     ctl_service_name((ctl_service)i), ctl_service_url((ctl_service)i), h.reason);
        ctl_validate_result(&v, ok, msg);
    }
    if (ctl_validate_post(&v) == 0)
        ctl_validate_poll(&v, timeout_ms);
    else
        ctl_validate_result(&v, 0, "data-storage serves the test event: not checked, ingestion did not accept it");
    if (v.failed)
        printf("validate: FAIL (%d of %d checks failed)\n", v.failed, v.failed + v.passed);
    else
        printf("validate: PASS (all %d checks passed)\n", v.passed);
    return v.failed ? CTL_FAIL : CTL_OK;
}
