/* storage_probe.c -- see storage_probe.h. */
#include "storage_probe.h"

#include "storage_client.h"
#include "log.h"
#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct health {
    httpc *client;
    char *url;              /* <storage>/health */
    struct event *timer;
    struct timeval interval;
    long timeout_ms;
    int probing;            /* a probe is in flight */
    int stopped;
    int ok;                 /* 1 reachable, 0 not, -1 not known yet */
    char error[256];
};

static void health_schedule(health *h) {
    if (!h->stopped) evtimer_add(h->timer, &h->interval);
}

void health_note(health *h, int ok, const char *why) {
    if (ok != h->ok) {
        if (ok) log_info("data-storage at %s is reachable", h->url);
        else log_warn("data-storage unreachable: %s", why ? why : "?");
    }
    h->ok = ok;
    snprintf(h->error, sizeof h->error, "%s", ok ? "" : (why ? why : "unreachable"));
}

static void health_probe_done(const httpc_response *res, void *arg) {
    health *h = arg;
    h->probing = 0;
    if (h->stopped) return;
    char why[200];
    if (res->status == 200) {
        health_note(h, 1, NULL);
    } else {
        if (res->status == 0) snprintf(why, sizeof why, "%s", res->error ? res->error : "no answer");
        else snprintf(why, sizeof why, "/health answered %ld", res->status);
        health_note(h, 0, why);
    }
    health_schedule(h);
}

static void health_probe(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    health *h = arg;
    if (h->stopped || h->probing) return;
    httpc_request req = {.method = "GET", .url = h->url, .timeout_ms = h->timeout_ms};
    h->probing = 1;
    if (httpc_send(h->client, &req, health_probe_done, h) != 0) {
        h->probing = 0;
        health_note(h, 0, "cannot start probe");
        health_schedule(h);
    }
}

int health_new(struct event_base *base, httpc *c, const char *storage_url, long interval_ms, long timeout_ms,
               health **out) {
    health *h = calloc(1, sizeof *h);
    if (!h) return -1;
    h->client = c;
    h->url = url_join(storage_url, "health");
    h->timer = evtimer_new(base, health_probe, h);
    if (!h->url || !h->timer) {
        health_free(h);
        return -1;
    }
    h->interval.tv_sec = interval_ms / 1000;
    h->interval.tv_usec = (interval_ms % 1000) * 1000;
    h->timeout_ms = timeout_ms;
    h->ok = -1;
    snprintf(h->error, sizeof h->error, "not probed yet");
    struct timeval now = {0, 0};
    evtimer_add(h->timer, &now);
    *out = h;
    return 0;
}

int health_storage_ok(const health *h) { return h->ok == 1; }
const char *health_storage_error(const health *h) { return h->error; }

void health_stop(health *h) {
    if (!h) return;
    h->stopped = 1;
    if (h->timer) evtimer_del(h->timer);
}

void health_free(health *h) {
    if (!h) return;
    if (h->timer) event_free(h->timer);
    free(h->url);
    free(h);
}
