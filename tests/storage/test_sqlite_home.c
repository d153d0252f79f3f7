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
 * way that release's writer left it; the answers were worked out by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store.h"
#include "store_sqlite.h"

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
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upgrade_two_homes),
        cmocka_unit_test(test_upgrade_one_home),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
