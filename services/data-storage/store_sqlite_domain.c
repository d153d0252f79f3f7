/* store_sqlite_domain.c -- see store_sqlite_domain.h. */
#include "store_sqlite_domain.h"
#include "store_sqlite_home.h"
#include "store_sqlite_identity.h"
#include "log.h"

#include "store_sqlite_merge.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int sqd_counts(const store_item *it) {
    return it->status == STORE_ITEM_STORED && it->entity_id && it->entity_id[0]; /* domain '': none (schema 12) */
}

static int sqd_cmp(const void *a, const void *b) {
    const store_item *x = *(const store_item *const *)a, *y = *(const store_item *const *)b;
    int c = strcmp(x->entity_id, y->entity_id);
    return c ? c : strcmp(x->domain, y->domain);
}

static int sqd_upsert(sqlite3_stmt *up, const store_item *it, int64_t first, int64_t last) {
    sqlite3_bind_text(up, 1, it->domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(up, 2, it->entity_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(up, 4, first);
    sqlite3_bind_int64(up, 5, last);
    int rc = sqlite3_step(up);
    sqlite3_reset(up);
    return rc == SQLITE_DONE ? 0 : -1;
}

int sqd_update(const store_batch *b, sqlite3_stmt *upsert) {
    const store_item **r = b->nitems ? malloc(b->nitems * sizeof *r) : NULL;
    size_t n = 0;
    if (b->nitems && !r) return -1;
    for (size_t i = 0; i < b->nitems; i++)
        if (sqd_counts(&b->items[i])) r[n++] = &b->items[i];
    if (n > 1) qsort(r, n, sizeof *r, sqd_cmp);
    sqlite3_bind_text(upsert, 3, store_sqlite_home_of(b->home_id), -1, SQLITE_STATIC);
    int rc = 0;
    for (size_t lo = 0, hi; lo < n && rc == 0; lo = hi) {
        int64_t first = r[lo]->time_us, last = first;
        for (hi = lo + 1; hi < n && sqd_cmp(&r[hi], &r[lo]) == 0; hi++) {
            if (r[hi]->time_us < first) first = r[hi]->time_us;
            if (r[hi]->time_us > last) last = r[hi]->time_us;
        }
        rc = sqd_upsert(upsert, r[lo], first, last);
    }
    free(r);
    return rc;
}

int sqd_dense(sqlite3 *db, const store_filter *f) {
    if (!f->domain || f->area || f->floor || f->device || f->platform) return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*), coalesce(sum(event_count), 0), (SELECT coalesce(sum(event_count), 0)"
                           " FROM entities) FROM entities WHERE domain = ?1 AND (?2 IS NULL OR home_id = ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, f->domain, -1, SQLITE_STATIC);
    if (f->home_id) sqlite3_bind_text(st, 2, f->home_id, -1, SQLITE_STATIC);
    int dense = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        double k = (double)sqlite3_column_int64(st, 0), in = (double)sqlite3_column_int64(st, 1),
               all = (double)sqlite3_column_int64(st, 2);
        double rows = (double)f->offset + (double)f->limit; /* what the page reads through */
        /* merged: r rows and k ranges, or with the offset counted (sqx_skips) k ranges per round */
        double merged = sqx_skips(f) ? k * (2 + log10((double)f->offset / SQX_SKIP_ROWS)) : rows + k;
        dense = in > 0 && rows * all / in <= SQD_MERGE_ROW * merged;
    }
    sqlite3_finalize(st);
    return dense;
}

/* Migration 11 frees the old index's pages (freelist), writes the small partial index
 * and event_domains, and sorts the events with an entity by (domain, entity, home) for
 * the fill's GROUP BY (a temporary file of ~60 bytes per event): an eighth is asked. */
int sqd_room(sqlite3 *db) {
    return sqi_room(db, sqi_file_bytes(db) / 8, "migration 11 (domain reads over the entity index)");
}

static double sqd_now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A migration's statements; SQLite's error logged with the migration's number. */
static int sqd_exec(sqlite3 *db, int migration, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
    log_error("sqlite migration %d: %s", migration, msg ? msg : "?");
    sqlite3_free(msg);
    return -1;
}

/* Logged before and after: on 1.5M events (710 MB) it runs ~20 s before /health answers. The
 * GROUP BY's sort spills to SQLite's temp directory (SQLITE_TMPDIR, else TMPDIR, /var/tmp,
 * /usr/tmp, /tmp), which sqd_room does not check (it checks DATA_DIR's disk). */
int sqd_migrate(sqlite3 *db) {
    if (sqd_room(db) != 0) return -1;
    long long events = sqi_scalar(db, "SELECT coalesce(max(id), 0) FROM events");
    log_info("sqlite migration 11: filling event_domains from up to %lld events (%lld MB); the sort goes to SQLite's "
             "temp directory (SQLITE_TMPDIR/TMPDIR, else /var/tmp or /tmp), about 60 bytes per event",
             events, sqi_file_bytes(db) >> 20);
    double t0 = sqd_now_s();
    if (sqd_exec(db, 11, STORE_SQLITE_DOMAIN_MIGRATION) != 0) return -1;
    log_info("sqlite migration 11: %lld domain spans over %lld entity-less rows with a domain, in %.1f s",
             sqi_scalar(db, "SELECT count(*) FROM event_domains"),
             sqi_scalar(db, "SELECT count(*) FROM events INDEXED BY events_domain_time WHERE domain IS NOT NULL"
                            " AND entity_id IS NULL"),
             sqd_now_s() - t0);
    return 0;
}

/* Migration 12 reads every row once (no index has the rows without a domain): 15 s on an
 * 855 MB store at load 13 (docs/BENCHMARKS.md, s10-domoff) before /health answers, so it
 * is logged before and after like migration 11. It writes only a few spans (one per entity
 * and home with such rows): no room check; a full disk fails the INSERT, and the caller
 * rolls back and logs why. */
int sqd_migrate_none(sqlite3 *db) {
    log_info("sqlite migration 12: reading up to %lld events (%lld MB) once for the spans of the rows with an entity "
             "and no domain",
             sqi_scalar(db, "SELECT coalesce(max(id), 0) FROM events"), sqi_file_bytes(db) >> 20);
    double t0 = sqd_now_s();
    if (sqd_exec(db, 12, STORE_SQLITE_DOMAIN_NONE_MIGRATION) != 0) return -1;
    log_info("sqlite migration 12: %lld spans of domain '' (entity and home with rows without a domain), in %.1f s",
             sqi_scalar(db, "SELECT count(*) FROM event_domains WHERE domain = ''"), sqd_now_s() - t0);
    return 0;
}
