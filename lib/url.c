/* url.c -- see url.h. */
#include "url.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Skips "<scheme>://" when url starts with it; returns the rest or NULL. */
static const char *url_after_scheme(const char *url, const char *scheme) {
    size_t n = strlen(scheme);
    if (strncasecmp(url, scheme, n) != 0 || strncmp(url + n, "://", 3) != 0) return NULL;
    return url + n + 3;
}

int url_split(const char *url, const char *plain, const char *secure, url_parts *out) {
    memset(out, 0, sizeof *out);
    const char *p = url ? url_after_scheme(url, plain) : NULL;
    if (!p && url && (p = url_after_scheme(url, secure)) != NULL) out->tls = 1;
    if (!p) return -1;
    out->port = out->tls ? 443 : 80;
    const char *hs = p, *he;
    if (*p == '[') {
        hs = p + 1;
        he = strchr(hs, ']');
        if (!he) return -1;
        p = he + 1;
        out->ipv6 = 1;
    } else {
        he = p + strcspn(p, ":/?#");
        p = he;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof out->host) return -1;
    memcpy(out->host, hs, hl);
    out->host[hl] = '\0';
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535) return -1;
        out->port = (int)port;
        p = end;
    }
    size_t tl = strcspn(p, "#");
    if (tl && *p != '/' && *p != '?') return -1;
    for (size_t i = 0; i < tl; i++)
        if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f) return -1;
    out->target = p;
    out->target_len = tl;
    return 0;
}

int url_target_needs_slash(const url_parts *u) { return u->target_len == 0 || u->target[0] == '?'; }

/* ---- the services ------------------------------------------------------------ */

static const struct {
    const char *name, *env;
} url_services[URL_NSERVICES] = {
    [URL_INGESTION] = {"websocket-ingestion", URL_INGESTION_ENV},
    [URL_ENRICHMENT] = {"enrichment-pipeline", URL_ENRICHMENT_ENV},
    [URL_STORAGE] = {"data-storage", URL_STORAGE_ENV},
};

const char *url_service_name(url_service s) { return url_services[s].name; }
const char *url_service_env(url_service s) { return url_services[s].env; }

/* ---- joining ---------------------------------------------------------------- */

size_t url_trim_len(const char *s, size_t len) {
    while (len > 0 && s[len - 1] == '/') len--;
    return len;
}

char *url_join(const char *base, const char *path) {
    size_t bl = url_trim_len(base, strlen(base));
    while (*path == '/') path++;
    size_t pl = strlen(path);
    char *url = malloc(bl + 1 + pl + 1);
    if (!url) return NULL;
    memcpy(url, base, bl);
    if (pl) url[bl++] = '/';
    memcpy(url + bl, path, pl + 1);
    return url;
}
