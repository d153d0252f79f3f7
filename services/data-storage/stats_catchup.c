/* stats_catchup.c -- see stats_catchup.h. Per entity E of a home (the
 * entities table's rows, one per entity and home; issue 18):
 *   marks present: at = catchup_at:E, to = catchup_to:E (to <= at: done);
 *   else: first = min(time_us) of E's state_changed events, to = the start of
 *         E's first 5-minute row, or of its first hourly row when that hour
 *         is earlier (5-minute rows purged) (none: no limit); a
 *         catch-up is needed when first < to: at = first, marks written.
 *   chunk: the STATS_CATCHUP_CHUNK-th state from `at` (or the last one before
 *          `to`) is tmax; stats_sqlite_catchup(E, at, tmax); at = tmax + 1.
 * The progress marks are only written inside the caller's transaction. */
#include "stats_catchup.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

enum {
    SC_NEXT_ENTITY, SC_FIRST_EVENT, SC_FIRST_5, SC_FIRST_H, SC_CHUNK_END, SC_LAST_BEFORE, SC_MARK_GET, SC_MARK_PUT, SC_N
};

static const char *const sc_sql[SC_N] = {
    /* ?1 entity, ?2 home in every statement that names one */
    [SC_NEXT_ENTITY] = "SELECT entity_id,home_id FROM entities WHERE (entity_id,home_id)>(?1,?2) "
                       "ORDER BY entity_id,home_id LIMIT 1",
    [SC_FIRST_EVENT] =
        "SELECT min(time_us) FROM events WHERE entity_id=?1 AND home_id=?2 AND event_type='state_changed'",
    [SC_FIRST_5] = "SELECT min(start_us) FROM stats_5min WHERE meta_id="
                   "(SELECT id FROM stats_meta WHERE entity_id=?1 AND home_id=?2)",
    [SC_FIRST_H] = "SELECT min(start_us) FROM stats_hour WHERE meta_id="
                   "(SELECT id FROM stats_meta WHERE entity_id=?1 AND home_id=?2)",
    [SC_CHUNK_END] = "SELECT time_us FROM events WHERE entity_id=?1 AND home_id=?2 AND time_us>=?3 AND time_us<?4 "
                     "ORDER BY time_us LIMIT 1 OFFSET ?5",
    [SC_LAST_BEFORE] =
        "SELECT max(time_us) FROM events WHERE entity_id=?1 AND home_id=?2 AND time_us>=?3 AND time_us<?4",
    [SC_MARK_GET] = "SELECT value FROM stats_marks WHERE name=?",
    [SC_MARK_PUT] = "INSERT OR REPLACE INTO stats_marks(name,value) VALUES(?,?)",
};

struct stats_catchup {
    sqlite3 *db;
    stats_sqlite *stats;
    sqlite3_stmt *st[SC_N];
    char *entity;               /* the entity being looked at (NULL: before the first) */
    char home[EVENT_HOME_MAX + 1]; /* ... of this home */
    int have_range;             /* at/to below are the entity's */
    int64_t at, to;
    int done;
    unsigned long long checked, caught_up, chunks;
};

int stats_catchup_open(sqlite3 *db, stats_sqlite *stats, stats_catchup **out) {
    stats_catchup *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->db = db;
    c->stats = stats;
    for (int i = 0; i < SC_N; i++) {
        if (sqlite3_prepare_v3(db, sc_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &c->st[i], NULL) != SQLITE_OK) {
            log_error("statistics catch-up: prepare: %s", sqlite3_errmsg(db));
            stats_catchup_close(c);
            return -1;
        }
    }
    *out = c;
    return 0;
}

void stats_catchup_close(stats_catchup *c) {
    if (!c) return;
    for (int i = 0; i < SC_N; i++) sqlite3_finalize(c->st[i]);
    free(c->entity);
    free(c);
}

int stats_catchup_done(const stats_catchup *c) {
    return c->done;
}

void stats_catchup_reset(stats_catchup *c) {
    free(c->entity);
    c->entity = NULL;
    c->home[0] = '\0';
    c->have_range = 0;
    c->done = 0;
}

static sqlite3_stmt *sc_stmt(stats_catchup *c, int which) {
    sqlite3_reset(c->st[which]);
    sqlite3_clear_bindings(c->st[which]);
    return c->st[which];
}

/* A statement with ?1 = the current entity, ?2 its home. */
static sqlite3_stmt *sc_stmt_key(stats_catchup *c, int which) {
    sqlite3_stmt *st = sc_stmt(c, which);
    sqlite3_bind_text(st, 1, c->entity, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->home, -1, SQLITE_STATIC);
    return st;
}

/* One int64 (or NULL) answer: 1 found (not NULL), 0 none, -1 error. */
static int sc_int(stats_catchup *c, sqlite3_stmt *st, int64_t *v) {
    int rc = sqlite3_step(st);
    int found = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
    if (found) *v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        log_warn("statistics catch-up: %s", sqlite3_errmsg(c->db));
        return -1;
    }
    return found;
}

/* The marks are named catchup_at:E / catchup_to:E for the default home (as
 * before homes), catchup_at@H:E for home H (a home id has no '@' or ':'). */
static int sc_mark(stats_catchup *c, const char *what, int64_t *v, int put) {
    char name[700];
    if (event_home_is_default(c->home)) snprintf(name, sizeof name, "catchup_%s:%s", what, c->entity);
    else snprintf(name, sizeof name, "catchup_%s@%s:%s", what, c->home, c->entity);
    sqlite3_stmt *st = sc_stmt(c, put ? SC_MARK_PUT : SC_MARK_GET);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    if (!put) return sc_int(c, st, v);
    sqlite3_bind_int64(st, 2, *v);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* Moves to the next entity and decides its range. 1 = one to work on (or
 * checked and nothing to do: call again), 0 = no entity left, -1 error. */
static int sc_next(stats_catchup *c) {
    sqlite3_stmt *st = sc_stmt(c, SC_NEXT_ENTITY);
    sqlite3_bind_text(st, 1, c->entity ? c->entity : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, c->home, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    char *next = rc == SQLITE_ROW ? strdup((const char *)sqlite3_column_text(st, 0)) : NULL;
    if (next) snprintf(c->home, sizeof c->home, "%s", (const char *)sqlite3_column_text(st, 1));
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW || !next) return -1;
    free(c->entity);
    c->entity = next;
    c->have_range = 0;
    c->checked++;
    int64_t at, to;
    int a = sc_mark(c, "at", &at, 0), t = a < 0 ? -1 : sc_mark(c, "to", &to, 0);
    if (a < 0 || t < 0) return -1;
    if (a && t) {   /* begun before a restart */
        c->at = at;
        c->to = to;
        c->have_range = at < to;
        return 1;
    }
    int64_t first;
    st = sc_stmt_key(c, SC_FIRST_EVENT);
    if ((a = sc_int(c, st, &first)) <= 0) return a < 0 ? -1 : 1;
    /* where the rows begin: the first 5-minute row; an hourly row of an
     * earlier hour (its 5-minute rows purged) begins them earlier */
    int64_t to5 = INT64_MAX, toh = INT64_MAX;
    st = sc_stmt_key(c, SC_FIRST_5);
    if (sc_int(c, st, &to5) < 0) return -1;
    st = sc_stmt_key(c, SC_FIRST_H);
    if (sc_int(c, st, &toh) < 0) return -1;
    to = to5 != INT64_MAX && stats_floor(to5, STATS_HOUR_US) <= toh ? to5 : toh;
    if (first >= to) return 1;   /* statistics from its first state on: nothing to catch up */
    c->at = first;
    c->to = to;
    if (sc_mark(c, "at", &c->at, 1) != 0 || sc_mark(c, "to", &c->to, 1) != 0) return -1;
    c->have_range = 1;
    c->caught_up++;
    log_info("statistics catch-up: %s (home %s) has history before its statistics, computing it in steps", c->entity,
             c->home);
    return 1;
}

/* One chunk of the current entity. 0, or -1. */
static int sc_chunk(stats_catchup *c) {
    int64_t tmax;
    sqlite3_stmt *st = sc_stmt_key(c, SC_CHUNK_END);
    sqlite3_bind_int64(st, 3, c->at);
    sqlite3_bind_int64(st, 4, c->to);
    sqlite3_bind_int(st, 5, STATS_CATCHUP_CHUNK - 1);
    int found = sc_int(c, st, &tmax);
    if (found < 0) return -1;
    int last = !found;
    if (last) {   /* fewer states left: up to the row the history meets (or the last state) */
        st = sc_stmt_key(c, SC_LAST_BEFORE);
        sqlite3_bind_int64(st, 3, c->at);
        sqlite3_bind_int64(st, 4, c->to);
        found = sc_int(c, st, &tmax);
        if (found < 0) return -1;
        if (c->to != INT64_MAX) tmax = c->to - 1;
        else if (!found) tmax = c->at;
    }
    if (stats_sqlite_catchup(c->stats, c->entity, c->home, c->at, tmax) != 0) return -1;
    c->chunks++;
    c->at = last ? c->to : tmax + 1;
    if (last) c->have_range = 0;
    return sc_mark(c, "at", &c->at, 1);
}

int stats_catchup_step(stats_catchup *c, int (*spent)(void *arg), void *arg) {
    if (c->done) return 0;
    do {
        if (!c->have_range) {
            int rc = sc_next(c);
            if (rc < 0) return -1;
            if (rc == 0) {
                c->done = 1;
                if (c->chunks) log_info("statistics catch-up done: %llu entities, %llu chunks", c->caught_up, c->chunks);
                return 0;
            }
            continue;
        }
        if (sc_chunk(c) != 0) return -1;
    } while (!spent(arg));
    return 1;
}

json_t *stats_catchup_info(const stats_catchup *c) {
    return json_pack("{s:b,s:I,s:I,s:I,s:s?,s:s?}", "done", c->done, "entities_checked", (json_int_t)c->checked,
                     "entities_caught_up", (json_int_t)c->caught_up, "chunks", (json_int_t)c->chunks, "current",
                     c->done ? NULL : c->entity, "current_home", c->done || !c->entity ? NULL : c->home);
}
