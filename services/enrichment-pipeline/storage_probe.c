/* storage_probe.c -- see storage_probe.h. */
#include "storage_probe.h"

#include "storage_client.h"
#include "log.h"
#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct storage_probe {
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

static void storage_probe_schedule(storage_probe *h) {
    if (!h->stopped) evtimer_add(h->timer, &h->interval);
}

void storage_probe_note(storage_probe *h, int ok, const char *why) {
    if (ok != h->ok) {
        if (ok) log_info("data-storage at %s is reachable", h->url);
        else log_warn("data-storage unreachable: %s", why ? why : "?");
    }
    h->ok = ok;
    snprintf(h->error, sizeof h->error, "%s", ok ? "" : (why ? why : "unreachable"));
}

static void storage_probe_probe_done(const httpc_response *res, void *arg) {
    storage_probe *h = arg;
    h->probing = 0;
    if (h->stopped) return;
    char why[200];
    if (res->status == 200) {
        storage_probe_note(h, 1, NULL);
    } else {
        if (res->status == 0) snprintf(why, sizeof why, "%s", res->error ? res->error : "no answer");
        else snprintf(why, sizeof why, "/health answered %ld", res->status);
        storage_probe_note(h, 0, why);
    }
    storage_probe_schedule(h);
}

static void storage_probe_probe(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    storage_probe *h = arg;
    if (h->stopped || h->probing) return;
    httpc_request req = {.method = "GET", .url = h->url, .timeout_ms = h->timeout_ms};
    h->probing = 1;
    if (httpc_send(h->client, &req, storage_probe_probe_done, h) != 0) {
        h->probing = 0;
        storage_probe_note(h, 0, "cannot start probe");
        storage_probe_schedule(h);
    }
}

int storage_probe_new(struct event_base *base, httpc *c, const char *storage_url, long interval_ms, long timeout_ms,
               storage_probe **out) {
    storage_probe *h = calloc(1, sizeof *h);
    if (!h) return -1;
    h->client = c;
    h->url = url_join(storage_url, "health");
    h->timer = evtimer_new(base, storage_probe_probe, h);
    if (!h->url || !h->timer) {
        storage_probe_free(h);
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

int storage_probe_ok(const storage_probe *h) { return h->ok == 1; }
const char *storage_probe_error(const storage_probe *h) { return h->error; }

void storage_probe_stop(storage_probe *h) {
    if (!h) return;
    h->stopped = 1;
    if (h->timer) evtimer_del(h->timer);
}

void storage_probe_free(storage_probe *h) {
    if (!h) return;
    if (h->timer) event_free(h->timer);
    free(h->url);
    free(h);
}
