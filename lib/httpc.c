/* httpc.c -- see httpc.h. libcurl's multi_socket interface driven by the
 * process' libevent loop: curl tells us which sockets to watch and when its
 * timer fires; we tell curl when a socket is ready. The multi handle keeps a
 * connection cache, so consecutive requests to one peer reuse a kept-alive
 * connection. */
#include "httpc.h"
#include "log.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct httpc_call {
    httpc *client;
    CURL *easy;
    struct curl_slist *headers;
    char *resp;
    size_t resp_len, resp_cap;
    char errbuf[CURL_ERROR_SIZE];
    httpc_done_cb cb;
    void *arg;
    struct httpc_call *prev, *next;
} httpc_call;

typedef struct httpc_sock {
    struct event *ev;
} httpc_sock;

struct httpc {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    httpc_call *calls;
    int inflight;
};

static void httpc_global_init(void) {
    static int done;
    if (!done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        done = 1;
    }
}

static size_t httpc_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata) {
    httpc_call *call = userdata;
    size_t n = size * nmemb;
    if (call->resp_len + n + 1 > call->resp_cap) {
        size_t cap = call->resp_cap ? call->resp_cap : 1024;
        while (cap < call->resp_len + n + 1) cap *= 2;
        char *p = realloc(call->resp, cap);
        if (!p) return 0;
        call->resp = p;
        call->resp_cap = cap;
    }
    memcpy(call->resp + call->resp_len, ptr, n);
    call->resp_len += n;
    call->resp[call->resp_len] = '\0';
    return n;
}

static void httpc_call_free(httpc_call *call) {
    curl_slist_free_all(call->headers);
    curl_easy_cleanup(call->easy);
    free(call->resp);
    free(call);
}

static void httpc_unlink(httpc *c, httpc_call *call) {
    if (call->prev) call->prev->next = call->next;
    else c->calls = call->next;
    if (call->next) call->next->prev = call->prev;
    c->inflight--;
}

/* Delivers one finished call to its owner and frees it. */
static void httpc_finish(httpc *c, httpc_call *call, CURLcode result) {
    httpc_response res = {0};
    curl_multi_remove_handle(c->multi, call->easy);
    httpc_unlink(c, call);
    if (result == CURLE_OK) {
        curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &res.status);
    } else {
        res.error = call->errbuf[0] ? call->errbuf : curl_easy_strerror(result);
    }
    curl_easy_getinfo(call->easy, CURLINFO_TOTAL_TIME, &res.total_s);
    res.body = call->resp ? call->resp : "";
    res.body_len = call->resp_len;
    call->cb(&res, call->arg);
    httpc_call_free(call);
}

static void httpc_check_done(httpc *c) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) continue;
        httpc_call *call;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        httpc_finish(c, call, msg->data.result);
    }
}

static void httpc_event_cb(evutil_socket_t fd, short what, void *arg) {
    httpc *c = arg;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    httpc_check_done(c);
}

static void httpc_timer_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    httpc *c = arg;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    httpc_check_done(c);
}

static int httpc_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
    (void)easy;
    httpc *c = userp;
    httpc_sock *hs = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (hs) {
            event_free(hs->ev);
            free(hs);
            curl_multi_assign(c->multi, s, NULL);
        }
        return 0;
    }
    short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!hs) {
        hs = calloc(1, sizeof *hs);
        if (!hs) return -1;
        curl_multi_assign(c->multi, s, hs);
    } else {
        event_free(hs->ev);
    }
    hs->ev = event_new(c->base, s, kind, httpc_event_cb, c);
    event_add(hs->ev, NULL);
    return 0;
}

static int httpc_timerfn(CURLM *multi, long timeout_ms, void *userp) {
    (void)multi;
    httpc *c = userp;
    if (timeout_ms < 0) {
        evtimer_del(c->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
    return 0;
}

int httpc_new(struct event_base *base, httpc **out) {
    httpc_global_init();
    httpc *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->base = base;
    c->multi = curl_multi_init();
    c->timer = evtimer_new(base, httpc_timer_cb, c);
    if (!c->multi || !c->timer) {
        httpc_free(c);
        return -1;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, httpc_socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, httpc_timerfn);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    *out = c;
    return 0;
}

/* Sets the options common to the async and blocking paths. */
static int httpc_setup_easy(CURL *easy, const httpc_request *req, struct curl_slist **headers, char *errbuf) {
    struct curl_slist *h = NULL;
    int has_type = 0;
    for (const char *const *p = req->headers; p && *p; p++) {
        h = curl_slist_append(h, *p);
        if (strncasecmp(*p, "Content-Type:", 13) == 0) has_type = 1;
    }
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    if (req->body && !has_type) h = curl_slist_append(h, "Content-Type: application/json");
    *headers = h;
    curl_easy_setopt(easy, CURLOPT_URL, req->url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 30000L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "homeiq/1.0");
    if (req->userpwd) curl_easy_setopt(easy, CURLOPT_USERPWD, req->userpwd);
    const char *method = req->method ? req->method : (req->body ? "POST" : "GET");
    if (req->body) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, req->body);
    }
    if (strcmp(method, "GET") == 0 && !req->body) curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    else if (strcmp(method, "POST") != 0) curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    return 0;
}

int httpc_send(httpc *c, const httpc_request *req, httpc_done_cb cb, void *arg) {
    httpc_call *call = calloc(1, sizeof *call);
    if (!call) return -1;
    call->client = c;
    call->cb = cb;
    call->arg = arg;
    call->easy = curl_easy_init();
    if (!call->easy) {
        free(call);
        return -1;
    }
    httpc_setup_easy(call->easy, req, &call->headers, call->errbuf);
    curl_easy_setopt(call->easy, CURLOPT_WRITEFUNCTION, httpc_write_cb);
    curl_easy_setopt(call->easy, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(call->easy, CURLOPT_PRIVATE, call);
    call->next = c->calls;
    if (c->calls) c->calls->prev = call;
    c->calls = call;
    c->inflight++;
    if (curl_multi_add_handle(c->multi, call->easy) != CURLM_OK) {
        httpc_unlink(c, call);
        httpc_call_free(call);
        return -1;
    }
    return 0;
}

int httpc_inflight(const httpc *c) { return c->inflight; }

void httpc_free(httpc *c) {
    if (!c) return;
    while (c->calls) {
        httpc_call *call = c->calls;
        snprintf(call->errbuf, sizeof call->errbuf, "cancelled");
        httpc_finish(c, call, CURLE_ABORTED_BY_CALLBACK);
    }
    if (c->multi) curl_multi_cleanup(c->multi);
    if (c->timer) event_free(c->timer);
    free(c);
}

int httpc_fetch(const httpc_request *req, long *status, char **body) {
    httpc_global_init();
    httpc_call call = {0};
    *status = 0;
    *body = NULL;
    call.easy = curl_easy_init();
    if (!call.easy) return -1;
    httpc_setup_easy(call.easy, req, &call.headers, call.errbuf);
    curl_easy_setopt(call.easy, CURLOPT_WRITEFUNCTION, httpc_write_cb);
    curl_easy_setopt(call.easy, CURLOPT_WRITEDATA, &call);
    CURLcode rc = curl_easy_perform(call.easy);
    int ret = 0;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(call.easy, CURLINFO_RESPONSE_CODE, status);
        *body = call.resp ? call.resp : strdup("");
        call.resp = NULL;
    } else {
        *body = strdup(call.errbuf[0] ? call.errbuf : curl_easy_strerror(rc));
        ret = -1;
    }
    curl_slist_free_all(call.headers);
    curl_easy_cleanup(call.easy);
    free(call.resp);
    return ret;
}
