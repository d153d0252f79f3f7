/* tls.c -- see tls.h. */
#include "tls.h"

#include "log.h"

#include <arpa/inet.h>
#include <stdio.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

static int host_is_ip(const char *host)
{
    unsigned char tmp[16];
    return inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
}

SSL_CTX *tls_client_ctx_new(const char *ca_file, int insecure)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return ctx;
    }
    int ok = ca_file && *ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                                 : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        log_error("tls: cannot load CA certificates%s%s", ca_file ? " from " : "", ca_file ? ca_file : "");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

SSL *tls_client_ssl_new(SSL_CTX *ctx, const char *host, int insecure)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl) return NULL;
    int ip = host_is_ip(host);
    if (!ip) SSL_set_tlsext_host_name(ssl, host);
    if (!insecure) {
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) : SSL_set1_host(ssl, host);
        if (ok != 1) {
            SSL_free(ssl);
            return NULL;
        }
    }
    return ssl;
}

struct bufferevent *tls_client_bev_new(struct event_base *base, SSL *ssl)
{
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

int tls_describe_error(struct bufferevent *bev, char *out, size_t n)
{
    unsigned long e = bev ? bufferevent_get_openssl_error(bev) : 0;
    if (!e) return 0;
    if (ERR_GET_LIB(e) == 0) {
        /* a socket-level error recorded by bufferevent_openssl (refused,
         * reset...): not a TLS problem; let the caller describe it */
        while (bufferevent_get_openssl_error(bev)) {}
        return 0;
    }
    char eb[160];
    ERR_error_string_n(e, eb, sizeof eb);
    /* Verification errors are more useful than "certificate verify failed". */
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (vr != X509_V_OK)
        snprintf(out, n, "tls: %s (%s)", X509_verify_cert_error_string(vr), eb);
    else
        snprintf(out, n, "tls: %s", eb);
    while (bufferevent_get_openssl_error(bev)) {}
    while (ERR_get_error()) {}
    return 1;
}
