/* store_sqlite_vfs.c -- see store_sqlite_vfs.h.
 *
 * Each file opened through this VFS is the default VFS's file placed right
 * after our header (szOsFile = ours + theirs); every method forwards to it. A
 * WAL file also has the buffer: bytes [off, off + len) of the file, not yet
 * written. A main database file knows its WAL (linked at the WAL's open) so
 * that its xShmBarrier and xShmLock can write the WAL's buffer out. Only a WAL
 * has a buffer.
 *
 * When the buffer is written out, and what a failed write does:
 *  - when a commit frame's page is appended (xWrite): its failure is the
 *    answer to that xWrite, so walFrames fails the commit before it publishes
 *    anything -- with or without an fsync, as the default VFS does;
 *  - when the rewrite of a commit frame's header follows a read (walRewriteChecksums,
 *    a transaction that overwrote its own frames): written through at once, same answer;
 *  - before every xRead, xFileSize, xTruncate, xSync, xFetch, xClose and any write
 *    that is not the next append: a failure is that method's answer;
 *  - at the unlock of the WAL's write lock (xShmLock) and at xFileControl: SQLite
 *    ignores those results, so a failure is kept (f->err) and answers the next
 *    method whose result it checks. Data-safe: by then every commit frame was
 *    written out (above), so what is left is a rolled-back transaction's frames,
 *    which no reader or recovery accepts. After the unlock nothing is buffered:
 *    no later write can land over another connection's frames;
 *  - at the wal-index barrier (xShmBarrier, between the two copies of the new
 *    header): a backstop (nothing should be left). SQLite cannot be told of a
 *    failure there, so it logs and abort()s: the new header's first copy
 *    (aHdr[0]) is not yet written, so no reader accepts it, and the frames of
 *    the commit being published follow every frame of earlier commits, so WAL
 *    recovery after the abort stops before them -- that commit was never
 *    answered, every earlier one is whole. */
#include "store_sqlite_vfs.h"

#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct sqv_file {
    sqlite3_file base;
    sqlite3_file *real;          /* the default VFS's file, right after this struct */
    const char *name;            /* SQLite's, valid until xClose */
    int is_wal;
    unsigned char *buf;          /* WAL: the appends not yet written */
    size_t len;
    sqlite3_int64 off;           /* where buf[0] goes in the file */
    int err;                     /* a write-out failed where SQLite ignores the result (write lock's
                                  * unlock, file control): answered by the next method whose result it checks */
    sqlite3_int64 commit_page;   /* WAL: the offset of a commit frame's page (its header was just
                                  * appended), or -1 */
    int after_read;              /* WAL: the last call was an xRead (a commit header written now is a
                                  * rewrite: walRewriteChecksums) */
    struct sqv_file *wal;        /* main database: its open WAL, or NULL */
    struct sqv_file *next;       /* main databases open through this VFS */
} sqv_file;

#define SQV_REAL_OFFSET ((sizeof(sqv_file) + 15) & ~(size_t)15)

static sqlite3_vfs sqv_vfs;
static sqlite3_vfs *sqv_base;
static pthread_mutex_t sqv_mu = PTHREAD_MUTEX_INITIALIZER; /* guards sqv_mains and the links */
static sqv_file *sqv_mains;
static long long sqv_appends, sqv_writes;

void sqv_counts(long long *appends, long long *writes) {
    *appends = __atomic_load_n(&sqv_appends, __ATOMIC_RELAXED);
    *writes = __atomic_load_n(&sqv_writes, __ATOMIC_RELAXED);
}

/* Writes the buffer out (one write call); a failure is kept in f->err. */
static int sqv_flush(sqv_file *f) {
    if (!f->len) return SQLITE_OK;
    int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->off);
    __atomic_add_fetch(&sqv_writes, 1, __ATOMIC_RELAXED);
    f->len = 0; /* the bytes: of a transaction that fails (the error is kept) */
    if (rc != SQLITE_OK && !f->err) f->err = rc;
    return rc;
}

/* Writes the buffer out; the first failure not yet answered, or SQLITE_OK. */
static int sqv_flush_rc(sqv_file *f) {
    sqv_flush(f);
    int rc = f->err;
    f->err = SQLITE_OK;
    return rc;
}

#define SQV(p) ((sqv_file *)(p))
#define SQV_REAL(p) (SQV(p)->real)
#define SQV_FLUSHED(p, call)                                                                             \
    do {                                                                                                 \
        int rc_ = sqv_flush_rc(SQV(p));                                                                  \
        if (rc_ != SQLITE_OK) return rc_;                                                                \
        return call;                                                                                     \
    } while (0)

static int sqv_close(sqlite3_file *p) {
    sqv_file *f = SQV(p);
    int rc = sqv_flush_rc(f);
    pthread_mutex_lock(&sqv_mu);
    for (sqv_file **m = &sqv_mains; *m; m = &(*m)->next) {
        if ((*m)->wal == f) (*m)->wal = NULL;
        if (*m == f) {
            *m = f->next;
            break;
        }
    }
    pthread_mutex_unlock(&sqv_mu);
    free(f->buf);
    int rc2 = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    return rc != SQLITE_OK ? rc : rc2;
}

static int sqv_read(sqlite3_file *p, void *out, int n, sqlite3_int64 off) {
    SQV(p)->after_read = 1;
    SQV_FLUSHED(p, SQV_REAL(p)->pMethods->xRead(SQV_REAL(p), out, n, off));
}

/* A WAL frame header (24 bytes: page number, then the database size in pages,
 * non-zero only in a transaction's commit frame). */
#define SQV_FRAME_HDR 24
static int sqv_is_commit_header(const void *data, int n) {
    const unsigned char *h = data;
    return n == SQV_FRAME_HDR && (h[4] | h[5] | h[6] | h[7]) != 0;
}

/* The WAL's next append goes to the buffer; anything else writes it out first.
 * A commit frame's page writes the buffer out at once, and a commit header
 * rewritten after a read goes straight to the file (see the top). */
static int sqv_write(sqlite3_file *p, const void *data, int n, sqlite3_int64 off) {
    sqv_file *f = SQV(p);
    if (!f->buf) return f->real->pMethods->xWrite(f->real, data, n, off);
    int after_read = f->after_read;
    f->after_read = 0;
    int rc = SQLITE_OK;
    if (f->len && (off != f->off + (sqlite3_int64)f->len || f->len + (size_t)n > STORE_SQLITE_VFS_BUF) &&
        (rc = sqv_flush_rc(f)) != SQLITE_OK)
        return rc;
    int commit = f->commit_page == off;
    f->commit_page = f->is_wal && sqv_is_commit_header(data, n) ? off + n : -1;
    if ((size_t)n > STORE_SQLITE_VFS_BUF || (after_read && f->commit_page >= 0)) {
        if ((rc = sqv_flush_rc(f)) != SQLITE_OK) return rc;
        return f->real->pMethods->xWrite(f->real, data, n, off);
    }
    if (!f->len) f->off = off;
    memcpy(f->buf + f->len, data, (size_t)n);
    f->len += (size_t)n;
    __atomic_add_fetch(&sqv_appends, 1, __ATOMIC_RELAXED);
    return commit ? sqv_flush_rc(f) : SQLITE_OK;
}

static int sqv_truncate(sqlite3_file *p, sqlite3_int64 size) {
    SQV_FLUSHED(p, SQV_REAL(p)->pMethods->xTruncate(SQV_REAL(p), size));
}
static int sqv_sync(sqlite3_file *p, int flags) {
    SQV_FLUSHED(p, SQV_REAL(p)->pMethods->xSync(SQV_REAL(p), flags));
}
static int sqv_file_size(sqlite3_file *p, sqlite3_int64 *size) {
    SQV_FLUSHED(p, SQV_REAL(p)->pMethods->xFileSize(SQV_REAL(p), size));
}
static int sqv_lock(sqlite3_file *p, int l) { return SQV_REAL(p)->pMethods->xLock(SQV_REAL(p), l); }
static int sqv_unlock(sqlite3_file *p, int l) { return SQV_REAL(p)->pMethods->xUnlock(SQV_REAL(p), l); }
static int sqv_check_reserved(sqlite3_file *p, int *out) {
    return SQV_REAL(p)->pMethods->xCheckReservedLock(SQV_REAL(p), out);
}
static int sqv_file_control(sqlite3_file *p, int op, void *arg) {
    sqv_flush(SQV(p)); /* SQLite ignores some of these results: a failure waits in f->err */
    return SQV_REAL(p)->pMethods->xFileControl(SQV_REAL(p), op, arg);
}
static int sqv_sector_size(sqlite3_file *p) { return SQV_REAL(p)->pMethods->xSectorSize(SQV_REAL(p)); }
static int sqv_device(sqlite3_file *p) {
    return SQV_REAL(p)->pMethods->xDeviceCharacteristics(SQV_REAL(p));
}
static int sqv_shm_map(sqlite3_file *p, int pg, int sz, int extend, void volatile **out) {
    return SQV_REAL(p)->pMethods->xShmMap(SQV_REAL(p), pg, sz, extend, out);
}
/* The WAL's write lock is slot 0 of the wal-index's locks (WAL_WRITE_LOCK). */
#define SQV_WAL_WRITE_LOCK 0
static int sqv_shm_lock(sqlite3_file *p, int offset, int n, int flags) {
    sqv_file *f = SQV(p);
    /* nothing stays buffered once this connection lets another write the WAL
     * (a failure waits in the WAL's err: see the top) */
    if (f->wal && offset == SQV_WAL_WRITE_LOCK && flags == (SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE))
        sqv_flush(f->wal);
    return SQV_REAL(p)->pMethods->xShmLock(SQV_REAL(p), offset, n, flags);
}

/* SQLite publishes a commit's wal-index header around this barrier: the WAL's
 * frames go to the file first, so no other connection can read past them.
 * Nothing should be left (see the top: why abort() is data-safe here). */
static void sqv_shm_barrier(sqlite3_file *p) {
    sqv_file *f = SQV(p);
    if (f->wal && sqv_flush(f->wal) != SQLITE_OK) {
        log_error("store_sqlite_vfs: the WAL's write failed at the wal-index barrier (%s): "
                  "abort before the commit is published", f->wal->name ? f->wal->name : "?");
        abort();
    }
    f->real->pMethods->xShmBarrier(f->real);
}
static int sqv_shm_unmap(sqlite3_file *p, int del) { return SQV_REAL(p)->pMethods->xShmUnmap(SQV_REAL(p), del); }
static int sqv_fetch(sqlite3_file *p, sqlite3_int64 off, int n, void **out) {
    SQV_FLUSHED(p, SQV_REAL(p)->pMethods->xFetch(SQV_REAL(p), off, n, out));
}
static int sqv_unfetch(sqlite3_file *p, sqlite3_int64 off, void *page) {
    return SQV_REAL(p)->pMethods->xUnfetch(SQV_REAL(p), off, page);
}

static const sqlite3_io_methods sqv_io = {
    3,           sqv_close,       sqv_read,        sqv_write,    sqv_truncate,       sqv_sync,
    sqv_file_size, sqv_lock,      sqv_unlock,      sqv_check_reserved, sqv_file_control, sqv_sector_size,
    sqv_device,  sqv_shm_map,     sqv_shm_lock,    sqv_shm_barrier, sqv_shm_unmap,   sqv_fetch,
    sqv_unfetch,
};

/* The main database whose WAL is `name`, or NULL. SQLite names a connection's WAL
 * inside its database name's allocation, so sqlite3_filename_database gives the
 * very pointer that connection's main file was opened with: two connections to
 * one file (the store's and the checkpointer's) are never crossed. Called with sqv_mu. */
static sqv_file *sqv_main_of(const char *name) {
    const char *db = sqlite3_filename_database(name);
    for (sqv_file *m = sqv_mains; m; m = m->next)
        if (m->name == db) return m;
    return NULL;
}

static int sqv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p, int flags, int *out_flags) {
    sqv_file *f = SQV(p);
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)((char *)p + SQV_REAL_OFFSET);
    f->name = name;
    (void)vfs;
    f->commit_page = -1;
    if ((flags & SQLITE_OPEN_WAL) && name && !(f->buf = malloc(STORE_SQLITE_VFS_BUF))) return SQLITE_NOMEM;
    int rc = sqv_base->xOpen(sqv_base, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK || !f->real->pMethods) {
        free(f->buf);
        f->buf = NULL;
        return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
    }
    f->is_wal = (flags & SQLITE_OPEN_WAL) != 0;
    p->pMethods = &sqv_io;
    pthread_mutex_lock(&sqv_mu);
    if (f->is_wal && f->buf) {
        sqv_file *m = sqv_main_of(name);
        if (m) m->wal = f;
    } else if ((flags & SQLITE_OPEN_MAIN_DB) && name) {
        f->next = sqv_mains;
        sqv_mains = f;
    }
    pthread_mutex_unlock(&sqv_mu);
    return SQLITE_OK;
}

#define SQV_PASS(fn, params, args)                                                                       \
    static int sqv_##fn params {                                                                         \
        (void)v;                                                                                         \
        return sqv_base->x##fn args;                                                                     \
    }
SQV_PASS(Delete, (sqlite3_vfs * v, const char *n, int s), (sqv_base, n, s))
SQV_PASS(Access, (sqlite3_vfs * v, const char *n, int f, int *o), (sqv_base, n, f, o))
SQV_PASS(FullPathname, (sqlite3_vfs * v, const char *n, int k, char *o), (sqv_base, n, k, o))
SQV_PASS(Randomness, (sqlite3_vfs * v, int k, char *o), (sqv_base, k, o))
SQV_PASS(Sleep, (sqlite3_vfs * v, int us), (sqv_base, us))
SQV_PASS(CurrentTime, (sqlite3_vfs * v, double *o), (sqv_base, o))
SQV_PASS(GetLastError, (sqlite3_vfs * v, int k, char *o), (sqv_base, k, o))
SQV_PASS(CurrentTimeInt64, (sqlite3_vfs * v, sqlite3_int64 *o), (sqv_base, o))

static void *sqv_DlOpen(sqlite3_vfs *v, const char *n) {
    (void)v;
    return sqv_base->xDlOpen(sqv_base, n);
}
static void sqv_DlError(sqlite3_vfs *v, int k, char *o) {
    (void)v;
    sqv_base->xDlError(sqv_base, k, o);
}
static void (*sqv_DlSym(sqlite3_vfs *v, void *h, const char *s))(void) {
    (void)v;
    return sqv_base->xDlSym(sqv_base, h, s);
}
static void sqv_DlClose(sqlite3_vfs *v, void *h) {
    (void)v;
    sqv_base->xDlClose(sqv_base, h);
}

static int sqv_rc = -1;

static void sqv_register_once(void) {
    sqv_base = sqlite3_vfs_find(NULL);
    if (!sqv_base || sqv_base->iVersion < 2) return;
    sqv_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)SQV_REAL_OFFSET + sqv_base->szOsFile,
        .mxPathname = sqv_base->mxPathname,
        .zName = STORE_SQLITE_VFS,
        .xOpen = sqv_open,
        .xDelete = sqv_Delete,
        .xAccess = sqv_Access,
        .xFullPathname = sqv_FullPathname,
        .xDlOpen = sqv_DlOpen,
        .xDlError = sqv_DlError,
        .xDlSym = sqv_DlSym,
        .xDlClose = sqv_DlClose,
        .xRandomness = sqv_Randomness,
        .xSleep = sqv_Sleep,
        .xCurrentTime = sqv_CurrentTime,
        .xGetLastError = sqv_GetLastError,
        .xCurrentTimeInt64 = sqv_CurrentTimeInt64,
    };
    sqv_rc = sqlite3_vfs_register(&sqv_vfs, 0) == SQLITE_OK ? 0 : -1;
}

int sqv_register(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqv_register_once);
    return sqv_rc;
}
