/* fuzz_ws_frames.c -- lib/ws.c's framing (wslay + our reassembly and close
 * handling) on arbitrary bytes from the peer: a server-side connection on a
 * bufferevent pair gets the input as if it came after the upgrade request.
 * Whatever the bytes: no crash, no leak, no message larger than the limit,
 * on_close at most once and nothing after it. (The client side -- HA's
 * frames to ingestion -- runs the same wslay reader and ws.c callbacks; its
 * upgrade needs a socket and is covered by the simulator tests.) */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ws.h"

#define FUZZ_WS_MAX 4096

typedef struct st {
    int closed, after_close;
    size_t texts;
} st;

static void on_text(ws_conn *c, const char *msg, size_t len, void *arg) {
    st *s = arg;
    (void)c;
    if (s->closed) s->after_close++;
    if (len > FUZZ_WS_MAX) abort();
    if (len) { /* touch every byte: it must all be readable */
        volatile unsigned char x = 0;
        for (size_t i = 0; i < len; i++) x ^= (unsigned char)msg[i];
        (void)x;
    }
    s->texts++;
    if (s->texts % 3 == 0) ws_send_text(c, msg, len); /* answering from inside the callback is allowed */
}

static void on_close(ws_conn *c, int code, const char *reason, void *arg) {
    st *s = arg;
    (void)c;
    if (!reason || code < 0) abort();
    if (s->closed++) abort(); /* exactly once */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct event_base *base;
    if (!base) {
        setenv("LOG_LEVEL", "error", 1);
        log_init("fuzz");
        base = event_base_new();
        if (!base) abort();
    }
    struct bufferevent *pair[2];
    if (bufferevent_pair_new(base, 0, pair) != 0) abort();
    bufferevent_enable(pair[1], EV_READ);
    st s = {0};
    ws_callbacks cb = {.on_text = on_text, .on_close = on_close};
    ws_conn *c = NULL;
    if (ws_server_accept(base, pair[0], "dGhlIHNhbXBsZSBub25jZQ==", FUZZ_WS_MAX, &cb, &s, &c) != 0) abort();
    bufferevent_write(pair[1], data, size); /* the peer's bytes, as they arrive */
    for (int i = 0; i < 8 && !s.closed; i++) event_base_loop(base, EVLOOP_NONBLOCK);
    if (s.after_close) abort();
    ws_free(c);
    bufferevent_free(pair[1]);
    event_base_loop(base, EVLOOP_NONBLOCK); /* deferred frees */
    return 0;
}
