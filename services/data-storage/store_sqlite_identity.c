/* store_sqlite_identity.c -- see store_sqlite_identity.h. */
#include "store_sqlite_identity.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#define SQI_OLD_COLUMN "event_id TEXT NOT NULL UNIQUE"
#define SQI_NEW_COLUMN "event_id TEXT NOT NULL"
#define SQI_TMP "events_identity_rebuild"

static int sqi_exec(sqlite3 *db, const char *sql) {
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
    log_error("sqlite identity migration: %s (in: %.120s)", msg ? msg : "?", sql);
    sqlite3_free(msg);
    return -1;
}

/* The CREATE TABLE of the rebuilt table: events' own text, renamed, without the UNIQUE. */
static char *sqi_new_table_sql(sqlite3 *db) {
    sqlite3_stmt *st;
    char *out = NULL;
    if (sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'", -1, &st,
                           NULL) != SQLITE_OK)
        return NULL;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *sql = (const char *)sqlite3_column_text(st, 0);
        const char *head = "CREATE TABLE events", *col = sql ? strstr(sql, SQI_OLD_COLUMN) : NULL;
        size_t hl = strlen(head);
        if (col && strncmp(sql, head, hl) == 0 && (sql[hl] == ' ' || sql[hl] == '(')) {
            size_t n = strlen(sql);
            out = malloc(n + sizeof SQI_TMP);
            if (out) {
                char *p = out;
                p += sprintf(p, "CREATE TABLE " SQI_TMP);
                memcpy(p, sql + hl, (size_t)(col - sql) - hl), p += (size_t)(col - sql) - hl;
                p += sprintf(p, SQI_NEW_COLUMN);
                strcpy(p, col + strlen(SQI_OLD_COLUMN));
            }
        } else {
            log_error("sqlite identity migration: events is not as expected (%.120s)", sql ? sql : "?");
        }
    }
    sqlite3_finalize(st);
    return out;
}

typedef struct sqi_objects {
    char **sql;
    size_t n;
} sqi_objects;

static void sqi_objects_free(sqi_objects *o) {
    for (size_t i = 0; i < o->n; i++) free(o->sql[i]);
    free(o->sql);
}

/* Every index and trigger of events that has SQL (not the UNIQUE's automatic index). */
static int sqi_objects_load(sqlite3 *db, sqi_objects *o) {
    sqlite3_stmt *st;
    memset(o, 0, sizeof *o);
    if (sqlite3_prepare_v2(db,
                           "SELECT sql FROM sqlite_master WHERE tbl_name = 'events' AND type IN ('index', 'trigger') "
                           "AND sql IS NOT NULL ORDER BY type, name",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char **p = realloc(o->sql, (o->n + 1) * sizeof *p);
        if (!p) break;
        o->sql = p;
        if (!(o->sql[o->n] = strdup((const char *)sqlite3_column_text(st, 0)))) break;
        o->n++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

long long sqi_scalar(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

int sqi_room(sqlite3 *db, long long need, const char *what) {
    const char *path = sqlite3_db_filename(db, "main");
    if (!path || !path[0]) return 0; /* in memory: try */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0; else snprintf(dir, sizeof dir, ".");
    struct statvfs v;
    if (statvfs(dir, &v) != 0) return 0;
    long long have = (long long)v.f_bavail * (long long)v.f_frsize;
    need += 1LL << 20;
    if (have >= need) return 0;
    log_error("sqlite %s needs about %lld MB free in %s and %lld MB are: free disk space and start again (nothing "
              "was changed; the store stays at its previous schema)", what, need >> 20, dir, have >> 20);
    return -1;
}

long long sqi_file_bytes(sqlite3 *db) {
    long long pages = sqi_scalar(db, "PRAGMA page_count"), size = sqi_scalar(db, "PRAGMA page_size");
    return pages < 0 || size < 0 ? 0 : pages * size;
}

/* The rebuild writes a second copy of events before the first is freed: refuse
 * to start it (with the reason, nothing changed) when the disk cannot hold it,
 * rather than fail with SQLITE_FULL after minutes of work. */
static int sqi_rebuild_room(sqlite3 *db) {
    long long bytes = sqi_file_bytes(db);
    if (sqi_room(db, bytes, "identity migration") != 0) return -1;
    if (bytes >= (64LL << 20))
        log_info("sqlite identity migration: rebuilding events (%lld MB) once for the time-ordered identity "
                 "index; this can take minutes on a large store (ingestion keeps spooling meanwhile)", bytes >> 20);
    return 0;
}

int sqi_migrate(sqlite3 *db) {
    sqi_objects o;
    if (sqi_rebuild_room(db) != 0) return -1;
    char *create = sqi_new_table_sql(db);
    if (!create || sqi_objects_load(db, &o) != 0) {
        free(create);
        return -1;
    }
    /* legacy_alter_table: the rename must not re-check or rewrite other objects' SQL
     * (SQLite's "making other kinds of table schema changes", step 10) */
    int rc = sqi_exec(db, create) || sqi_exec(db, "INSERT INTO " SQI_TMP " SELECT * FROM events ORDER BY id") ||
             sqi_exec(db, "DROP TABLE events") || sqi_exec(db, "PRAGMA legacy_alter_table = ON") ||
             sqi_exec(db, "ALTER TABLE " SQI_TMP " RENAME TO events") ||
             sqi_exec(db, "PRAGMA legacy_alter_table = OFF");
    for (size_t i = 0; i < o.n && rc == 0; i++) rc = sqi_exec(db, o.sql[i]);
    if (rc == 0) rc = sqi_exec(db, "CREATE UNIQUE INDEX events_identity ON events(time_us, event_id)");
    sqi_objects_free(&o);
    free(create);
    return rc ? -1 : 0;
}
