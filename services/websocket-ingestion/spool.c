/* spool.c -- see spool.h: appending, telling the owner, open and close.
 *
 * Appends go to a write buffer that is written out at the end of the loop
 * turn (one write(2) for everything a WebSocket frame carried) and
 * fdatasync'ed by a group timer; readers only see records that reached the
 * file. The other concerns have their own files (spool_int.h lists them):
 * segment format and recovery in spool_segment.c, durability (timer and
 * syncer thread) in spool_syncer.c, the read and ack cursors in
 * spool_cursor.c.
 */
#include "spool_int.h"

#include "log.h"
#include "service.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* ---- telling the owner ---------------------------------------------------- */

/* Tells the listeners what moved since they last heard, whichever path moved
 * it: a write at append time (a large record), a rotation's fsync, the group
 * fsync. Comparing with what was told (not with the value before this one
 * call) is what makes sure no path can forget to tell. */
void spool_tell_durable(spool *s) {
    if (s->durable_seq != s->durable_told) {
        s->durable_told = s->durable_seq;
        if (s->on_durable) s->on_durable(s->durable_seq, s->cb_arg);
    }
}

void spool_tell(spool *s) {
    if (s->written_seq != s->written_told) {
        s->written_told = s->written_seq;
        if (s->on_written) s->on_written(s->cb_arg);
    }
    if (s->durable_seq != s->durable_told) {
        s->durable_told = s->durable_seq;
        if (s->on_durable) s->on_durable(s->durable_seq, s->cb_arg);
    }
}

/* Tell at the end of this loop turn (never from inside an append or ack). */
void spool_tell_soon(spool *s) {
    if (!s->flush_pending && s->flush_ev) {
        s->flush_pending = 1;
        event_active(s->flush_ev, 0, 0);
    }
}

/* ---- writing ----------------------------------------------------------- */

/* Writes the buffer to the last segment. 0 when it is empty afterwards. */
int spool_write_out(spool *s) {
    while (s->woff < s->wlen) {
        ssize_t n = write(s->wfd, s->wbuf + s->woff, s->wlen - s->woff);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            if (!s->write_failing) log_error("spool: write failed: %s (will retry)", strerror(errno));
            s->write_failing = 1;
            return -1;
        }
        s->woff += (size_t)n;
    }
    if (s->write_failing) log_info("spool: writing works again");
    s->write_failing = 0;
    s->wlen = s->woff = 0;
    s->written_seq = s->next_seq;
    return 0;
}

static void spool_flush_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    spool *s = arg;
    s->flush_pending = 0;
    spool_write_out(s);
    spool_tell(s);
}

/* Closes the last segment (written + fsync'ed) and starts a new one. */
int spool_rotate(spool *s) {
    if (spool_syncer_fsync(s) != 0) return -1;
    spool_tell_soon(s); /* the fsync made records durable: /forward callers wait for that */
    close(s->wfd);
    s->wfd = -1;
    if (spool_segment_new(s, s->next_seq) != 0) {
        spool_segment_open_last(s); /* keep appending to the old one */
        return -1;
    }
    return 0;
}

int spool_has_room(const spool *s, size_t n, size_t bytes) {
    if (!s->max_bytes) return 1;
    return s->bytes + (uint64_t)n * SPOOL_RECORD_HEADER + bytes <= s->max_bytes;
}

int spool_fits(spool *s, size_t n, size_t bytes) {
    if (spool_has_room(s, n, bytes)) return 1;
    s->full = 1;
    return 0;
}

int spool_append(spool *s, const char *data, size_t len, uint64_t *seq) {
    if (len > SPOOL_MAX_RECORD) return -1;
    if (!spool_fits(s, 1, len)) {
        s->full = 1;
        return SPOOL_EFULL;
    }
    spool_seg *last = &s->segs[s->nsegs - 1];
    if (last->nrec > 0 && last->bytes + SPOOL_RECORD_HEADER + len > s->segment_bytes) {
        if (spool_rotate(s) == 0) last = &s->segs[s->nsegs - 1];
    }
    size_t need = s->wlen + SPOOL_RECORD_HEADER + len;
    if (need > s->wcap) {
        size_t ncap = s->wcap ? s->wcap : 64 * 1024;
        while (ncap < need) ncap *= 2;
        char *nb = realloc(s->wbuf, ncap);
        if (!nb) return -1;
        s->wbuf = nb;
        s->wcap = ncap;
    }
    spool_segment_encode(s->wbuf + s->wlen, data, len);
    s->wlen = need;

    if (seq) *seq = s->next_seq;
    s->next_seq++;
    last->nrec++;
    last->bytes += SPOOL_RECORD_HEADER + len;
    s->bytes += SPOOL_RECORD_HEADER + len;
    s->appends++;
    s->append_bytes += SPOOL_RECORD_HEADER + len;

    if (s->wlen >= SPOOL_WBUF_FLUSH) spool_write_out(s);
    spool_tell_soon(s); /* writes the rest and tells the forwarder, also about a write done just now */
    spool_syncer_arm(s);
    return 0;
}

int spool_sync(spool *s) {
    int rc = spool_syncer_fsync(s);
    spool_cursor_save_ack(s);
    spool_tell_durable(s); /* writers hear at the end of the loop turn, as usual */
    return rc;
}

void spool_get_stats(const spool *s, spool_stats *st) {
    memset(st, 0, sizeof *st);
    st->next_seq = s->next_seq;
    st->written_seq = s->written_seq;
    st->durable_seq = s->durable_seq;
    st->read_seq = s->read_seq;
    st->acked_seq = s->acked_seq;
    st->bytes = s->bytes;
    st->max_bytes = s->max_bytes;
    st->segments = s->nsegs;
    st->fsyncs = s->fsyncs;
    st->fsync_us = s->fsync_us;
    st->appends = s->appends;
    st->append_bytes = s->append_bytes;
    st->torn_bytes = s->torn_bytes;
    st->full = s->full || (s->max_bytes && s->bytes >= s->max_bytes);
}

void spool_set_listener(spool *s, spool_written_fn on_written, spool_durable_fn on_durable, void *arg) {
    s->on_written = on_written;
    s->on_durable = on_durable;
    s->cb_arg = arg;
}

/* ---- open / close ------------------------------------------------------ */

/* Two processes appending to one spool would interleave records. */
static int spool_lock(spool *s) {
    char path[4200];
    snprintf(path, sizeof path, "%s/lock", s->dir);
    s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lockfd < 0 || flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
        log_error("spool: %s is in use by another process (or not writable): %s", s->dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int spool_load(spool *s) {
    uint64_t *firsts = NULL;
    size_t n = 0;
    if (spool_segment_list(s, &firsts, &n) != 0) {
        log_error("spool: cannot list %s: %s", s->dir, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t nrec, bytes;
        if (spool_segment_scan(s, firsts[i], i == n - 1, &nrec, &bytes) != 0 ||
            spool_segment_push(s, firsts[i], nrec, bytes) != 0) {
            free(firsts);
            return -1;
        }
    }
    free(firsts);
    uint64_t ack = 0;
    int have_ack;
    spool_cursor_load_ack(s, &ack, &have_ack);
    if (s->nsegs == 0) {
        if (spool_segment_new(s, ack) != 0) return -1;
    } else if (spool_segment_open_last(s) != 0) {
        return -1;
    }
    spool_seg *last = &s->segs[s->nsegs - 1];
    s->next_seq = s->written_seq = s->durable_seq = last->first_seq + last->nrec;
    s->written_told = s->durable_told = s->next_seq;
    uint64_t first = s->segs[0].first_seq;
    if (!have_ack || ack < first) ack = first;
    if (ack > s->next_seq) ack = s->next_seq;
    s->acked_seq = s->read_seq = s->saved_ack = ack;
    return 0;
}

int spool_open(struct event_base *base, const spool_opts *o, spool **out) {
    if (!base || !o || !o->dir || !*o->dir) return -1;
    if (service_mkdirs(o->dir, 0700) != 0) {
        log_error("spool: cannot create %s: %s", o->dir, strerror(errno));
        return -1;
    }
    spool *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->base = base;
    s->wfd = -1;
    s->lockfd = -1;
    s->sync_fd = -1;
    s->done_pipe[0] = s->done_pipe[1] = -1;
    s->dir = strdup(o->dir);
    s->max_bytes = o->max_bytes;
    s->segment_bytes = o->segment_bytes ? o->segment_bytes : SPOOL_DEFAULT_SEGMENT;
    if (!o->segment_bytes && s->max_bytes && s->segment_bytes > s->max_bytes / 8) s->segment_bytes = s->max_bytes / 8;
    if (s->segment_bytes < SPOOL_MIN_SEGMENT) s->segment_bytes = SPOOL_MIN_SEGMENT;
    s->fsync_ms = o->fsync_ms < 0 ? 0 : o->fsync_ms;
    s->flush_ev = event_new(base, -1, 0, spool_flush_cb, s);
    s->fsync_ev = evtimer_new(base, spool_syncer_tick, s);
    if (!s->dir || !s->flush_ev || !s->fsync_ev || spool_syncer_start(s) != 0 || spool_lock(s) != 0 ||
        spool_load(s) != 0) {
        spool_close(s);
        return -1;
    }
    uint64_t depth = s->next_seq - s->acked_seq;
    log_info("spool: %s: %zu segment(s), %" PRIu64 " bytes, %" PRIu64 " unacknowledged record(s) to re-send",
             s->dir, s->nsegs, s->bytes, depth);
    *out = s;
    return 0;
}

void spool_close(spool *s) {
    if (!s) return;
    spool_syncer_stop(s); /* a sync in flight finishes first */
    if (s->wfd >= 0) {
        spool_syncer_fsync(s);
        spool_cursor_save_ack(s);
        close(s->wfd);
    }
    if (s->rd_open) close(s->rd.fd);
    if (s->lockfd >= 0) close(s->lockfd);
    if (s->flush_ev) event_free(s->flush_ev);
    if (s->fsync_ev) event_free(s->fsync_ev);
    free(s->rd.buf);
    free(s->wbuf);
    free(s->segs);
    free(s->dir);
    free(s);
}
