/* ctl_http.c -- the blocking HTTP helpers every homeiqctl subcommand uses.
 *
 * Why: a CLI does one request at a time and waits, so it uses lib/httpc's
 * blocking httpc_fetch() rather than an event loop. Keeping URL assembly,
 * timeouts, JSON parsing of answers and "why did it fail" texts here means
 * health, validate and events report problems the same way. */
#include "ctl.h"
#include "auth.h"
#include "config.h"
#include "httpc.h"
#include "url.h"

#include <event2/http.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

volatile int ctl_interrupted;

/* Names and variables: lib/url.h; the defaults are in ctl_main.c's table (URL_*_VAR). */
_Static_assert((int)CTL_NSERVICES == (int)URL_NSERVICES && (int)CTL_STORAGE == (int)URL_STORAGE,
               "ctl_service is url_service's order");

const char *ctl_service_name(ctl_service s) { return url_service_name((url_service)s); }

const char *ctl_service_url(ctl_service s) {
    static char urls[CTL_NSERVICES][512];
    const char *v = config_text(NULL, url_service_env((url_service)s));
    size_t n = url_trim_len(v, strlen(v));
    snprintf(urls[s], sizeof urls[s], "%.*s", (int)n, v);
    return urls[s];
}

int ctl_http(const char *method, const char *base, const char *path, const char *body, long timeout_ms,
             ctl_reply *r) {
    memset(r, 0, sizeof *r);
    char *url = url_join(base, path);
    if (!url) {
        r->body = strdup("out of memory");
        return -1;
    }
    const char *headers[] = {auth_header(), NULL};
    httpc_request req = {
        .method = method,
        .url = url,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .headers = headers,
        .timeout_ms = timeout_ms,
    };
    int rc = httpc_fetch(&req, &r->status, &r->body);
    free(url);
    if (!r->body) r->body = strdup("");
    if (rc != 0) return -1;
    if (r->body && r->body[0] == '{') r->json = json_loads(r->body, 0, NULL);
    return 0;
}

void ctl_reply_free(ctl_reply *r) {
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

void ctl_reply_reason(const ctl_reply *r, char *out, size_t outlen) {
    if (r->status == 0) {
        snprintf(out, outlen, "%s", r->body && r->body[0] ? r->body : "no answer");
        return;
    }
    static const char *const keys[] = {"reason", "error", "status", NULL};
    for (const char *const *k = keys; r->json && *k; k++) {
        const json_t *v = json_object_get(r->json, *k);
        if (json_is_string(v) && json_string_length(v) > 0) {
            snprintf(out, outlen, "%s", json_string_value(v));
            return;
        }
    }
    snprintf(out, outlen, "HTTP %ld", r->status);
}

void ctl_reply_complain(ctl_service s, const char *path, const ctl_reply *r) {
    char why[300];
    ctl_reply_reason(r, why, sizeof why);
    if (r->status) fprintf(stderr, "homeiqctl: %s %s: HTTP %ld: %s\n", ctl_service_name(s), path, r->status, why);
    else fprintf(stderr, "homeiqctl: %s at %s: no answer: %s\n", ctl_service_name(s), ctl_service_url(s), why);
}

int ctl_query_add(char **qs, const char *key, const char *value) {
    char *enc = evhttp_uriencode(value, -1, 0); /* RFC 3986: all but unreserved */
    if (!enc) return -1;
    size_t old = *qs ? strlen(*qs) : 0;
    size_t add = strlen(key) + strlen(enc) + 3;
    char *p = realloc(*qs, old + add);
    if (!p) {
        free(enc);
        return -1;
    }
    snprintf(p + old, add, "%c%s=%s", old ? '&' : '?', key, enc);
    free(enc);
    *qs = p;
    return 0;
}

int ctl_parse_duration_ms(const char *s, long *ms) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0) return -1;
    double mult = 1000;
    if (strcmp(end, "ms") == 0) mult = 1;
    else if (strcmp(end, "m") == 0) mult = 60000;
    else if (*end && strcmp(end, "s") != 0) return -1;
    if (v * mult > 86400e3 * 365) return -1;
    *ms = (long)(v * mult);
    return 0;
}

void ctl_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !ctl_interrupted) {
    }
}
