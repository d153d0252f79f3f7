/* retention_wal.c -- see retention_wal.h. */
#include "retention_wal.h"
#include "bgthread.h"
#include "log.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct retention_wal {
    sqlite3 *db;                /* the thread's own connection */
    long long autockpt;
    bgthread bg;                /* the thread; bg.mu guards everything below (and bg.quit) */
    int kick, running;
    int flush, flushing;        /* a purge step committed without fsync: flush the WAL; doing it */
    int wal_fd;                 /* the WAL, opened by path for that flush (-1: none) */
    retention_hist flush_hist;  /* those flushes */
    long long backfilled;       /* frames of the WAL already in events.db */
    retention_hist hist;        /* the thread's checkpoints */
};

/* Writes the WAL's dirty pages out (fdatasync) off the loop, so the next
 * batch's own fsync finds little left to write. Called and returns with w->bg.mu. */
static void retention_wal_flush_run(retention_wal *w) {
    w->flush = 0;
    w->flushing = 1;
    bgthread_unlock(&w->bg);
    long long t0 = retention_mono_us();
    if (w->wal_fd >= 0 && fdatasync(w->wal_fd) != 0) log_warn("wal flush: fdatasync failed");
    long long us = retention_mono_us() - t0;
    bgthread_lock(&w->bg);
    w->flushing = 0;
    retention_phases_hist_add(&w->flush_hist, us);
}

static void *retention_wal_main(void *arg) {
    retention_wal *w = arg;
    bgthread_lock(&w->bg);
    for (;;) {
        while (!w->kick && !w->flush && !w->bg.quit) bgthread_wait(&w->bg);
        if (w->bg.quit) break;
        if (w->flush && !w->kick) {
            retention_wal_flush_run(w);
            continue;
        }
        w->flush = 0;           /* the checkpoint syncs the WAL first */
        w->kick = 0;
        w->running = 1;
        bgthread_unlock(&w->bg);
        int log_frames = 0, done = 0;
        long long t0 = retention_mono_us();
        int rc = sqlite3_wal_checkpoint_v2(w->db, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames, &done);
        long long us = retention_mono_us() - t0;
        if (rc != SQLITE_OK && rc != SQLITE_BUSY) log_warn("wal checkpoint: %s", sqlite3_errmsg(w->db));
        bgthread_lock(&w->bg);
        w->running = 0;
        if (rc == SQLITE_OK && done >= 0) w->backfilled = done;
        retention_phases_hist_add(&w->hist, us);
    }
    bgthread_unlock(&w->bg);
    return NULL;
}

int retention_wal_open(const char *path, long long autockpt, retention_wal **out) {
    *out = NULL;
    if (!path || autockpt <= 0) return 0;
    retention_wal *w = calloc(1, sizeof *w);
    if (!w) return -1;
    w->autockpt = autockpt;
    char wal[4200];
    snprintf(wal, sizeof wal, "%s-wal", path);
    w->wal_fd = open(wal, O_RDONLY | O_CLOEXEC);   /* exists: the store's connection is in WAL mode */
    bgthread_init(&w->bg);
    if (sqlite3_open_v2(path, &w->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, RETENTION_WAL_VFS) != SQLITE_OK) {
        log_warn("wal checkpointer: cannot open %s (%s): checkpoints stay inline", path,
                 w->db ? sqlite3_errmsg(w->db) : "out of memory");
        retention_wal_close(w);
        return 0;
    }
    /* synchronous stays at this build's default for WAL, FULL (2): the
     * checkpoint fsyncs events.db before the WAL may restart over the frames
     * it copied. SQLITE_THREADSAFE=1: two connections, one per thread. */
    sqlite3_busy_timeout(w->db, 1000);   /* only for the schema read below; PASSIVE never waits */
    /* a connection that never read has no WAL open yet, and before SQLite
     * 3.41 its checkpoint silently does nothing: read once */
    if (sqlite3_exec(w->db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL) != SQLITE_OK) {
        log_warn("wal checkpointer: %s: checkpoints stay inline", sqlite3_errmsg(w->db));
        retention_wal_close(w);
        return 0;
    }
    if (bgthread_start(&w->bg, NULL, retention_wal_main, w) != 0) {
        log_warn("wal checkpointer: no thread: checkpoints stay inline");
        retention_wal_close(w);
        return 0;
    }
    *out = w;
    return 0;
}

void retention_wal_close(retention_wal *w) {
    if (!w) return;
    bgthread_stop(&w->bg); /* a checkpoint or flush in progress finishes first */
    if (w->db && sqlite3_close(w->db) != SQLITE_OK) log_warn("wal checkpointer close: %s", sqlite3_errmsg(w->db));
    if (w->wal_fd >= 0) close(w->wal_fd);
    bgthread_destroy(&w->bg);
    free(w);
}

int retention_wal_commit(retention_wal *w, long long frames) {
    if (!w) return 0;
    bgthread_lock(&w->bg);
    if (frames < w->backfilled) w->backfilled = 0;   /* the WAL restarted from its beginning */
    long long waiting = frames - w->backfilled;
    /* autockpt frames waiting; or, once the WAL is that long, whatever the
     * last checkpoint missed: frames keep coming while it runs, and the WAL
     * restarts from its beginning only after one that left nothing behind */
    if ((waiting >= w->autockpt || (frames >= w->autockpt && waiting > 0)) && !w->running && !w->kick) {
        w->kick = 1;
        bgthread_wake(&w->bg);
    }
    bgthread_unlock(&w->bg);
    return waiting >= w->autockpt * RETENTION_WAL_INLINE_FACTOR;
}

int retention_wal_running(retention_wal *w) {
    if (!w) return 0;
    bgthread_lock(&w->bg);
    int running = w->running;
    bgthread_unlock(&w->bg);
    return running;
}

void retention_wal_flush(retention_wal *w) {
    if (!w || w->wal_fd < 0) return;
    bgthread_lock(&w->bg);
    if (!w->flush && !w->kick) {
        w->flush = 1;
        bgthread_wake(&w->bg);
    }
    bgthread_unlock(&w->bg);
}

int retention_wal_busy(retention_wal *w) {
    if (!w) return 0;
    bgthread_lock(&w->bg);
    int busy = w->kick || w->running || w->flush || w->flushing;
    bgthread_unlock(&w->bg);
    return busy;
}

void retention_wal_hist(retention_wal *w, retention_hist *out, retention_hist *flush) {
    bgthread_lock(&w->bg);
    *out = w->hist;
    *flush = w->flush_hist;
    bgthread_unlock(&w->bg);
}
