/* auth.c -- see auth.h. */
#include "auth.h"
#include "config.h"
#include "log.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static int auth_loaded, auth_load_rc;
static char *auth_token;      /* NULL = open */
static char *auth_hdr;        /* "Authorization: Bearer <token>" */
static int auth_metrics_protected = 1;

static int auth_check_file_mode(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        log_error("HOMEIQ_API_TOKEN_FILE=%s: %s", path, strerror(errno));
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        log_warn("HOMEIQ_API_TOKEN_FILE=%s is readable by group or others (mode %03o); chmod 600 it",
                 path, (unsigned)(st.st_mode & 0777));
    return 0;
}

/* The table of the variables read here (the program's table includes the same macro). */
static const config_var auth_vars[] = {AUTH_CONFIG_VARS, CONFIG_END};

static int auth_load_once(void) {
    int metrics = 1;
    if (config_flag(auth_vars, "METRICS_AUTH", &metrics) != 0) return -1;
    auth_metrics_protected = metrics;
    const char *file = getenv("HOMEIQ_API_TOKEN_FILE");
    const char *env = getenv("HOMEIQ_API_TOKEN");
    int from_file = !(env && *env) && file && *file;
    if (from_file && auth_check_file_mode(file) != 0) return -1;
    auth_token = config_secret("HOMEIQ_API_TOKEN");
    if (from_file && (!auth_token || !*auth_token)) {
        log_error("HOMEIQ_API_TOKEN_FILE=%s: %s", file, auth_token ? "the file is empty" : "cannot be read");
        return -1;
    }
    if (!auth_token) return 0;
    for (const char *p = auth_token; *p; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            log_error("HOMEIQ_API_TOKEN: the token must be printable ASCII without spaces");
            return -1;
        }
    }
    if (strlen(auth_token) < 16) log_warn("HOMEIQ_API_TOKEN is shorter than 16 characters; use a long random token");
    size_t n = strlen(auth_token) + 32;
    auth_hdr = malloc(n);
    if (!auth_hdr) return -1;
    snprintf(auth_hdr, n, "Authorization: Bearer %s", auth_token);
    return 0;
}

int auth_load(void) {
    if (!auth_loaded) {
        auth_loaded = 1;
        auth_load_rc = auth_load_once();
    }
    return auth_load_rc;
}

int auth_enabled(void) { return auth_token != NULL; }

const char *auth_header(void) { return auth_hdr; }

static int auth_is_loopback(const char *bind) {
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(bind, "localhost") == 0) return 1;
    if (inet_pton(AF_INET, bind, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, bind, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

int auth_bind_allowed(const char *bind) {
    if (auth_load() != 0) return -1;
    if (auth_token || auth_is_loopback(bind)) return 0;
    int allow = 0;
    if (config_flag(auth_vars, "HOMEIQ_ALLOW_UNAUTHENTICATED", &allow) != 0) return -1;
    if (!allow) {
        log_error("refusing to listen on %s without an API token: set HOMEIQ_API_TOKEN_FILE (or HOMEIQ_API_TOKEN), "
                  "or HOMEIQ_ALLOW_UNAUTHENTICATED=1 to accept unauthenticated requests from the network",
                  bind);
        return -1;
    }
    log_warn("listening on %s WITHOUT an API token (HOMEIQ_ALLOW_UNAUTHENTICATED=1): anyone who can reach it "
             "can read and write this home's history",
             bind);
    return 0;
}

int auth_path_open(const char *path) {
    if (strcmp(path, "/health") == 0) return 1;
    if (strcmp(path, "/metrics") == 0) return !auth_metrics_protected;
    return 0;
}

/* Compares without an early exit, so the time taken says nothing about how
 * much of the token matched. The length is not secret. */
static int auth_equal(const char *a, size_t alen, const char *b, size_t blen) {
    unsigned char d = alen != blen;
    size_t n = alen < blen ? alen : blen;
    for (size_t i = 0; i < n; i++) d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

int auth_value_ok(const char *h) {
    if (!auth_token) return 1;
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return 0;
    const char *t = h + 7;
    while (*t == ' ') t++;
    size_t tl = strlen(t);
    while (tl && t[tl - 1] == ' ') tl--;
    return auth_equal(t, tl, auth_token, strlen(auth_token));
}

int auth_check(struct evhttp_request *req) {
    if (!auth_token) return 0;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (auth_value_ok(h)) return 0;
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "WWW-Authenticate", h ? "Bearer error=\"invalid_token\"" : "Bearer");
    evhttp_add_header(out, "Content-Type", "application/json");
    struct evbuffer *b = evhttp_request_get_output_buffer(req);
    evbuffer_add_printf(b, "{\"error\":\"%s\"}",
                        h ? "invalid API token" : "API token required: send 'Authorization: Bearer <token>'");
    evhttp_send_reply(req, 401, "Unauthorized", NULL);
    return -1;
}

void auth_shutdown(void) {
    free(auth_token);
    free(auth_hdr);
    auth_token = auth_hdr = NULL;
    auth_loaded = 0;
}
