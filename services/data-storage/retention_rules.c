/* retention_rules.c -- see retention_rules.h. */
#include "retention_rules.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rr_name_ok(const char *s, size_t n) {
    if (n == 0 || n > 255) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '_' || c == '.' || c == '-')) return 0;
    }
    return s[0] != '.' && s[n - 1] != '.';
}

static void rr_trim(const char **s, size_t *n) {
    while (*n && isspace((unsigned char)**s)) (*s)++, (*n)--;
    while (*n && isspace((unsigned char)(*s)[*n - 1])) (*n)--;
}

static int rr_entry(retention_rules *out, const char *p, size_t len, char *err, size_t errlen) {
    const char *eq = memchr(p, '=', len);
    int shown = (int)(len > 60 ? 60 : len);
    if (!eq) {
        snprintf(err, errlen, "RETENTION_OVERRIDES: \"%.*s\" is not NAME=DAYS", shown, p);
        return -1;
    }
    const char *name = p, *num = eq + 1;
    size_t nlen = (size_t)(eq - p), vlen = len - nlen - 1;
    rr_trim(&name, &nlen);
    rr_trim(&num, &vlen);
    if (!rr_name_ok(name, nlen)) {
        snprintf(err, errlen, "RETENTION_OVERRIDES: \"%.*s\": the name must be a domain or an entity id "
                 "([a-z0-9_-], one '.' for an entity)", shown, p);
        return -1;
    }
    long long days = 0;
    int ok = vlen > 0 && vlen <= 7;
    for (size_t i = 0; ok && i < vlen; i++) {
        if (num[i] < '0' || num[i] > '9') ok = 0;
        else days = days * 10 + (num[i] - '0');
    }
    if (!ok || days > 1000000) {
        snprintf(err, errlen, "RETENTION_OVERRIDES: \"%.*s\": DAYS must be a whole number from 0 (keep forever) to "
                 "1000000", shown, p);
        return -1;
    }
    for (size_t i = 0; i < out->n; i++)
        if (strlen(out->r[i].name) == nlen && memcmp(out->r[i].name, name, nlen) == 0) {
            snprintf(err, errlen, "RETENTION_OVERRIDES: \"%.*s\" is given twice", (int)nlen, name);
            return -1;
        }
    retention_rule *r = realloc(out->r, (out->n + 1) * sizeof *r);
    if (!r) return snprintf(err, errlen, "out of memory"), -1;
    out->r = r;
    char *copy = strndup(name, nlen);
    if (!copy) return snprintf(err, errlen, "out of memory"), -1;
    out->r[out->n++] = (retention_rule){copy, memchr(name, '.', nlen) != NULL, days};
    return 0;
}

int retention_rules_parse(const char *text, retention_rules *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    const char *p = text ? text : "";
    size_t all = strlen(p);
    rr_trim(&p, &all);
    if (all == 0) return 0;
    const char *end = p + all;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t len = comma ? (size_t)(comma - p) : (size_t)(end - p);
        if (rr_entry(out, p, len, err, errlen) != 0) {
            retention_rules_free(out);
            return -1;
        }
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

void retention_rules_free(retention_rules *rules) {
    for (size_t i = 0; i < rules->n; i++) free(rules->r[i].name);
    free(rules->r);
    memset(rules, 0, sizeof *rules);
}

long long retention_rules_days(const retention_rules *rules, const char *entity_id, const char *domain,
                               long long def) {
    long long dom = -1;
    for (size_t i = 0; i < rules->n; i++) {
        const retention_rule *r = &rules->r[i];
        if (r->is_entity && entity_id && strcmp(r->name, entity_id) == 0) return r->days;
        if (!r->is_entity && domain && strcmp(r->name, domain) == 0) dom = r->days;
    }
    return dom >= 0 ? dom : def;
}
