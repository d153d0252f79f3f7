/* config.c -- see config.h. */
#include "config.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int config_parse_args(int argc, char **argv, const char *usage, const config_var *vars) {
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) bad = 1;
        else bad = -1;
        if (bad) break;
    }
    if (!bad) return 0;
    FILE *out = bad > 0 ? stdout : stderr;
    if (bad < 0) fprintf(out, "unknown argument; see --help\n\n");
    fprintf(out, "%s\n\nConfiguration (environment variables):\n", usage);
    for (const config_var *v = vars; v && v->name; v++)
        fprintf(out, "  %-28s %s%s%s%s\n", v->name, v->help, v->def ? " (default: " : "",
                v->def ? v->def : "", v->def ? ")" : "");
    fprintf(out, "  %-28s %s\n  %-28s %s\n", "LOG_LEVEL", "debug|info|warn|error (default: info)",
            "LOG_FORMAT", "text|json (default: text)");
    return bad;
}

const char *config_str(const char *name, const char *def) {
    const char *v = getenv(name);
    return (v && *v) ? v : def;
}

int config_long(const char *name, long long def, long long min, long long max, long long *out) {
    const char *v = getenv(name);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x < min || x > max) {
        log_error("%s=%s is not an integer in [%lld, %lld]", name, v, min, max);
        return -1;
    }
    *out = x;
    return 0;
}

int config_bool(const char *name, int def, int *out) {
    const char *v = getenv(name);
    if (!v || !*v) *out = def;
    else if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) *out = 1;
    else if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) *out = 0;
    else {
        log_error("%s=%s is not a boolean (1/0, true/false)", name, v);
        return -1;
    }
    return 0;
}

char *config_secret(const char *name) {
    const char *v = getenv(name);
    char *secret = NULL;
    if (v && *v) {
        secret = strdup(v);
    } else {
        char fname[128];
        snprintf(fname, sizeof fname, "%s_FILE", name);
        const char *path = getenv(fname);
        if (!path || !*path) return NULL;
        FILE *f = fopen(path, "r");
        if (!f) {
            log_error("%s: cannot open %s: %s", fname, path, strerror(errno));
            return NULL;
        }
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) buf[--n] = '\0';
        secret = strdup(buf);
    }
    if (secret) log_add_secret(secret);
    return secret;
}
