/* retention_rules.h -- RETENTION_OVERRIDES: how long raw events of one domain
 * or one entity are kept, when it differs from RETENTION_DAYS.
 *
 * Why its own module: the syntax is a user-facing contract (a typo must stop
 * the start with a message naming the entry, never purge the wrong thing), so
 * parsing is pure and unit-tested apart from the SQL that applies it.
 *
 * Syntax: comma-separated NAME=DAYS. NAME with a '.' is an entity id
 * (sensor.kitchen_power), without one a domain (light). DAYS is a whole number
 * 0..1000000; 0 keeps them forever. Whitespace around names and numbers is
 * ignored; an empty string means no overrides. An entity rule beats its
 * domain's rule, which beats RETENTION_DAYS. A name may appear once.
 *   RETENTION_OVERRIDES="sensor.grid_energy=0,light=7,binary_sensor=14"
 *
 * Ownership: a retention_rules owns its names; free with retention_rules_free. */
#ifndef HOMEIQ_RETENTION_RULES_H
#define HOMEIQ_RETENTION_RULES_H

#include <stddef.h>

typedef struct retention_rule {
    char *name;
    int is_entity;
    long long days;     /* 0 = keep forever */
} retention_rule;

typedef struct retention_rules {
    retention_rule *r;
    size_t n;
} retention_rules;

/* 0, or -1 with err naming the bad entry ("RETENTION_OVERRIDES: ..."). */
int retention_rules_parse(const char *text, retention_rules *out, char *err, size_t errlen);
void retention_rules_free(retention_rules *rules);

/* Days for an event (entity_id/domain may be NULL): the entity's rule, else
 * the domain's, else def. */
long long retention_rules_days(const retention_rules *rules, const char *entity_id, const char *domain, long long def);

#endif
