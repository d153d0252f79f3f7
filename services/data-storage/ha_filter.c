/* ha_filter.c -- see ha_filter.h. */
#include "ha_filter.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

int ha_strlist_add(ha_strlist *l, const char *s) {
    char **v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v) return -1;
    l->v = v;
    if (!(v[l->n] = strdup(s))) return -1;
    l->n++;
    return 0;
}

int ha_strlist_has(const ha_strlist *l, const char *s) {
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0) return 1;
    return 0;
}

void ha_strlist_free(ha_strlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int ha_filter_glob_any(const ha_strlist *l, const char *entity_id) {
    /* FNM_NOESCAPE: Python's fnmatch has no backslash escapes */
    for (size_t i = 0; i < l->n; i++)
        if (fnmatch(l->v[i], entity_id, FNM_NOESCAPE) == 0) return 1;
    return 0;
}

/* entity_id's domain is in l */
static int ha_filter_domain_in(const ha_strlist *l, const char *entity_id) {
    const char *dot = strchr(entity_id, '.');
    size_t n = dot ? (size_t)(dot - entity_id) : strlen(entity_id);
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->v[i]) == n && memcmp(l->v[i], entity_id, n) == 0) return 1;
    return 0;
}

int ha_filter_active(const ha_filter *f) {
    return f->include_entities.n || f->include_domains.n || f->include_globs.n || f->exclude_entities.n ||
           f->exclude_domains.n || f->exclude_globs.n;
}

int ha_filter_pass(const ha_filter *f, const char *e) {
    int have_inc = f->include_entities.n || f->include_domains.n || f->include_globs.n;
    int have_exc = f->exclude_entities.n || f->exclude_domains.n || f->exclude_globs.n;
    if (!have_inc && !have_exc) return 1; /* case 1 */
    if (have_inc && !have_exc)            /* case 2 */
        return ha_strlist_has(&f->include_entities, e) || ha_filter_domain_in(&f->include_domains, e) ||
               ha_filter_glob_any(&f->include_globs, e);
    if (!have_inc) /* case 3 */
        return !(ha_strlist_has(&f->exclude_entities, e) || ha_filter_domain_in(&f->exclude_domains, e) ||
                 ha_filter_glob_any(&f->exclude_globs, e));
    if (f->include_domains.n || f->include_globs.n) { /* case 4 */
        if (ha_strlist_has(&f->include_entities, e)) return 1;
        if (ha_strlist_has(&f->exclude_entities, e)) return 0;
        if (ha_filter_glob_any(&f->include_globs, e)) return 1;
        if (ha_filter_glob_any(&f->exclude_globs, e)) return 0;
        return ha_filter_domain_in(&f->include_domains, e);
    }
    if (f->exclude_domains.n || f->exclude_globs.n) { /* case 5 */
        if (ha_strlist_has(&f->include_entities, e)) return 1;
        return !(ha_strlist_has(&f->exclude_entities, e) || ha_filter_domain_in(&f->exclude_domains, e) ||
                 ha_filter_glob_any(&f->exclude_globs, e));
    }
    return ha_strlist_has(&f->include_entities, e); /* case 6 */
}

void ha_filter_free(ha_filter *f) {
    ha_strlist_free(&f->include_entities);
    ha_strlist_free(&f->include_domains);
    ha_strlist_free(&f->include_globs);
    ha_strlist_free(&f->exclude_entities);
    ha_strlist_free(&f->exclude_domains);
    ha_strlist_free(&f->exclude_globs);
}
