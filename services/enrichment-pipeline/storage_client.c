/* storage_client.c -- see storage_client.h. */
#include "storage_client.h"
#include "auth.h"
#include "delivery.h"
#include "url.h"
#include "event.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

forward_outcome forward_classify(const httpc_response *res, size_t body_len) {
    switch (delivery_classify(res->status, res->error, body_len)) {
    case DELIVERY_STORED: return FORWARD_STORED;
    case DELIVERY_RETRY: return FORWARD_UNAVAILABLE;
    case DELIVERY_SUSPECT: return FORWARD_CUT;
    default: return FORWARD_REFUSED;
    }
}

int forward_target_init(forward_target *t, const char *base_url, long timeout_ms) {
    t->events_url = url_join(base_url, "api/v1/events");
    t->timeout_ms = timeout_ms;
    return t->events_url ? 0 : -1;
}

void forward_target_free(forward_target *t) {
    free(t->events_url);
    t->events_url = NULL;
}

int forward_send(httpc *c, const forward_target *t, const char *request_id, const char *home, char *body,
                 size_t len, httpc_done_cb cb, void *arg) {
    char rid[96], hh[EVENT_HOME_MAX + 32];
    snprintf(rid, sizeof rid, "X-Request-Id: %.60s", request_id ? request_id : "-");
    /* the home of the batch (issue 18): passed on as received, checked by api.c */
    snprintf(hh, sizeof hh, EVENT_HOME_HEADER ": %s", home ? home : EVENT_HOME_DEFAULT);
    const char *headers[] = {"Content-Type: application/json", rid, hh, auth_header(), NULL};
    httpc_request req = {
        .method = "POST",
        .url = t->events_url,
        .headers = headers,
        .body_take = body,
        .body_len = len,
        .timeout_ms = t->timeout_ms,
    };
    return httpc_send(c, &req, cb, arg);
}

void forward_error_text(const httpc_response *res, char *out, size_t n) {
    if (res->status == 0) {
        snprintf(out, n, "data-storage unreachable: %s", res->error ? res->error : "no answer");
        return;
    }
    json_t *j = json_loadb(res->body ? res->body : "", res->body_len, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "error"));
    if (msg) snprintf(out, n, "data-storage answered %ld: %s", res->status, msg);
    else snprintf(out, n, "data-storage answered %ld", res->status);
    json_decref(j);
}
