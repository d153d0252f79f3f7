/* clickhouse_retention.c -- RETENTION_DAYS on STORAGE_BACKEND=clickhouse
 * (issue 18): raw events older than the cut-off are removed by partition.
 *
 * Why this shape (docs/CLICKHOUSE.md, "Retention", has the long form):
 *  - events are PARTITION BY toYYYYMM(time): a month wholly before the
 *    cut-off goes with one ALTER TABLE ... DROP PARTITION (no rewrite); the
 *    rows of the month holding the cut-off go with one ALTER TABLE ... DELETE
 *    WHERE time < cut-off (a mutation, asynchronous; issued again only when
 *    none is still running). Both exist in ClickHouse 18.16 and in current
 *    releases; TTL does not exist in 18.16, so it is not used.
 *  - 18.16 can bring dropped parts back after a server restart within
 *    old_parts_lifetime. So removal is not trusted to be final: every round
 *    (PURGE_INTERVAL_MS) looks again and drops again, and every read adds
 *    "time >= cut-off" (ch_retention_filter), so an expired event is never
 *    answered, whether its part is gone, being mutated, or came back.
 *  - The cut-off is a whole hour (as on SQLite). Dead letters are kept (as on
 *    SQLite). On a cluster, the statements go to the local tables ON CLUSTER.
 * A round is a chain of statements through ch_store_select; one at a time. */
#include "clickhouse_retention.h"
#include "clickhouse_read.h"
#include "config.h"
#include "log.h"
#include "service.h"
#include "storage_maint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRT_MAX_PARTITIONS 64 /* dropped per round; the next round does the rest */

struct ch_retention {
    store *st;
    const char *db, *cluster; /* borrowed from the store */
    long long days, interval_ms;
    struct event *timer;
    int running, step;
    int64_t cutoff_s;         /* of the running round */
    long partitions[CRT_MAX_PARTITIONS];
    int npartitions, next_partition;
    unsigned long long rounds, partitions_dropped, deletes_issued, failures;
    char last_error[300];
};

static void crt_step(ch_retention *r);

static void crt_fail(ch_retention *r, const char *what, const char *err) {
    char msg[sizeof r->last_error];
    r->failures++;
    snprintf(msg, sizeof msg, "%s: %s", what, err ? err : "failed");
    if (strcmp(msg, r->last_error) != 0) log_warn("clickhouse retention: %s (tried again every round)", msg);
    memcpy(r->last_error, msg, sizeof msg);
    r->running = 0;
}

/* The physical table: events, or events_local ON CLUSTER c. */
static void crt_table(const ch_retention *r, sbuf *q) {
    if (r->cluster) sbuf_printf(q, "%s.events_local ON CLUSTER %s", r->db, r->cluster);
    else sbuf_printf(q, "%s.events", r->db);
}

static void crt_done(int rc, const char *body, size_t len, const char *err, void *arg) {
    ch_retention *r = arg;
    if (rc != 0) {
        static const char *const what[] = {"listing expired partitions", "dropping a partition",
                                           "counting expired rows", "reading mutations", "deleting expired rows"};
        crt_fail(r, what[r->step < 5 ? r->step : 4], err);
        return;
    }
    char text[64];
    snprintf(text, sizeof text, "%.*s", (int)(len < 63 ? len : 63), body ? body : "");
    switch (r->step) {
    case 0: { /* one partition id per line */
        r->npartitions = r->next_partition = 0;
        const char *p = body, *end = body + len;
        while (p < end && r->npartitions < CRT_MAX_PARTITIONS) {
            char *e;
            long v = strtol(p, &e, 10);
            if (e == p) break;
            r->partitions[r->npartitions++] = v;
            p = e;
            while (p < end && (*p == '\n' || *p == '\r')) p++;
        }
        r->step = 1;
        break;
    }
    case 1:
        r->partitions_dropped++;
        log_info("clickhouse retention: dropped partition %ld (events before %lld)",
                 r->partitions[r->next_partition - 1], (long long)r->cutoff_s);
        break;
    case 2:
        if (strtoll(text, NULL, 10) == 0) { /* nothing left before the cut-off */
            r->running = 0;
            r->last_error[0] = '\0';
            return;
        }
        r->step = 3;
        break;
    case 3:
        if (strtoll(text, NULL, 10) > 0) { /* a delete still runs: the next round looks again */
            r->running = 0;
            return;
        }
        r->step = 4;
        break;
    default:
        r->deletes_issued++;
        r->running = 0;
        r->last_error[0] = '\0';
        return;
    }
    crt_step(r);
}

static void crt_step(ch_retention *r) {
    sbuf q;
    sbuf_init(&q);
    switch (r->step) {
    case 0: /* months wholly before the cut-off's month (the server's time zone, as the partition key) */
        sbuf_printf(&q,
                    "SELECT DISTINCT toYYYYMM(time) AS p FROM %s.events WHERE toYYYYMM(time) < "
                    "toYYYYMM(toDateTime(%lld)) ORDER BY p LIMIT %d FORMAT TabSeparated",
                    r->db, (long long)r->cutoff_s, CRT_MAX_PARTITIONS);
        break;
    case 1:
        if (r->next_partition == r->npartitions) {
            r->step = 2;
            crt_step(r);
            sbuf_free(&q);
            return;
        }
        sbuf_adds(&q, "ALTER TABLE ");
        crt_table(r, &q);
        sbuf_printf(&q, " DROP PARTITION %ld", r->partitions[r->next_partition++]);
        break;
    case 2:
        sbuf_printf(&q, "SELECT count() FROM %s.events WHERE time < toDateTime(%lld) FORMAT TabSeparated", r->db,
                    (long long)r->cutoff_s);
        break;
    case 3:
        sbuf_printf(&q,
                    "SELECT count() FROM system.mutations WHERE database = '%s' AND table = '%s' AND is_done = 0 "
                    "FORMAT TabSeparated",
                    r->db, r->cluster ? "events_local" : "events");
        break;
    default:
        sbuf_adds(&q, "ALTER TABLE ");
        crt_table(r, &q);
        sbuf_printf(&q, " DELETE WHERE time < toDateTime(%lld)", (long long)r->cutoff_s);
        break;
    }
    ch_store_select(r->st, &q, crt_done, r);
}

int64_t ch_retention_cutoff_s(const ch_retention *r, int64_t now_us) {
    if (!r || r->days <= 0) return 0;
    int64_t hour = now_us / 1000000 / 3600 * 3600;
    int64_t c = hour - (int64_t)r->days * 86400;
    return c > 0 ? c : 0;
}

void ch_retention_filter(const ch_retention *r, sbuf *q) {
    int64_t c = ch_retention_cutoff_s(r, service_now_us());
    if (c > 0) sbuf_printf(q, " AND time >= toDateTime(%lld)", (long long)c);
}

static void crt_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    ch_retention *r = arg;
    if (r->running) return;
    r->running = 1;
    r->rounds++;
    r->step = 0;
    r->cutoff_s = ch_retention_cutoff_s(r, service_now_us());
    crt_step(r);
}

int ch_retention_new(struct event_base *base, store *st, const char *db, const char *cluster, ch_retention **out) {
    *out = NULL;
    long long days, interval;
    if (config_int(storage_maint_vars, "RETENTION_DAYS", &days) ||
        config_int(storage_maint_vars, "PURGE_INTERVAL_MS", &interval))
        return -1;
    if (days <= 0) return 0; /* keep every event */
    ch_retention *r = calloc(1, sizeof *r);
    if (!r) return -1;
    *r = (ch_retention){.st = st, .db = db, .cluster = cluster, .days = days, .interval_ms = interval};
    r->timer = event_new(base, -1, EV_PERSIST, crt_tick, r);
    struct timeval tv = {interval / 1000, (interval % 1000) * 1000};
    if (!r->timer || event_add(r->timer, &tv) != 0) {
        ch_retention_free(r);
        return -1;
    }
    log_info("clickhouse retention: events older than %lld days are removed (partitions, then a delete), every %lld ms",
             days, interval);
    *out = r;
    return 0;
}

void ch_retention_free(ch_retention *r) {
    if (!r) return;
    if (r->timer) event_free(r->timer);
    free(r);
}

json_t *ch_retention_info(const ch_retention *r) {
    if (!r) return json_pack("{s:i}", "days", 0);
    json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "days", (json_int_t)r->days, "cutoff_s",
                          (json_int_t)ch_retention_cutoff_s(r, service_now_us()), "rounds", (json_int_t)r->rounds,
                          "partitions_dropped", (json_int_t)r->partitions_dropped, "deletes_issued",
                          (json_int_t)r->deletes_issued, "failures", (json_int_t)r->failures);
    if (o && r->last_error[0]) json_object_set_new(o, "last_error", json_string(r->last_error));
    return o;
}
