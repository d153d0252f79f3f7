/* store_sqlite.c -- the embedded store: one SQLite file, WAL journal.
 *
 * Why these choices:
 *  - synchronous=FULL: in WAL mode NORMAL may lose the last transactions on
 *    power loss, and we answer 200 only after a durable commit; FULL fsyncs
 *    the WAL on every commit (one fsync per batch, so the cost is per batch,
 *    not per event).
 *  - one transaction per batch, events and dead letters together: a batch is
 *    either committed whole (answer 200) or not at all (answer 503, retry).
 *    The service's transactions run on a writer thread (store_sqlite_writer.h:
 *    the loop prepares the next pieces meanwhile; batches waiting together share
 *    a transaction, each still answered only after it committed); every other
 *    use of the connection here -- reads, retention and catch-up steps, the
 *    health probe -- takes the writer's lock, so it runs between two batch
 *    transactions, as it did when everything ran on the loop.
 *  - UNIQUE(time_us, event_id) + INSERT OR IGNORE: a retried batch stores nothing
 *    twice, and changes()==0 tells us which events were duplicates. The identity
 *    determines the time, so this is exactly UNIQUE(event_id), but time-ordered:
 *    live inserts append (store_sqlite_identity.h).
 *  - the record is kept as its exact JSON text; the columns beside it exist
 *    only to filter and order (time in microseconds, entity, domain, type).
 *  - PRAGMA user_version + an ordered list of migrations: a newer binary
 *    upgrades an older file in place; an older binary refuses a newer file.
 *  - statements are prepared once (queries: one per filter combination); a
 *    batch's events go in 16 per INSERT and its label rows 16 per INSERT: a
 *    statement per row opened and closed a cursor on the table and each of its
 *    indexes every time (callgrind, session 9: 95.3k -> 86.9k instructions per
 *    event for the events, 97.8k -> 95.3k for the labels).
 *  - a 16 MiB page cache (SQLite's default is 2 MiB): each batch inserts into
 *    several indexes (eleven before schema 10), at one place per entity; with the
 *    default cache those pages are read back from disk on every batch (a third
 *    of the process' system time in a 40,000-event burst, when the event_id
 *    index was still random-keyed). The cache is given back when the store
 *    goes idle (store_sqlite_idle), so it costs only while writing.
 *  - the WAL written through store_sqlite_vfs.c (this connection only; the
 *    checkpointer's uses the default VFS): SQLite writes each frame with two
 *    pwrite()s (24-byte header, page), ~970 system calls per 1,000-event batch
 *    through ext4's buffered write path and ~40 per commit of a trickle's 7-event
 *    batch; the VFS gathers them into one call per 128 KiB or commit, written
 *    before anything could read them, a failed one failing its commit: storage ~17.6 ->
 *    ~14.5 us of CPU per event in a burst, ~78 -> ~69 in a trickle, of which the
 *    checkpointer's gathered page writes (~0.7-1.1, since removed: they could
 *    fail unseen) (docs/BENCHMARKS.md, session 8). Who reads the WAL and why each sees every
 *    byte it may: store_sqlite_vfs.h.
 *  - SQLite's 4 KiB pages for a new file unless SQLITE_PAGE_SIZE says otherwise
 *    (set with auto_vacuum before the first table: retention_sqlite_prepare_file;
 *    an existing file keeps its own until SQLITE_VACUUM_ON_START=1 rewrites it).
 *    16 KiB pages take a fifth less CPU per event in bursts of 1,000-event
 *    batches (a quarter of the frames), but each commit rewrites its hot index
 *    leaves whole: a trickle of 7-event batches wrote 2.7x the bytes (SD cards)
 *    for ~15 % more CPU per event, so the default stays.
 *  - wal_autocheckpoint = 32 MiB of frames whatever the page size (SQLite's
 *    default is 1000 frames): a 1,000-event batch writes ~2 MiB of frames (the
 *    records' own text alone ~1 MiB), so the default checkpointed -- and
 *    fsynced the database -- almost every batch. Fewer, larger checkpoints
 *    write each hot index page once per checkpoint instead of once per batch
 *    (40,000-event burst, 4 KiB pages: fdatasync 93 -> ~50, pwrite -10%,
 *    pread -40%). */
#include "store_sqlite.h"
#include "store_sqlite_writer.h"
#include "store_sqlite_vfs.h"
#include "stats_sqlite.h"
#include "retention_sqlite.h"
#include "retention_phases.h"
#include "config.h"
#include "dblock.h"
#include "log.h"
#include "service.h"
#include "storage_maint.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct store_sqlite {
    store base;
    sqlite3 *db;
    char *path;
    int lock_fd;               /* dblock on DATA_DIR/events.db, or -1 */
    stats_sqlite *stats;       /* long-term statistics, updated in each batch's transaction */
    int stats_on;              /* STATISTICS=0 turns the update off (measurements) */
    retention_sqlite *retention;
    sqlite3_stmt *insert_event, *insert_dead, *select_dead;
    sqlite3_stmt *insert_events;   /* STORE_SQLITE_ROWS events at once (store_sqlite_insert_group) */
    sqlite3_stmt *event_rowid;     /* an event's row by its identity */
    sqlite3_stmt *upsert_entity;   /* the dashboard's entities table (store_sqlite_model.c) */
    sqlite3_stmt *upsert_registry, *insert_label, *insert_labels; /* registry context (store_sqlite_registry.c) */
    sqlite3_stmt *upsert_context; /* context spans (store_sqlite_context.c) */
    sqlite3_stmt *upsert_domain;  /* domain spans (store_sqlite_domain.c) */
    sqlite3_stmt *begin, *commit, *rollback;
    sqlite3_stmt *query[4096]; /* by filter mask, see store_sqlite_query_mask */
    sqw *writer;               /* the writer thread (store_sqlite_writer.h); NULL: inline writes */
    int last_write_failed;     /* the last batch's transaction failed (the loop's view) */
    long busy_timeout_ms;
    long writer_stall_ms;      /* SQLITE_WRITER_STALL_MS: a transaction running longer makes /health 503 */
    json_t *info_last;         /* info's figures when it last got the lock: /health's answer while a commit hangs */
    long long reads_merged, reads_by_time, reads_feed_spans, reads_skipped; /* which way reads went: /health's "reads" */
    char last_error[160];
} store_sqlite;

#include "store_sqlite_model.h"
#include "store_sqlite_read.h"
#include "store_sqlite_registry.h"
#include "store_sqlite_home.h"
#include "store_sqlite_identity.h"
#include "store_sqlite_context.h"
#include "store_sqlite_merge.h"
#include "store_sqlite_domain.h"

#define STORE_SQLITE_WAL_BYTES (32LL << 20) /* checkpoint once the WAL holds this much (see the top) */

/* Each entry upgrades the schema by one version, in one transaction. */
static const char *const store_sqlite_migrations[] = {
    /* 1: events and dead letters */
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  event_id TEXT NOT NULL UNIQUE,"
    "  time_us INTEGER NOT NULL,"
    "  entity_id TEXT,"
    "  domain TEXT,"
    "  event_type TEXT NOT NULL,"
    "  stored_at_us INTEGER NOT NULL,"
    "  record TEXT NOT NULL);"
    "CREATE INDEX events_time ON events(time_us);"
    "CREATE INDEX events_entity_time ON events(entity_id, time_us);"
    "CREATE TABLE dead_letters ("
    "  id INTEGER PRIMARY KEY,"
    "  received_at_us INTEGER NOT NULL,"
    "  source TEXT NOT NULL,"
    "  error TEXT NOT NULL,"
    "  raw TEXT NOT NULL);",
    /* 2: filters by domain and event type without a full scan */
    "CREATE INDEX events_domain_time ON events(domain, time_us);"
    "CREATE INDEX events_type_time ON events(event_type, time_us);",
    /* 3: the dashboard's reads (store_sqlite_model.h): kind/state/value on
     * each event, covered by the widened entity index, and the entities table,
     * both filled from the existing events once, then kept by the writer. */
    STORE_SQLITE_MIGRATION_3,
    /* 4: state_changed identity = entity + last_updated (docs/EVENTS.md "Identity"), so a
     * change read back from HA's history meets its live twin. A row whose new identity is
     * taken already (two changes of one entity stored at one microsecond, with different
     * contexts) keeps its old one: nothing stored is dropped (counted in the log). */
    "UPDATE OR IGNORE events SET event_id = homeiq_sc_identity(entity_id, time_us) "
    "WHERE event_type = 'state_changed' AND entity_id IS NOT NULL;",
    /* 5: long-term statistics (stats_sqlite.h; issue 13). Independent of the other
     * migrations (new tables only): when merged with other branches' migrations keep it
     * after theirs and renumber; tests/storage/test_stats.c test_upgrade upgrades a file
     * from every earlier version and checks the statistics on it. */
    STATS_SQLITE_MIGRATION,
    /* 6 (issue 11): registry context columns,
     * event_labels, the registry table (store_sqlite_registry.h). */
    STORE_SQLITE_REGISTRY_MIGRATION,
    /* 7 (issue 18): a home_id column on events, dead letters,
     * entities and registry, backfilled (store_sqlite_home.h). New columns and rebuilt
     * entities/registry tables only: keep it after the migrations above. */
    STORE_SQLITE_HOME_MIGRATION,
    /* 8 (issue 15): the identity index by time,
     * UNIQUE(time_us, event_id) instead of UNIQUE(event_id) -- a rebuild of events, not SQL
     * (store_sqlite_identity.h). Keep it after every migration that adds columns to events
     * or not: it copies whatever columns events has. */
    STORE_SQLITE_IDENTITY_MIGRATION,
    /* 9 (issue 18): statistics per (entity, home) -- stats_meta rebuilt, existing rows
     * to the home their events belong to, rows that mixed homes recomputed by the
     * catch-up (stats_sqlite.h). New tables only: keep it after the migrations above. */
    STATS_SQLITE_HOME_MIGRATION,
    /* 10 (issue 15): fewer indexes per event -- events_time dropped, the registry filters
     * read from context spans and the entity index, events_type_time only for types
     * other than state_changed (store_sqlite_context.h). Keep it after the migrations
     * above: it drops indexes they made. */
    STORE_SQLITE_LEAN_MIGRATION,
    /* 11 (issue 15): domain= reads the domain spans and the entity index, events_domain_time
     * only for entity-less rows (store_sqlite_domain.h). Keep it after migration 10. */
    STORE_SQLITE_DOMAIN_MIGRATION,
    /* 12: spans of the rows with an entity and no domain (domain ''), so a deep offset= page
     * of domain= counts the spans' ranges from the index (store_sqlite_domain.h). */
    STORE_SQLITE_DOMAIN_NONE_MIGRATION,
};
#define STORE_SQLITE_VERSION ((int)(sizeof store_sqlite_migrations / sizeof *store_sqlite_migrations))

static const store_ops store_sqlite_ops;
static int store_sqlite_write(void *ctx, store_batch **b, size_t n, char *err, size_t errlen);
static void store_sqlite_after_write(void *ctx, int rc);
static void store_sqlite_close(store *base);

sqlite3 *store_sqlite_db(store *base) { return ((store_sqlite *)base)->db; }
const char *store_sqlite_path(store *base) { return ((store_sqlite *)base)->path; }

static void store_sqlite_fail(store_sqlite *s, const char *what) {
    snprintf(s->last_error, sizeof s->last_error, "%s: %s", what, sqlite3_errmsg(s->db));
    log_error("sqlite %s", s->last_error);
}

static int store_sqlite_exec(store_sqlite *s, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
    log_error("sqlite: %s (in: %.80s)", msg ? msg : "?", sql);
    sqlite3_free(msg);
    return -1;
}

static int store_sqlite_user_version(store_sqlite *s, int *v) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) return -1;
    int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
    *v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc;
}

/* homeiq_sc_identity(entity_id, time_us): the state_changed identity, for migration 4. */
static void store_sqlite_sc_identity(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    const char *entity = (const char *)sqlite3_value_text(argv[0]);
    char id[EVENT_ID_LEN];
    if (!entity || event_identity_state_changed(entity, sqlite3_value_int64(argv[1]), id) != 0) {
        sqlite3_result_error(ctx, "homeiq_sc_identity failed", -1);
        return;
    }
    sqlite3_result_text(ctx, id, -1, SQLITE_TRANSIENT);
}

/* After migration 4: rows that kept their old identity (see the migration). */
static void store_sqlite_log_kept_ids(store_sqlite *s) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT count(*) FROM events WHERE event_type = 'state_changed' AND entity_id IS NOT NULL "
                           "AND event_id != homeiq_sc_identity(entity_id, time_us)",
                           -1, &st, NULL) != SQLITE_OK)
        return;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
        log_warn("sqlite migration 4: %lld state_changed row(s) share entity and time with another row and keep "
                 "their old identity",
                 (long long)sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
}

/* Tests: stop the migrations at this version (0 = the latest). */
static int store_sqlite_stop_at;

static int store_sqlite_migrate(store_sqlite *s) {
    int v, want = store_sqlite_stop_at ? store_sqlite_stop_at : STORE_SQLITE_VERSION;
    if (sqlite3_create_function(s->db, "homeiq_sc_identity", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                store_sqlite_sc_identity, NULL, NULL) != SQLITE_OK)
        return -1;
    if (store_sqlite_user_version(s, &v) != 0) return -1;
    int from = v;
    if (v > STORE_SQLITE_VERSION) {
        log_error("%s has schema version %d; this binary knows up to %d (upgrade it)", s->path, v,
                  STORE_SQLITE_VERSION);
        return -1;
    }
    for (; v < want; v++) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d;", v + 1);
        if (store_sqlite_exec(s, "BEGIN IMMEDIATE") != 0) return -1;
        const char *m = store_sqlite_migrations[v];
        int failed = strcmp(m, STORE_SQLITE_IDENTITY_MIGRATION) == 0 ? sqi_migrate(s->db)
                     : strcmp(m, STORE_SQLITE_LEAN_MIGRATION) == 0 ? sqc_room(s->db) || store_sqlite_exec(s, m)
                     : strcmp(m, STORE_SQLITE_DOMAIN_MIGRATION) == 0      ? sqd_migrate(s->db)
                     : strcmp(m, STORE_SQLITE_DOMAIN_NONE_MIGRATION) == 0 ? sqd_migrate_none(s->db)
                                                                          : store_sqlite_exec(s, m);
        if (failed || store_sqlite_exec(s, sql) != 0) {
            store_sqlite_exec(s, "ROLLBACK");
            return -1;
        }
        if (store_sqlite_exec(s, "COMMIT") != 0) return -1;
        log_info("sqlite schema migrated to version %d", v + 1);
    }
    if (from < 4 && from > 0) store_sqlite_log_kept_ids(s);
    return 0;
}

static int store_sqlite_prepare(store_sqlite *s, const char *sql, sqlite3_stmt **st) {
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK) return 0;
    store_sqlite_fail(s, "prepare");
    return -1;
}

/* The events' INSERT for `rows` rows (the columns store_sqlite_bind_item binds), into sql. */
#define STORE_SQLITE_COLS 15
#define STORE_SQLITE_ROWS 16
static void store_sqlite_insert_sql(char *sql, size_t n, int rows) {
    int at = snprintf(sql, n, "INSERT OR IGNORE INTO events(event_id,time_us,entity_id,domain,event_type,"
                              "stored_at_us,record,kind,state,value,area_id,floor_id,device_id,platform,home_id) VALUES");
    for (int r = 0; r < rows && at > 0 && (size_t)at < n; r++)
        at += snprintf(sql + at, n - (size_t)at, "%s(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", r ? "," : "");
}

static int store_sqlite_prepare_all(store_sqlite *s) {
    char one[512], many[4096];
    store_sqlite_insert_sql(one, sizeof one, 1);
    store_sqlite_insert_sql(many, sizeof many, STORE_SQLITE_ROWS);
    return store_sqlite_prepare(s, one, &s->insert_event) || store_sqlite_prepare(s, many, &s->insert_events) ||
           store_sqlite_prepare(s, "SELECT id FROM events WHERE time_us = ?1 AND event_id = ?2", &s->event_rowid) ||
           store_sqlite_prepare(s, STORE_SQLITE_REGISTRY_UPSERT, &s->upsert_registry) ||
           store_sqlite_prepare(s, STORE_SQLITE_LABEL_INSERT, &s->insert_label) ||
           store_sqlite_prepare(s, STORE_SQLITE_LABEL_INSERT_MANY, &s->insert_labels) ||
           store_sqlite_prepare(s, STORE_SQLITE_CONTEXT_UPSERT, &s->upsert_context) ||
           store_sqlite_prepare(s, STORE_SQLITE_DOMAIN_UPSERT, &s->upsert_domain) ||
           store_sqlite_prepare(s, STORE_SQLITE_ENTITY_UPSERT, &s->upsert_entity) ||
           store_sqlite_prepare(s, "INSERT INTO dead_letters(received_at_us,source,error,raw,home_id) VALUES(?,?,?,?,?)",
                                &s->insert_dead) ||
           store_sqlite_prepare(s,
                                "SELECT id,received_at_us,source,error,raw FROM dead_letters "
                                "ORDER BY id DESC LIMIT ?",
                                &s->select_dead) ||
           store_sqlite_prepare(s, "BEGIN IMMEDIATE", &s->begin) ||
           store_sqlite_prepare(s, "COMMIT", &s->commit) || store_sqlite_prepare(s, "ROLLBACK", &s->rollback);
}

/* wal_autocheckpoint: STORE_SQLITE_WAL_BYTES of frames, whatever the file's page size. */
static int store_sqlite_wal_limit(store_sqlite *s) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "PRAGMA page_size", -1, &st, NULL) != SQLITE_OK) return -1;
    long long page = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (page <= 0) return -1;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA wal_autocheckpoint=%lld", STORE_SQLITE_WAL_BYTES / page);
    return store_sqlite_exec(s, sql);
}

/* SQLite's memory statistics (on by default) take a global mutex around every
 * allocation and free, from every thread: ~3 % of storage's CPU in a burst
 * (perf, session 9: pthread_mutex_lock/unlock under sqlite3Malloc/sqlite3_free
 * on the writer thread). Nothing here reads them (sqlite3_memory_used, a soft
 * heap limit), so they are off -- which SQLite allows only before it first
 * initializes; later (a tool or test that used SQLite already) it says
 * SQLITE_MISUSE and the statistics stay on: slower, nothing else. */
static void store_sqlite_global_config(void) {
    static int done;
    if (done) return;
    done = 1;
    if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
        log_debug("sqlite: memory statistics stay on (SQLite was initialized before the store)");
}

int store_sqlite_open_path(const char *path, long busy_timeout_ms, store **out) {
    store_sqlite_global_config();
    store_sqlite *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->base.ops = &store_sqlite_ops;
    s->lock_fd = -1;
    s->path = strdup(path);
    if (!s->path) goto fail;
    if (sqv_register() != 0 ||
        sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        STORE_SQLITE_VFS) != SQLITE_OK) {
        log_error("cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    s->busy_timeout_ms = busy_timeout_ms;
    long long on;
    if (config_int(storage_maint_vars, "STATISTICS", &on) != 0) goto fail;
    s->stats_on = (int)on;
    sqlite3_busy_timeout(s->db, (int)busy_timeout_ms);
    if (retention_sqlite_prepare_file(s->db) || store_sqlite_exec(s, "PRAGMA journal_mode=WAL") || store_sqlite_exec(s, "PRAGMA synchronous=FULL") ||
        store_sqlite_exec(s, "PRAGMA foreign_keys=ON") ||
        store_sqlite_exec(s, "PRAGMA cache_size=-16384") || store_sqlite_wal_limit(s) || store_sqlite_migrate(s) ||
        store_sqlite_stop_at || store_sqlite_prepare_all(s) || stats_sqlite_open(s->db, &s->stats) ||
        retention_sqlite_open(s->db, s->path, s->stats, &s->retention))
        goto fail;
    log_info("sqlite store %s ready (schema version %d, WAL, synchronous=FULL)", path, STORE_SQLITE_VERSION);
    *out = &s->base;
    return 0;
fail:
    s->base.ops->close(&s->base);
    return -1;
}

int store_sqlite_create_at_version(const char *path, int version) {
    store *s = NULL;
    store_sqlite_stop_at = version;
    int rc = store_sqlite_open_path(path, 1000, &s);   /* "fails" once migrated to `version` */
    store_sqlite_stop_at = 0;
    sqlite3 *db;
    int v = -1;
    if (sqlite3_open(path, &db) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int(st, 0);
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(db);
    (void)rc;
    return v == version ? 0 : -1;
}

int store_sqlite_latest_version(void) {
    return STORE_SQLITE_VERSION;
}

int store_sqlite_home_version(void) {
    for (int v = 0; v < STORE_SQLITE_VERSION; v++)
        if (strcmp(store_sqlite_migrations[v], STORE_SQLITE_HOME_MIGRATION) == 0) return v + 1;
    return -1;
}

int store_sqlite_open(struct event_base *base, store **out) {
    const char *dir = config_text(NULL, "DATA_DIR");
    long long busy, stall;
    if (config_int(NULL, "SQLITE_BUSY_TIMEOUT_MS", &busy) != 0 || config_int(NULL, "SQLITE_WRITER_STALL_MS", &stall) != 0)
        return -1;
    if (service_mkdirs(dir, 0750) != 0) {
        log_error("DATA_DIR=%s: cannot create: %s", dir, strerror(errno));
        return -1;
    }
    char path[4096];
    if (snprintf(path, sizeof path, "%s/events.db", dir) >= (int)sizeof path) return -1;
    pid_t holder;
    int lock = dblock_acquire(path, &holder);
    if (lock < 0) {
        if (errno == EWOULDBLOCK)
            log_error("%s is in use by another process (pid %ld): another data-storage, or a homeiqctl restore",
                      path, (long)holder);
        else log_error("%s.lock: %s", path, strerror(errno));
        return -1;
    }
    if (store_sqlite_open_path(path, (long)busy, out) != 0) {
        close(lock);
        return -1;
    }
    store_sqlite *s = (store_sqlite *)*out;
    s->lock_fd = lock;
    s->writer_stall_ms = (long)stall;
    if (sqw_open(base, store_sqlite_write, store_sqlite_after_write, s, &s->writer) != 0) {
        store_sqlite_close(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* ---- writes ----------------------------------------------------------- */

static int store_sqlite_step_done(store_sqlite *s, sqlite3_stmt *st, const char *what) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return 0;
    store_sqlite_fail(s, what);
    return -1;
}

static void store_sqlite_bind_text_or_null(sqlite3_stmt *st, int col, const char *v) {
    if (v && *v) sqlite3_bind_text(st, col, v, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, col);
}

/* Item i's columns as parameters at+1 .. at+STORE_SQLITE_COLS. */
static void store_sqlite_bind_item(sqlite3_stmt *st, int at, const store_batch *b, const store_sqlite_model *m,
                                   const store_sqlite_registry *r, size_t i) {
    const store_item *it = &b->items[i];
    sqlite3_bind_text(st, at + 1, it->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, at + 2, it->time_us);
    store_sqlite_bind_text_or_null(st, at + 3, it->entity_id);
    store_sqlite_bind_text_or_null(st, at + 4, it->domain);
    sqlite3_bind_text(st, at + 5, it->event_type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, at + 6, b->stored_at_us);
    sqlite3_bind_text(st, at + 7, it->json, (int)it->json_len, SQLITE_STATIC);
    sqm_bind(m, i, st, at + 8);
    sqr_bind(r, i, st, at + 11);
    sqlite3_bind_text(st, at + 15, store_sqlite_home_of(b->home_id), -1, SQLITE_STATIC); /* issue 18 */
}

/* Items idx[0..STORE_SQLITE_ROWS) in one INSERT: a statement per event opened and closed a
 * cursor on the table and each of its ten indexes (the seven partial ones too) every time
 * (~9 % of storage's instructions, session 9). The rows are inserted in order, so when all
 * went in their rowids are the last ones in order; when some were duplicates (a re-sent
 * batch, an event twice in the batch) each item's row is looked up by its identity: it is
 * this statement's when its rowid is among the `changes` newest and no earlier item of the
 * group had it -- what one INSERT OR IGNORE per event said. 0/-1 (s->last_error). */
static int store_sqlite_insert_group(store_sqlite *s, store_batch *b, const store_sqlite_model *m,
                                     store_sqlite_registry *r, const size_t *idx) {
    sqlite3_stmt *st = s->insert_events;
    for (int j = 0; j < STORE_SQLITE_ROWS; j++) store_sqlite_bind_item(st, j * STORE_SQLITE_COLS, b, m, r, idx[j]);
    if (store_sqlite_step_done(s, st, "insert events") != 0) return -1;
    int64_t changes = sqlite3_changes(s->db), last = sqlite3_last_insert_rowid(s->db), taken[STORE_SQLITE_ROWS];
    int ntaken = 0;
    for (int j = 0; j < STORE_SQLITE_ROWS; j++) {
        store_item *it = &b->items[idx[j]];
        int64_t id = 0;
        if (changes == STORE_SQLITE_ROWS) id = last - (STORE_SQLITE_ROWS - 1 - j);
        else if (changes > 0) {
            sqlite3_bind_int64(s->event_rowid, 1, it->time_us);
            sqlite3_bind_text(s->event_rowid, 2, it->event_id, -1, SQLITE_STATIC);
            int rc = sqlite3_step(s->event_rowid);
            if (rc == SQLITE_ROW) id = sqlite3_column_int64(s->event_rowid, 0);
            sqlite3_reset(s->event_rowid);
            if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
                store_sqlite_fail(s, "insert events: identity");
                return -1;
            }
            for (int t = 0; t < ntaken && id; t++)
                if (taken[t] == id) id = 0;
            if (id <= last - changes) id = 0;
            if (id) taken[ntaken++] = id;
        }
        it->status = id ? STORE_ITEM_STORED : STORE_ITEM_DUPLICATE;
        if (id) sqr_note_rowid(r, idx[j], id);
    }
    return 0;
}

static int store_sqlite_insert_item(store_sqlite *s, store_batch *b, const store_sqlite_model *m,
                                    store_sqlite_registry *r, size_t i) {
    store_item *it = &b->items[i];
    sqlite3_stmt *st = s->insert_event;
    store_sqlite_bind_item(st, 0, b, m, r, i);
    if (store_sqlite_step_done(s, st, "insert event") != 0) return -1;
    it->status = sqlite3_changes(s->db) ? STORE_ITEM_STORED : STORE_ITEM_DUPLICATE;
    if (it->status == STORE_ITEM_STORED) sqr_note_rowid(r, i, sqlite3_last_insert_rowid(s->db));
    return 0;
}

static int store_sqlite_insert_dead(store_sqlite *s, store_batch *b, const store_dead_letter *d) {
    sqlite3_stmt *st = s->insert_dead;
    sqlite3_bind_int64(st, 1, b->stored_at_us);
    sqlite3_bind_text(st, 2, d->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, d->error, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, d->raw, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, store_sqlite_home_of(b->home_id), -1, SQLITE_STATIC);
    return store_sqlite_step_done(s, st, "insert dead letter");
}

/* One batch's rows, inside the open transaction. 0/-1 (s->last_error). */
static int store_sqlite_write_one(store_sqlite *s, store_batch *b) {
    store_sqlite_model m = {0};
    store_sqlite_registry r = {0};
    int rc = -1;
    b->stored_at_us = service_now_us();
    if (sqm_prepare(&m, b) != 0 || sqr_prepare(&r, b) != 0) {
        snprintf(s->last_error, sizeof s->last_error, "out of memory");
        goto out;
    }
    size_t group[STORE_SQLITE_ROWS], ng = 0;
    for (size_t i = 0; i < b->nitems; i++) {
        if (b->items[i].status != STORE_ITEM_PENDING) continue;
        group[ng++] = i;
        if (ng == STORE_SQLITE_ROWS) {
            if (store_sqlite_insert_group(s, b, &m, &r, group) != 0) goto out;
            ng = 0;
        }
    }
    for (size_t g = 0; g < ng; g++) /* the last few, one by one */
        if (store_sqlite_insert_item(s, b, &m, &r, group[g]) != 0) goto out;
    if (sqr_insert_labels(&r, b, s->insert_label, s->insert_labels) != 0) {
        store_sqlite_fail(s, "insert labels");
        goto out;
    }
    for (size_t i = 0; i < b->ndead; i++)
        if (store_sqlite_insert_dead(s, b, &b->dead[i]) != 0) goto out;
    if (sqm_update_entities(&m, b, s->db, s->upsert_entity) != 0) {
        store_sqlite_fail(s, "update entities");
        goto out;
    }
    if (sqr_update_registry(&r, b, s->upsert_registry) != 0) {
        store_sqlite_fail(s, "update registry");
        goto out;
    }
    if (sqc_update(&r, b, s->upsert_context) != 0) {
        store_sqlite_fail(s, "update context spans");
        goto out;
    }
    if (sqd_update(b, s->upsert_domain) != 0) {
        store_sqlite_fail(s, "update domain spans");
        goto out;
    }
    if (s->stats_on && stats_sqlite_batch(s->stats, b) != 0) {
        store_sqlite_fail(s, "statistics");
        goto out;
    }
    rc = 0;
out:
    sqm_free(&m);
    sqr_free(&r);
    return rc;
}

/* The batch's answer counts, once committed. */
static void store_sqlite_count(store_batch *b) {
    b->stored = b->duplicates = 0;
    for (size_t i = 0; i < b->nitems; i++) {
        if (b->items[i].status == STORE_ITEM_STORED) b->stored++;
        else if (b->items[i].status == STORE_ITEM_DUPLICATE) b->duplicates++;
    }
    b->dead_lettered = b->ndead;
}

/* Batches b[0..n) in one transaction (sqw_write_fn: on the writer thread with
 * the connection's lock, or inline on the loop). 0 committed, -1 rolled back
 * (their items PENDING again, err says why). */
static int store_sqlite_write(void *ctx, store_batch **b, size_t n, char *err, size_t errlen) {
    store_sqlite *s = ctx;
    int ckpt = retention_sqlite_batch_start(s->retention);
    long long t0 = retention_mono_us();
    int rc = store_sqlite_step_done(s, s->begin, "begin");
    for (size_t k = 0; rc == 0 && k < n; k++) rc = store_sqlite_write_one(s, b[k]);
    if (rc == 0) rc = store_sqlite_step_done(s, s->commit, "commit");
    if (rc != 0) {
        snprintf(err, errlen, "%s", s->last_error); /* the cause, before a failing ROLLBACK could replace it */
        if (!sqlite3_get_autocommit(s->db)) store_sqlite_step_done(s, s->rollback, "rollback");
        stats_sqlite_rollback(s->stats);
        for (size_t k = 0; k < n; k++)
            for (size_t i = 0; i < b[k]->nitems; i++)
                if (b[k]->items[i].status != STORE_ITEM_REJECTED) b[k]->items[i].status = STORE_ITEM_PENDING;
    } else {
        for (size_t k = 0; k < n; k++) store_sqlite_count(b[k]);
    }
    retention_sqlite_batch_done(s->retention, ckpt, retention_mono_us() - t0);
    return rc;
}

/* On the loop after each batch's transaction (sqw_after_fn). */
static void store_sqlite_after_write(void *ctx, int rc) {
    ((store_sqlite *)ctx)->last_write_failed = rc != 0;
}

static void store_sqlite_write_batch(store *base, store_batch *b, store_write_cb cb, void *arg) {
    store_sqlite *s = (store_sqlite *)base;
    if (s->writer) sqw_submit(s->writer, b, cb, arg);
    else sqw_submit_inline(store_sqlite_write, store_sqlite_after_write, s, b, cb, arg);
}

/* ---- reads ------------------------------------------------------------ */

enum { Q_ENTITY = 1, Q_DOMAIN = 2, Q_TYPE = 4, Q_START = 8, Q_END = 16, Q_AREA = 32, Q_FLOOR = 64,
       Q_DEVICE = 128, Q_PLATFORM = 256, Q_LABEL = 512, Q_HOME = 1024, Q_TYPE_OTHER = 2048 };

static int store_sqlite_query_mask(const store_filter *f) {
    return (f->entity_id ? Q_ENTITY : 0) | (f->domain ? Q_DOMAIN : 0) | (f->event_type ? Q_TYPE : 0) |
           (f->has_start ? Q_START : 0) | (f->has_end ? Q_END : 0) | (f->area ? Q_AREA : 0) |
           (f->floor ? Q_FLOOR : 0) | (f->device ? Q_DEVICE : 0) | (f->platform ? Q_PLATFORM : 0) |
           (f->label ? Q_LABEL : 0) | (f->home_id ? Q_HOME : 0) |
           (f->event_type && strcmp(f->event_type, "state_changed") != 0 ? Q_TYPE_OTHER : 0);
}

static sqlite3_stmt *store_sqlite_query_stmt(store_sqlite *s, int mask) {
    if (s->query[mask]) return s->query[mask];
    char sql[1024];
    /* home=: the home_id column (store_sqlite_home.h) */
    snprintf(sql, sizeof sql,
             "SELECT record,event_id,stored_at_us FROM events WHERE 1%s%s%s%s%s%s%s%s%s%s%s%s "
             "ORDER BY time_us DESC, id DESC LIMIT ? OFFSET ?",
             mask & Q_ENTITY ? " AND entity_id=?" : "", mask & Q_DOMAIN ? " AND domain=?" : "",
             mask & Q_TYPE ? " AND event_type=?" : "", mask & Q_START ? " AND time_us>=?" : "",
             mask & Q_END ? " AND time_us<?" : "", mask & Q_AREA ? " AND area_id=?" : "",
             mask & Q_FLOOR ? " AND floor_id=?" : "", mask & Q_DEVICE ? " AND device_id=?" : "",
             mask & Q_PLATFORM ? " AND platform=?" : "",
             mask & Q_LABEL ? " AND id IN (SELECT event_rowid FROM event_labels WHERE label=?)" : "",
             mask & Q_HOME ? " AND home_id=?" : "", mask & Q_TYPE_OTHER ? STORE_SQLITE_TYPE_OTHER : "");
    if (store_sqlite_prepare(s, sql, &s->query[mask]) != 0) return NULL;
    return s->query[mask];
}

static int store_sqlite_run_query(store_sqlite *s, const store_filter *f, store_rows *rows) {
    /* registry filters: context spans (schema 10); domain=: domain spans (schema 11), unless
     * the domain is most of the events (then by time, below: store_sqlite_domain.h) */
    int merge = sqx_applies(f);
    if (merge && !sqd_dense(s->db, f)) {
        s->reads_merged++;
        if (sqx_skips(f)) s->reads_skipped++;
        int rc = sqx_query(s->db, f, rows, s->last_error, sizeof s->last_error);
        if (rc) log_error("sqlite %s", s->last_error);
        return rc;
    }
    if (merge) s->reads_by_time++; /* a dense domain's page */
    int mask = store_sqlite_query_mask(f), col = 1;
    sqlite3_stmt *st = store_sqlite_query_stmt(s, mask);
    if (!st) return -1;
    if (mask & Q_ENTITY) sqlite3_bind_text(st, col++, f->entity_id, -1, SQLITE_STATIC);
    if (mask & Q_DOMAIN) sqlite3_bind_text(st, col++, f->domain, -1, SQLITE_STATIC);
    if (mask & Q_TYPE) sqlite3_bind_text(st, col++, f->event_type, -1, SQLITE_STATIC);
    if (mask & Q_START) sqlite3_bind_int64(st, col++, f->start_us);
    if (mask & Q_END) sqlite3_bind_int64(st, col++, f->end_us);
    if (mask & Q_AREA) sqlite3_bind_text(st, col++, f->area, -1, SQLITE_STATIC);
    if (mask & Q_FLOOR) sqlite3_bind_text(st, col++, f->floor, -1, SQLITE_STATIC);
    if (mask & Q_DEVICE) sqlite3_bind_text(st, col++, f->device, -1, SQLITE_STATIC);
    if (mask & Q_PLATFORM) sqlite3_bind_text(st, col++, f->platform, -1, SQLITE_STATIC);
    if (mask & Q_LABEL) sqlite3_bind_text(st, col++, f->label, -1, SQLITE_STATIC);
    if (mask & Q_HOME) sqlite3_bind_text(st, col++, f->home_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, col++, f->limit);
    sqlite3_bind_int64(st, col++, f->offset);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *rec = (const char *)sqlite3_column_text(st, 0);
        int len = sqlite3_column_bytes(st, 0);
        const char *eid = (const char *)sqlite3_column_text(st, 1);
        if (store_rows_add_event(rows, rec, (size_t)len, eid, sqlite3_column_int64(st, 2)) != 0) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    if (rc != SQLITE_DONE) store_sqlite_fail(s, "query");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void store_sqlite_query_locked(store *base, const store_filter *f, store_rows_cb cb, void *arg) {
    store_sqlite *s = (store_sqlite *)base;
    store_rows rows = {0};
    int rc = store_sqlite_run_query(s, f, &rows);
    cb(&rows, rc, rc ? s->last_error : NULL, arg);
    store_rows_free(&rows);
}

static void store_sqlite_dead_letters_locked(store *base, long limit, store_rows_cb cb, void *arg) {
    store_sqlite *s = (store_sqlite *)base;
    store_rows rows = {0};
    sqlite3_stmt *st = s->select_dead;
    sqlite3_bind_int64(st, 1, limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (store_rows_add_dead(&rows, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                                (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 3),
                                (const char *)sqlite3_column_text(st, 4)) != 0)
            break;
    if (rc != SQLITE_DONE) store_sqlite_fail(s, "dead letters");
    sqlite3_reset(st);
    cb(&rows, rc == SQLITE_DONE ? 0 : -1, rc == SQLITE_DONE ? NULL : s->last_error, arg);
    store_rows_free(&rows);
}

/* ---- memory ----------------------------------------------------------- */

static void store_sqlite_release_memory_locked(store *base) {
    store_sqlite *s = (store_sqlite *)base;
    sqlite3_db_release_memory(s->db);
}

void store_sqlite_count_feed_spans(store *base) { ((store_sqlite *)base)->reads_feed_spans++; }

/* ---- health, info, close ---------------------------------------------- */

/* After a failed write, checks (without waiting) whether a write would now
 * get the lock, so /health recovers before the next batch arrives. */
static void store_sqlite_probe(store_sqlite *s) {
    sqlite3_busy_timeout(s->db, 0);
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        s->last_write_failed = 0;
    }
    sqlite3_busy_timeout(s->db, (int)s->busy_timeout_ms);
}

/* Never blocks: while a batch's transaction runs, the writer's last result
 * stands; a transaction that has held the connection for SQLITE_WRITER_STALL_MS
 * (a commit hung in the disk) makes it unhealthy until it ends. */
static int store_sqlite_health(store *base, const char **reason) {
    store_sqlite *s = (store_sqlite *)base;
    if (s->last_write_failed && sqw_trylock(s->writer)) {
        store_sqlite_probe(s);
        sqw_unlock(s->writer);
    }
    if (s->writer && sqw_busy_ms(s->writer) >= s->writer_stall_ms) {
        *reason = "sqlite_writer_stalled";
        return -1;
    }
    if (s->last_write_failed) {
        *reason = "sqlite_write_failed";
        return -1;
    }
    return 0;
}

static json_t *store_sqlite_info_locked(store_sqlite *s) {
    json_t *o = json_pack("{s:s,s:s,s:i,s:s,s:s}", "backend", "sqlite", "path", s->path, "schema_version",
                          STORE_SQLITE_VERSION, "journal_mode", "wal", "synchronous", "full");
    if (o && s->last_write_failed) json_object_set_new(o, "last_error", json_string(s->last_error));
    if (o && s->retention) json_object_set_new(o, "retention", retention_sqlite_info(s->retention));
    if (o && s->stats && s->stats_on) json_object_set_new(o, "statistics", stats_sqlite_info(s->stats));
    if (o)
        json_object_set_new(o, "reads", json_pack("{s:I,s:I,s:I,s:I}", "merged", (json_int_t)s->reads_merged, "by_time",
                                                  (json_int_t)s->reads_by_time, "feed_spans",
                                                  (json_int_t)s->reads_feed_spans, "skipped",
                                                  (json_int_t)s->reads_skipped));
    return o;
}

/* A read waits for a running transaction at most this long; past it (a commit
 * hung in the disk) it is answered 503 rather than holding the loop -- and
 * /health with it. A batch's commit takes milliseconds. */
#define STORE_SQLITE_READ_WAIT_MS 1000
static const char store_sqlite_busy_err[] = "sqlite writer busy: a commit is taking long";

/* How long /health waits for a running transaction to end before it answers
 * from the figures of its last look (a batch's commit takes milliseconds). */
#define STORE_SQLITE_INFO_WAIT_MS 200

/* The current figures when the connection is free within
 * STORE_SQLITE_INFO_WAIT_MS (always, when the writer is idle); else the last
 * ones, marked "stale". Either way with how long the running transaction has
 * held the connection (writer.busy_ms). */
static json_t *store_sqlite_info(store *base) {
    store_sqlite *s = (store_sqlite *)base;
    json_t *o;
    if (sqw_timedlock(s->writer, STORE_SQLITE_INFO_WAIT_MS)) {
        o = store_sqlite_info_locked(s);
        sqw_unlock(s->writer);
        json_decref(s->info_last);
        s->info_last = o ? json_deep_copy(o) : NULL;
    } else {
        o = s->info_last ? json_deep_copy(s->info_last) : json_pack("{s:s,s:s}", "backend", "sqlite", "path", s->path);
        if (o) json_object_set_new(o, "stale", json_true());
    }
    long long commits, batches;
    sqw_counts(s->writer, &commits, &batches);
    if (o && s->writer)
        json_object_set_new(o, "writer", json_pack("{s:I,s:I,s:I}", "commits", (json_int_t)commits, "batches",
                                                   (json_int_t)batches, "busy_ms",
                                                   (json_int_t)sqw_busy_ms(s->writer)));
    long long appends, writes;
    sqv_counts(&appends, &writes);   /* the process' (store_sqlite_vfs.h) */
    if (o) json_object_set_new(o, "wal_writes", json_pack("{s:I,s:I}", "appends", (json_int_t)appends, "calls",
                                                         (json_int_t)writes));
    return o;
}

static void store_sqlite_close(store *base) {
    store_sqlite *s = (store_sqlite *)base;
    sqw_close(s->writer); /* the running transaction finishes; every batch handed over is called back */
    s->writer = NULL;
    retention_sqlite_close(s->retention);
    stats_sqlite_close(s->stats);
    sqlite3_finalize(s->insert_event);
    sqlite3_finalize(s->insert_events);
    sqlite3_finalize(s->event_rowid);
    sqlite3_finalize(s->upsert_entity);
    sqlite3_finalize(s->upsert_registry);
    sqlite3_finalize(s->insert_label);
    sqlite3_finalize(s->insert_labels);
    sqlite3_finalize(s->upsert_context);
    sqlite3_finalize(s->upsert_domain);
    sqlite3_finalize(s->insert_dead);
    sqlite3_finalize(s->select_dead);
    sqlite3_finalize(s->begin);
    sqlite3_finalize(s->commit);
    sqlite3_finalize(s->rollback);
    for (size_t i = 0; i < sizeof s->query / sizeof *s->query; i++) sqlite3_finalize(s->query[i]);
    if (s->db && sqlite3_close(s->db) != SQLITE_OK) log_warn("sqlite close: %s", sqlite3_errmsg(s->db));
    if (s->lock_fd >= 0) close(s->lock_fd);   /* after the close: the lock covers every write */
    json_decref(s->info_last);
    free(s->path);
    free(s);
}

/* ---- statistics and retention (stats_sqlite.c, retention_sqlite.c) ---- */

static int store_sqlite_stats_rows(store *base, const char *home, const char *entity_id, int hourly,
                                   int64_t start_us, int64_t end_us, int *kind, stats_row *prev, int *has_prev,
                                   store_stats_row_fn fn, void *arg) {
    store_sqlite *s = (store_sqlite *)base;
    if (!sqw_timedlock(s->writer, STORE_SQLITE_READ_WAIT_MS)) return -1; /* a commit hangs: 503, the loop stays free */
    int rc = stats_sqlite_rows(s->stats, home, entity_id, hourly, start_us, end_us, kind, prev, has_prev, fn, arg);
    sqw_unlock(s->writer);
    return rc;
}

static int store_sqlite_maintain(store *base, int64_t now_us) {
    store_sqlite *s = (store_sqlite *)base;
    /* between two batch transactions: a step never runs inside one; a commit
     * that hangs means no step this tick, and the loop stays free */
    if (!sqw_timedlock(s->writer, STORE_SQLITE_INFO_WAIT_MS)) return 0;
    sqlite3_busy_timeout(s->db, 50);   /* another process holds the lock: try on the next tick, don't stall the loop */
    int rc = retention_sqlite_step(s->retention, now_us);
    sqlite3_busy_timeout(s->db, (int)s->busy_timeout_ms);
    sqw_unlock(s->writer);
    return rc;
}

static void store_sqlite_registry_read_locked(store *base, const char *home, const char *entity_id, long limit,
                                       store_rows_cb cb, void *arg) {
    store_sqlite *s = (store_sqlite *)base;
    store_rows rows = {0};
    int rc = sqr_read(s->db, home, entity_id, limit, &rows);
    if (rc) store_sqlite_fail(s, "registry");
    cb(&rows, rc, rc ? s->last_error : NULL, arg);
    store_rows_free(&rows);
}

/* ---- the loop's use of the connection: between two batch transactions (sqw_lock) ---- */

/* A read under the lock; `busy` answers it (cb, with no rows) when the lock
 * did not come within STORE_SQLITE_READ_WAIT_MS. */
#define STORE_SQLITE_LOCKED_AS(name, fn, params, args, busy)                                                     \
    static void name params {                                                                                    \
        sqw *w = ((store_sqlite *)base)->writer;                                                                 \
        if (!sqw_timedlock(w, STORE_SQLITE_READ_WAIT_MS)) {                                                      \
            store_rows none = {0};                                                                               \
            busy;                                                                                                \
            return;                                                                                              \
        }                                                                                                        \
        fn args;                                                                                                 \
        sqw_unlock(w);                                                                                           \
    }
/* Reads answered through a store_rows_cb / a store_read_cb. */
#define STORE_SQLITE_LOCKED(name, fn, params, args)                                                              \
    STORE_SQLITE_LOCKED_AS(name, fn, params, args, cb(&none, -1, store_sqlite_busy_err, arg))
#define STORE_SQLITE_LOCKED_READ(name, fn, params, args)                                                         \
    STORE_SQLITE_LOCKED_AS(name, fn, params, args, cb(&none, NULL, -1, store_sqlite_busy_err, arg))
STORE_SQLITE_LOCKED(store_sqlite_query, store_sqlite_query_locked, (store *base, const store_filter *f, store_rows_cb cb, void *arg),
           (base, f, cb, arg))
STORE_SQLITE_LOCKED(store_sqlite_dead_letters, store_sqlite_dead_letters_locked, (store *base, long limit, store_rows_cb cb, void *arg),
           (base, limit, cb, arg))
STORE_SQLITE_LOCKED(store_sqlite_registry_read, store_sqlite_registry_read_locked,
           (store *base, const char *home, const char *entity_id, long limit, store_rows_cb cb, void *arg),
           (base, home, entity_id, limit, cb, arg))
STORE_SQLITE_LOCKED_READ(store_sqlite_locked_feed, store_sqlite_feed, (store *base, const store_feed_query *q, store_read_cb cb, void *arg), (base, q, cb, arg))
STORE_SQLITE_LOCKED_READ(store_sqlite_locked_entities, store_sqlite_entities, (store *base, const store_entity_query *q, store_read_cb cb, void *arg),
           (base, q, cb, arg))
STORE_SQLITE_LOCKED_READ(store_sqlite_locked_series, store_sqlite_series, (store *base, const store_series_query *q, store_read_cb cb, void *arg),
           (base, q, cb, arg))
STORE_SQLITE_LOCKED_READ(store_sqlite_locked_stats, store_sqlite_stats, (store *base, const store_stats_query *q, store_read_cb cb, void *arg),
           (base, q, cb, arg))
STORE_SQLITE_LOCKED(store_sqlite_locked_dead_letters_home, store_sqlite_dead_letters_home,
           (store *base, const char *home, long limit, store_rows_cb cb, void *arg), (base, home, limit, cb, arg))
STORE_SQLITE_LOCKED(store_sqlite_locked_homes, store_sqlite_homes, (store *base, store_rows_cb cb, void *arg), (base, cb, arg))

/* Giving the page cache back is only worth it between transactions: while one
 * runs, the next idle turn does it. */
static void store_sqlite_release_memory(store *base) {
    store_sqlite *s = (store_sqlite *)base;
    if (!sqw_trylock(s->writer)) return;
    store_sqlite_release_memory_locked(base);
    sqw_unlock(s->writer);
}

static const store_ops store_sqlite_ops = {
    .name = "sqlite",
    .text_batches = 1,
    /* one committing, three waiting: those the writer finds waiting share one
     * transaction (bench/storage_burst.sh CLIENTS=4: ~940 pages per 1,000 events
     * against ~1,090 with two slots, where a group never forms) */
    .pieces = 4,
    .write_batch = store_sqlite_write_batch,
    .query = store_sqlite_query,
    .dead_letters = store_sqlite_dead_letters,
    .feed = store_sqlite_locked_feed,
    .entities = store_sqlite_locked_entities,
    .series = store_sqlite_locked_series,
    .stats = store_sqlite_locked_stats,
    /* issue 18: the home_id columns (store_sqlite_home.h), statistics per
     * (entity, home) (stats_sqlite.h, migration 9) */
    .home_reads = STORE_HOME_FEED | STORE_HOME_SERIES | STORE_HOME_ENTITIES | STORE_HOME_STATS | STORE_HOME_DEAD |
                  STORE_HOME_REGISTRY | STORE_HOME_STATISTICS,
    .dead_letters_home = store_sqlite_locked_dead_letters_home,
    .homes = store_sqlite_locked_homes,
    .health = store_sqlite_health,
    .info = store_sqlite_info,
    .release_memory = store_sqlite_release_memory,
    .stats_rows = store_sqlite_stats_rows,
    .registry = store_sqlite_registry_read,
    .maintain = store_sqlite_maintain,
    .close = store_sqlite_close,
};
