/* retention_sqlite.c -- see retention_sqlite.h.
 *
 * Cut-offs are whole hours (floor(now - days, 1 h)), so the hourly statistics
 * of an hour are never merged from a half-purged set of 5-minute rows. The
 * watermarks (stats_marks) move in the same transaction as the deletes they
 * describe: from then on stats_sqlite ignores events older than them (their
 * rows are gone), and never recomputes from a partial set of raw events. A
 * mark moves only when a step deleted something: a store that purged nothing
 * keeps accepting history of any age into its statistics. */
#include "retention_sqlite.h"
#include "config.h"
#include "log.h"
#include "storage_maint.h"

#include <stdlib.h>
#include <time.h>
#include <string.h>

struct retention_sqlite {
    sqlite3 *db;
    stats_sqlite *stats;
    long long raw_days, s5_days, step_rows;
    sqlite3_stmt *del_events, *del_5min, *begin, *commit, *rollback;
    unsigned long long events_purged, stats_purged, pages_freed;
    int purging;                        /* the last step left more to do */
    long long step_us_max, step_us_last;
};

static int retention_int(sqlite3 *db, const char *sql, long long *out) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int retention_sqlite_prepare_file(sqlite3 *db) {
    long long tables, av, want;
    if (retention_int(db, "SELECT count(*) FROM sqlite_schema", &tables) ||
        retention_int(db, "PRAGMA auto_vacuum", &av))
        return -1;
    if (av == 2) return 0;
    if (tables == 0) /* takes effect only before the first table is created */
        return sqlite3_exec(db, "PRAGMA auto_vacuum=INCREMENTAL", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
    if (config_int(storage_maint_vars, "SQLITE_VACUUM_ON_START", &want) != 0) return -1;
    if (!want) {
        log_warn("sqlite file has auto_vacuum=%s: purged space is reused but the file never shrinks; start once "
                 "with SQLITE_VACUUM_ON_START=1 to convert it (rewrites the whole file: needs its size free)",
                 av == 1 ? "full" : "none");
        return 0;
    }
    log_info("converting the sqlite file to auto_vacuum=INCREMENTAL (VACUUM; this rewrites the file)");
    char *msg = NULL;
    if (sqlite3_exec(db, "PRAGMA auto_vacuum=INCREMENTAL; VACUUM;", NULL, NULL, &msg) != SQLITE_OK) {
        log_error("VACUUM failed: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int retention_prepare(retention_sqlite *r, const char *sql, sqlite3_stmt **st) {
    if (sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK) return 0;
    log_error("retention: prepare: %s", sqlite3_errmsg(r->db));
    return -1;
}

int retention_sqlite_open(sqlite3 *db, const char *path, stats_sqlite *stats, retention_sqlite **out) {
    (void)path;
    retention_sqlite *r = calloc(1, sizeof *r);
    if (!r) return -1;
    r->db = db;
    r->stats = stats;
    if (config_int(storage_maint_vars, "RETENTION_DAYS", &r->raw_days) ||
        config_int(storage_maint_vars, "STATISTICS_5MIN_RETENTION_DAYS", &r->s5_days) ||
        config_int(storage_maint_vars, "PURGE_STEP_ROWS", &r->step_rows))
        goto fail;
    if (retention_prepare(r,
                          "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time_us<? "
                          "ORDER BY time_us LIMIT ?)",
                          &r->del_events) ||
        retention_prepare(r,
                          "DELETE FROM stats_5min WHERE (meta_id,start_us) IN (SELECT meta_id,start_us FROM "
                          "stats_5min AS x WHERE start_us<? AND start_us<(SELECT max(start_us) FROM stats_5min "
                          "AS y WHERE y.meta_id=x.meta_id) LIMIT ?)",
                          &r->del_5min) ||
        retention_prepare(r, "BEGIN IMMEDIATE", &r->begin) || retention_prepare(r, "COMMIT", &r->commit) ||
        retention_prepare(r, "ROLLBACK", &r->rollback))
        goto fail;
    *out = r;
    return 0;
fail:
    retention_sqlite_close(r);
    return -1;
}

void retention_sqlite_close(retention_sqlite *r) {
    if (!r) return;
    sqlite3_finalize(r->del_events);
    sqlite3_finalize(r->del_5min);
    sqlite3_finalize(r->begin);
    sqlite3_finalize(r->commit);
    sqlite3_finalize(r->rollback);
    free(r);
}

static int retention_run(retention_sqlite *r, sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return 0;
    log_warn("retention: %s", sqlite3_errmsg(r->db));
    return -1;
}

/* Deletes up to `budget` rows older than cutoff with `del`; *n gets the count. */
static int retention_delete(retention_sqlite *r, sqlite3_stmt *del, int64_t cutoff, long long budget, long long *n) {
    sqlite3_bind_int64(del, 1, cutoff);
    sqlite3_bind_int64(del, 2, budget);
    if (retention_run(r, del) != 0) return -1;
    *n = sqlite3_changes(r->db);
    return 0;
}

static int64_t retention_cutoff(int64_t now_us, long long days) {
    return stats_floor(now_us - days * 86400LL * 1000000LL, STATS_HOUR_US);
}

/* The deletes of one step, inside its transaction. *more = 1 when the budget ran out. */
static int retention_deletes(retention_sqlite *r, int64_t now_us, int *more) {
    long long budget = r->step_rows, n = 0;
    if (r->raw_days > 0) {
        int64_t cut = retention_cutoff(now_us, r->raw_days);
        if (retention_delete(r, r->del_events, cut, budget, &n) != 0) return -1;
        if (n > 0 && stats_sqlite_set_mark(r->stats, "events_purged_before_us", cut) != 0) return -1;
        r->events_purged += (unsigned long long)n;
        budget -= n;
    }
    if (budget > 0) {
        int64_t cut = retention_cutoff(now_us, r->s5_days);
        long long m = 0;
        if (retention_delete(r, r->del_5min, cut, budget, &m) != 0) return -1;
        if (m > 0 && stats_sqlite_set_mark(r->stats, "stats_5min_purged_before_us", cut) != 0) return -1;
        r->stats_purged += (unsigned long long)m;
        budget -= m;
    }
    *more = budget <= 0;
    return 0;
}

static long long retention_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static int retention_step_run(retention_sqlite *r, int64_t now_us);

int retention_sqlite_step(retention_sqlite *r, int64_t now_us) {
    long long t0 = retention_mono_us();
    int rc = retention_step_run(r, now_us);
    r->step_us_last = retention_mono_us() - t0;
    if (r->step_us_last > r->step_us_max) r->step_us_max = r->step_us_last;
    r->purging = rc == 1;
    return rc;
}

/* Frees at most step_rows pages at the end of the file, inside the step's
 * transaction (one commit, one fsync per step). */
static int retention_vacuum(retention_sqlite *r, int *more) {
    long long freelist = 0;
    if (retention_int(r->db, "PRAGMA freelist_count", &freelist) != 0) return -1;
    if (freelist == 0) return 0;
    char sql[64];
    long long pages = freelist < r->step_rows ? freelist : r->step_rows;
    snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%lld)", pages);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {}
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return -1;
    r->pages_freed += (unsigned long long)pages;
    if (freelist > pages) *more = 1;
    return 0;
}

static int retention_step_run(retention_sqlite *r, int64_t now_us) {
    int more = 0;
    if (retention_run(r, r->begin) != 0) return -1;
    if (retention_deletes(r, now_us, &more) != 0 || retention_vacuum(r, &more) != 0 ||
        retention_run(r, r->commit) != 0) {
        if (!sqlite3_get_autocommit(r->db)) retention_run(r, r->rollback);
        stats_sqlite_load_marks(r->stats);
        return -1;
    }
    return more;
}

json_t *retention_sqlite_info(retention_sqlite *r) {
    long long av = 0, freelist = 0;
    retention_int(r->db, "PRAGMA auto_vacuum", &av);
    retention_int(r->db, "PRAGMA freelist_count", &freelist);
    return json_pack("{s:I,s:I,s:I,s:I,s:s,s:I,s:b,s:I,s:I}", "retention_days", (json_int_t)r->raw_days,
                     "statistics_5min_retention_days", (json_int_t)r->s5_days, "events_purged",
                     (json_int_t)r->events_purged, "stats_rows_purged", (json_int_t)r->stats_purged, "auto_vacuum",
                     av == 2 ? "incremental" : av == 1 ? "full" : "none", "freelist_pages", (json_int_t)freelist,
                     "purging", r->purging, "step_us_last", (json_int_t)r->step_us_last, "step_us_max",
                     (json_int_t)r->step_us_max);
}
