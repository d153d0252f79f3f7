/* tls.h -- client TLS for outbound connections (OpenSSL under libevent's
 * bufferevent_openssl).
 *
 * Why a module: bufferevent_openssl verifies nothing by default, so every
 * client (the HA WebSocket in ws.c, outbound HTTP in httpc.c) must set peer
 * verification, SNI and the host/IP check itself. Doing it in one place keeps
 * the two from drifting apart. */
#ifndef HOMEIQ_TLS_H
#define HOMEIQ_TLS_H

#include <event2/bufferevent.h>
#include <openssl/ssl.h>
#include <stddef.h>

/* A client context: TLS >= 1.2; unless `insecure`, SSL_VERIFY_PEER against
 * `ca_file` (PEM bundle) or, when NULL/empty, the system default CA paths.
 * NULL on failure (logged). Free with SSL_CTX_free. */
SSL_CTX *tls_client_ctx_new(const char *ca_file, int insecure);

/* One connection's SSL for `host` (name or IPv4/IPv6 literal without
 * brackets): SNI for names, and unless `insecure`, the certificate must match
 * the name or IP. NULL on failure. */
SSL *tls_client_ssl_new(SSL_CTX *ctx, const char *host, int insecure);

/* Wraps `ssl` in a connecting client bufferevent (fd -1: the caller connects)
 * that tolerates a peer closing without close_notify. Takes ownership of
 * `ssl` even on failure. */
struct bufferevent *tls_client_bev_new(struct event_base *base, SSL *ssl);

/* Describes the pending OpenSSL error of `bev` ("tls: <reason> (<openssl>)",
 * with the verification result when that failed) into `out` and clears the
 * error queue. Returns 1 if there was a TLS error, else 0 (out untouched). */
int tls_describe_error(struct bufferevent *bev, char *out, size_t n);

#endif
