/* ws_probe.c -- a scriptable WebSocket test client built on lib/ws.h.
 *
 * Why: the simulator tests need a real WebSocket peer, and driving the
 * simulator through our own ws client also tests that client. The script is
 * a list of actions on the command line; every received message is printed
 * on its own line (array frames are split, after an "ARRAY n" marker line), so
 * the bash tests can grep the transcript.
 *
 *   ws_probe URL ACTION...
 *     auth              send {"type":"auth","access_token":$PROBE_TOKEN}
 *     send:JSON         send one text message
 *     wait:TEXT         wait for a message containing TEXT
 *     events:N          wait until N event messages arrived in total
 *     idle:MS           wait until no message arrived for MS milliseconds
 *     sleep:MS          wait MS milliseconds
 *     closed            wait until the server closes the connection
 *     close             close (1000) and wait for the close handshake
 *   Env: PROBE_TOKEN (default homeiq-simulator-token), PROBE_TIMEOUT_MS (5000),
 *        PROBE_QUIET=1 (do not print or parse event messages; only count them),
 *        PROBE_CA_FILE (wss: CA bundle), PROBE_INSECURE=1 (wss: no verification).
 *   Exit: 0 ok, 2 usage/connect, 3 timeout, 4 closed while waiting. */
#include "ws.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

typedef struct probe {
    struct event_base *base;
    ws_conn *ws;
    struct event *timer;
    char **actions;
    int nactions, cur;
    int waiting;           /* current action is waiting */
    int open, closed;
    int rc;
    long long events, messages;
    long long last_msg_ms, first_event_ms;
    int timeout_ms, quiet;
    const char *token;
} probe;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void run(probe *p);

static void arm(probe *p, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(p->timer, &tv);
}

static void finish(probe *p, int rc)
{
    if (rc && !p->rc) p->rc = rc;
    evtimer_del(p->timer);
    event_base_loopexit(p->base, NULL);
}

static void next(probe *p)
{
    p->waiting = 0;
    p->cur++;
    evtimer_del(p->timer);
    run(p);
}

/* is the current wait satisfied by what we know now? */
static int satisfied(probe *p, const char *msg)
{
    const char *a = p->actions[p->cur];
    if (!strncmp(a, "wait:", 5)) return msg && strstr(msg, a + 5) != NULL;
    if (!strncmp(a, "events:", 7)) return p->events >= atoll(a + 7);
    return 0;
}

static void handle_one(probe *p, const char *text, int is_event)
{
    p->messages++;
    if (is_event) {
        if (!p->events) p->first_event_ms = now_ms();
        p->events++;
    }
    if (!(is_event && p->quiet)) printf("%s\n", text);
    if (p->waiting && satisfied(p, text)) next(p);
}

static void on_open(ws_conn *c, void *arg)
{
    (void)c;
    probe *p = arg;
    p->open = 1;
    printf("OPEN\n");
    run(p);
}

static void on_text(ws_conn *c, const char *msg, size_t len, void *arg)
{
    (void)c;
    probe *p = arg;
    p->last_msg_ms = now_ms();
    if (p->quiet) { /* load measurements: count events without parsing */
        static const char pat[] = "{\"type\":\"event\",";
        const char *q = msg, *end = msg + len;
        long long n = 0;
        while ((q = memmem(q, (size_t)(end - q), pat, sizeof pat - 1)) != NULL) {
            n++;
            q += sizeof pat - 1;
        }
        if (n) {
            if (!p->events) p->first_event_ms = now_ms();
            p->events += n;
            p->messages += n;
            if (p->waiting && satisfied(p, NULL)) next(p);
            return;
        }
    }
    json_error_t err;
    json_t *j = json_loadb(msg, len, 0, &err);
    if (json_is_array(j)) {
        printf("ARRAY %zu\n", json_array_size(j));
        size_t i;
        json_t *el;
        json_array_foreach(j, i, el) {
            char *s = json_dumps(el, JSON_COMPACT | JSON_PRESERVE_ORDER);
            const char *t = json_string_value(json_object_get(el, "type"));
            handle_one(p, s ? s : "null", t && !strcmp(t, "event"));
            free(s);
        }
    } else {
        const char *t = json_string_value(json_object_get(j, "type"));
        char *s = strndup(msg, len);
        handle_one(p, s ? s : "", t && !strcmp(t, "event"));
        free(s);
    }
    json_decref(j);
    fflush(stdout);
}

static void on_close(ws_conn *c, int code, const char *reason, void *arg)
{
    (void)c;
    probe *p = arg;
    p->closed = 1;
    printf("CLOSE %d %s\n", code, reason);
    fflush(stdout);
    const char *a = p->cur < p->nactions ? p->actions[p->cur] : "";
    if (p->waiting && (!strcmp(a, "closed") || !strcmp(a, "close"))) {
        next(p);
    } else if (p->cur >= p->nactions) {
        finish(p, 0);
    } else {
        fprintf(stderr, "ws_probe: connection closed during action '%s'\n", a);
        finish(p, 4);
    }
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    probe *p = arg;
    if (p->cur >= p->nactions) { /* close handshake timed out */
        finish(p, 3);
        return;
    }
    const char *a = p->actions[p->cur];
    if (!strncmp(a, "sleep:", 6)) {
        next(p);
    } else if (!strncmp(a, "idle:", 5)) {
        long long quiet_for = now_ms() - p->last_msg_ms;
        int ms = atoi(a + 5);
        if (quiet_for >= ms) next(p);
        else arm(p, (int)(ms - quiet_for));
    } else {
        fprintf(stderr, "ws_probe: timeout in action '%s' (%lld events, %lld messages)\n", a, p->events,
                p->messages);
        finish(p, 3);
    }
}

static void run(probe *p)
{
    while (p->cur < p->nactions && !p->waiting) {
        const char *a = p->actions[p->cur];
        if (p->closed && strcmp(a, "closed") && strcmp(a, "close")) {
            fprintf(stderr, "ws_probe: connection closed before action '%s'\n", a);
            finish(p, 4);
            return;
        }
        if (!strcmp(a, "auth")) {
            char buf[512];
            int n = snprintf(buf, sizeof buf, "{\"type\":\"auth\",\"access_token\":\"%s\"}", p->token);
            ws_send_text(p->ws, buf, (size_t)n);
            p->cur++;
        } else if (!strncmp(a, "send:", 5)) {
            ws_send_text(p->ws, a + 5, strlen(a + 5));
            p->cur++;
        } else if (!strncmp(a, "wait:", 5) || !strncmp(a, "events:", 7)) {
            if (satisfied(p, NULL)) {
                p->cur++;
                continue;
            }
            p->waiting = 1;
            arm(p, p->timeout_ms);
        } else if (!strncmp(a, "sleep:", 6)) {
            p->waiting = 1;
            arm(p, atoi(a + 6));
        } else if (!strncmp(a, "idle:", 5)) {
            p->waiting = 1;
            p->last_msg_ms = now_ms();
            arm(p, atoi(a + 5));
        } else if (!strcmp(a, "closed")) {
            if (p->closed) {
                p->cur++;
                continue;
            }
            p->waiting = 1;
            arm(p, p->timeout_ms);
        } else if (!strcmp(a, "close")) {
            if (p->closed) {
                p->cur++;
                continue;
            }
            p->waiting = 1;
            ws_close(p->ws, 1000, "bye");
            arm(p, p->timeout_ms);
        } else {
            fprintf(stderr, "ws_probe: unknown action '%s'\n", a);
            finish(p, 2);
            return;
        }
    }
    if (p->cur >= p->nactions && !p->waiting) {
        if (p->closed) finish(p, 0);
        else {
            ws_close(p->ws, 1000, NULL);
            arm(p, 3000);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: ws_probe URL ACTION...\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    probe p;
    memset(&p, 0, sizeof p);
    p.actions = argv + 2;
    p.nactions = argc - 2;
    p.token = getenv("PROBE_TOKEN") ? getenv("PROBE_TOKEN") : "homeiq-simulator-token";
    p.timeout_ms = getenv("PROBE_TIMEOUT_MS") ? atoi(getenv("PROBE_TIMEOUT_MS")) : 5000;
    p.quiet = getenv("PROBE_QUIET") && !strcmp(getenv("PROBE_QUIET"), "1");
    p.base = event_base_new();
    p.timer = evtimer_new(p.base, timer_cb, &p);
    ws_callbacks cb = {on_open, on_text, on_close};
    ws_client_opts o = {.max_msg_bytes = 64u << 20, .connect_timeout_ms = 5000};
    o.ca_file = getenv("PROBE_CA_FILE");
    o.insecure = getenv("PROBE_INSECURE") && !strcmp(getenv("PROBE_INSECURE"), "1");
    if (ws_client_connect(p.base, argv[1], &o, &cb, &p, &p.ws) != 0) {
        fprintf(stderr, "ws_probe: cannot start connecting to %s\n", argv[1]);
        event_free(p.timer);
        event_base_free(p.base);
        return 2;
    }
    long long t0 = now_ms();
    event_base_dispatch(p.base);
    long long t1 = now_ms();
    if (p.quiet || getenv("PROBE_STATS")) {
        long long span = t1 - (p.first_event_ms ? p.first_event_ms : t0);
        printf("EVENTS %lld\n", p.events);
        fprintf(stderr, "ws_probe: %lld events in %lld ms (%.0f events/s)\n", p.events, span,
                span > 0 ? p.events * 1000.0 / span : 0.0);
    }
    if (!p.open && !p.rc) p.rc = 2;
    ws_free(p.ws);
    event_free(p.timer);
    event_base_free(p.base);
    return p.rc;
}
