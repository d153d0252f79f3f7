/* ws.h -- a small WebSocket (RFC 6455) layer: wslay for framing, libevent
 * bufferevents (plain or OpenSSL) for I/O, all on the caller's event_base.
 *
 * Why: the HA client in websocket-ingestion and the HA simulator both need
 * WebSocket, on the one libevent loop each process has; wslay does only the
 * framing and leaves I/O to us, so this file bridges wslay to bufferevents,
 * does the HTTP/1.1 upgrade (client side) and TLS set-up with real certificate
 * and hostname verification.
 *
 * Ownership and callbacks:
 *  - A ws_conn is owned by whoever created it (ws_client_connect /
 *    ws_server_accept). The owner frees it with ws_free().
 *  - on_close is called exactly once when the connection is gone for any
 *    reason (close handshake done, EOF, I/O or TLS error, handshake failure,
 *    connect timeout). After on_close no other callback is called. The owner
 *    calls ws_free() afterwards, and may do it inside on_close.
 *  - ws_send_text(), ws_close() and ws_free() may be called from inside any
 *    callback (ws_free inside a callback is deferred safely until the
 *    callback returns; no further callbacks are made for that conn).
 *  - ws_free() on a live connection closes the TCP connection at once,
 *    without a close frame, and discards unsent data; on_close is NOT called.
 *  - Message bodies are never logged above debug level (they carry tokens).
 */
#ifndef HOMEIQ_WS_H
#define HOMEIQ_WS_H

#include <stddef.h>

struct event_base;
struct bufferevent;

typedef struct ws_conn ws_conn;

typedef struct ws_callbacks {
    /* Client: the upgrade is done, messages may be sent. Not called on servers. */
    void (*on_open)(ws_conn *c, void *arg);
    /* One complete text message (reassembled from fragments). `msg` is not
     * NUL-terminated and is valid only during the call. */
    void (*on_text)(ws_conn *c, const char *msg, size_t len, void *arg);
    /* The connection is gone. `code` is the peer's close code when a close
     * frame was received (1005 when it carried none), else 1006 (abnormal:
     * EOF, error, timeout, failed handshake). `reason` is never NULL: the
     * peer's close reason or a short description of the local cause. */
    void (*on_close)(ws_conn *c, int code, const char *reason, void *arg);
} ws_callbacks;

typedef struct ws_client_opts {
    const char *ca_file;      /* wss: PEM CA bundle; NULL = system default paths */
    int insecure;             /* wss: 1 = skip certificate + hostname verification */
    size_t max_msg_bytes;     /* largest accepted inbound message; 0 = 16 MiB */
    int connect_timeout_ms;   /* TCP + TLS + upgrade; 0 = 10000 */
    const char *extra_headers;/* extra request header lines, each ending "\r\n"; may be NULL */
} ws_client_opts;

/* Starts connecting to `url` ("ws://host[:port]/path" or "wss://...", IPv6 as
 * "[::1]"). Returns 0 and sets *out (the conn exists from now on; on_open or
 * on_close follows later), or -1 for an invalid URL / set-up failure (nothing
 * allocated, no callback). `o` may be NULL for defaults; it and the callbacks
 * struct are copied. */
int ws_client_connect(struct event_base *base, const char *url, const ws_client_opts *o,
                      const ws_callbacks *cb, void *arg, ws_conn **out);

/* The client side on a bufferevent that is already connected (tests and
 * fuzzing: one end of a bufferevent pair, the other end plays the server).
 * `url` gives the Host header and path as for ws_client_connect; the upgrade
 * request is written at once and everything after it runs as after a TCP
 * connect. Takes `bev` (ws_free frees it) on 0; -1: bev NOT taken. */
int ws_client_attach(struct event_base *base, struct bufferevent *bev, const char *url, const ws_client_opts *o,
                     const ws_callbacks *cb, void *arg, ws_conn **out);

/* Server side. The caller accepted the TCP connection into `bev` (plain socket
 * bufferevent, BEV_OPT_CLOSE_ON_FREE), read and removed the HTTP upgrade request
 * from bev's input, and checked it (GET, Upgrade: websocket, version 13).
 * This writes the "101 Switching Protocols" answer with the Accept value for
 * `sec_websocket_key`, takes ownership of `bev` (its callbacks are replaced;
 * ws_free frees it) and processes any bytes already in its input.
 * max_msg_bytes 0 = 16 MiB. Returns 0 and sets *out, or -1 (bev NOT taken). */
int ws_server_accept(struct event_base *base, struct bufferevent *bev,
                     const char *sec_websocket_key, size_t max_msg_bytes,
                     const ws_callbacks *cb, void *arg, ws_conn **out);

/* Sec-WebSocket-Accept for a key: base64(SHA1(key + GUID)). out: 29 bytes. 0/-1. */
int ws_accept_value(const char *sec_websocket_key, char out[29]);

/* Queues one text message. 0, or -1 when the connection is not open (still
 * connecting, closing or gone) or out of memory. */
int ws_send_text(ws_conn *c, const char *msg, size_t len);

/* Bytes queued for sending and not yet written to the socket (back-pressure). */
size_t ws_pending_bytes(const ws_conn *c);

/* Starts the close handshake (code 1000 normal; reason may be NULL). The
 * connection is torn down when the peer answers, or after 3 s; then on_close. */
void ws_close(ws_conn *c, int code, const char *reason);

/* Tests: 0 gives every received byte to wslay (the reference reader), 1 (the
 * default) hands whole valid text frames to on_text without it. Process-wide. */
void ws_set_fast_receive(int on);

/* Frees the connection (see the ownership rules above). NULL is fine. */
void ws_free(ws_conn *c);

#endif
