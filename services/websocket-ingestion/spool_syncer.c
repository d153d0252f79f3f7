/* spool_syncer.c -- making written records durable: the group fsync timer
 * and the syncer thread.
 *
 * Why a thread: on a busy disk one fdatasync can take tens of milliseconds,
 * and doing it inline stalled the WebSocket reader and the forwarder for that
 * long (it was the p99 of end-to-end latency). The loop hands the syncer a
 * dup of the segment's fd (one request at a time, under s->syncer.mu; the thread: lib/bgthread.h); the thread
 * fdatasyncs it and reports back through a pipe; durable_seq only moves on
 * the loop, when the report arrives. Without the thread (it could not start,
 * or dup failed) the fsync runs inline, as it does at rotation and close.
 * The only state the thread touches is the sync_* fields under s->syncer.mu.
 */
#include "spool_int.h"

#include "log.h"
#include "service.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

void spool_syncer_arm(spool *s) {
    if (s->fsync_pending) return;
    struct timeval tv = {s->fsync_ms / 1000, (s->fsync_ms % 1000) * 1000};
    evtimer_add(s->fsync_ev, &tv);
    s->fsync_pending = 1;
}

int spool_syncer_fsync(spool *s) {
    if (spool_write_out(s) != 0) return -1;
    if (s->durable_seq == s->written_seq) return 0;
    long long t0 = service_mono_us();
    if (fdatasync(s->wfd) != 0) {
        log_error("spool: fdatasync failed: %s", strerror(errno));
        return -1;
    }
    s->fsync_us += (uint64_t)(service_mono_us() - t0);
    s->fsyncs++;
    s->durable_seq = s->written_seq;
    return 0;
}

static void *spool_syncer_main(void *arg) {
    spool *s = arg;
    bgthread_lock(&s->syncer);
    for (;;) {
        while (s->sync_fd < 0 && !s->syncer.quit) bgthread_wait(&s->syncer);
        if (s->sync_fd < 0) break; /* quit, nothing pending */
        int fd = s->sync_fd;
        bgthread_unlock(&s->syncer);
        long long t0 = service_mono_us();
        int rc = fdatasync(fd);
        long long us = service_mono_us() - t0;
        close(fd);
        bgthread_lock(&s->syncer);
        s->sync_fd = -1;
        s->sync_rc = rc == 0 ? 0 : errno;
        s->sync_us = us;
        char b = 1;
        ssize_t w = write(s->done_pipe[1], &b, 1);
        (void)w;
    }
    bgthread_unlock(&s->syncer);
    return NULL;
}

/* Hands the written records to the syncer thread; 0, or -1 to fall back to
 * an inline fdatasync (no thread, or dup failed). */
static int spool_syncer_start_async(spool *s) {
    if (!s->syncer.started) return -1;
    if (s->sync_busy) return 0; /* the completion re-arms the timer */
    int fd = dup(s->wfd);
    if (fd < 0) return -1;
    bgthread_lock(&s->syncer);
    s->sync_fd = fd;
    s->sync_seq = s->written_seq;
    s->sync_busy = 1;
    bgthread_wake(&s->syncer);
    bgthread_unlock(&s->syncer);
    return 0;
}

/* The syncer finished a request: move durable_seq and tell the owner. */
static void spool_syncer_done_cb(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    spool *s = arg;
    char buf[16];
    ssize_t r = read(fd, buf, sizeof buf);
    (void)r;
    bgthread_lock(&s->syncer);
    int busy = s->sync_busy && s->sync_fd < 0;
    int rc = s->sync_rc;
    long long us = s->sync_us;
    uint64_t seq = s->sync_seq;
    if (busy) s->sync_busy = 0;
    bgthread_unlock(&s->syncer);
    if (!busy) return;
    uint64_t dbefore = s->durable_seq;
    if (rc != 0) {
        log_error("spool: fdatasync failed: %s", strerror(rc));
    } else {
        s->fsync_us += (uint64_t)us;
        s->fsyncs++;
        if (seq > s->durable_seq) s->durable_seq = seq;
    }
    spool_cursor_save_ack(s);
    if (s->written_seq != s->durable_seq) spool_syncer_arm(s);
    (void)dbefore;
    spool_tell(s);
}

void spool_syncer_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    spool *s = arg;
    s->fsync_pending = 0;
    uint64_t wbefore = s->written_seq, dbefore = s->durable_seq;
    if (spool_write_out(s) == 0 && s->durable_seq != s->written_seq) {
        if (spool_syncer_start_async(s) != 0 && spool_syncer_fsync(s) != 0) spool_syncer_arm(s); /* try again later */
    } else if (s->write_failing) {
        spool_syncer_arm(s);
    }
    spool_cursor_save_ack(s);
    (void)wbefore;
    (void)dbefore;
    spool_tell(s);
}

int spool_syncer_start(spool *s) {
    if (pipe2(s->done_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    s->done_ev = event_new(s->base, s->done_pipe[0], EV_READ | EV_PERSIST, spool_syncer_done_cb, s);
    if (!s->done_ev || event_add(s->done_ev, NULL) != 0) return -1;
    bgthread_init(&s->syncer);
    return bgthread_start(&s->syncer, NULL, spool_syncer_main, s);
}

/* Waits for a request in flight to finish, then stops the thread. */
void spool_syncer_stop(spool *s) {
    if (s->syncer.started) { /* the thread finishes a request in flight before it quits */
        bgthread_stop(&s->syncer);
        bgthread_destroy(&s->syncer);
    }
    if (s->done_ev) event_free(s->done_ev);
    s->done_ev = NULL;
    for (int i = 0; i < 2; i++)
        if (s->done_pipe[i] >= 0) close(s->done_pipe[i]);
}

