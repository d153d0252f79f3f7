/* config.c -- see config.h. */
#include "config.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const config_var *config_registered;

/* ---- parsing one value --------------------------------------------------------- */

static int config_parse_int(const char *text, long long *out) {
    char *end;
    errno = 0;
    long long x = strtoll(text, &end, 10);
    if (errno || end == text || *end) return -1;
    *out = x;
    return 0;
}

static int config_parse_bool(const char *v, int *out) {
    if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) *out = 1;
    else if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) *out = 0;
    else return -1;
    return 0;
}

/* ---- the table ------------------------------------------------------------------ */

void config_use(const config_var *vars) {
    config_registered = vars;
}

const config_var *config_find(const config_var *vars, const char *name) {
    if (!vars) vars = config_registered;
    for (const config_var *v = vars; v && v->name; v++)
        if (strcmp(v->name, name) == 0) return v;
    return NULL;
}

static const config_var *config_declared(const config_var *vars, const char *name, config_type type) {
    const config_var *v = config_find(vars, name);
    if (!v) log_error("configuration: %s is read but not declared in the table", name);
    else if (v->type != type) log_error("configuration: %s is declared with another type", name);
    else return v;
    return NULL;
}

/* 0 when every integer/boolean default of the table parses and lies in its range. */
static int config_check_table(const config_var *vars) {
    int bad = 0;
    for (const config_var *v = vars; v && v->name; v++) {
        long long x;
        int b;
        if (!v->def) continue;
        if (v->type == CONFIG_INT && (config_parse_int(v->def, &x) || x < v->min || x > v->max)) {
            fprintf(stderr, "configuration table: %s default %s is not an integer in [%lld, %lld]\n", v->name, v->def,
                    v->min, v->max);
            bad = 1;
        } else if (v->type == CONFIG_BOOL && config_parse_bool(v->def, &b)) {
            fprintf(stderr, "configuration table: %s default %s is not a boolean\n", v->name, v->def);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

int config_int(const config_var *vars, const char *name, long long *out) {
    const config_var *v = config_declared(vars, name, CONFIG_INT);
    if (!v) return -1;
    const char *text = getenv(name);
    if (!text || !*text) text = v->def;
    long long x = 0;
    if (text && (config_parse_int(text, &x) || x < v->min || x > v->max)) {
        log_error("%s=%s is not an integer in [%lld, %lld]", name, text, v->min, v->max);
        return -1;
    }
    *out = x;
    return 0;
}

int config_flag(const config_var *vars, const char *name, int *out) {
    const config_var *v = config_declared(vars, name, CONFIG_BOOL);
    if (!v) return -1;
    const char *text = getenv(name);
    if (!text || !*text) text = v->def;
    int b = 0;
    if (text && config_parse_bool(text, &b)) {
        log_error("%s=%s is not a boolean (1/0, true/false)", name, text);
        return -1;
    }
    *out = b;
    return 0;
}

const char *config_text(const config_var *vars, const char *name) {
    const config_var *v = config_declared(vars, name, CONFIG_TEXT);
    const char *text = getenv(name);
    if (text && *text) return text;
    return v ? v->def : NULL;
}

/* ---- documentation --------------------------------------------------------------- */

/* A range bound as text: large powers of two as 2^N (1125899906842624 says less than 2^50). */
static const char *config_bound(long long x, char *buf, size_t n) {
    if (x >= (1LL << 30) && (x & (x - 1)) == 0) snprintf(buf, n, "2^%d", __builtin_ctzll((unsigned long long)x));
    else snprintf(buf, n, "%lld", x);
    return buf;
}

static const char *config_range(const config_var *v, char *buf, size_t n) {
    char lo[32], hi[32];
    if (v->type == CONFIG_INT)
        snprintf(buf, n, "%s..%s", config_bound(v->min, lo, sizeof lo), config_bound(v->max, hi, sizeof hi));
    else if (v->type == CONFIG_BOOL) snprintf(buf, n, "0, 1");
    else buf[0] = '\0';
    return buf;
}

static void config_print_help(FILE *out, const config_var *vars) {
    for (const config_var *v = vars; v && v->name; v++) {
        char range[80];
        config_range(v, range, sizeof range);
        fprintf(out, "  %-28s %s", v->name, v->help);
        if (v->def && v->type == CONFIG_INT) fprintf(out, " (default: %s; %s)", v->def, range);
        else if (v->def) fprintf(out, " (default: %s)", v->def);
        else if (v->type == CONFIG_INT) fprintf(out, " (%s)", range);
        fputc('\n', out);
    }
    fprintf(out, "  %-28s %s\n  %-28s %s\n", "LOG_LEVEL", log_level_help(), "LOG_FORMAT", log_format_help());
}

/* Markdown cell text: '|' escaped so a help text cannot split the row, '<' so
 * that "<token>" is not taken for an HTML tag. */
static void config_md_cell(const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", stdout);
        else if (*s == '|') fputs("\\|", stdout);
        else fputc(*s, stdout);
    }
}

void config_markdown(const config_var *vars, int shared) {
    for (const config_var *v = vars; v && v->name; v++) {
        if (!v->shared != !shared) continue;
        printf("| `%s` | ", v->name);
        if (v->def) printf("`%s`", v->def);
        else printf("—");
        char range[80];
        printf(" | %s | ", config_range(v, range, sizeof range));
        config_md_cell(v->help);
        printf(" |\n");
    }
}

int config_parse_args(int argc, char **argv, const char *usage, const config_var *vars) {
    config_use(vars);
    if (config_check_table(vars) != 0) return -1;
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        if (strcmp(argv[i], "--config-markdown") == 0 || strcmp(argv[i], "--config-markdown=shared") == 0) {
            config_markdown(vars, argv[i][17] == '=');
            return 1;
        }
        bad = (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) ? 1 : -1;
    }
    if (!bad) return 0;
    FILE *out = bad > 0 ? stdout : stderr;
    if (bad < 0) fprintf(out, "unknown argument; see --help\n\n");
    fprintf(out, "%s\n\nConfiguration (environment variables):\n", usage);
    config_print_help(out, vars);
    return bad;
}

/* ---- older getters (default at the call site) ------------------------------------ */

/* -1 (logged) when the registered table declares `name` with another default. */
static int config_agrees(const char *name, const char *def_text) {
    const config_var *v = config_find(NULL, name);
    if (!v || !v->def || (def_text && strcmp(v->def, def_text) == 0)) return 0; /* NULL: computed default */
    log_error("configuration: %s has default %s in the table but %s in the code", name, v->def ? v->def : "(unset)",
              def_text ? def_text : "(unset)");
    return -1;
}

/* No agreement check: config_str(name, NULL) asks "is it set?". */
const char *config_str(const char *name, const char *def) {
    const char *v = getenv(name);
    return (v && *v) ? v : def;
}

int config_long(const char *name, long long def, long long min, long long max, long long *out) {
    char def_text[32];
    snprintf(def_text, sizeof def_text, "%lld", def);
    if (config_agrees(name, def_text) != 0) return -1;
    const char *v = getenv(name);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    long long x;
    if (config_parse_int(v, &x) || x < min || x > max) {
        log_error("%s=%s is not an integer in [%lld, %lld]", name, v, min, max);
        return -1;
    }
    *out = x;
    return 0;
}

int config_bool(const char *name, int def, int *out) {
    if (config_agrees(name, def ? "1" : "0") != 0) return -1;
    const char *v = getenv(name);
    if (!v || !*v) *out = def;
    else if (config_parse_bool(v, out)) {
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
