/* fuzz_ws_client.c -- the client side of lib/ws.c (what ingestion runs
 * against Home Assistant) on arbitrary bytes from the server: the upgrade
 * answer, then frames -- unmasked or masked, fragmented, control frames
 * (ping, pong, close) in between, oversize, binary, garbage.
 *
 * The client is attached to one end of a bufferevent pair
 * (ws_client_attach); the harness plays the server on the other end. Input
 * byte 0 picks what the harness writes:
 *   0  the remaining bytes as the whole answer (the upgrade parser alone);
 *   1  a correct 101 (Sec-WebSocket-Accept computed from the client's key),
 *      then the remaining bytes as frames;
 *   2  "HTTP/1.1 101" + the correct Accept header + the input up to the
 *      first blank line as more header lines, then the rest as frames.
 * The bytes arrive in 1 to 3 pieces (byte 1 picks where they are cut), with
 * the loop run in between.
 *
 * Properties (any violation aborts): no crash, leak or sanitizer report;
 * on_open at most once and before any text; no message above the limit;
 * on_close at most once and nothing after it; every frame the client sends
 * is masked (RFC 6455 5.1: a server must close on an unmasked one). */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ws.h"

#define FUZZ_WS_MAX 4096

typedef struct st {
    int opened, closed, after_close;
    size_t texts;
} st;

static void die(const char *what) {
    fprintf(stderr, "fuzz_ws_client: %s\n", what);
    abort();
}

static void on_open(ws_conn *c, void *arg) {
    st *s = arg;
    if (s->opened++ || s->closed) die("on_open twice or after on_close");
    ws_send_text(c, "{\"type\":\"auth\"}", 15);
}

static void on_text(ws_conn *c, const char *msg, size_t len, void *arg) {
    st *s = arg;
    if (s->closed) s->after_close++;
    if (!s->opened) die("a message before on_open");
    if (len > FUZZ_WS_MAX) die("a message over the limit");
    volatile unsigned char x = 0;
    for (size_t i = 0; i < len; i++) x ^= (unsigned char)msg[i]; /* every byte readable */
    (void)x;
    if (++s->texts % 2 == 0) ws_send_text(c, msg, len); /* answering from inside the callback */
    if (s->texts == 5) ws_close(c, 1000, "enough");
}

static void on_close(ws_conn *c, int code, const char *reason, void *arg) {
    st *s = arg;
    (void)c;
    if (!reason || code <= 0 || code > 65535) die("on_close without a reason or with a bad code");
    if (s->closed++) die("on_close twice");
}

/* The client's frames after the upgrade request: each must carry the mask bit. */
static void check_client_frames(struct evbuffer *in) {
    size_t n = evbuffer_get_length(in);
    unsigned char *b = evbuffer_pullup(in, -1);
    size_t i = 0;
    while (i + 2 <= n) {
        if (!(b[i + 1] & 0x80)) die("the client sent an unmasked frame");
        size_t len = b[i + 1] & 0x7f, hdr = 2;
        if (len == 126) {
            if (i + 4 > n) break;
            len = (size_t)b[i + 2] << 8 | b[i + 3];
            hdr = 4;
        } else if (len == 127) {
            if (i + 10 > n) break;
            len = 0;
            for (int k = 0; k < 8; k++) len = len << 8 | b[i + 2 + k];
            hdr = 10;
        }
        if (i + hdr + 4 + len > n) break;
        i += hdr + 4 + len;
    }
    evbuffer_drain(in, n);
}

static struct event_base *base;

static void loop_a_little(void) {
    for (int i = 0; i < 4; i++) event_base_loop(base, EVLOOP_NONBLOCK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!base) {
        setenv("LOG_LEVEL", "error", 1);
        log_init("fuzz");
        base = event_base_new();
        if (!base) abort();
    }
    if (size < 2) return 0;
    int mode = data[0] % 3;
    size_t cut = data[1];
    data += 2, size -= 2;

    struct bufferevent *pair[2];
    if (bufferevent_pair_new(base, 0, pair) != 0) abort();
    bufferevent_enable(pair[1], EV_READ | EV_WRITE);
    st s = {0};
    ws_callbacks cb = {.on_open = on_open, .on_text = on_text, .on_close = on_close};
    ws_client_opts o = {.max_msg_bytes = FUZZ_WS_MAX};
    ws_conn *c = NULL;
    if (ws_client_attach(base, pair[0], "ws://ha.local:8123/api/websocket", &o, &cb, &s, &c) != 0)
        die("ws_client_attach failed");
    loop_a_little();

    /* the upgrade request the client wrote */
    struct evbuffer *in = bufferevent_get_input(pair[1]);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0) die("no upgrade request");
    size_t rl = (size_t)end.pos + 4;
    char *req = malloc(rl + 1);
    evbuffer_remove(in, req, rl);
    req[rl] = '\0';
    if (strncmp(req, "GET /api/websocket HTTP/1.1\r\n", 29) != 0 || !strstr(req, "\r\nHost: ha.local:8123\r\n"))
        die("a bad upgrade request");
    char key[64] = "", acc[29];
    const char *k = strstr(req, "Sec-WebSocket-Key: ");
    if (k) sscanf(k + 19, "%63[^\r]", key);
    free(req);
    if (!*key || ws_accept_value(key, acc) != 0) die("no Sec-WebSocket-Key");

    struct evbuffer *out = evbuffer_new();
    if (mode == 1) {
        evbuffer_add_printf(out, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                 "Sec-WebSocket-Accept: %s\r\n\r\n", acc);
    } else if (mode == 2) {
        evbuffer_add_printf(out, "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: %s\r\n", acc);
        const uint8_t *blank = NULL;
        for (size_t i = 0; i + 4 <= size && !blank; i++)
            if (!memcmp(data + i, "\r\n\r\n", 4)) blank = data + i;
        size_t hl = blank ? (size_t)(blank - data) + 4 : size;
        evbuffer_add(out, data, hl);
        if (!blank) evbuffer_add(out, "\r\n", 2);
        data += hl, size -= hl;
    }
    evbuffer_add(out, data, size);

    /* to the client in up to 3 pieces, the loop run after each */
    size_t total = evbuffer_get_length(out);
    const char *all = (const char *)evbuffer_pullup(out, -1);
    size_t a = total ? cut % (total + 1) : 0, b = total ? (cut * 7) % (total + 1) : 0;
    if (a > b) {
        size_t t = a;
        a = b, b = t;
    }
    const size_t from[3] = {0, a, b}, to[3] = {a, b, total};
    for (int i = 0; i < 3 && !s.closed; i++) {
        if (to[i] == from[i]) continue;
        bufferevent_write(pair[1], all + from[i], to[i] - from[i]);
        loop_a_little();
    }
    loop_a_little();
    if (s.after_close) die("a message after on_close");
    check_client_frames(in);
    evbuffer_free(out);
    ws_free(c);
    bufferevent_free(pair[1]);
    event_base_loop(base, EVLOOP_NONBLOCK); /* deferred frees */
    return 0;
}
