/* clickhouse_sql.c -- see clickhouse_sql.h. */
#include "clickhouse_sql.h"
#include "clickhouse_registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ch_ident_ok(const char *s) {
    if (!s || !*s || strlen(s) > 64) return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        if (!alpha && !(p > s && c >= '0' && c <= '9')) return 0;
    }
    return 1;
}

void ch_quote(sbuf *b, const char *s) {
    sbuf_addc(b, '\'');
    for (const char *p = s; *p; p++) {
        if (*p == '\\' || *p == '\'') sbuf_addc(b, '\\');
        sbuf_addc(b, *p);
    }
    sbuf_addc(b, '\'');
}

void ch_urlencode(sbuf *b, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            c == '.' || c == '~') {
            sbuf_addc(b, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sbuf_add(b, e, 3);
        }
    }
}

/* ---- schema v1 ---------------------------------------------------------- */

/* Columns of events: the record text is what reads answer (exact bytes);
 * the others are for filtering, ordering and partitioning. time is the
 * second of time_fired (clamped to DateTime's 1970..2106), time_us the
 * microsecond. */
#define CH_EVENTS_COLUMNS                                                                                            \
    "(home_id String, event_id String, time DateTime, time_us Int64, entity_id String, domain String, "             \
    "event_type String, stored_at_us Int64, record String" CH_REGISTRY_COLUMNS ")"
/* (v3: the registry columns, clickhouse_registry.h.) The replacing key holds the identity: a re-sent event has the same home,
 * entity, time and event_id, so it collapses into one row on merge; reads
 * are exact before that (LIMIT 1 BY event_id). */
#define CH_EVENTS_ORDER "PARTITION BY toYYYYMM(time) ORDER BY (home_id, entity_id, time_us, event_id)"
/* All copies of an event share home and entity: one shard collapses them. */
#define CH_EVENTS_SHARD "cityHash64(home_id, entity_id)"
/* dl_key is a hash of the dead letter's source, reason and text: a retried
 * batch's dead letters collapse too. */
#define CH_DEAD_COLUMNS                                                                                              \
    "(home_id String, dl_key String, id Int64, received_at DateTime, received_at_us Int64, seq UInt32, "            \
    "source String, error String, raw String)"
#define CH_DEAD_ORDER "PARTITION BY toYYYYMM(received_at) ORDER BY (home_id, dl_key)"
/* v2: long-term statistics (clickhouse_stats.c): one row per home, entity,
 * period (0 = 5 minutes, 1 = hour) and start; a recomputation writes a higher
 * version, reads take the highest (LIMIT 1 BY) before ClickHouse merges. */
#define CH_STATS_COLUMNS                                                                                             \
    "(home_id String, entity_id String, period UInt8, start_us Int64, start DateTime, version Int64, kind UInt8, "  \
    "flags UInt8, mean Float64, min Float64, max Float64, last Float64, state Float64, sum Float64, "               \
    "last_reset_us Int64, count Int64, covered_us Int64)"
#define CH_STATS_ORDER "PARTITION BY toYYYYMM(start) ORDER BY (home_id, entity_id, period, start_us)"

static char *ch_printf_take(sbuf *b) {
    if (sbuf_failed(b)) {
        sbuf_free(b);
        return NULL;
    }
    return sbuf_take(b, NULL);
}

static char *ch_stmt_database(const char *db, const char *cluster) {
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "CREATE DATABASE IF NOT EXISTS %s", db);
    if (cluster) sbuf_printf(&b, " ON CLUSTER %s", cluster);
    return ch_printf_take(&b);
}

static char *ch_stmt_version_table(const char *db, const char *cluster) {
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "CREATE TABLE IF NOT EXISTS %s.homeiq_schema", db);
    if (cluster) sbuf_printf(&b, " ON CLUSTER %s", cluster);
    sbuf_adds(&b, " (version UInt32, applied_at DateTime) ENGINE = TinyLog");
    return ch_printf_take(&b);
}

/* One table: single node, or the cluster's local table (local = 1) or its
 * Distributed table (local = 0). `version`: the ReplacingMergeTree's version
 * column, or NULL. */
static char *ch_stmt_table_v(const char *db, const char *cluster, const char *name, const char *columns,
                             const char *order, const char *shard_key, int local, const char *version) {
    sbuf b;
    sbuf_init(&b);
    if (!cluster) {
        sbuf_printf(&b, "CREATE TABLE IF NOT EXISTS %s.%s %s ENGINE = ReplacingMergeTree%s%s%s %s", db, name, columns,
                    version ? "(" : "", version ? version : "", version ? ")" : "", order);
    } else if (local) {
        sbuf_printf(&b,
                    "CREATE TABLE IF NOT EXISTS %s.%s_local ON CLUSTER %s %s ENGINE = ReplicatedReplacingMergeTree("
                    "'/clickhouse/tables/{shard}/%s/%s_local', '{replica}'%s%s) %s",
                    db, name, cluster, columns, db, name, version ? ", " : "", version ? version : "", order);
    } else {
        sbuf_printf(&b, "CREATE TABLE IF NOT EXISTS %s.%s ON CLUSTER %s %s ENGINE = Distributed(%s, %s, %s_local, %s)",
                    db, name, cluster, columns, cluster, db, name, shard_key);
    }
    return ch_printf_take(&b);
}

static char *ch_stmt_table(const char *db, const char *cluster, const char *name, const char *columns,
                           const char *order, const char *shard_key, int local) {
    return ch_stmt_table_v(db, cluster, name, columns, order, shard_key, local, NULL);
}

int ch_schema_statements(const char *db, const char *cluster, char **out, int max) {
    char *s[10];
    int n = 0;
    s[n++] = ch_stmt_database(db, cluster);
    s[n++] = ch_stmt_version_table(db, cluster);
    if (cluster) {
        s[n++] = ch_stmt_table(db, cluster, "events", CH_EVENTS_COLUMNS, CH_EVENTS_ORDER, NULL, 1);
        s[n++] = ch_stmt_table(db, cluster, "events", CH_EVENTS_COLUMNS, CH_EVENTS_ORDER, CH_EVENTS_SHARD, 0);
        s[n++] = ch_stmt_table(db, cluster, "dead_letters", CH_DEAD_COLUMNS, CH_DEAD_ORDER, NULL, 1);
        s[n++] = ch_stmt_table(db, cluster, "dead_letters", CH_DEAD_COLUMNS, CH_DEAD_ORDER, "cityHash64(home_id)", 0);
        s[n++] = ch_stmt_table_v(db, cluster, "statistics", CH_STATS_COLUMNS, CH_STATS_ORDER, NULL, 1, "version");
        s[n++] = ch_stmt_table_v(db, cluster, "statistics", CH_STATS_COLUMNS, CH_STATS_ORDER,
                                 "cityHash64(home_id, entity_id)", 0, "version");
    } else {
        s[n++] = ch_stmt_table(db, NULL, "events", CH_EVENTS_COLUMNS, CH_EVENTS_ORDER, NULL, 0);
        s[n++] = ch_stmt_table(db, NULL, "dead_letters", CH_DEAD_COLUMNS, CH_DEAD_ORDER, NULL, 0);
        s[n++] = ch_stmt_table_v(db, NULL, "statistics", CH_STATS_COLUMNS, CH_STATS_ORDER, NULL, 0, "version");
    }
    int bad = n > max;
    for (int i = 0; i < n; i++) bad |= !s[i];
    if (bad) {
        for (int i = 0; i < n; i++) free(s[i]);
        return -1;
    }
    memcpy(out, s, (size_t)n * sizeof *s);
    return n;
}

int ch_schema_upgrade_statements(const char *db, const char *cluster, long from, char **out, int max) {
    int n = 0;
    if (from >= 3) return 0;
    /* v3: the registry columns of events (18.16 has no ADD COLUMN IF NOT
     * EXISTS: one column per statement, "already exists" counts as done) --
     * on a cluster of the local tables; the Distributed table is made again
     * with them (18.16 refuses ALTER ... ON CLUSTER of a table that is not
     * replicated when the cluster's shards are; it holds no rows: inserts are
     * synchronous) */
    if (max < CH_REGISTRY_NCOLUMNS + 2) return -1;
    for (int c = 0; c < CH_REGISTRY_NCOLUMNS; c++) {
        sbuf b;
        sbuf_init(&b);
        sbuf_printf(&b, "ALTER TABLE %s.events%s", db, cluster ? "_local" : "");
        if (cluster) sbuf_printf(&b, " ON CLUSTER %s", cluster);
        sbuf_printf(&b, " ADD COLUMN %s", ch_registry_column_defs[c]);
        if (!(out[n] = ch_printf_take(&b))) goto fail;
        n++;
    }
    if (cluster) {
        sbuf b;
        sbuf_init(&b);
        sbuf_printf(&b, "DROP TABLE IF EXISTS %s.events ON CLUSTER %s", db, cluster);
        if (!(out[n] = ch_printf_take(&b))) goto fail;
        n++;
        if (!(out[n] = ch_stmt_table(db, cluster, "events", CH_EVENTS_COLUMNS, CH_EVENTS_ORDER, CH_EVENTS_SHARD, 0)))
            goto fail;
        n++;
    }
    return n;
fail:
    while (n > 0) free(out[--n]);
    return -1;
}

int ch_schema_version_query(sbuf *b, const char *db) {
    sbuf_printf(b, "SELECT toUInt32(max(version)) FROM %s.homeiq_schema FORMAT TabSeparated", db);
    return sbuf_failed(b) ? -1 : 0;
}

void ch_where_eq(sbuf *b, const char *col, const char *v) {
    if (!v) return;
    sbuf_printf(b, " AND %s = ", col);
    ch_quote(b, v);
}

int ch_json_lines(const char *body, size_t len, int (*fn)(void *ctx, json_t *row), void *ctx) {
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if (n) {
            json_t *o = json_loadb(p, n, 0, NULL);
            int rc = o ? fn(ctx, o) : -1;
            json_decref(o);
            if (rc != 0) return -1;
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}
