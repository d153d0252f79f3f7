/* ha_filter.h -- Home Assistant's include/exclude entity filter.
 *
 * Why: a user switching from HA's InfluxDB integration keeps their
 * `include:`/`exclude:` blocks, and HA's rules for combining them are not
 * the obvious ones (an exclude-domain is ignored once a domain or glob is
 * included). This is HA's generate_filter(), as written down in
 * ../shared/reference/ha-websocket-protocol.md §3.1, its six cases:
 *  1. no filter: pass;  2. includes only: listed passes, else drop;
 *  3. excludes only: listed drops, else pass;
 *  4. domain or glob includes: include-entity passes, exclude-entity drops,
 *     include-glob passes, exclude-glob drops, include-domain passes, drop;
 *  5. only domain/glob excludes (+ include entities): include-entity passes,
 *     any exclude drops, else pass;
 *  6. entity lists only: only the included entities pass.
 * Globs are fnmatch patterns ('*', '?', '[...]'), case-sensitive, whole id.
 *
 * Ownership: the filter owns copies of every string given to it. */
#ifndef HOMEIQ_HA_FILTER_H
#define HOMEIQ_HA_FILTER_H

#include <stddef.h>

typedef struct ha_strlist {
    char **v;
    size_t n;
} ha_strlist;

/* Appends a copy of s. 0, or -1 out of memory. */
int ha_strlist_add(ha_strlist *l, const char *s);
int ha_strlist_has(const ha_strlist *l, const char *s);
void ha_strlist_free(ha_strlist *l);

typedef struct ha_filter {
    ha_strlist include_entities, include_domains, include_globs;
    ha_strlist exclude_entities, exclude_domains, exclude_globs;
} ha_filter;

/* 1 when entity_id ("domain.object") passes, 0 when it is filtered out. */
int ha_filter_pass(const ha_filter *f, const char *entity_id);
/* 1 when any list is non-empty. */
int ha_filter_active(const ha_filter *f);
/* 1 when entity_id matches any glob in l. */
int ha_filter_glob_any(const ha_strlist *l, const char *entity_id);
void ha_filter_free(ha_filter *f);

#endif
