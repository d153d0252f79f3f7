/* ws.c -- WebSocket connections: wslay framing over libevent bufferevents.
 *
 * Why this shape: wslay does no I/O, so its recv/send callbacks read from and
 * append to the bufferevent's evbuffers. Appending never blocks, so wslay's
 * queue is always flushed straight into the bufferevent output buffer and the
 * back-pressure figure (ws_pending_bytes) is simply that buffer's length.
 *
 * Re-entrancy: user callbacks may call ws_send_text/ws_close/ws_free. While we
 * are inside a callback (depth > 0) wslay_event_send is postponed (wslay must
 * not be re-entered) and ws_free only marks the conn; the outermost callback
 * frame does the real work when it unwinds (see leave()). */
/* SHA1_Init & co. are deprecated in OpenSSL 3 but need no provider: see ws_accept_value */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "ws.h"
#include "bev_read.h"
#include "url.h"

#include "json_text.h"
#include "log.h"
#include "tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <wslay/wslay.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define WS_DEFAULT_MAX_MSG (16u * 1024 * 1024)
#define WS_DEFAULT_CONNECT_MS 10000
#define WS_CLOSE_TIMEOUT_MS 3000
#define WS_MAX_HANDSHAKE 16384
#define WS_READ_MAX (256u * 1024)
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

typedef enum {
    WS_ST_CONNECTING,  /* client: TCP/TLS connect in progress */
    WS_ST_HANDSHAKE,   /* client: upgrade request sent, waiting for 101 */
    WS_ST_OPEN,
    WS_ST_CLOSING,     /* close frame queued/sent, waiting for the peer's */
    WS_ST_FLUSHING,    /* close handshake done; writing the last bytes */
    WS_ST_DEAD         /* on_close called (or freed); no more callbacks */
} ws_state;

struct ws_conn {
    struct event_base *base;
    struct bufferevent *bev;
    struct evdns_base *dns;
    SSL_CTX *ssl_ctx;
    wslay_event_context_ptr wslay;
    struct event *timer;        /* connect / close timeouts, deferred teardown */
    ws_callbacks cb;
    void *arg;
    ws_state state;
    int is_client;
    size_t max_msg;
    int depth;                  /* nesting of our callback frames */
    int free_pending;           /* ws_free called while depth > 0 */
    int send_pending;           /* wslay has queued data to send after unwinding */
    int teardown_pending;       /* teardown requested from a place we cannot do it */
    int close_req;              /* ws_close called inside a callback: queue after data */
    int close_code;
    char close_reason[123];
    int td_code;
    char td_reason[320];
    int peer_code;              /* from the peer's close frame; 0 = none received */
    char peer_reason[124];
    size_t feed_left;           /* bytes of the current frame still owed to wslay (0: at a frame boundary) */
    int frag_open;              /* wslay holds the start of a fragmented message */
    char key_accept[29];        /* client: the Sec-WebSocket-Accept we expect */
    char *request;              /* client: the upgrade request, sent once connected */
};

static void real_free(ws_conn *c);
static void teardown(ws_conn *c, int code, const char *reason);
static void pump(ws_conn *c);

/* ---- small helpers ---------------------------------------------------- */

static void enter(ws_conn *c) { c->depth++; }

/* Unwinds one callback frame; returns 1 if the conn was freed (caller must
 * not touch it any more). */
static int leave(ws_conn *c)
{
    if (--c->depth > 0) return 0;
    if (c->free_pending) {
        real_free(c);
        return 1;
    }
    if (c->state != WS_ST_DEAD) {
        if (c->send_pending || c->close_req) pump(c);
        if (c->teardown_pending && c->state != WS_ST_DEAD) {
            c->teardown_pending = 0;
            enter(c);
            teardown(c, c->td_code, c->td_reason);
            return leave(c);
        }
    }
    return 0;
}

static int base64(const unsigned char *in, size_t n, char *out, size_t outsz)
{
    if (outsz < 4 * ((n + 2) / 3) + 1) return -1;
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    return 0;
}

/* SHA-1 through the low-level API on purpose: EVP_Digest (and RAND_bytes)
 * make OpenSSL 3 load its provider and algorithm tables, ~2.3 MB of RSS that
 * a plain ws:// client never needs otherwise. */
int ws_accept_value(const char *key, char out[29])
{
    char buf[256];
    unsigned char md[SHA_DIGEST_LENGTH];
    int n = snprintf(buf, sizeof buf, "%s" WS_GUID, key ? key : "");
    if (!key || n < 0 || (size_t)n >= sizeof buf) return -1;
    SHA_CTX sha;
    if (!SHA1_Init(&sha) || !SHA1_Update(&sha, buf, (size_t)n) || !SHA1_Final(md, &sha)) return -1;
    return base64(md, sizeof md, out, 29);
}

/* Masking keys and the handshake nonce: the kernel's CSPRNG (see above). */
static int random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t r = getrandom(p, len, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* ---- teardown ---------------------------------------------------------- */

/* Closes the socket and reports on_close once. Must be called inside an
 * enter()/leave() frame, never from inside a wslay call. */
static void teardown(ws_conn *c, int code, const char *reason)
{
    if (c->state == WS_ST_DEAD) return;
    c->state = WS_ST_DEAD;
    if (c->timer) evtimer_del(c->timer);
    if (c->bev) {
        bufferevent_free(c->bev);   /* closes the socket */
        c->bev = NULL;
    }
    if (c->peer_code) {
        code = c->peer_code;
        reason = c->peer_reason;
    }
    log_debug("ws: connection closed (%d %s)", code, reason ? reason : "");
    if (c->cb.on_close && !c->free_pending) c->cb.on_close(c, code, reason ? reason : "", c->arg);
}

/* Requests a teardown from a context where calling on_close now is unsafe. */
static void defer_teardown(ws_conn *c, int code, const char *reason)
{
    if (c->teardown_pending || c->state == WS_ST_DEAD) return;
    c->teardown_pending = 1;
    c->td_code = code;
    size_t n = reason ? strnlen(reason, sizeof c->td_reason - 1) : 0;
    if (n) memcpy(c->td_reason, reason, n);
    c->td_reason[n] = '\0';
}

/* Called when we are done with wslay for this round: decides whether the
 * connection finished (both close frames exchanged / fatal error). */
static void check_finished(ws_conn *c)
{
    if (!c->wslay || c->state == WS_ST_DEAD) return;
    int rd = wslay_event_want_read(c->wslay);
    int wr = wslay_event_want_write(c->wslay);
    if (rd || wr) return;
    /* Nothing more to read or write through wslay: flush the output, then close. */
    if (c->state != WS_ST_FLUSHING) {
        c->state = WS_ST_FLUSHING;
        if (c->timer) {
            struct timeval tv = {WS_CLOSE_TIMEOUT_MS / 1000, (WS_CLOSE_TIMEOUT_MS % 1000) * 1000};
            evtimer_add(c->timer, &tv);
        }
    }
    if (c->bev && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        int sent = wslay_event_get_status_code_sent(c->wslay);
        char why[64];
        snprintf(why, sizeof why, "closed (sent %d)", sent);
        defer_teardown(c, 1006, c->peer_code ? "" : why);
    }
}

/* Runs wslay_event_send (only outside wslay calls). */
static void pump(ws_conn *c)
{
    c->send_pending = 0;
    if (!c->wslay || c->state == WS_ST_DEAD) return;
    if (wslay_event_want_write(c->wslay) && wslay_event_send(c->wslay) != 0) {
        defer_teardown(c, 1006, "send failed");
        return;
    }
    if (c->close_req) {
        /* wslay sends control frames before queued data, so the close frame is
         * queued only once the data before it has been handed to the socket. */
        c->close_req = 0;
        wslay_event_queue_close(c->wslay, (uint16_t)c->close_code, (const uint8_t *)c->close_reason,
                                strlen(c->close_reason));
        if (wslay_event_send(c->wslay) != 0) {
            defer_teardown(c, 1006, "send failed");
            return;
        }
    }
    check_finished(c);
}

/* ---- wslay callbacks ---------------------------------------------------- */

static ssize_t wslay_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                             void *user)
{
    (void)flags;
    ws_conn *c = user;
    if (!c->bev || c->free_pending) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (len > c->feed_left) len = c->feed_left; /* never past the frame wslay is given */
    int n = len ? evbuffer_remove(bufferevent_get_input(c->bev), buf, len) : 0;
    if (n <= 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    c->feed_left -= (size_t)n;
    return n;
}

static ssize_t wslay_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
                             int flags, void *user)
{
    (void)flags;
    ws_conn *c = user;
    if (!c->bev || evbuffer_add(bufferevent_get_output(c->bev), data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static int wslay_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)user;
    if (random_bytes(buf, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return 0;
}

static void wslay_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                         void *user)
{
    ws_conn *c = user;
    if (c->free_pending || c->state == WS_ST_DEAD) return;
    if (a->opcode == WSLAY_TEXT_FRAME) {
        if (c->state == WS_ST_OPEN && c->cb.on_text)
            c->cb.on_text(c, (const char *)a->msg, a->msg_length, c->arg);
    } else if (a->opcode == WSLAY_BINARY_FRAME) {
        /* Neither side of HomeIQ uses binary frames. */
        wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA, NULL, 0);
    } else if (a->opcode == WSLAY_CONNECTION_CLOSE) {
        c->peer_code = a->status_code ? a->status_code : 1005;
        size_t rl = a->msg_length > 2 ? a->msg_length - 2 : 0;
        if (rl >= sizeof c->peer_reason) rl = sizeof c->peer_reason - 1;
        if (rl) memcpy(c->peer_reason, a->msg + 2, rl);
        c->peer_reason[rl] = '\0';
        if (c->state == WS_ST_OPEN) c->state = WS_ST_CLOSING;
    }
}

static int setup_wslay(ws_conn *c)
{
    struct wslay_event_callbacks cbs = {
        .recv_callback = wslay_recv_cb,
        .send_callback = wslay_send_cb,
        .genmask_callback = wslay_genmask_cb,
        .on_msg_recv_callback = wslay_msg_cb,
    };
    int rc = c->is_client ? wslay_event_context_client_init(&c->wslay, &cbs, c)
                          : wslay_event_context_server_init(&c->wslay, &cbs, c);
    if (rc != 0) return -1;
    wslay_event_config_set_max_recv_msg_length(c->wslay, c->max_msg);
    return 0;
}

/* ---- receiving: whole text frames straight from the input buffer -------- */

static int ws_fast_receive = 1;

void ws_set_fast_receive(int on) { ws_fast_receive = on; }

/* Strict UTF-8 as wslay checks a text message (no overlongs, no surrogates,
 * nothing past U+10FFFF); ASCII runs 16 bytes at a time. */
static int ws_utf8_valid(const unsigned char *p, size_t n)
{
    const unsigned char *end = p + n;
    while (p < end) {
#if defined(__SSE2__)
        while (end - p >= 16 && _mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)p)) == 0) p += 16;
#endif
        if (p == end) break;
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t k = json_text_utf8_len(p, (size_t)(end - p));
        if (k == 0) return 0;
        p += k;
    }
    return 1;
}

/* The frame at the start of `in` when it is one whole text message that needs
 * nothing of wslay: FIN, no RSV bits, not inside a fragmented message, masked
 * exactly when a client sent it, length minimally encoded and within the
 * limit, valid UTF-8. Returns 1 and the message (unmasked in place; drain
 * *frame bytes after use), 0 when more bytes are needed to tell, -1 when wslay
 * must take the frame (*frame: its length, or SIZE_MAX when unknown). */
static int ws_whole_text(ws_conn *c, struct evbuffer *in, unsigned char **msg, size_t *len, size_t *frame)
{
    unsigned char h[14];
    size_t avail = evbuffer_get_length(in);
    if (!ws_fast_receive) { /* everything to wslay, as it comes (tests compare both ways) */
        *frame = SIZE_MAX;
        return -1;
    }
    if (avail < 2) return 0;
    ev_ssize_t got = evbuffer_copyout(in, h, avail < sizeof h ? avail : sizeof h);
    if (got < 2) return 0;
    int masked = (h[1] & 0x80) != 0;
    uint64_t plen = h[1] & 0x7f;
    size_t hlen = 2 + (plen == 126 ? 2 : plen == 127 ? 8 : 0) + (masked ? 4 : 0);
    if ((size_t)got < hlen) return 0;
    if (plen == 126) plen = (uint64_t)h[2] << 8 | h[3];
    else if (plen == 127)
        for (int i = (int)(plen = 0); i < 8; i++) plen = plen << 8 | h[2 + i];
    int opcode = h[0] & 0x0f, fin = (h[0] & 0x80) != 0;
    *frame = plen > SIZE_MAX - hlen ? SIZE_MAX : hlen + (size_t)plen;
    int minimal = (h[1] & 0x7f) < 126 || ((h[1] & 0x7f) == 126 ? plen >= 126 : plen >= 65536 && plen >> 63 == 0);
    if (!fin || (h[0] & 0x70) || opcode != 1 || masked == c->is_client || !minimal ||
        plen > c->max_msg || c->frag_open) {
        if (opcode <= 2) c->frag_open = !fin; /* what wslay holds once it has this frame */
        return -1;
    }
    if (avail < *frame) return 0;
    unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)*frame);
    if (!p) return -1;
    p += hlen;
    if (masked)
        for (size_t i = 0; i < plen; i++) p[i] ^= h[hlen - 4 + (i & 3)];
    if (!ws_utf8_valid(p, (size_t)plen)) {
        if (masked) /* give wslay the frame back as it came: it closes with 1007 */
            for (size_t i = 0; i < plen; i++) p[i] ^= h[hlen - 4 + (i & 3)];
        return -1;
    }
    *msg = p;
    *len = (size_t)plen;
    return 1;
}

/* Feeds what is in the input buffer to wslay, frame by frame; whole text
 * frames go straight to on_text without wslay's copies and its byte-at-a-time
 * UTF-8 check (a third of ingestion's CPU). Inside an enter() frame. */
static void process_input(ws_conn *c)
{
    if (!c->wslay || c->state == WS_ST_DEAD) return;
    while (c->bev && !c->free_pending && c->state != WS_ST_DEAD && wslay_event_want_read(c->wslay)) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        if (c->feed_left == 0) {
            unsigned char *msg;
            size_t len, frame;
            int r = ws_whole_text(c, in, &msg, &len, &frame);
            if (r == 0) break;
            if (r == 1) {
                if (c->state == WS_ST_OPEN && c->cb.on_text) c->cb.on_text(c, (const char *)msg, len, c->arg);
                if (c->bev) evbuffer_drain(in, frame);
                continue;
            }
            c->feed_left = frame;
        }
        size_t before = c->feed_left;
        if (wslay_event_recv(c->wslay) != 0) {
            defer_teardown(c, 1006, "receive failed");
            return;
        }
        if (c->feed_left != 0 || c->feed_left == before) break; /* the rest of the frame has not arrived */
    }
    if (c->free_pending || c->state == WS_ST_DEAD) return;
    /* wslay refuses to read after a close or a protocol error: drop the rest. */
    if (!wslay_event_want_read(c->wslay) && c->bev)
        evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
    pump(c);
}

/* ---- client handshake ---------------------------------------------------- */

static int header_has_token(const char *val, const char *tok)
{
    size_t tl = strlen(tok);
    for (const char *p = val; *p; p++)
        if (strncasecmp(p, tok, tl) == 0) return 1;
    return 0;
}

/* Parses the 101 response in buf (NUL-terminated header block). NULL = ok,
 * else a static error description. */
static const char *check_upgrade_response(ws_conn *c, char *buf)
{
    if (strncmp(buf, "HTTP/1.1 101", 12) != 0) {
        static char err[96];
        char *eol = strchr(buf, '\r');
        if (eol) *eol = '\0';
        snprintf(err, sizeof err, "upgrade refused: %.70s", buf);
        return err;
    }
    int up = 0, conn = 0, acc = 0;
    char *save = NULL;
    char *line = strtok_r(buf, "\r\n", &save);
    while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        size_t vl = strlen(v);
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) v[--vl] = '\0';
        if (strcasecmp(line, "Upgrade") == 0 && header_has_token(v, "websocket")) up = 1;
        else if (strcasecmp(line, "Connection") == 0 && header_has_token(v, "upgrade")) conn = 1;
        else if (strcasecmp(line, "Sec-WebSocket-Accept") == 0) acc = strcmp(v, c->key_accept) == 0 ? 1 : -1;
        else if (strcasecmp(line, "Sec-WebSocket-Extensions") == 0) return "server chose an extension we did not offer";
    }
    if (!up || !conn) return "upgrade response lacks Upgrade/Connection headers";
    if (acc != 1) return "bad Sec-WebSocket-Accept";
    return NULL;
}

static void on_handshake_read(ws_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (p.pos < 0) {
        if (evbuffer_get_length(in) > WS_MAX_HANDSHAKE) teardown(c, 1006, "handshake failed: response too large");
        return;
    }
    size_t hl = (size_t)p.pos + 4;
    char *hdr = malloc(hl + 1);
    if (!hdr) {
        teardown(c, 1006, "out of memory");
        return;
    }
    evbuffer_remove(in, hdr, hl);
    hdr[hl] = '\0';
    const char *err = check_upgrade_response(c, hdr);
    if (err) {
        char why[128];
        snprintf(why, sizeof why, "handshake failed: %s", err);
        free(hdr);
        teardown(c, 1006, why);
        return;
    }
    free(hdr);
    if (setup_wslay(c) != 0) {
        teardown(c, 1006, "out of memory");
        return;
    }
    evtimer_del(c->timer);
    c->state = WS_ST_OPEN;
    log_debug("ws: connection open");
    if (c->cb.on_open) c->cb.on_open(c, c->arg);
    if (c->free_pending || c->state == WS_ST_DEAD) return;
    if (evbuffer_get_length(in) > 0) process_input(c);
    else pump(c);
}

/* ---- bufferevent callbacks --------------------------------------------- */

static void bev_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    ws_conn *c = arg;
    enter(c);
    if (c->state == WS_ST_HANDSHAKE) on_handshake_read(c);
    else if (c->state == WS_ST_CONNECTING) { /* data before connect event: wait */ }
    else process_input(c);
    leave(c);
}

static void bev_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    ws_conn *c = arg;
    enter(c);
    if (c->state == WS_ST_FLUSHING) check_finished(c);
    leave(c);
}

static void describe_bev_error(ws_conn *c, short what, char *out, size_t n)
{
    if (c->ssl_ctx && tls_describe_error(c->bev, out, n)) return;
    int dnserr = bufferevent_socket_get_dns_error(c->bev);
    if (dnserr) {
        snprintf(out, n, "resolve failed: %s", evutil_gai_strerror(dnserr));
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    if (what & BEV_EVENT_EOF) snprintf(out, n, "connection closed by peer");
    else if (err) snprintf(out, n, "%s", evutil_socket_error_to_string(err));
    else snprintf(out, n, "connection error");
}

static void bev_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    ws_conn *c = arg;
    enter(c);
    if (what & BEV_EVENT_CONNECTED) {
        if (c->state == WS_ST_CONNECTING) {
            c->state = WS_ST_HANDSHAKE;
            bufferevent_write(c->bev, c->request, strlen(c->request));
            free(c->request);
            c->request = NULL;
        }
    } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (c->state == WS_ST_OPEN || c->state == WS_ST_CLOSING || c->state == WS_ST_FLUSHING) {
            /* Let wslay see any bytes that arrived with the EOF (a close frame). */
            process_input(c);
        }
        if (c->state != WS_ST_DEAD) {
            char why[256];
            describe_bev_error(c, what, why, sizeof why);
            if (c->state == WS_ST_CONNECTING || c->state == WS_ST_HANDSHAKE) {
                char w2[300];
                snprintf(w2, sizeof w2, "%s: %s", c->state == WS_ST_CONNECTING ? "connect failed" : "handshake failed", why);
                defer_teardown(c, 1006, w2);
            } else {
                defer_teardown(c, 1006, why);
            }
        }
    }
    leave(c);
}

/* Our callbacks on c->bev, reading and writing. Reads up to WS_READ_MAX bytes
 * at a time (libevent 2.1 reads 4 KB per loop turn: bev_read.h, installed on
 * plain connections): at HA's burst rates every read(2) also runs the
 * loopback sender's ACK work on our CPU, so fewer, larger ones. */
static void bev_start(ws_conn *c)
{
    bufferevent_setcb(c->bev, bev_read_cb, bev_write_cb, bev_event_cb, c);
    bufferevent_set_max_single_read(c->bev, WS_READ_MAX);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ws_conn *c = arg;
    enter(c);
    if (c->teardown_pending) {
        /* handled by leave() */
    } else if (c->state == WS_ST_CONNECTING || c->state == WS_ST_HANDSHAKE) {
        defer_teardown(c, 1006, c->state == WS_ST_CONNECTING ? "connect timeout" : "handshake timeout");
    } else if (c->state == WS_ST_CLOSING || c->state == WS_ST_FLUSHING) {
        defer_teardown(c, 1006, "close timeout");
    }
    leave(c);
}

/* ---- client connect ------------------------------------------------------- */

typedef struct ws_url {
    int tls;
    char host[256];
    int port;
    char path[2048];
    int host_is_ip;
    int ipv6;
} ws_url;

static int parse_url(const char *url, ws_url *u)
{
    memset(u, 0, sizeof *u);
    url_parts parts;
    if (url_split(url, "ws", "wss", &parts) != 0) return -1;
    u->tls = parts.tls;
    u->ipv6 = parts.ipv6;
    u->port = parts.port;
    memcpy(u->host, parts.host, sizeof u->host);
    int slash = url_target_needs_slash(&parts);
    if (parts.target_len + 2 > sizeof u->path) return -1;
    snprintf(u->path, sizeof u->path, "%s%.*s", slash ? "/" : "", (int)parts.target_len, parts.target);
    unsigned char tmp[16];
    u->host_is_ip = inet_pton(AF_INET, u->host, tmp) == 1 || inet_pton(AF_INET6, u->host, tmp) == 1;
    return 0;
}

static SSL *make_ssl(ws_conn *c, const ws_url *u, const ws_client_opts *o)
{
    c->ssl_ctx = tls_client_ctx_new(o->ca_file, o->insecure);
    return c->ssl_ctx ? tls_client_ssl_new(c->ssl_ctx, u->host, o->insecure) : NULL;
}

static int build_request(ws_conn *c, const ws_url *u, const char *extra)
{
    unsigned char raw[16];
    char key[32];
    if (random_bytes(raw, sizeof raw) != 0 || base64(raw, sizeof raw, key, sizeof key) != 0) return -1;
    if (ws_accept_value(key, c->key_accept) != 0) return -1;
    char hostport[300];
    int defport = u->port == (u->tls ? 443 : 80);
    if (defport) snprintf(hostport, sizeof hostport, u->ipv6 ? "[%s]" : "%s", u->host);
    else snprintf(hostport, sizeof hostport, u->ipv6 ? "[%s]:%d" : "%s:%d", u->host, u->port);
    const char *fmt = "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n";
    if (!extra) extra = "";
    int n = snprintf(NULL, 0, fmt, u->path, hostport, key, extra);
    if (n < 0) return -1;
    c->request = malloc((size_t)n + 1);
    if (!c->request) return -1;
    snprintf(c->request, (size_t)n + 1, fmt, u->path, hostport, key, extra);
    return 0;
}

/* The client conn for `url`, before any I/O: callbacks, limits, timer, the
 * upgrade request. NULL on failure (nothing allocated). */
static ws_conn *client_new(struct event_base *base, const char *url, const ws_client_opts *o,
                           const ws_callbacks *cb, void *arg, ws_conn **out, ws_url *u)
{
    if (!base || !url || !cb || !out || parse_url(url, u) != 0) {
        log_error("ws: invalid WebSocket URL (expected ws[s]://host[:port]/path)");
        return NULL;
    }
    ws_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->base = base;
    c->cb = *cb;
    c->arg = arg;
    c->is_client = 1;
    c->state = WS_ST_CONNECTING;
    c->max_msg = o->max_msg_bytes ? o->max_msg_bytes : WS_DEFAULT_MAX_MSG;
    c->timer = evtimer_new(base, timer_cb, c);
    if (!c->timer || build_request(c, u, o->extra_headers) != 0) {
        real_free(c);
        return NULL;
    }
    return c;
}

static void arm_connect_timeout(ws_conn *c, const ws_client_opts *o)
{
    int ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : WS_DEFAULT_CONNECT_MS;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

int ws_client_attach(struct event_base *base, struct bufferevent *bev, const char *url, const ws_client_opts *o,
                     const ws_callbacks *cb, void *arg, ws_conn **out)
{
    static const ws_client_opts defaults = {0};
    if (!o) o = &defaults;
    ws_url u;
    ws_conn *c = bev ? client_new(base, url, o, cb, arg, out, &u) : NULL;
    if (!c) return -1;
    c->bev = bev;
    bev_start(c);
    arm_connect_timeout(c, o);
    *out = c;
    /* as if the connect had just completed: the upgrade request goes out */
    c->state = WS_ST_HANDSHAKE;
    bufferevent_write(c->bev, c->request, strlen(c->request));
    free(c->request);
    c->request = NULL;
    return 0;
}

int ws_client_connect(struct event_base *base, const char *url, const ws_client_opts *o,
                      const ws_callbacks *cb, void *arg, ws_conn **out)
{
    static const ws_client_opts defaults = {0};
    if (!o) o = &defaults;
    ws_url u;
    ws_conn *c = client_new(base, url, o, cb, arg, out, &u);
    if (!c) return -1;

    if (u.tls) {
        SSL *ssl = make_ssl(c, &u, o);
        if (!ssl) goto fail;
        c->bev = tls_client_bev_new(base, ssl);
        if (!c->bev) goto fail;
    } else {
        c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev || bev_read_more_install(c->bev) != 0) goto fail;
    }
    bev_start(c);

    /* Async DNS, except for literals (none needed) and mDNS ".local" names,
     * which only the system resolver (nss-mdns) knows: those block briefly. */
    size_t hl = strlen(u.host);
    int mdns = hl > 6 && strcasecmp(u.host + hl - 6, ".local") == 0;
    if (!u.host_is_ip && !mdns) {
        c->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
        if (!c->dns) log_debug("ws: evdns unavailable, resolving %s synchronously", u.host);
    }
    arm_connect_timeout(c, o);

    *out = c;
    /* Errors found synchronously here are reported from the loop (via leave
     * -> deferred teardown would run on_close before the caller has *out), so
     * we hold a frame and convert a teardown request into a timer. */
    enter(c);
    if (bufferevent_socket_connect_hostname(c->bev, c->dns, AF_UNSPEC, u.host, u.port) != 0
        && !c->teardown_pending) {
        defer_teardown(c, 1006, "connect failed");
    }
    if (c->teardown_pending) {
        struct timeval zero = {0, 0};
        evtimer_add(c->timer, &zero);   /* timer_cb's leave() runs the teardown */
    }
    c->depth--;                         /* no leave(): nothing may run synchronously */
    return 0;

fail:
    real_free(c);
    return -1;
}

/* ---- server --------------------------------------------------------------- */

int ws_server_accept(struct event_base *base, struct bufferevent *bev, const char *key,
                     size_t max_msg_bytes, const ws_callbacks *cb, void *arg, ws_conn **out)
{
    char accept[29];
    if (!base || !bev || !cb || !out || ws_accept_value(key, accept) != 0) return -1;
    ws_conn *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->base = base;
    c->cb = *cb;
    c->arg = arg;
    c->is_client = 0;
    c->max_msg = max_msg_bytes ? max_msg_bytes : WS_DEFAULT_MAX_MSG;
    c->timer = evtimer_new(base, timer_cb, c);
    if (!c->timer || setup_wslay(c) != 0) {
        real_free(c);
        return -1;
    }
    char resp[160];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
    if (bufferevent_write(bev, resp, (size_t)n) != 0) {
        real_free(c);
        return -1;
    }
    c->bev = bev;
    c->state = WS_ST_OPEN;
    bufferevent_setwatermark(bev, EV_READ, 0, 0);
    bev_start(c);
    *out = c;
    /* Bytes that came with the upgrade request are handled from the loop. */
    if (evbuffer_get_length(bufferevent_get_input(bev)) > 0) bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    return 0;
}

/* ---- sending, closing, freeing ----------------------------------------------- */

int ws_send_text(ws_conn *c, const char *msg, size_t len)
{
    if (!c || c->state != WS_ST_OPEN || !c->wslay || c->free_pending) return -1;
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)msg, len};
    if (wslay_event_queue_msg(c->wslay, &m) != 0) return -1;
    if (c->depth > 0) {
        c->send_pending = 1;
        return 0;
    }
    enter(c);
    pump(c);
    leave(c);
    return 0;
}

size_t ws_pending_bytes(const ws_conn *c)
{
    if (!c || !c->bev) return 0;
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

void ws_close(ws_conn *c, int code, const char *reason)
{
    if (!c || c->free_pending || c->state == WS_ST_DEAD) return;
    if (c->state == WS_ST_CONNECTING || c->state == WS_ST_HANDSHAKE) {
        /* Reported from the loop, never from inside ws_close itself. */
        defer_teardown(c, 1006, "closed before open");
        struct timeval zero = {0, 0};
        evtimer_add(c->timer, &zero);
        return;
    }
    if (c->state != WS_ST_OPEN) return;
    size_t rl = reason ? strnlen(reason, sizeof c->close_reason - 1) : 0;
    if (rl) memcpy(c->close_reason, reason, rl);
    c->close_reason[rl] = '\0';
    c->close_code = code > 0 ? code : 1000;
    c->close_req = 1;
    c->state = WS_ST_CLOSING;
    struct timeval tv = {WS_CLOSE_TIMEOUT_MS / 1000, (WS_CLOSE_TIMEOUT_MS % 1000) * 1000};
    evtimer_add(c->timer, &tv);
    if (c->depth > 0) return;  /* leave() pumps */
    enter(c);
    pump(c);
    leave(c);
}

static void real_free(ws_conn *c)
{
    if (c->timer) event_free(c->timer);
    if (c->bev) bufferevent_free(c->bev);
    if (c->wslay) wslay_event_context_free(c->wslay);
    if (c->dns) evdns_base_free(c->dns, 1);
    if (c->ssl_ctx) SSL_CTX_free(c->ssl_ctx);
    free(c->request);
    free(c);
}

void ws_free(ws_conn *c)
{
    if (!c) return;
    if (c->depth > 0) {
        c->free_pending = 1;
        if (c->timer) evtimer_del(c->timer);
        return;
    }
    real_free(c);
}
