/* store_sqlite_vfs.h -- a SQLite VFS for the store's own connection that gathers
 * the WAL's appends and writes them with one system call (issue 15).
 *
 * Why: SQLite writes each WAL frame with two pwrite()s -- its 24-byte header,
 * then the page -- each through ext4's buffered write path (inode lock, folio
 * lookup, partial-folio work): a 1,000-event batch made ~970 of them, a batch of
 * seven events (a 1,000 events/s trickle) ~40 per commit, 10 write calls per event.
 * This VFS (named STORE_SQLITE_VFS, wrapping the default one, never the default
 * itself) keeps the WAL's contiguous appends in a buffer (up to
 * STORE_SQLITE_VFS_BUF bytes) and writes them with one pwrite when SQLite syncs
 * the WAL, or earlier when anything else needs them in the file.
 *
 * Who reads the WAL, and why each sees every byte it may read:
 *  - this connection (the writer thread's and the loop's, one at a time under
 *    the writer's lock): a page it spilled in a transaction larger than its cache,
 *    the in-place rewrite of a frame and its checksums, an inline checkpoint, the
 *    recovery at open -- every xRead, xFileSize, xTruncate, xSync and xClose of the
 *    WAL, and every write that is not the next append, writes the buffer out first;
 *  - other connections (retention_wal.c's checkpointer, homeiqctl backup, the
 *    sqlite3 shell): they read frames up to the mxFrame of the wal-index header
 *    this connection publishes, after the commit's frames are written. The
 *    write of a commit frame's page (its header names the database size)
 *    writes the buffer out at once, so its failure fails the commit before it
 *    is published -- also without an fsync (a purge step's synchronous=NORMAL),
 *    as without this VFS. SQLite publishes with walIndexWriteHdr, which calls
 *    xShmBarrier on the database file between its two copies of the header;
 *    that barrier writes the WAL's buffer out too (nothing should be left). A
 *    write-out whose result SQLite ignores (barrier, file control) keeps its
 *    failure for the next method whose result it checks.
 * Durability: synchronous=FULL syncs the WAL at every commit; the buffer is
 * written before that fsync, so what SQLite calls durable is on disk, as
 * without this VFS. A crash (or SIGKILL) with frames still buffered loses only
 * frames of a transaction that had not committed (fault_storage_ack_durable,
 * fault_storage_ack_durable_large: the WAL's write hangs, the process is killed
 * there, every acked event is stored after the restart).
 *
 * Ownership: the VFSs are registered once per process and never freed; each open
 * WAL file owns its buffer. */
#ifndef HOMEIQ_STORE_SQLITE_VFS_H
#define HOMEIQ_STORE_SQLITE_VFS_H

#include <sqlite3.h>

#define STORE_SQLITE_VFS "homeiq-walbuf"
/* The same for the checkpointer's connection (retention_wal.c), which also gathers
 * its writes into the database file: a checkpoint copies frames into events.db in
 * page order, one pwrite per page, and pages appended since the last one are
 * contiguous. Who reads those pages: no connection reads a page from events.db
 * while a newer copy of it is in the WAL below its snapshot, and SQLite marks the
 * frames copied (nBackfill, which lets new readers skip the WAL) only after the
 * end of the copy (SQLITE_FCNTL_CKPT_DONE), the truncate and the xSync of
 * events.db, each of which writes the buffer out first. A crash in between leaves
 * the frames in the WAL, copied again by the next checkpoint. */
#define STORE_SQLITE_VFS_CKPT "homeiq-walbuf-ckpt"
/* Bytes buffered at most per WAL: one write call of the default (unix) VFS, which
 * writes at most 0x1ffff bytes per call (seekAndWriteFd) -- 31 frames of 4 KiB pages. */
#define STORE_SQLITE_VFS_BUF 0x1ffff

/* Registers STORE_SQLITE_VFS and STORE_SQLITE_VFS_CKPT (neither as the default), once. 0/-1. */
int sqv_register(void);

/* Write calls the VFS saved and made (counts for tests and /health). */
void sqv_counts(long long *appends, long long *writes);

#endif
