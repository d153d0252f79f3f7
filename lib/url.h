/* url.h -- splitting "scheme://host[:port][/path][?query][#fragment]" URLs.
 * The HTTP client (http/https) and the WebSocket client (ws/wss) both need the
 * same split, with IPv6 literals in brackets and the default ports. */
#ifndef HOMEIQ_URL_H
#define HOMEIQ_URL_H

#include <stddef.h>

typedef struct url_parts {
    int tls;             /* the URL used the secure scheme */
    int ipv6;            /* the host was a bracketed literal */
    int port;            /* explicit, or 80 / 443 */
    char host[256];
    const char *target;  /* points into the URL: "/path?query" (may be "" or start with '?') */
    size_t target_len;   /* without the fragment */
} url_parts;

/* Splits `url` whose scheme is `plain` or `secure` (e.g. "http", "https";
 * case-insensitive). The target has no spaces or control characters.
 * 0, or -1 when the URL is malformed. */
int url_split(const char *url, const char *plain, const char *secure, url_parts *out);

/* 1 when the target must be prefixed with "/" to be a request target. */
int url_target_needs_slash(const url_parts *u);

#endif
