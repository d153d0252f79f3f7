/* test_sqlite_vfs.c -- store_sqlite_vfs.c, the WAL's appends gathered into one
 * write call, on real SQLite files: every path that reads the WAL sees every
 * byte it may read.
 *  - a transaction larger than the connection's cache spills pages into the WAL
 *    and reads them back (xRead writes the buffer out first), and commits;
 *  - another connection (the default VFS, as the checkpointer, homeiqctl and the
 *    sqlite3 shell are) reads every committed row -- also after a commit
 *    without an fsync (synchronous=NORMAL, a purge step's), which only the
 *    wal-index barrier writes out -- and checkpoints them into a sound file;
 *  - a WAL restart after a checkpoint (a write at the file's start) and an
 *    in-place frame rewrite go to their offsets;
 *  - the appends were gathered: fewer write calls than appends;
 *  - a checkpointer's connection (RETENTION_WAL_VFS, retention_wal.c's) leaves
 *    every connection reading the same rows after its checkpoints, while the
 *    writer goes on.
 * Failing writes (the fault shim, run by tests/fault): a commit without fsync
 * whose WAL write fails fails and publishes nothing, every acked commit before
 * and after it survives a crash and a clean close (fault_sqlite_vfs_commit*); a
 * checkpoint whose write into the database file fails leaves every committed
 * update readable, full or partial (fault_sqlite_vfs_ckpt*).
 * (A kill while frames are buffered: fault_storage_ack_durable*.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "retention_wal.h"
#include "store_sqlite_vfs.h"

#include <signal.h>
#include <sys/wait.h>

static char dir[] = "/tmp/homeiq-vfs-XXXXXX";
static char path[64];

static sqlite3 *open_db(const char *vfs) {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs), SQLITE_OK);
    return db;
}

static void exec(sqlite3 *db, const char *sql) {
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) fprintf(stderr, "%s: %s\n", sql, err ? err : "?");
    sqlite3_free(err);
    assert_int_equal(rc, SQLITE_OK);
}

static long long one(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void integrity(sqlite3 *db) {
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
}

static int setup(void **state) {
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.db", dir);
    assert_int_equal(sqv_register(), 0);
    assert_int_equal(sqv_register(), 0); /* once */
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char p[96];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

#define INSERT_ROWS(n) \
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < " #n ") " \
    "INSERT INTO t(b) SELECT hex(randomblob(400)) FROM c"

static void test_spill_read_back_and_other_connections(void **state) {
    (void)state;
    sqlite3 *db = open_db(STORE_SQLITE_VFS);
    exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=16;"
             "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT); CREATE INDEX tb ON t(b)");
    /* 3,000 rows of 800 bytes in one transaction through a 16-page cache:
     * pages spill into the WAL and are read back before the commit */
    exec(db, "BEGIN; " INSERT_ROWS(3000));
    assert_int_equal(one(db, "SELECT count(*) FROM t WHERE length(b) = 800"), 3000);
    assert_int_equal(one(db, "SELECT count(*) FROM t INDEXED BY tb WHERE b > ''"), 3000);
    exec(db, "COMMIT");
    integrity(db);

    sqlite3 *other = open_db(NULL);
    assert_int_equal(one(other, "SELECT count(*) FROM t"), 3000);

    /* a commit that does not sync the WAL: only the barrier writes its frames */
    exec(db, "PRAGMA cache_size=2000; PRAGMA synchronous=NORMAL; BEGIN; " INSERT_ROWS(50) "; COMMIT");
    assert_int_equal(one(other, "SELECT count(*) FROM t"), 3050);
    assert_int_equal(one(other, "SELECT sum(length(b)) FROM t"), 3050 * 800);
    integrity(other);

    /* the other connection checkpoints what it read; the WAL restarts from its start */
    exec(other, "PRAGMA wal_checkpoint(TRUNCATE)");
    long long a0, w0, a1, w1;
    sqv_counts(&a0, &w0);
    exec(db, "PRAGMA synchronous=FULL; " INSERT_ROWS(200));
    sqv_counts(&a1, &w1);
    assert_true(a1 - a0 > 4 * (w1 - w0)); /* gathered: ~70 appends (header, page) per write call */
    /* a page written twice in one transaction: its frame rewritten in place */
    exec(db, "BEGIN; UPDATE t SET b = 'x' || b WHERE a = 1; UPDATE t SET b = 'y' || b WHERE a = 1; "
             "PRAGMA cache_size=2; " INSERT_ROWS(300) "; UPDATE t SET b = 'z' || b WHERE a = 1; COMMIT");
    assert_int_equal(one(other, "SELECT count(*) FROM t"), 3550);
    assert_int_equal(one(other, "SELECT length(b) FROM t WHERE a = 1"), 803);
    exec(other, "PRAGMA wal_checkpoint(TRUNCATE)");
    integrity(other);
    assert_int_equal(sqlite3_close(other), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    /* reopened by the default VFS alone: the file holds every row */
    db = open_db(NULL);
    assert_int_equal(one(db, "SELECT count(*) FROM t"), 3550);
    integrity(db);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_checkpointer_connection(void **state) {
    (void)state;
    teardown(NULL);
    assert_non_null(mkdtemp(strcpy(dir, "/tmp/homeiq-vfs-XXXXXX")));
    snprintf(path, sizeof path, "%s/t.db", dir);
    sqlite3 *db = open_db(STORE_SQLITE_VFS);
    exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0;"
             "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT); CREATE INDEX tb ON t(b)");
    sqlite3 *ckpt = open_db(RETENTION_WAL_VFS), *reader = open_db(NULL);
    assert_int_equal(one(ckpt, "SELECT count(*) FROM sqlite_schema"), 2);
    long long total = 0;
    for (int round = 0; round < 6; round++) {
        exec(db, "BEGIN; " INSERT_ROWS(700) "; UPDATE t SET b = 'u' || b WHERE a % 97 = 0; COMMIT");
        total += 700;
        int frames = -1, done = -1;
        assert_int_equal(sqlite3_wal_checkpoint_v2(ckpt, "main", round % 3 == 2 ? SQLITE_CHECKPOINT_TRUNCATE
                                                                                 : SQLITE_CHECKPOINT_PASSIVE,
                                                   &frames, &done),
                         SQLITE_OK);
        assert_true(round % 3 == 2 ? frames == 0 : done > 0); /* TRUNCATE: the WAL emptied */
        assert_int_equal(one(reader, "SELECT count(*) FROM t"), total);
        assert_int_equal(one(db, "SELECT count(*) FROM t WHERE b LIKE 'u%'"), one(reader, "SELECT count(*) FROM t WHERE b LIKE 'u%'"));
    }
    integrity(reader);
    assert_int_equal(sqlite3_close(reader), SQLITE_OK);
    assert_int_equal(sqlite3_close(ckpt), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    db = open_db(NULL);
    exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    assert_int_equal(one(db, "SELECT count(*) FROM t"), total);
    integrity(db);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* Two connections to one file through this VFS, opened before either reads (so
 * their WALs open crossed): each commit without fsync is still seen by a third. */
static void test_crossed_opens(void **state) {
    (void)state;
    teardown(NULL);
    assert_non_null(mkdtemp(strcpy(dir, "/tmp/homeiq-vfs-XXXXXX")));
    snprintf(path, sizeof path, "%s/t.db", dir);
    sqlite3 *setup_db = open_db(NULL);
    exec(setup_db, "PRAGMA journal_mode=WAL; CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT)");
    assert_int_equal(sqlite3_close(setup_db), SQLITE_OK);
    sqlite3 *a = open_db(STORE_SQLITE_VFS), *b = open_db(STORE_SQLITE_VFS), *reader = open_db(NULL);
    exec(b, "PRAGMA synchronous=NORMAL; BEGIN; " INSERT_ROWS(100) "; COMMIT");   /* b's WAL opens first */
    exec(a, "PRAGMA synchronous=NORMAL; BEGIN; " INSERT_ROWS(100) "; COMMIT");
    assert_int_equal(one(reader, "SELECT count(*) FROM t"), 200);
    exec(b, "BEGIN; " INSERT_ROWS(100) "; COMMIT");
    exec(a, "BEGIN; " INSERT_ROWS(100) "; COMMIT");
    assert_int_equal(one(reader, "SELECT count(*) FROM t"), 400);
    integrity(reader);
    assert_int_equal(sqlite3_close(reader), SQLITE_OK);
    assert_int_equal(sqlite3_close(b), SQLITE_OK);
    assert_int_equal(sqlite3_close(a), SQLITE_OK);
}

/* Run by fault_sqlite_vfs_commit (tests/fault: the fault shim makes the first write
 * to t.db-wal after HOMEIQ_FAULT_ARM exists fail with EIO): a commit without fsync
 * whose frames cannot be written fails, and publishes nothing -- no other
 * connection sees it, the file stays sound -- and the next commit goes through. */
static void test_commit_write_fails(void **state) {
    (void)state;
    const char *arm = getenv("HOMEIQ_FAULT_ARM");
    assert_non_null(arm);
    unlink(arm); /* a run that failed midway left it */
    sqlite3 *db = open_db(STORE_SQLITE_VFS), *reader = open_db(NULL);
    exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);"
             INSERT_ROWS(10));
    assert_int_equal(one(reader, "SELECT count(*) FROM t"), 10);
    FILE *f = fopen(arm, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_not_equal(sqlite3_exec(db, "BEGIN; " INSERT_ROWS(20) "; COMMIT", NULL, NULL, NULL), SQLITE_OK);
    unlink(arm);
    if (!sqlite3_get_autocommit(db)) exec(db, "ROLLBACK");
    assert_int_equal(one(reader, "SELECT count(*) FROM t"), 10);
    integrity(reader);
    exec(db, "BEGIN; " INSERT_ROWS(20) "; COMMIT");
    assert_int_equal(one(reader, "SELECT count(*) FROM t"), 30);
    integrity(reader);
    assert_int_equal(sqlite3_close(reader), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void arm_faults(int on) {
    const char *arm = getenv("HOMEIQ_FAULT_ARM");
    assert_non_null(arm);
    if (!on) {
        unlink(arm);
        return;
    }
    FILE *f = fopen(arm, "w");
    assert_non_null(f);
    fclose(f);
}

static int sql_ok(sqlite3 *db, const char *sql) { return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK; }

/* A purge step (synchronous=NORMAL): a DELETE, or a transaction through a 2-page
 * cache that overwrites its own spilled frames (SQLite then rewrites their
 * checksums and the commit frame's header: walRewriteChecksums). */
#define PURGE_DELETE "PRAGMA synchronous=NORMAL; DELETE FROM old WHERE a <= 5"
#define PURGE_REWRITE                                                                                   \
    "PRAGMA synchronous=NORMAL; PRAGMA cache_size=2; BEGIN; UPDATE old SET b = 'x' || b WHERE a = 1; " \
    INSERT_ROWS(60) "; UPDATE old SET b = 'z' || b WHERE a = 1; COMMIT"

/* The child of test_acked_survive_failed_commit and test_commit_sweep (plain
 * exit codes, no cmocka): acked commits (FULL), the purge step with the fault
 * armed, an acked commit after it, then a crash (_exit, crash != 0) or a clean
 * close (its final checkpoint). 0: the purge step failed; 4: it committed. */
static int failed_commit_child(int crash, const char *purge) {
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, STORE_SQLITE_VFS) != SQLITE_OK ||
        !sql_ok(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0;"
                    "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT); CREATE TABLE old(a INTEGER PRIMARY KEY, b TEXT);"
                    INSERT_ROWS(10) "; INSERT INTO old SELECT * FROM t"))
        return 2;
    arm_faults(1);
    int failed = !sql_ok(db, purge);
    arm_faults(0);
    if (!sqlite3_get_autocommit(db)) sql_ok(db, "ROLLBACK");
    if (!sql_ok(db, "PRAGMA synchronous=FULL; PRAGMA cache_size=2000; " INSERT_ROWS(2))) return 2; /* an acked batch */
    if (crash) _exit(failed ? 0 : 4);
    return sqlite3_close(db) == SQLITE_OK ? (failed ? 0 : 4) : 2;
}

/* Runs failed_commit_child in a fresh store, then checks what it left after the
 * reopen: every acked row, the purge step whole or absent, a sound file.
 * Returns the child's answer (0, 4, or -1: it aborted before publishing). */
static int failed_commit_run(int crash, const char *purge) {
    teardown(NULL);
    assert_non_null(mkdtemp(strcpy(dir, "/tmp/homeiq-vfs-XXXXXX")));
    snprintf(path, sizeof path, "%s/t.db", dir);
    arm_faults(0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(failed_commit_child(crash, purge));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    int rc = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : -2;
    assert_true(rc == -1 || rc == 0 || rc == 4);
    int rewrite = purge == NULL || strcmp(purge, PURGE_DELETE) != 0;
    sqlite3 *db = open_db(NULL);
    assert_int_equal(one(db, "SELECT count(*) FROM old"), rc == 4 && !rewrite ? 5 : 10);
    assert_int_equal(one(db, "SELECT length(b) FROM old WHERE a = 1"), rc == 4 && rewrite ? 802 : 800);
    assert_int_equal(one(db, "SELECT count(*) FROM t"), (rc == -1 ? 10 : 12) + (rc == 4 && rewrite ? 60 : 0));
    integrity(db);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return rc;
}

/* Run by fault_sqlite_vfs_commit_acked (the fault shim: the first write to
 * t.db-wal after HOMEIQ_FAULT_ARM exists fails with EIO): the purge step fails
 * (or the process aborts before publishing it), and after a crash or a clean
 * close every acked row is there, the file sound. */
static void test_acked_survive_failed_commit(void **state) {
    (void)state;
    for (int crash = 1; crash >= 0; crash--) assert_true(failed_commit_run(crash, PURGE_DELETE) <= 0);
}

/* Run by fault_sqlite_vfs_commit_sweep with write:t.db-wal:N for N = 1, 2, ...:
 * whichever write call of the rewriting purge step fails, it fails (or commits
 * whole when N is past its calls) and every acked row is there after a crash
 * (VFS_TEST_CRASH=1) or a clean close. */
static void test_commit_sweep(void **state) {
    (void)state;
    const char *crash = getenv("VFS_TEST_CRASH");
    int rc = failed_commit_run(crash && atoi(crash), PURGE_REWRITE);
    print_message("purge step: %s\n", rc == 4 ? "committed" : rc == 0 ? "failed" : "aborted");
}

/* Run by fault_sqlite_vfs_ckpt (HOMEIQ_FAULT=write:t.db:1, the checkpoint's only
 * page write fails) and fault_sqlite_vfs_ckpt_partial (write:t.db:5, a reader
 * pins the checkpoint below the last frame): the checkpointer's connection
 * (RETENTION_WAL_VFS) loses no committed update -- new readers see it, also after
 * the writer's cache is dropped and the WAL restarts, and the file is sound. */
static void test_ckpt_write_fails(void **state) {
    (void)state;
    int partial = getenv("VFS_TEST_PARTIAL") != NULL;
    arm_faults(0);
    sqlite3 *db = open_db(STORE_SQLITE_VFS);
    exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0;"
             "CREATE TABLE u(a INTEGER PRIMARY KEY, b TEXT); CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);"
             "INSERT INTO t(b) VALUES('old')");
    sqlite3 *ckpt = open_db(RETENTION_WAL_VFS), *pin = NULL;
    assert_int_equal(one(ckpt, "SELECT count(*) FROM sqlite_schema"), 2);
    int frames = -1, done = -1;
    assert_int_equal(sqlite3_wal_checkpoint_v2(ckpt, "main", SQLITE_CHECKPOINT_TRUNCATE, &frames, &done), SQLITE_OK);
    if (partial) { /* many pages, then a reader pinning them, then one more commit */
        exec(db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) "
                 "INSERT INTO t(b) SELECT hex(randomblob(100)) FROM c"); /* ~110 pages: write:t.db:5 is the last call */
        pin = open_db(NULL);
        exec(pin, "BEGIN");
        assert_int_equal(one(pin, "SELECT count(*) FROM t"), 2001);
        exec(db, "INSERT INTO u(b) VALUES('later')");
    } else {
        exec(db, "UPDATE t SET b = 'new' WHERE a = 1"); /* acked: one page */
    }
    arm_faults(1);
    sqlite3_wal_checkpoint_v2(ckpt, "main", SQLITE_CHECKPOINT_PASSIVE, &frames, &done); /* any answer */
    arm_faults(0);
    sqlite3 *reader = open_db(NULL);
    assert_int_equal(one(reader, "SELECT count(*) FROM t WHERE b = 'new'"), partial ? 0 : 1);
    assert_int_equal(one(reader, "SELECT count(*) FROM t"), partial ? 2001 : 1);
    integrity(reader);
    assert_int_equal(sqlite3_close(reader), SQLITE_OK);
    if (pin) assert_int_equal(sqlite3_close(pin), SQLITE_OK);
    sqlite3_db_release_memory(db); /* store_sqlite_idle: the next read is from the file */
    exec(db, "INSERT INTO u(b) VALUES('next')"); /* the WAL may restart over the frames */
    assert_int_equal(sqlite3_close(ckpt), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    reader = open_db(NULL);
    assert_int_equal(one(reader, "SELECT count(*) FROM t WHERE b = 'new'"), partial ? 0 : 1);
    assert_int_equal(one(reader, "SELECT count(*) FROM t"), partial ? 2001 : 1);
    assert_int_equal(one(reader, "SELECT count(*) FROM u"), partial ? 2 : 1);
    integrity(reader);
    assert_int_equal(sqlite3_close(reader), SQLITE_OK);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "commit-write-fails") == 0) {
        const struct CMUnitTest fault[] = {cmocka_unit_test(test_commit_write_fails)};
        return cmocka_run_group_tests(fault, setup, teardown);
    }
    if (argc > 1 && strcmp(argv[1], "commit-acked") == 0) { /* each child's first armed WAL write fails */
        const struct CMUnitTest fault[] = {cmocka_unit_test(test_acked_survive_failed_commit)};
        return cmocka_run_group_tests(fault, setup, teardown);
    }
    if (argc > 1 && strcmp(argv[1], "commit-sweep") == 0) {
        const struct CMUnitTest fault[] = {cmocka_unit_test(test_commit_sweep)};
        return cmocka_run_group_tests(fault, setup, teardown);
    }
    if (argc > 1 && strcmp(argv[1], "ckpt-write-fails") == 0) {
        const struct CMUnitTest fault[] = {cmocka_unit_test(test_ckpt_write_fails)};
        return cmocka_run_group_tests(fault, setup, teardown);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spill_read_back_and_other_connections),
        cmocka_unit_test(test_checkpointer_connection),
        cmocka_unit_test(test_crossed_opens),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
