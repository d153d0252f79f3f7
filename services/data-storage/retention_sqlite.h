/* retention_sqlite.h -- purging the SQLite store in small steps, and giving
 * the freed pages back to the file system.
 *
 * Why its own module: retention is a different job from writing (it deletes,
 * on a timer, never inside a batch) with its own rules: raw events older than
 * RETENTION_DAYS (default: never), 5-minute statistics older than
 * STATISTICS_5MIN_RETENTION_DAYS (default 10; each entity's latest row is kept
 * as the carry for its next update), hourly statistics never. Each step is one
 * short transaction bounded in time and rows (PURGE_STEP_BUDGET_MS; at most
 * PURGE_STEP_ROWS rows deleted and pages vacuumed), each statement sized by
 * the measured cost of a row / a page to end within the time left, committed
 * without an fsync of its own (PURGE_COMMIT_FSYNC=0: the next batch's fsync
 * covers it) before the step returns to the loop -- the store has one
 * connection on the loop's thread, so a batch never waits for the write lock
 * across a purge's commit, only for the end of one step. The file shrinks
 * through SQLite's incremental vacuum (auto_vacuum=INCREMENTAL, set on new
 * files; an existing file is converted once by SQLITE_VACUUM_ON_START=1).
 * It also owns the connection's WAL hook: checkpoints run on a thread off the
 * loop (retention_wal.h), and every phase is timed (retention_phases.h).
 *
 * Ownership: borrows the sqlite3 handle and the stats_sqlite of
 * store_sqlite.c, which outlive it. */
#ifndef HOMEIQ_RETENTION_SQLITE_H
#define HOMEIQ_RETENTION_SQLITE_H

#include "stats_sqlite.h"

#include <jansson.h>
#include <sqlite3.h>

typedef struct retention_sqlite retention_sqlite;

/* Before the migrations: a new (empty) file gets auto_vacuum=INCREMENTAL and
 * SQLITE_PAGE_SIZE (16 KiB: store_sqlite.c says why); an existing one without
 * either is converted (VACUUM, out of WAL mode and back) when
 * SQLITE_VACUUM_ON_START=1, else the log says how. 0/-1. */
int retention_sqlite_prepare_file(sqlite3 *db);

int retention_sqlite_open(sqlite3 *db, const char *path, stats_sqlite *stats, retention_sqlite **out);
void retention_sqlite_close(retention_sqlite *r);

/* One step at time now_us, in one transaction: deletes, then frees pages
 * (at least one incremental_vacuum), while PURGE_STEP_BUDGET_MS lasts. 1 =
 * more to do, 0 = done,
 * -1 = failed (lock busy: try again later). */
int retention_sqlite_step(retention_sqlite *r, int64_t now_us);

/* Around a batch's write (BEGIN..COMMIT): _start says whether the WAL's
 * checkpointer runs; _done files the write's time in the phase histogram of
 * what ran beside it (retention_phases.h: batch_idle, batch_purging,
 * batch_checkpoint). r may be NULL. */
int retention_sqlite_batch_start(retention_sqlite *r);
void retention_sqlite_batch_done(retention_sqlite *r, int ckpt, long long us);

/* {"retention_days":..,"statistics_5min_retention_days":..,"events_purged":N,
 *  "stats_rows_purged":N,"auto_vacuum":"incremental"|"none","freelist_pages":N,"page_size":N,
 *  "wal_autocheckpoint":N (frames: 32 MiB of WAL),
 *  "purging":bool (more to do after the last step),"step_us_last","step_us_max",
 *  "phases":{..},"wal_frames*":N,"cost":{"steps","cpu_us" (the steps' CPU),"pages_freed",
 *  "delete_us_per_row","vacuum_us_per_page" (what sizes the statements),"commit_fsync"}} */
json_t *retention_sqlite_info(retention_sqlite *r);

#endif
