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
#include "store_sqlite_context.h"
#include "store_sqlite_domain.h"
#include "config.h"
#include "retention_phases.h"
#include "retention_wal.h"
#include "retention_rules.h"
#include "stats_catchup.h"
#include "log.h"
#include "storage_maint.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <string.h>

#define RETENTION_COST_START_US 50.0 /* a deleted row's / vacuumed page's cost before one was measured */
#define RETENTION_MIN_UNITS 4         /* rows / pages of the smallest statement */

struct retention_sqlite {
    sqlite3 *db;
    stats_sqlite *stats;
    long long raw_days, s5_days, step_rows, budget_us;
    long long step_t0;                  /* monotonic start of the current step */
    long long step_left;                /* rows the current step may still delete */
    sqlite3_stmt *del_events, *del_5min, *begin, *commit, *rollback;
    sqlite3_stmt *del_contexts;         /* spans older than every event (store_sqlite_context.h) */
    sqlite3_stmt *del_domains;          /* the same of the domain spans (store_sqlite_domain.h) */
    sqlite3_stmt *sync_normal, *sync_full; /* around a step when PURGE_COMMIT_FSYNC=0 */
    long long commit_fsync;             /* PURGE_COMMIT_FSYNC */
    double del_us_row, vac_us_page;     /* measured cost of a deleted row / a vacuumed page (µs) */
    double commit_us;                   /* measured cost of a step's COMMIT (µs): kept out of the work's time */
    long long cpu_us, steps;            /* CPU time (user+sys, the loop's thread) of all steps; their number */
    long long waits;                    /* ticks that started no step: the WAL thread was busy */
    long long cpu_delete_us, cpu_vacuum_us, cpu_commit_us; /* of those, in each phase: wall - CPU = waiting */
    retention_rules rules;              /* RETENTION_OVERRIDES */
    stats_catchup *catchup;             /* history before the statistics; NULL when STATISTICS=0 */
    sqlite3_stmt **del_rule;            /* per rule with days > 0 (NULL for 0 = keep forever) */
    unsigned long long events_purged, stats_purged, pages_freed;
    int purging;                        /* the last step left more to do */
    long long step_us_max, step_us_last;
    retention_phases phases;            /* where the steps' time went (/health) */
    int in_step;                        /* a purge step runs: a checkpoint now is the purge's */
    long long autockpt;                 /* wal_autocheckpoint store_sqlite.c set (frames), 0 = off */
    long long ckpt_us;                  /* checkpoint time inside the current statement */
    long long wal_frames;               /* frames in the WAL after the last commit */
    int wal_hooked;                     /* retention_wal_hook is installed */
    unsigned long long frames_purge, frames_batch; /* WAL frames the purge's / other commits appended */
    retention_wal *wal;                 /* the checkpointer thread, or NULL: checkpoints inline */
};

static int retention_int(sqlite3 *db, const char *sql, long long *out) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* The file's page size for a new file (SQLITE_PAGE_SIZE): a power of two SQLite takes. */
static int retention_page_size(long long *out) {
    if (config_int(storage_maint_vars, "SQLITE_PAGE_SIZE", out) != 0) return -1;
    if (*out & (*out - 1)) {
        log_error("SQLITE_PAGE_SIZE=%lld: not a power of two", *out);
        return -1;
    }
    return 0;
}

/* Rewrites an existing file with auto_vacuum=INCREMENTAL and `page` bytes a
 * page. In WAL mode SQLite keeps the page size through a VACUUM, so the file
 * leaves WAL for it; store_sqlite.c sets WAL again right after. */
static int retention_convert_file(sqlite3 *db, long long page) {
    char sql[160];
    snprintf(sql, sizeof sql,
             "PRAGMA journal_mode=DELETE; PRAGMA page_size=%lld; PRAGMA auto_vacuum=INCREMENTAL; VACUUM;", page);
    log_info("converting the sqlite file to auto_vacuum=INCREMENTAL, %lld-byte pages (VACUUM; this rewrites the file)",
             page);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("VACUUM failed: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int retention_sqlite_prepare_file(sqlite3 *db) {
    long long tables, av, want, page, have;
    if (retention_int(db, "SELECT count(*) FROM sqlite_schema", &tables) ||
        retention_int(db, "PRAGMA auto_vacuum", &av) || retention_int(db, "PRAGMA page_size", &have) ||
        retention_page_size(&page))
        return -1;
    if (tables == 0) { /* both take effect only before the first table is created */
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA page_size=%lld; PRAGMA auto_vacuum=INCREMENTAL", page);
        return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
    }
    if (av == 2 && have == page) return 0;
    if (config_int(storage_maint_vars, "SQLITE_VACUUM_ON_START", &want) != 0) return -1;
    if (want) return retention_convert_file(db, page);
    if (av != 2)
        log_warn("sqlite file has auto_vacuum=%s: purged space is reused but the file never shrinks; start once "
                 "with SQLITE_VACUUM_ON_START=1 to convert it (rewrites the whole file: needs its size free)",
                 av == 1 ? "full" : "none");
    else
        log_info("sqlite file has %lld-byte pages (new files: %lld, fewer WAL frames and syscalls per event); "
                 "SQLITE_VACUUM_ON_START=1 converts it once (rewrites the whole file: needs its size free)",
                 have, page);
    return 0;
}

/* ---- WAL checkpoints --------------------------------------------------- */

/* Replaces SQLite's default WAL hook (wal_autocheckpoint, which it reads
 * once) with the same limit: a PASSIVE checkpoint once the WAL holds autockpt
 * frames more -- by the checkpointer thread (retention_wal.h) when it runs,
 * else inline, timed and attributed to the purge or to a batch. Called by
 * SQLite after every commit on the connection. */
static int retention_wal_hook(void *arg, sqlite3 *db, const char *name, int frames) {
    retention_sqlite *r = arg;
    long long added = frames > r->wal_frames ? frames - r->wal_frames : frames;  /* less: the WAL restarted */
    r->wal_frames = frames;
    if (r->in_step) r->frames_purge += added;
    else r->frames_batch += added;
    if (r->autockpt <= 0) return SQLITE_OK;
    if (r->wal ? !retention_wal_commit(r->wal, frames) : frames < r->autockpt) return SQLITE_OK;
    long long t0 = retention_mono_us();
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    long long us = retention_mono_us() - t0;
    r->ckpt_us += us;
    retention_phases_add(&r->phases, r->in_step ? RP_CHECKPOINT_PURGE : RP_CHECKPOINT_BATCH, us);
    return SQLITE_OK;
}

static int retention_wal_start(retention_sqlite *r, const char *path) {
    long long thread;
    if (retention_int(r->db, "PRAGMA wal_autocheckpoint", &r->autockpt) != 0 ||
        config_int(storage_maint_vars, "SQLITE_WAL_CHECKPOINTER", &thread) != 0 ||
        (thread && retention_wal_open(path, r->autockpt, &r->wal) != 0))
        return -1;
    sqlite3_wal_hook(r->db, retention_wal_hook, r);
    r->wal_hooked = 1;
    return 0;
}

/* ---- statements -------------------------------------------------------- */

static int retention_prepare(retention_sqlite *r, const char *sql, sqlite3_stmt **st) {
    if (sql && sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK) return 0;
    log_error("retention: prepare: %s", sql ? sqlite3_errmsg(r->db) : "out of memory");
    return -1;
}

/* " AND (col IS NULL OR col NOT IN ('a','b'))" over the rules of one kind, or "". */
static char *retention_exclude(const retention_rules *rules, int entities, const char *col) {
    char *list = NULL;
    for (size_t i = 0; i < rules->n; i++) {
        if (rules->r[i].is_entity != entities) continue;
        char *next = sqlite3_mprintf("%s%s%Q", list ? list : "", list ? "," : "", rules->r[i].name);
        sqlite3_free(list);
        if (!next) return NULL;
        list = next;
    }
    char *out = list ? sqlite3_mprintf(" AND (%s IS NULL OR %s NOT IN (%s))", col, col, list) : sqlite3_mprintf("");
    sqlite3_free(list);
    return out;
}

/* The delete of RETENTION_DAYS (events no rule names) and one per rule with
 * days > 0: an entity rule deletes its entity; a domain rule its domain but
 * the entities that have a rule of their own. Each: ?1 cut-off, ?2 budget. */
static int retention_rules_open(retention_sqlite *r) {
    char err[300];
    if (retention_rules_parse(config_text(storage_maint_vars, "RETENTION_OVERRIDES"), &r->rules, err, sizeof err) != 0) {
        log_error("%s", err);
        return -1;
    }
    char *ex_ent = retention_exclude(&r->rules, 1, "entity_id"), *ex_dom = retention_exclude(&r->rules, 0, "domain");
    char *ex_ent_e = retention_exclude(&r->rules, 1, "e.entity_id");
    int rc = -1;
    r->del_rule = calloc(r->rules.n ? r->rules.n : 1, sizeof *r->del_rule);
    if (!ex_ent || !ex_dom || !ex_ent_e || !r->del_rule) goto out;
    char *sql = sqlite3_mprintf("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time_us<?1%s%s "
                                "ORDER BY time_us LIMIT ?2)", ex_ent, ex_dom);
    rc = retention_prepare(r, sql, &r->del_events) || retention_prepare(r, STORE_SQLITE_CONTEXT_PURGE, &r->del_contexts) ||
         retention_prepare(r, STORE_SQLITE_DOMAIN_PURGE, &r->del_domains);
    sqlite3_free(sql);
    for (size_t i = 0; rc == 0 && i < r->rules.n; i++) {
        const retention_rule *x = &r->rules.r[i];
        if (x->days == 0) continue;
        sql = x->is_entity ? sqlite3_mprintf("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE "
                                             "entity_id=%Q AND time_us<?1 ORDER BY time_us LIMIT ?2)", x->name)
                           /* schema 11: through the domain's spans and the entity index (store_sqlite_domain.h) */
                           : sqlite3_mprintf("DELETE FROM events WHERE id IN (" SQD_RULE_SELECT " LIMIT ?2)", x->name,
                                             x->name, ex_ent_e, x->name);
        rc = retention_prepare(r, sql, &r->del_rule[i]);
        sqlite3_free(sql);
        log_info("retention: raw events of %s %s kept %lld days (RETENTION_OVERRIDES)",
                 x->is_entity ? "entity" : "domain", x->name, x->days);
    }
out:
    sqlite3_free(ex_ent);
    sqlite3_free(ex_dom);
    sqlite3_free(ex_ent_e);
    return rc;
}

int retention_sqlite_open(sqlite3 *db, const char *path, stats_sqlite *stats, retention_sqlite **out) {
    retention_sqlite *r = calloc(1, sizeof *r);
    long long stats_on = 0;
    if (!r) return -1;
    r->db = db;
    r->stats = stats;
    if (config_int(storage_maint_vars, "RETENTION_DAYS", &r->raw_days) ||
        config_int(storage_maint_vars, "STATISTICS_5MIN_RETENTION_DAYS", &r->s5_days) ||
        config_int(storage_maint_vars, "PURGE_STEP_ROWS", &r->step_rows) ||
        config_int(storage_maint_vars, "PURGE_STEP_BUDGET_MS", &r->budget_us) ||
        config_int(storage_maint_vars, "PURGE_COMMIT_FSYNC", &r->commit_fsync) ||
        config_int(storage_maint_vars, "STATISTICS", &stats_on))
        goto fail;
    r->budget_us *= 1000;
    r->del_us_row = RETENTION_COST_START_US;
    r->vac_us_page = RETENTION_COST_START_US;
    if (stats_on && stats_catchup_open(db, stats, &r->catchup) != 0) goto fail;
    if (retention_wal_start(r, path) != 0) goto fail;
    if (retention_rules_open(r) != 0 ||
        retention_prepare(r,
                          "DELETE FROM stats_5min WHERE (meta_id,start_us) IN (SELECT meta_id,start_us FROM "
                          "stats_5min AS x WHERE start_us<? AND start_us<(SELECT max(start_us) FROM stats_5min "
                          "AS y WHERE y.meta_id=x.meta_id) LIMIT ?)",
                          &r->del_5min) ||
        retention_prepare(r, "BEGIN IMMEDIATE", &r->begin) || retention_prepare(r, "COMMIT", &r->commit) ||
        retention_prepare(r, "ROLLBACK", &r->rollback) ||
        retention_prepare(r, "PRAGMA synchronous=NORMAL", &r->sync_normal) ||
        retention_prepare(r, "PRAGMA synchronous=FULL", &r->sync_full))
        goto fail;
    *out = r;
    return 0;
fail:
    retention_sqlite_close(r);
    return -1;
}

void retention_sqlite_close(retention_sqlite *r) {
    if (!r) return;
    if (r->wal_hooked) sqlite3_wal_autocheckpoint(r->db, (int)r->autockpt); /* SQLite's own hook back */
    retention_wal_close(r->wal);
    stats_catchup_close(r->catchup);
    sqlite3_finalize(r->del_events);
    sqlite3_finalize(r->del_contexts);
    sqlite3_finalize(r->del_domains);
    sqlite3_finalize(r->del_5min);
    sqlite3_finalize(r->begin);
    sqlite3_finalize(r->commit);
    sqlite3_finalize(r->rollback);
    sqlite3_finalize(r->sync_normal);
    sqlite3_finalize(r->sync_full);
    for (size_t i = 0; r->del_rule && i < r->rules.n; i++) sqlite3_finalize(r->del_rule[i]);
    free(r->del_rule);
    retention_rules_free(&r->rules);
    free(r);
}

static int retention_run(retention_sqlite *r, sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return 0;
    log_warn("retention: %s", sqlite3_errmsg(r->db));
    return -1;
}

/* CPU time (user + system) of the calling thread, µs. */
static long long retention_thread_cpu_us(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0) return 0;
    return (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* Learns what one unit (a deleted row, a vacuumed page) costs, in µs: a
 * dearer one at once (the next statement shrinks now), a cheaper one slowly. */
static void retention_cost_learn(double *cost, long long us, long long units) {
    if (units <= 0) return;
    double per = (double)us / (double)units;
    *cost = per > *cost ? per : 0.8 * *cost + 0.2 * per;
}

/* How many units at `cost` fit before `limit_us` into the step: at most cap,
 * at least RETENTION_MIN_UNITS (a statement that starts does some work). */
static long long retention_fit(const retention_sqlite *r, long long limit_us, double cost, long long cap) {
    double left = (double)(limit_us - (retention_mono_us() - r->step_t0));
    long long n = left > 0 ? (long long)(left / cost) : 0;
    if (n < RETENTION_MIN_UNITS) n = RETENTION_MIN_UNITS;
    return n < cap ? n : cap;
}

/* Deletes up to `limit` rows older than cutoff with `del`; *n gets the count. */
static int retention_delete(retention_sqlite *r, sqlite3_stmt *del, int64_t cutoff, long long limit, long long *n) {
    sqlite3_bind_int64(del, 1, cutoff);
    sqlite3_bind_int64(del, 2, limit);
    long long t0 = retention_mono_us(), cpu0 = retention_thread_cpu_us();
    int rc = retention_run(r, del);
    long long us = retention_mono_us() - t0;
    r->cpu_delete_us += retention_thread_cpu_us() - cpu0;
    retention_phases_add(&r->phases, RP_DELETE, us);
    if (rc != 0) return -1;
    *n = sqlite3_changes(r->db);
    retention_cost_learn(&r->del_us_row, us, *n);
    return 0;
}

/* The time the step's statements may take: the budget less what its COMMIT
 * is expected to cost (writing its frames), at least a quarter of it. */
static long long retention_work_limit(const retention_sqlite *r) {
    long long work = r->budget_us - (long long)r->commit_us;
    return work > r->budget_us / 4 ? work : r->budget_us / 4;
}

/* The deletes' share of that: the rest is the vacuum's, so the file shrinks
 * while the purge goes rather than after it. */
static long long retention_delete_limit(const retention_sqlite *r) {
    return retention_work_limit(r) * 2 / 3;
}

/* The step's time (its deletes' share) or its rows are spent: commit and
 * yield to the loop. The row bound is what bounds the step's WAL frames
 * (~1.1 per purged row with the vacuum), which the time does not see. */
static int retention_spent(const retention_sqlite *r) {
    return r->step_left <= 0 || retention_mono_us() - r->step_t0 >= retention_delete_limit(r);
}

/* Only the time: the catch-up counts no rows. */
static int retention_spent_time(const retention_sqlite *r) {
    return retention_mono_us() - r->step_t0 >= retention_work_limit(r);
}

static int64_t retention_cutoff(int64_t now_us, long long days) {
    return stats_floor(now_us - days * 86400LL * 1000000LL, STATS_HOUR_US);
}

/* Deletes with `del` (?1 cut-off, ?2 limit) until nothing older than cut is
 * left or the step is spent (*more = 1); moves the mark `mark` when a
 * statement deleted something; *count += rows. */
static int retention_delete_all(retention_sqlite *r, sqlite3_stmt *del, int64_t cut, const char *mark,
                                unsigned long long *count, int *more) {
    for (;;) {
        if (retention_spent(r)) {
            *more = 1;
            return 0;
        }
        /* sized by the measured cost to end within the deletes' share */
        long long cap = r->step_left < r->step_rows ? r->step_left : r->step_rows, n = 0;
        long long want = retention_fit(r, retention_delete_limit(r), r->del_us_row, cap);
        if (retention_delete(r, del, cut, want, &n) != 0) return -1;
        if (n > 0 && stats_sqlite_set_mark(r->stats, mark, cut) != 0) return -1;
        *count += (unsigned long long)n;
        r->step_left -= n;
        if (n < want) return 0;
    }
}

/* The deletes of one step, inside its transaction: at most step_rows rows in
 * all, in statements started only while the step's time lasts. *more = 1
 * when something may be left. */
static int retention_deletes(retention_sqlite *r, int64_t now_us, int *more) {
    /* RETENTION_DAYS for events no rule names, then each rule (the mark
     * only rises: late events before the newest cut-off are not counted) */
    unsigned long long before = r->events_purged;
    for (size_t i = 0; i <= r->rules.n; i++) {
        sqlite3_stmt *del = i == 0 ? r->del_events : r->del_rule[i - 1];
        long long days = i == 0 ? r->raw_days : r->rules.r[i - 1].days;
        if (days <= 0 || !del) continue;
        if (retention_delete_all(r, del, retention_cutoff(now_us, days), "events_purged_before_us", &r->events_purged,
                                 more) != 0)
            return -1;
        if (*more) return 0;
    }
    /* the events are purged up to the cut-offs: spans that end before the oldest left go */
    if (r->events_purged > before && (retention_run(r, r->del_contexts) != 0 || retention_run(r, r->del_domains) != 0))
        return -1;
    return retention_delete_all(r, r->del_5min, retention_cutoff(now_us, r->s5_days), "stats_5min_purged_before_us",
                                &r->stats_purged, more);
}

static int retention_step_run(retention_sqlite *r, int64_t now_us);

int retention_sqlite_step(retention_sqlite *r, int64_t now_us) {
    if (retention_wal_busy(r->wal)) {   /* the disk is busy with the last step's pages or a checkpoint */
        r->waits++;
        return 1;
    }
    long long cpu0 = retention_thread_cpu_us();
    long long t0 = r->step_t0 = retention_mono_us();
    r->step_left = r->step_rows;
    r->in_step = 1;
    /* no fsync of its own: the next batch's commit (FULL) or checkpoint
     * syncs the WAL, frames in order, so nothing acked depends on a purge
     * step that a power cut could undo -- and an undone step is redone */
    int rc = r->commit_fsync || retention_run(r, r->sync_normal) == 0 ? retention_step_run(r, now_us) : -1;
    if (!r->commit_fsync && retention_run(r, r->sync_full) != 0) {
        log_error("retention: synchronous=FULL not restored: batches would be acked before their fsync; stopping");
        abort();
    }
    r->in_step = 0;
    if (!r->commit_fsync && rc >= 0) retention_wal_flush(r->wal);
    r->steps++;
    r->cpu_us += retention_thread_cpu_us() - cpu0;
    r->step_us_last = retention_mono_us() - t0;
    retention_phases_add(&r->phases, RP_STEP, r->step_us_last);
    if (r->step_us_last > r->step_us_max) r->step_us_max = r->step_us_last;
    r->purging = rc == 1;
    return rc;
}

/* Frees pages at the end of the file, inside the step's transaction:
 * incremental_vacuum of at most step_rows pages in all, in statements sized
 * by the measured cost of a page to end within the step's time -- at least
 * one, of at least RETENTION_MIN_UNITS pages, so the file shrinks as the
 * purge goes (a page moved from the file's end is read first: on a cold
 * cache one page can cost milliseconds, and 100 at once cost 230 ms). */
static int retention_vacuum(retention_sqlite *r, int *more) {
    long long left = r->step_rows;
    for (int first = 1;; first = 0) {
        long long freelist = 0;
        if (retention_int(r->db, "PRAGMA freelist_count", &freelist) != 0) return -1;
        if (freelist == 0) return 0;
        if (!first && (left <= 0 || retention_spent_time(r))) {
            *more = 1;
            return 0;
        }
        long long pages = retention_fit(r, retention_work_limit(r), r->vac_us_page, left < freelist ? left : freelist);
        char sql[64];
        left -= pages;
        snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%lld)", pages);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
        int rc;
        long long t0 = retention_mono_us(), cpu0 = retention_thread_cpu_us();
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {}
        long long us = retention_mono_us() - t0;
        r->cpu_vacuum_us += retention_thread_cpu_us() - cpu0;
        retention_phases_add(&r->phases, RP_VACUUM, us);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) return -1;
        retention_cost_learn(&r->vac_us_page, us, pages);
        r->pages_freed += (unsigned long long)pages;
    }
}

static int retention_spent_cb(void *arg) {
    return retention_spent_time(arg);
}

/* One step: the statistics catch-up while it lasts (nothing is purged before
 * history has its statistics: stats_catchup.h), then deletes and vacuum. */
static int retention_step_run(retention_sqlite *r, int64_t now_us) {
    int more = 0;
    if (retention_run(r, r->begin) != 0) return -1;
    int rc = 0;
    if (r->catchup && !stats_catchup_done(r->catchup)) {
        rc = stats_catchup_step(r->catchup, retention_spent_cb, r);
        more = 1;   /* the purge comes after */
    } else {
        rc = retention_deletes(r, now_us, &more) != 0 || retention_vacuum(r, &more) != 0 ? -1 : 0;
    }
    if (rc >= 0) {
        long long t0 = retention_mono_us(), cpu0 = retention_thread_cpu_us();
        r->ckpt_us = 0;
        rc = retention_run(r, r->commit);
        r->cpu_commit_us += retention_thread_cpu_us() - cpu0;
        long long us = retention_mono_us() - t0 - r->ckpt_us;
        retention_phases_add(&r->phases, RP_COMMIT, us);
        retention_cost_learn(&r->commit_us, us, 1);
    }
    if (rc < 0) {
        if (!sqlite3_get_autocommit(r->db)) retention_run(r, r->rollback);
        stats_sqlite_load_marks(r->stats);
        if (r->catchup) stats_catchup_reset(r->catchup);
        return -1;
    }
    return more;
}

int retention_sqlite_batch_start(retention_sqlite *r) {
    return r && retention_wal_running(r->wal);
}

void retention_sqlite_batch_done(retention_sqlite *r, int ckpt, long long us) {
    if (!r) return;
    ckpt = ckpt || retention_wal_running(r->wal);
    retention_phases_add(&r->phases, ckpt ? RP_BATCH_CHECKPOINT : r->purging ? RP_BATCH_PURGING : RP_BATCH_IDLE, us);
}

static json_t *retention_sqlite_phases(retention_sqlite *r) {
    retention_phases p = r->phases;
    if (r->wal) retention_wal_hist(r->wal, &p.h[RP_CHECKPOINT_THREAD], &p.h[RP_WAL_FLUSH]);
    return retention_phases_json(&p);
}

json_t *retention_sqlite_info(retention_sqlite *r) {
    long long av = 0, freelist = 0, page = 0;
    retention_int(r->db, "PRAGMA auto_vacuum", &av);
    retention_int(r->db, "PRAGMA page_size", &page);
    retention_int(r->db, "PRAGMA freelist_count", &freelist);
    json_t *ov = json_object();
    for (size_t i = 0; i < r->rules.n; i++)
        json_object_set_new(ov, r->rules.r[i].name, json_integer((json_int_t)r->rules.r[i].days));
    return json_pack("{s:I,s:o,s:o*,s:I,s:I,s:I,s:s,s:I,s:I,s:I,s:b,s:I,s:I,s:o*,s:I,s:I,s:I,s:o*}", "retention_days", (json_int_t)r->raw_days,
                     "overrides", ov, "statistics_catchup", r->catchup ? stats_catchup_info(r->catchup) : NULL,
                     "statistics_5min_retention_days", (json_int_t)r->s5_days, "events_purged",
                     (json_int_t)r->events_purged, "stats_rows_purged", (json_int_t)r->stats_purged, "auto_vacuum",
                     av == 2 ? "incremental" : av == 1 ? "full" : "none", "freelist_pages", (json_int_t)freelist,
                     "page_size", (json_int_t)page, "wal_autocheckpoint", (json_int_t)r->autockpt,
                     "purging", r->purging, "step_us_last", (json_int_t)r->step_us_last, "step_us_max",
                     (json_int_t)r->step_us_max, "phases", retention_sqlite_phases(r), "wal_frames", (json_int_t)r->wal_frames, "wal_frames_purge",
                     (json_int_t)r->frames_purge, "wal_frames_other", (json_int_t)r->frames_batch, "cost",
                     json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:f,s:b}", "steps", (json_int_t)r->steps, "waits", (json_int_t)r->waits, "cpu_us", (json_int_t)r->cpu_us,
                               "cpu_delete_us", (json_int_t)r->cpu_delete_us, "cpu_vacuum_us", (json_int_t)r->cpu_vacuum_us,
                               "cpu_commit_us", (json_int_t)r->cpu_commit_us,
                               "pages_freed", (json_int_t)r->pages_freed, "delete_us_per_row", r->del_us_row,
                               "vacuum_us_per_page", r->vac_us_page, "commit_us", r->commit_us, "commit_fsync", (int)r->commit_fsync));
}
