/* store_sqlite_home.c -- see store_sqlite_home.h. */
#include "store_sqlite_home.h"
#include "store_sqlite_read.h"
#include "json_text.h"
#include "log.h"
#include "sbuf.h"

#include <stdio.h>
#include <string.h>

const char *store_sqlite_home_of(const char *home) { return home && *home ? home : EVENT_HOME_DEFAULT; }

static void sqh_fail(store *s, const char *what, char *err, size_t n) {
    snprintf(err, n, "%s: %s", what, sqlite3_errmsg(store_sqlite_db(s)));
    log_error("sqlite %s", err);
}

void store_sqlite_dead_letters_home(store *s, const char *home, long limit, store_rows_cb cb, void *arg) {
    store_rows rows = {0};
    char err[256] = "";
    sqlite3_stmt *st = NULL;
    int rc = SQLITE_ERROR;
    if (sqlite3_prepare_v2(store_sqlite_db(s),
                           "SELECT id,received_at_us,source,error,raw FROM dead_letters WHERE home_id = ?1 "
                           "ORDER BY id DESC LIMIT ?2",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, store_sqlite_home_of(home), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, limit);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            if (store_rows_add_dead(&rows, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                                    (const char *)sqlite3_column_text(st, 2),
                                    (const char *)sqlite3_column_text(st, 3),
                                    (const char *)sqlite3_column_text(st, 4)) != 0) {
                rc = SQLITE_NOMEM;
                break;
            }
    }
    if (rc != SQLITE_DONE) sqh_fail(s, "dead letters", err, sizeof err);
    sqlite3_finalize(st);
    cb(&rows, rc == SQLITE_DONE ? 0 : -1, rc == SQLITE_DONE ? NULL : err, arg);
    store_rows_free(&rows);
}

static int sqh_home_row(store_rows *rows, const char *home, long long events) {
    sbuf b;
    sbuf_init(&b);
    sbuf_adds(&b, "{\"home_id\":");
    json_text_string(&b, home, strlen(home));
    sbuf_printf(&b, ",\"events\":%lld}", events);
    char *t = sbuf_take(&b, NULL);
    return t ? store_rows_add(rows, t) : -1;
}

/* The other homes from the partial index events_home_time; the default home's
 * count is every row minus theirs (count(*) reads the smallest index). In
 * home_id order, as on ClickHouse. */
void store_sqlite_homes(store *s, store_rows_cb cb, void *arg) {
    store_rows rows = {0};
    char err[256] = "";
    sqlite3_stmt *st = NULL;
    int rc = SQLITE_ERROR;
    if (sqlite3_prepare_v2(store_sqlite_db(s),
                           "WITH o AS (SELECT home_id, count(*) AS n FROM events WHERE home_id != '" EVENT_HOME_DEFAULT
                           "' GROUP BY home_id) SELECT home_id, n FROM (SELECT * FROM o UNION ALL SELECT '"
                           EVENT_HOME_DEFAULT "', (SELECT count(*) FROM events) - (SELECT coalesce(sum(n), 0) FROM o))"
                           " WHERE n > 0 ORDER BY home_id",
                           -1, &st, NULL) == SQLITE_OK)
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            if (sqh_home_row(&rows, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1)) != 0) {
                rc = SQLITE_NOMEM;
                break;
            }
    if (rc != SQLITE_DONE) sqh_fail(s, "homes", err, sizeof err);
    sqlite3_finalize(st);
    cb(&rows, rc == SQLITE_DONE ? 0 : -1, rc == SQLITE_DONE ? NULL : err, arg);
    store_rows_free(&rows);
}
