/* test_ws_fastpath.c -- lib/ws.c hands whole text frames to on_text without
 * wslay (ws_whole_text); this keeps that shortcut honest: the same received
 * bytes, cut into the same random pieces, must give the same messages, the
 * same answers (pongs, echoes, close frames, unmasked here to compare) and the
 * same on_close as wslay alone (ws_set_fast_receive(0)) -- on both sides (a
 * client gets unmasked frames, a server masked ones), with fragments, pings
 * between fragments, UTF-8, invalid UTF-8, 16-bit lengths, over-long messages,
 * length encodings that are not minimal, RSV bits, binary frames, wrong
 * masking and close frames, and bytes after a close. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sbuf.h"
#include "ws.h"

#define MAXMSG 1000

typedef struct rec {
    sbuf log; /* what the conn did: T<len>:<text> and C<code>:<reason> */
    int closed;
} rec;

static uint32_t rnd_state;
static uint32_t rnd(void) {
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state;
}

static void on_text(ws_conn *c, const char *msg, size_t len, void *arg) {
    rec *r = arg;
    char h[32];
    snprintf(h, sizeof h, "T%zu:", len);
    sbuf_adds(&r->log, h);
    sbuf_add(&r->log, msg, len);
    if (len % 3 == 0) ws_send_text(c, msg, len); /* answering from inside the callback */
}

static void on_close(ws_conn *c, int code, const char *reason, void *arg) {
    rec *r = arg;
    (void)c;
    char h[32];
    snprintf(h, sizeof h, "C%d:", code);
    sbuf_adds(&r->log, h);
    sbuf_adds(&r->log, reason);
    r->closed++;
}

/* One frame; masked with a fixed key when `mask`; `len_form` 0: minimal,
 * 1: a 16-bit length even when short, 2: a 64-bit length. */
static void frame(sbuf *o, int b0, const unsigned char *p, size_t n, int mask, int len_form) {
    unsigned char h[14];
    size_t k = 0;
    h[k++] = (unsigned char)b0;
    unsigned char m = mask ? 0x80 : 0;
    if (len_form == 0 && n < 126) h[k++] = m | (unsigned char)n;
    else if (len_form != 2 && n < 65536) {
        h[k++] = m | 126;
        h[k++] = (unsigned char)(n >> 8);
        h[k++] = (unsigned char)n;
    } else {
        h[k++] = m | 127;
        for (int i = 7; i >= 0; i--) h[k++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
    if (mask) memcpy(h + k, key, 4), k += 4;
    sbuf_add(o, (const char *)h, k);
    for (size_t i = 0; i < n; i++) sbuf_addc(o, (char)(mask ? p[i] ^ key[i & 3] : p[i]));
}

static size_t text(unsigned char *b, size_t n, int utf8) {
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)('a' + rnd() % 26);
    if (utf8 && n >= 4) memcpy(b + rnd() % (n - 3), "\xc2\xb0" "C", 3); /* "°C" */
    return n;
}

static size_t pick_len(void) {
    switch (rnd() % 6) {
    case 0: return 0;
    case 1: return 126 + rnd() % 600;   /* a 16-bit length */
    case 2: return 900 + rnd() % 200;   /* around the limit */
    default: return 1 + rnd() % 125;
    }
}

/* A good frame (or message) the peer may send at any time. */
static void good(sbuf *o, int mask) {
    unsigned char b[1200];
    switch (rnd() % 5) {
    case 0:
    case 1: frame(o, 0x81, b, text(b, pick_len(), 0), mask, 0); break;
    case 2: frame(o, 0x81, b, text(b, pick_len(), 1), mask, 0); break;
    case 3: { /* fragmented, a ping between the pieces, the UTF-8 cut across them */
        size_t n = text(b, 4 + rnd() % 300, 1), cut = rnd() % n;
        frame(o, 0x01, b, cut, mask, 0);
        frame(o, 0x89, (const unsigned char *)"pi", 2, mask, 0);
        frame(o, 0x80, b + cut, n - cut, mask, 0);
        break;
    }
    default: frame(o, 0x89, (const unsigned char *)"ping", 4, mask, 0); break;
    }
}

/* A frame that ends the conversation one way or another. */
static void bad(sbuf *o, int mask) {
    unsigned char b[64];
    switch (rnd() % 10) {
    case 0: frame(o, 0x81, (const unsigned char *)"ab\xc0\x80", 4, mask, 0); break;       /* overlong */
    case 1: frame(o, 0x81, (const unsigned char *)"\xed\xa0\x80", 3, mask, 0); break;     /* surrogate */
    case 2: frame(o, 0x81, (const unsigned char *)"x\xe2\x82", 3, mask, 0); break;        /* cut short */
    case 3: frame(o, 0x81, b, text(b, 5, 0), mask, 1 + (int)(rnd() % 2)); break;          /* not minimal */
    case 4: frame(o, 0x81 | 0x40, b, text(b, 5, 0), mask, 0); break;                       /* RSV1 */
    case 5: frame(o, 0x82, b, text(b, 7, 0), mask, 0); break;                              /* binary */
    case 6: frame(o, 0x81, b, text(b, 9, 0), !mask, 0); break;                             /* wrong masking */
    case 7: frame(o, 0x80, b, text(b, 9, 0), mask, 0); break;                              /* continuation alone */
    case 8: /* a new text frame inside a fragmented message */
        frame(o, 0x01, b, text(b, 6, 0), mask, 0);
        frame(o, 0x81, b, text(b, 6, 0), mask, 0);
        break;
    default: frame(o, 0x88, (const unsigned char *)"\x03\xe8" "bye", 5, mask, 0); break; /* close 1000 */
    }
}

/* The conn's own frames, unmasked: O<b0>:<payload>. */
static void decode_output(struct evbuffer *out, sbuf *log) {
    size_t n = evbuffer_get_length(out);
    unsigned char *p = evbuffer_pullup(out, (ev_ssize_t)n), *end = p + n;
    while (p && end - p >= 2) {
        int masked = p[1] & 0x80;
        uint64_t len = p[1] & 0x7f;
        size_t h = 2;
        if (len == 126) len = (uint64_t)p[2] << 8 | p[3], h = 4;
        else if (len == 127) {
            len = 0;
            for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
            h = 10;
        }
        const unsigned char *key = p + h;
        if (masked) h += 4;
        if ((uint64_t)(end - p) < h + len) break;
        char t[32];
        snprintf(t, sizeof t, "O%02x:", p[0]);
        sbuf_adds(log, t);
        for (size_t i = 0; i < len; i++) sbuf_addc(log, (char)(masked ? p[h + i] ^ key[i & 3] : p[h + i]));
        p += h + len;
    }
    evbuffer_drain(out, n);
}

/* The client side's upgrade: answers the request on the peer end with a 101. */
static void upgrade(struct event_base *base, struct bufferevent *peer) {
    struct evbuffer *in = bufferevent_get_input(peer);
    for (int i = 0; i < 50 && evbuffer_search(in, "\r\n\r\n", 4, NULL).pos < 0; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    size_t n = evbuffer_get_length(in);
    char *req = calloc(1, n + 1);
    assert_non_null(req);
    evbuffer_remove(in, req, n);
    const char *k = strstr(req, "Sec-WebSocket-Key: ");
    assert_non_null(k);
    char key[64] = {0}, acc[29];
    sscanf(k + 19, "%63[^\r]", key);
    free(req);
    assert_int_equal(ws_accept_value(key, acc), 0);
    evbuffer_add_printf(bufferevent_get_output(peer),
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: %s\r\n\r\n", acc);
}

/* Sends `bytes` to a fresh conn (client or server side) in pieces cut by `cuts_seed`. */
static void run(int client, const sbuf *bytes, uint32_t cuts_seed, sbuf *log) {
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct bufferevent *pair[2];
    assert_int_equal(bufferevent_pair_new(base, 0, pair), 0);
    bufferevent_enable(pair[1], EV_READ);
    rec r = {.log = *log};
    ws_callbacks cb = {.on_text = on_text, .on_close = on_close};
    ws_conn *c = NULL;
    if (client) {
        ws_client_opts o = {.max_msg_bytes = MAXMSG};
        assert_int_equal(ws_client_attach(base, pair[0], "ws://localhost/api/websocket", &o, &cb, &r, &c), 0);
        upgrade(base, pair[1]);
    } else {
        assert_int_equal(ws_server_accept(base, pair[0], "dGhlIHNhbXBsZSBub25jZQ==", MAXMSG, &cb, &r, &c), 0);
        event_base_loop(base, EVLOOP_NONBLOCK);
        evbuffer_drain(bufferevent_get_input(pair[1]), evbuffer_get_length(bufferevent_get_input(pair[1])));
    }
    uint32_t saved = rnd_state;
    rnd_state = cuts_seed;
    for (size_t off = 0; off < bytes->len;) {
        size_t n = 1 + rnd() % (rnd() % 4 == 0 ? 8 : 1500);
        if (n > bytes->len - off) n = bytes->len - off;
        bufferevent_write(pair[1], bytes->data + off, n);
        off += n;
        for (int i = 0; i < 3; i++) event_base_loop(base, EVLOOP_NONBLOCK);
        decode_output(bufferevent_get_input(pair[1]), &r.log);
    }
    rnd_state = saved;
    for (int i = 0; i < 8 && !r.closed; i++) event_base_loop(base, EVLOOP_NONBLOCK);
    decode_output(bufferevent_get_input(pair[1]), &r.log);
    ws_free(c);
    bufferevent_free(pair[1]);
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
    *log = r.log;
}

static void compare(int client, int cases) {
    for (int t = 0; t < cases; t++) {
        rnd_state = 0x9e3779b9u ^ (uint32_t)(t * 2654435761u) ^ (uint32_t)client;
        sbuf bytes;
        sbuf_init(&bytes);
        int n = 1 + (int)(rnd() % 12);
        for (int i = 0; i < n; i++) good(&bytes, !client);
        if (rnd() % 3) bad(&bytes, !client);
        if (rnd() % 2) good(&bytes, !client); /* after a close: never delivered */
        uint32_t cuts = rnd();
        sbuf fast, ref;
        sbuf_init(&fast);
        sbuf_init(&ref);
        ws_set_fast_receive(1);
        run(client, &bytes, cuts, &fast);
        ws_set_fast_receive(0);
        run(client, &bytes, cuts, &ref);
        ws_set_fast_receive(1);
        assert_false(sbuf_failed(&fast) || sbuf_failed(&ref));
        if (fast.len != ref.len || memcmp(fast.data, ref.data, fast.len) != 0) {
            fprintf(stderr, "%s case %d differs:\n fast %.*s\n wslay %.*s\n", client ? "client" : "server", t,
                    (int)(fast.len > 600 ? 600 : fast.len), fast.data, (int)(ref.len > 600 ? 600 : ref.len),
                    ref.data);
            fail();
        }
        sbuf_free(&fast);
        sbuf_free(&ref);
        sbuf_free(&bytes);
    }
}

static void client_side_same_as_wslay(void **state) {
    (void)state;
    compare(1, 400);
}

static void server_side_same_as_wslay(void **state) {
    (void)state;
    compare(0, 400);
}

int main(void) {
    setenv("LOG_LEVEL", "error", 1);
    log_init("test_ws_fastpath");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(client_side_same_as_wslay),
        cmocka_unit_test(server_side_same_as_wslay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
