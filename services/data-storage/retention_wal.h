/* retention_wal.h -- the WAL's checkpoints, run by a thread off the loop.
 *
 * Why: a checkpoint copies the WAL's frames into events.db and fsyncs it;
 * with wal_autocheckpoint=8000 (32 MiB, store_sqlite.c) that took 100-450 ms
 * during a purge of a 2-million-event file (retention.phases.checkpoint_purge,
 * bench/purge_latency.sh), run inline by whichever commit crossed the limit --
 * a purge step or a batch -- with the loop, and every POST behind it, waiting.
 * A PASSIVE checkpoint on a second connection never takes the write lock, so
 * the loop keeps committing batches (appending to the WAL) while the thread
 * copies and fsyncs. The loop decides *when* (retention_wal_commit, from
 * SQLite's WAL hook after each commit: when autockpt frames were appended
 * since the last checkpoint, and then after every commit until one
 * checkpoint left nothing behind, so the WAL restarts from its beginning
 * instead of growing) and the thread only runs it; nothing else is
 * shared (fields under w->mu). The WAL stays bounded: if the thread falls
 * behind by RETENTION_WAL_INLINE_FACTOR x autockpt frames, or could not start,
 * the commit checkpoints inline as SQLite's default hook does. The thread
 * also flushes the WAL after a purge step that committed without fsync. Its
 * connection opens the file through the default VFS: a checkpoint's page writes
 * into events.db are not gathered (store_sqlite_vfs.h says why).
 *
 * Ownership: owns its thread and its connection; closed before the store's
 * connection, so the store's close still does the final checkpoint. */
#ifndef HOMEIQ_RETENTION_WAL_H
#define HOMEIQ_RETENTION_WAL_H

#include "retention_phases.h"

#include <sqlite3.h>

/* The VFS of the checkpointer's connection: the default one. SQLite ignores the
 * result of a checkpoint's last write call (SQLITE_FCNTL_CKPT_DONE), so its page
 * writes into events.db must not be gathered (tests: fault_sqlite_vfs_ckpt*). */
#define RETENTION_WAL_VFS NULL

#define RETENTION_WAL_INLINE_FACTOR 8

typedef struct retention_wal retention_wal;

/* Opens a second connection to `path` and starts the thread; autockpt
 * frames (> 0) between checkpoints. NULL *out (and 0) when path is NULL. */
int retention_wal_open(const char *path, long long autockpt, retention_wal **out);
void retention_wal_close(retention_wal *w);

/* After a commit left `frames` frames in the WAL (SQLite's WAL hook): wakes
 * the thread when autockpt frames are waiting. Returns 1 when the caller must
 * checkpoint inline (the thread is far behind or not running), else 0. */
int retention_wal_commit(retention_wal *w, long long frames);

/* 1 while the thread runs a checkpoint (0 for NULL). */
int retention_wal_running(retention_wal *w);

/* After a purge step committed without its own fsync (PURGE_COMMIT_FSYNC=0):
 * asks the thread to fdatasync the WAL, so the pages the step wrote go to
 * disk off the loop instead of inside the next batch's fsync. No-op for NULL
 * or while a checkpoint (which syncs the WAL first) is pending. */
void retention_wal_flush(retention_wal *w);

/* 1 while a checkpoint or a flush is asked for or running (0 for NULL): the
 * purge starts no step then, so its writes never queue on the disk behind
 * (or ahead of) its own earlier ones, where a batch's fsync would wait. */
int retention_wal_busy(retention_wal *w);

/* Copies the thread's checkpoint and flush histograms (under its lock). */
void retention_wal_hist(retention_wal *w, retention_hist *out, retention_hist *flush);

#endif
