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
 *    recovery at open -- every xRead, xFileSize, xTruncate, xSync, xFetch and
 *    xClose of the WAL, and every write that is not the next append, writes the
 *    buffer out first;
 *  - other connections (retention_wal.c's checkpointer, homeiqctl backup, the
 *    sqlite3 shell): they read frames up to the mxFrame of the wal-index header
 *    this connection publishes, after the commit's frames are written: the
 *    append of a commit frame's page (its header names the database size) writes
 *    the buffer out at once, and the unlock of the WAL's write lock and the
 *    wal-index barrier (between the two copies of the published header) write
 *    out anything left. Nothing is buffered while another connection may write
 *    the WAL.
 * A failed write: its error answers the commit frame's xWrite (or, for a commit
 *    header rewritten with its checksums after a read, written straight to the
 *    file, that write; else the first method whose result SQLite checks), so
 *    walFrames fails the commit and publishes nothing -- also without an fsync
 *    (a purge step's synchronous=NORMAL), as without this VFS
 *    (fault_sqlite_vfs_commit, _commit_acked, _commit_sweep). At the barrier, where SQLite
 *    cannot be told, it logs and abort()s before the header is published
 *    (store_sqlite_vfs.c says why no committed byte is lost). The checkpointer
 *    does not use this VFS: SQLite ignores the result of a checkpoint's last
 *    write call (SQLITE_FCNTL_CKPT_DONE), so its gathered page writes could fail
 *    unseen and the frames still be marked copied (fault_sqlite_vfs_ckpt*).
 * Durability: synchronous=FULL syncs the WAL at every commit; the buffer is
 * written before that fsync, so what SQLite calls durable is on disk, as
 * without this VFS. A crash (or SIGKILL) with frames still buffered loses only
 * frames of a transaction that had not committed (fault_storage_ack_durable,
 * fault_storage_ack_durable_large: the WAL's write hangs, the process is killed
 * there, every acked event is stored after the restart).
 *
 * Ownership: the VFS is registered once per process and never freed; each open
 * WAL file owns its buffer. */
#ifndef HOMEIQ_STORE_SQLITE_VFS_H
#define HOMEIQ_STORE_SQLITE_VFS_H

#include <sqlite3.h>

#define STORE_SQLITE_VFS "homeiq-walbuf"
/* Bytes buffered at most per WAL: one write call of the default (unix) VFS, which
 * writes at most 0x1ffff bytes per call (seekAndWriteFd) -- 31 frames of 4 KiB pages. */
#define STORE_SQLITE_VFS_BUF 0x1ffff

/* Registers STORE_SQLITE_VFS (not as the default), once. 0/-1. */
int sqv_register(void);

/* Write calls the VFS saved and made (counts for tests and /health). */
void sqv_counts(long long *appends, long long *writes);

#endif
