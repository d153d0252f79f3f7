/* test_sqlite_home.c -- the SQLite home_id migration (issue 18,
 * store_sqlite_home.h) on a file as the schema before it left it.
 *
 * Why: a file written by the previous release may already hold two homes
 * (their events told apart only by the record's "home_id" member) with one
 * entities row and one registry row per entity summed or overwritten across
 * homes. After the upgrade every row must belong to exactly one home: events
 * by their record, entities re-counted per home where homes share an entity
 * (and copied untouched where they do not), registry rows to the home of the
 * event they were last seen in, old dead letters to the default home. The
 * fixture is written with raw SQL at the version before the migration, the
 * way that release's writer left it; the answers were worked out by hand.
 *
 * The statistics migration (9, stats_sqlite.h): a file whose statistics were
 * kept per entity, across homes, gets them per (entity, home): rows of an
 * entity only one home has events of stay (that home's), rows that mixed
 * two homes are computed again per home by the catch-up -- the same rows a
 * store that kept them per home from the start has (test_upgrade_statistics). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store.h"
#include "store_sqlite.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void exec(sqlite3 *db, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) fail_msg("%s: %s", sql, err ? err : "?");
}

/* One text answer of a query ("" for no row, "NULL" for NULL). */
static void one(sqlite3 *db, const char *sql, char *out, size_t n) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    out[0] = '\0';
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        snprintf(out, n, "%s", v ? v : "NULL");
    }
    sqlite3_finalize(st);
}

#define ASSERT_ONE(db, sql, want)                                                                                      \
    do {                                                                                                               \
        char got_[512];                                                                                                \
        one(db, sql, got_, sizeof got_);                                                                               \
        if (strcmp(got_, want) != 0) fail_msg("%s\n  want [%s]\n  got  [%s]", sql, want, got_);                     \
    } while (0)

/* sensor.t: default 1 @1000 (1), b 5 @1000 (5), b 6 @3000 (6); sensor.only: default on @2000.
 * entities/registry as the old writer kept them: one row per entity, across homes. */
static const char *const fixture =
    "INSERT INTO events(id,event_id,time_us,entity_id,domain,event_type,stored_at_us,record,kind,state,value) VALUES"
    " (1,'e1',1000,'sensor.t','sensor','state_changed',1,"
    "  '{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.t\",\"state\":\"1\",\"value\":1.0}',1,'1',1.0),"
    " (2,'e2',1000,'sensor.t','sensor','state_changed',1,"
    "  '{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.t\",\"state\":\"5\",\"value\":5.0,\"home_id\":\"b\"}',"
    "  1,'5',5.0),"
    " (3,'e3',2000,'switch.only','switch','state_changed',1,"
    "  '{\"event_type\":\"state_changed\",\"entity_id\":\"switch.only\",\"state\":\"on\",\"value\":1.0}',1,'on',NULL),"
    " (4,'e4',3000,'sensor.t','sensor','state_changed',1,"
    "  '{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.t\",\"state\":\"6\",\"value\":6.0,\"home_id\":\"b\"}',"
    "  1,'6',6.0),"
    " (5,'e5',4000,NULL,NULL,'homeassistant_start',1,"
    "  '{\"event_type\":\"homeassistant_start\",\"note\":\"\\\"home_id\\\" in text only\"}',NULL,NULL,NULL);"
    "INSERT INTO entities(id,entity_id,domain,event_count,last_time_us,last_state,state_time_us,last_changed_us,numeric)"
    " VALUES (7,'sensor.t','sensor',3,3000,'6',3000,3000,1), (9,'switch.only','switch',1,2000,'on',2000,2000,0);"
    "INSERT INTO registry(entity_id,time_us,since_us,context) VALUES"
    " ('sensor.t',3000,3000,'{\"area_id\":\"attic\"}'), ('switch.only',2000,2000,'{\"area_id\":\"hall\"}');"
    "INSERT INTO dead_letters(received_at_us,source,error,raw) VALUES (5,'test','bad','{}');";

static void test_upgrade_two_homes(void **state) {
    (void)state;
    int hv = store_sqlite_home_version();
    assert_true(hv > 1);
    char dir[] = "/tmp/homeiq-home.XXXXXX", path[64], cmd[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/events.db", dir);
    assert_int_equal(store_sqlite_create_at_version(path, hv - 1), 0);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    exec(db, fixture);
    sqlite3_close(db);

    store *s;
    assert_int_equal(store_sqlite_open_path(path, 1000, &s), 0); /* migrates */
    store_close(s);

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char want[16];
    snprintf(want, sizeof want, "%d", store_sqlite_latest_version());
    ASSERT_ONE(db, "PRAGMA user_version", want);
    ASSERT_ONE(db, "SELECT group_concat(id || ':' || home_id, ' ') FROM (SELECT * FROM events ORDER BY id)",
               "1:default 2:b 3:default 4:b 5:default");
    /* entities: sensor.t re-counted per home; switch.only copied (its id kept) */
    ASSERT_ONE(db,
               "SELECT group_concat(entity_id || '/' || home_id || ' ' || event_count || ' ' || last_state || ' ' ||"
               " state_time_us || ' ' || last_changed_us || ' ' || numeric, '; ') FROM (SELECT * FROM entities"
               " ORDER BY entity_id, home_id)",
               "sensor.t/b 2 6 3000 3000 1; sensor.t/default 1 1 1000 1000 1; switch.only/default 1 on 2000 2000 0");
    ASSERT_ONE(db, "SELECT id FROM entities WHERE entity_id = 'switch.only'", "9");
    /* registry: the home of the event each row was last seen in */
    ASSERT_ONE(db, "SELECT group_concat(entity_id || '/' || home_id, ' ') FROM (SELECT * FROM registry ORDER BY 1)",
               "sensor.t/b switch.only/default");
    ASSERT_ONE(db, "SELECT group_concat(home_id) FROM dead_letters", "default");
    /* one row per entity and home from now on */
    ASSERT_ONE(db, "SELECT count(*) FROM pragma_index_list('entities') WHERE \"unique\"", "1");
    sqlite3_close(db);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A single-home file: nothing but the new columns changes. */
static void test_upgrade_one_home(void **state) {
    (void)state;
    char dir[] = "/tmp/homeiq-home.XXXXXX", path[64], cmd[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/events.db", dir);
    assert_int_equal(store_sqlite_create_at_version(path, store_sqlite_home_version() - 1), 0);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    exec(db, fixture);
    exec(db, "DELETE FROM events WHERE record LIKE '%\"home_id\":\"b\"%'");
    sqlite3_close(db);
    store *s;
    assert_int_equal(store_sqlite_open_path(path, 1000, &s), 0);
    store_close(s);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    ASSERT_ONE(db, "SELECT group_concat(DISTINCT home_id) FROM events", "default");
    /* copied as the old writer kept them (no re-count: its counters stand) */
    ASSERT_ONE(db,
               "SELECT group_concat(entity_id || '/' || home_id || ' ' || event_count || ' ' || id, '; ') FROM"
               " (SELECT * FROM entities ORDER BY entity_id)",
               "sensor.t/default 3 7; switch.only/default 1 9");
    sqlite3_close(db);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- statistics per (entity, home): migration 9 ----------------------- */

static void write_cb(store_batch *b, int rc, const char *err, void *arg) {
    (void)b;
    if (rc != 0) print_error("write failed: %s\n", err ? err : "?");
    *(int *)arg = rc;
}

/* Posts n states of entity (value v0 + i * dv, 4 minutes apart from 00:00)
 * as one batch of home (NULL: the default home). */
static void post_states(store *s, const char *home, const char *entity, int n, double v0, double dv) {
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        char t[32], st[32];
        snprintf(t, sizeof t, "2026-01-01T%02d:%02d:00Z", i * 4 / 60, i * 4 % 60);
        snprintf(st, sizeof st, "%g", v0 + i * dv);
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:f,s:s}", "event_type", "state_changed", "entity_id",
                                             entity, "time_fired", t, "state", st, "value", v0 + i * dv,
                                             "context_id", t));
    }
    store_batch b;
    assert_int_equal(store_batch_prepare(&b, arr, NULL), 0);
    if (home) assert_int_equal(store_batch_set_home(&b, home), 0);
    int rc = -2;
    s->ops->write_batch(s, &b, write_cb, &rc);
    assert_int_equal(rc, 0);
    store_batch_free(&b);
    json_decref(arr);
}

/* Every statistics row of entity/home, both tables, as one text (home NULL:
 * schema 8's stats_meta, without homes). */
static void stats_text(sqlite3 *db, const char *entity, const char *home, char *out, size_t n) {
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT group_concat(t || start_us || ':' || round(mean, 6) || '/' || min || '/' || max || '/' || "
             "count, ' ') FROM (SELECT 'm' AS t, * FROM stats_5min UNION ALL SELECT 'h', * FROM stats_hour "
             "ORDER BY 1, start_us) WHERE meta_id = (SELECT id FROM stats_meta WHERE entity_id = '%s'%s%s%s)",
             entity, home ? " AND home_id = '" : "", home ? home : "", home ? "'" : "");
    one(db, sql, out, n);
}

static void test_upgrade_statistics(void **state) {
    (void)state;
    char dir[] = "/tmp/homeiq-home.XXXXXX", path[64], cmd[128];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/events.db", dir);
    /* the events, written per home by this binary: sensor.t in both homes at
     * the same times (different values), sensor.d only in the default home,
     * sensor.b only in home b */
    store *s;
    assert_int_equal(store_sqlite_open_path(path, 1000, &s), 0);
    post_states(s, NULL, "sensor.t", 20, 10, 1);
    post_states(s, "b", "sensor.t", 20, 500, -7);
    post_states(s, NULL, "sensor.d", 10, 1, 2);
    post_states(s, "b", "sensor.b", 10, 3, 3);
    store_close(s);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    static const char *const keys[][2] = {
        {"sensor.t", "default"}, {"sensor.t", "b"}, {"sensor.d", "default"}, {"sensor.b", "b"}};
    char want[4][8192], got[8192], ids[64];
    for (int k = 0; k < 4; k++) {
        stats_text(db, keys[k][0], keys[k][1], want[k], sizeof want[k]);
        assert_true(strlen(want[k]) > 20);
    }
    assert_string_not_equal(want[0], want[1]);
    one(db, "SELECT group_concat(id, ',') FROM (SELECT id FROM stats_meta WHERE entity_id IN ('sensor.d','sensor.b')"
            " ORDER BY entity_id)", ids, sizeof ids);
    /* ... then put the statistics back as schema 8 kept them: one stats_meta row
     * per entity across homes; sensor.t's rows are those of both homes mixed
     * (here: the default home's made wrong), a catch-up done for each entity */
    exec(db,
         "BEGIN;"
         "DELETE FROM stats_5min WHERE meta_id = (SELECT id FROM stats_meta WHERE entity_id = 'sensor.t'"
         "  AND home_id = 'b');"
         "DELETE FROM stats_hour WHERE meta_id = (SELECT id FROM stats_meta WHERE entity_id = 'sensor.t'"
         "  AND home_id = 'b');"
         "UPDATE stats_5min SET mean = mean + 1000, count = count * 2 WHERE meta_id = (SELECT id FROM stats_meta"
         "  WHERE entity_id = 'sensor.t' AND home_id = 'default');"
         "CREATE TABLE stats_meta_8 (id INTEGER PRIMARY KEY, entity_id TEXT NOT NULL UNIQUE, kind INTEGER NOT NULL);"
         "INSERT INTO stats_meta_8 SELECT id, entity_id, kind FROM stats_meta WHERE home_id = 'default'"
         "  OR entity_id != 'sensor.t';"
         "DROP TABLE stats_meta; ALTER TABLE stats_meta_8 RENAME TO stats_meta;"
         "INSERT INTO stats_marks VALUES ('catchup_at:sensor.t', 1), ('catchup_to:sensor.t', 1),"
         "  ('catchup_at:sensor.b', 2), ('catchup_to:sensor.b', 2), ('catchup_at:sensor.d', 3),"
         "  ('catchup_to:sensor.d', 3);"
         "PRAGMA user_version = 8; COMMIT;");
    stats_text(db, "sensor.t", NULL, got, sizeof got);
    sqlite3_close(db);
    /* the fixture must be wrong before: else the test proves nothing */
    if (strcmp(got, want[0]) == 0) fail_msg("fixture: sensor.t's mixed rows equal the right ones");

    assert_int_equal(store_sqlite_open_path(path, 1000, &s), 0); /* migrates to 9 */
    int steps = 0, rc;
    /* the catch-up; a tick starts no step while the WAL thread flushes the last one's pages
     * (retention_sqlite_step), so ticks are a millisecond apart as the service's timer would be */
    while ((rc = s->ops->maintain(s, 1767225600LL * 1000000)) == 1 && steps < 20000) {
        steps++;
        sqlite3_sleep(1);
    }
    assert_int_equal(rc, 0);
    store_close(s);

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    snprintf(got, sizeof got, "%d", store_sqlite_latest_version());
    ASSERT_ONE(db, "PRAGMA user_version", got);
    for (int k = 0; k < 4; k++) {
        stats_text(db, keys[k][0], keys[k][1], got, sizeof got);
        if (strcmp(got, want[k]) != 0)
            fail_msg("%s/%s after the upgrade\n  want [%s]\n  got  [%s]", keys[k][0], keys[k][1], want[k], got);
    }
    /* unmixed rows stay where they were (same meta ids), now their home's */
    ASSERT_ONE(db, "SELECT group_concat(id, ',') FROM (SELECT id FROM stats_meta WHERE entity_id IN ('sensor.d',"
                   "'sensor.b') ORDER BY entity_id)", ids);
    ASSERT_ONE(db, "SELECT home_id FROM stats_meta WHERE entity_id = 'sensor.b'", "b");
    /* the catch-up marks follow their entity's home; the mixed entity's were dropped (and written anew) */
    ASSERT_ONE(db, "SELECT group_concat(name || '=' || value, ' ') FROM (SELECT * FROM stats_marks WHERE name LIKE"
                   " 'catchup%sensor.b' OR name LIKE 'catchup%sensor.d' ORDER BY name)",
               "catchup_at:sensor.d=3 catchup_at@b:sensor.b=2 catchup_to:sensor.d=3 catchup_to@b:sensor.b=2");
    ASSERT_ONE(db, "SELECT count(*) FROM stats_marks WHERE name IN ('catchup_at:sensor.t', 'catchup_to:sensor.t')"
                   " AND value = 1", "0");
    ASSERT_ONE(db, "SELECT count(*) FROM pragma_index_list('stats_meta') WHERE \"unique\"", "1");
    sqlite3_close(db);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upgrade_two_homes),
        cmocka_unit_test(test_upgrade_one_home),
        cmocka_unit_test(test_upgrade_statistics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
