/* spool.c -- see spool.h; the on-disk format is described in docs/SPOOL.md.
 *
 * Segment file "<first_seq, 20 digits>.seg": an 8-byte magic, then records
 * [u32 len][u32 crc32c(len bytes + payload)][payload]. The checksum covers the
 * length, so a torn or zeroed header is never taken for a record. Appends go
 * to a write buffer that is written out at the end of the loop turn (one
 * write(2) for everything a WebSocket frame carried) and fdatasync'ed by a
 * group timer; readers only see records that reached the file.
 *
 * The group fdatasync runs on a small syncer thread, not on the loop: on a
 * busy disk one fdatasync can take tens of milliseconds, and doing it inline
 * stalled the WebSocket reader and the forwarder for that long (it was the
 * p99 of end-to-end latency). The thread syncs a dup of the segment's fd and
 * reports back through a pipe; durable_seq only moves when it is done.
 */
#include "spool.h"
#include "crc32c.h"

#include "log.h"
#include "service.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPOOL_MAGIC "HIQSPL1\n"
#define SPOOL_MAGIC_LEN 8
#define SPOOL_DEFAULT_SEGMENT (64ull * 1024 * 1024)
#define SPOOL_MIN_SEGMENT (64ull * 1024)
#define SPOOL_WBUF_FLUSH (1u << 20)   /* write at once above this much buffered */
#define SPOOL_RBUF_MIN (256u * 1024)

typedef struct spool_seg {
    uint64_t first_seq;
    uint64_t nrec;
    uint64_t bytes; /* file size incl. magic (and still-buffered records for the last one) */
} spool_seg;

/* A buffered sequential reader over one segment file. */
typedef struct spool_rd {
    int fd;
    uint64_t off;   /* file offset of buf[0] */
    char *buf;
    size_t cap, pos, len;
} spool_rd;

struct spool {
    struct event_base *base;
    char *dir;
    uint64_t max_bytes, segment_bytes;
    long fsync_ms;

    spool_seg *segs;
    size_t nsegs, capsegs;

    int lockfd;                   /* "lock", flock'ed: one process per spool */
    int wfd;                      /* the last segment, O_APPEND */
    char *wbuf;
    size_t wlen, wcap, woff;      /* woff: bytes of wbuf already written */

    uint64_t next_seq, written_seq, durable_seq, read_seq, acked_seq, saved_ack;
    uint64_t written_told, durable_told; /* what on_written / on_durable last heard */
    uint64_t bytes;
    int full;

    struct event *flush_ev, *fsync_ev;
    int flush_pending, fsync_pending, write_failing;

    spool_rd rd;
    uint64_t rd_seg_first;        /* which segment rd has open */
    uint64_t rd_seq;              /* seq of the record at rd.pos */
    int rd_open;

    uint64_t fsyncs, fsync_us, appends, append_bytes, torn_bytes;

    /* the syncer thread: one request at a time, guarded by mu */
    pthread_t syncer;
    int syncer_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sync_fd;                  /* dup of wfd to fdatasync; -1 = no request */
    uint64_t sync_seq;            /* records below this are durable when it is done */
    int sync_busy, sync_quit, sync_rc;
    long long sync_us;
    int done_pipe[2];             /* syncer -> loop: "a request finished" */
    struct event *done_ev;

    spool_written_fn on_written;
    spool_durable_fn on_durable;
    void *cb_arg;
};

/* ---- little helpers ---------------------------------------------------- */

static void spool_put_u32(char *p, uint32_t v) {
    p[0] = (char)(v & 0xff);
    p[1] = (char)((v >> 8) & 0xff);
    p[2] = (char)((v >> 16) & 0xff);
    p[3] = (char)((v >> 24) & 0xff);
}

static uint32_t spool_get_u32(const char *p) {
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static uint32_t spool_record_crc(const char *hdr, const char *data, size_t len) {
    uint32_t c = crc32c_update(0, hdr, 4);
    return crc32c_update(c, data, len);
}

static void spool_seg_path(const spool *s, uint64_t first_seq, char *out, size_t outlen) {
    snprintf(out, outlen, "%s/%020" PRIu64 ".seg", s->dir, first_seq);
}

static int spool_fsync_dir(const spool *s) {
    int fd = open(s->dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int spool_mkdirs(const char *dir) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp) return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* ---- telling the owner ---------------------------------------------------- */

/* Tells the listeners what moved since they last heard, whichever path moved
 * it: a write at append time (a large record), a rotation's fsync, the group
 * fsync. Comparing with what was told (not with the value before this one
 * call) is what makes sure no path can forget to tell. */
static void spool_tell_durable(spool *s) {
    if (s->durable_seq != s->durable_told) {
        s->durable_told = s->durable_seq;
        if (s->on_durable) s->on_durable(s->durable_seq, s->cb_arg);
    }
}

static void spool_tell(spool *s) {
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
static void spool_tell_soon(spool *s) {
    if (!s->flush_pending && s->flush_ev) {
        s->flush_pending = 1;
        event_active(s->flush_ev, 0, 0);
    }
}

/* ---- buffered reader --------------------------------------------------- */

static void spool_rd_reset(spool_rd *r, int fd, uint64_t off) {
    r->fd = fd;
    r->off = off;
    r->pos = r->len = 0;
}

/* Makes `need` bytes available at r->buf + r->pos. 0 = available, 1 = the file
 * ends first (r->len - r->pos bytes are there), -1 = I/O error. */
static int spool_rd_need(spool_rd *r, size_t need) {
    if (r->len - r->pos >= need) return 0;
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->off += r->pos;
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->cap < need || r->cap < SPOOL_RBUF_MIN) {
        size_t ncap = need > SPOOL_RBUF_MIN ? need : SPOOL_RBUF_MIN;
        char *nb = realloc(r->buf, ncap);
        if (!nb) return -1;
        r->buf = nb;
        r->cap = ncap;
    }
    while (r->len < need) {
        ssize_t n = pread(r->fd, r->buf + r->len, r->cap - r->len, (off_t)(r->off + r->len));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) return 1;
        r->len += (size_t)n;
    }
    return 0;
}

/* Next record at the reader. 0 = data and len set (reader advanced), 1 = clean
 * end of file, 2 = invalid or torn record (reader not advanced), -1 = I/O error. */
static int spool_rd_record(spool_rd *r, const char **data, size_t *len) {
    int rc = spool_rd_need(r, SPOOL_RECORD_HEADER);
    if (rc < 0) return -1;
    if (rc == 1) return r->len == r->pos ? 1 : 2;
    const char *h = r->buf + r->pos;
    uint32_t l = spool_get_u32(h), crc = spool_get_u32(h + 4);
    if (l > SPOOL_MAX_RECORD) return 2;
    rc = spool_rd_need(r, SPOOL_RECORD_HEADER + (size_t)l);
    if (rc < 0) return -1;
    if (rc == 1) return 2;
    h = r->buf + r->pos;
    if (spool_record_crc(h, h + SPOOL_RECORD_HEADER, l) != crc) return 2;
    *data = h + SPOOL_RECORD_HEADER;
    *len = l;
    r->pos += SPOOL_RECORD_HEADER + (size_t)l;
    return 0;
}

/* ---- segments ---------------------------------------------------------- */

static int spool_segs_push(spool *s, uint64_t first_seq, uint64_t nrec, uint64_t bytes) {
    if (s->nsegs == s->capsegs) {
        size_t ncap = s->capsegs ? s->capsegs * 2 : 16;
        spool_seg *n = realloc(s->segs, ncap * sizeof *n);
        if (!n) return -1;
        s->segs = n;
        s->capsegs = ncap;
    }
    s->segs[s->nsegs++] = (spool_seg){first_seq, nrec, bytes};
    s->bytes += bytes;
    return 0;
}

static int spool_cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the segment files: sorted first_seq values, malloc'd. */
static int spool_list_segments(const spool *s, uint64_t **out, size_t *n) {
    DIR *d = opendir(s->dir);
    if (!d) return -1;
    uint64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l != 24 || strcmp(e->d_name + 20, ".seg") != 0) continue;
        if (strspn(e->d_name, "0123456789") != 20) continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                free(v);
                closedir(d);
                return -1;
            }
            v = nv;
        }
        v[cnt++] = strtoull(e->d_name, NULL, 10);
    }
    closedir(d);
    if (cnt) qsort(v, cnt, sizeof *v, spool_cmp_u64);
    *out = v;
    *n = cnt;
    return 0;
}

/* Checks one segment: counts valid records, cuts an invalid/torn tail. */
static int spool_scan_segment(spool *s, uint64_t first_seq, int is_last, uint64_t *nrec, uint64_t *bytes) {
    char path[4200];
    spool_seg_path(s, first_seq, path, sizeof path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        log_error("spool: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    char magic[SPOOL_MAGIC_LEN];
    ssize_t m = pread(fd, magic, sizeof magic, 0);
    uint64_t valid = SPOOL_MAGIC_LEN, count = 0;
    int rc = 1;
    if (m != SPOOL_MAGIC_LEN || memcmp(magic, SPOOL_MAGIC, SPOOL_MAGIC_LEN) != 0) {
        log_warn("spool: %s has no valid header (%lld bytes); treating it as empty", path, (long long)st.st_size);
        valid = 0;
        rc = 2;
    } else {
        spool_rd r = {0};
        spool_rd_reset(&r, fd, SPOOL_MAGIC_LEN);
        const char *data;
        size_t len;
        while ((rc = spool_rd_record(&r, &data, &len)) == 0) count++;
        valid = r.off + r.pos;
        free(r.buf);
        if (rc < 0) {
            log_error("spool: read error in %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    close(fd);
    if ((uint64_t)st.st_size > valid) {
        uint64_t cut = (uint64_t)st.st_size - valid;
        s->torn_bytes += cut;
        if (is_last)
            log_warn("spool: torn tail in %s: %" PRIu64 " bytes after record %" PRIu64 " skipped (crash during a write)",
                     path, cut, first_seq + count);
        else
            log_error("spool: corrupt record in %s after record %" PRIu64 ": %" PRIu64 " bytes dropped", path,
                      first_seq + count, cut);
        if (truncate(path, (off_t)valid) != 0) {
            log_error("spool: cannot truncate %s: %s", path, strerror(errno));
            return -1;
        }
    }
    if (valid == 0) { /* rewrite the header so the file is a valid empty segment */
        int wfd = open(path, O_WRONLY | O_TRUNC);
        if (wfd < 0 || write(wfd, SPOOL_MAGIC, SPOOL_MAGIC_LEN) != SPOOL_MAGIC_LEN || fdatasync(wfd) != 0) {
            log_error("spool: cannot rewrite %s: %s", path, strerror(errno));
            if (wfd >= 0) close(wfd);
            return -1;
        }
        close(wfd);
        valid = SPOOL_MAGIC_LEN;
    }
    *nrec = count;
    *bytes = valid;
    return 0;
}

/* Creates segment `first_seq` and makes it the write target. */
static int spool_new_segment(spool *s, uint64_t first_seq) {
    char path[4200];
    spool_seg_path(s, first_seq, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_error("spool: cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    if (write(fd, SPOOL_MAGIC, SPOOL_MAGIC_LEN) != SPOOL_MAGIC_LEN || fdatasync(fd) != 0 || spool_fsync_dir(s) != 0) {
        log_error("spool: cannot initialise %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    if (spool_segs_push(s, first_seq, 0, SPOOL_MAGIC_LEN) != 0) {
        close(fd);
        return -1;
    }
    s->wfd = fd;
    return 0;
}

static int spool_open_last(spool *s) {
    char path[4200];
    spool_seg_path(s, s->segs[s->nsegs - 1].first_seq, path, sizeof path);
    s->wfd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (s->wfd < 0) {
        log_error("spool: cannot open %s for writing: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- ack cursor file ---------------------------------------------------- */

static void spool_load_ack(spool *s, uint64_t *ack, int *have) {
    char path[4200];
    snprintf(path, sizeof path, "%s/ack", s->dir);
    *have = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    unsigned long long v;
    if (fscanf(f, "%llu", &v) == 1) {
        *ack = v;
        *have = 1;
    }
    fclose(f);
}

/* Written with rename, not fsync'ed: losing it only means re-sending records
 * that were already stored (storage is idempotent). */
static void spool_save_ack(spool *s) {
    if (s->saved_ack == s->acked_seq) return;
    char path[4200], tmp[4200];
    snprintf(path, sizeof path, "%s/ack", s->dir);
    snprintf(tmp, sizeof tmp, "%s/ack.tmp", s->dir);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    int ok = fprintf(f, "%" PRIu64 "\n", s->acked_seq) > 0;
    ok = (fclose(f) == 0) && ok;
    if (ok && rename(tmp, path) == 0) s->saved_ack = s->acked_seq;
}

/* ---- writing ----------------------------------------------------------- */

/* Writes the buffer to the last segment. 0 when it is empty afterwards. */
static int spool_write_out(spool *s) {
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

static void spool_arm_fsync(spool *s) {
    if (s->fsync_pending) return;
    struct timeval tv = {s->fsync_ms / 1000, (s->fsync_ms % 1000) * 1000};
    evtimer_add(s->fsync_ev, &tv);
    s->fsync_pending = 1;
}

static int spool_do_fsync(spool *s) {
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
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->sync_fd < 0 && !s->sync_quit) pthread_cond_wait(&s->cv, &s->mu);
        if (s->sync_fd < 0) break; /* quit, nothing pending */
        int fd = s->sync_fd;
        pthread_mutex_unlock(&s->mu);
        long long t0 = service_mono_us();
        int rc = fdatasync(fd);
        long long us = service_mono_us() - t0;
        close(fd);
        pthread_mutex_lock(&s->mu);
        s->sync_fd = -1;
        s->sync_rc = rc == 0 ? 0 : errno;
        s->sync_us = us;
        char b = 1;
        ssize_t w = write(s->done_pipe[1], &b, 1);
        (void)w;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Hands the written records to the syncer thread; 0, or -1 to fall back to
 * an inline fdatasync (no thread, or dup failed). */
static int spool_start_async_sync(spool *s) {
    if (!s->syncer_started) return -1;
    if (s->sync_busy) return 0; /* the completion re-arms the timer */
    int fd = dup(s->wfd);
    if (fd < 0) return -1;
    pthread_mutex_lock(&s->mu);
    s->sync_fd = fd;
    s->sync_seq = s->written_seq;
    s->sync_busy = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* The syncer finished a request: move durable_seq and tell the owner. */
static void spool_sync_done_cb(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    spool *s = arg;
    char buf[16];
    ssize_t r = read(fd, buf, sizeof buf);
    (void)r;
    pthread_mutex_lock(&s->mu);
    int busy = s->sync_busy && s->sync_fd < 0;
    int rc = s->sync_rc;
    long long us = s->sync_us;
    uint64_t seq = s->sync_seq;
    if (busy) s->sync_busy = 0;
    pthread_mutex_unlock(&s->mu);
    if (!busy) return;
    uint64_t dbefore = s->durable_seq;
    if (rc != 0) {
        log_error("spool: fdatasync failed: %s", strerror(rc));
    } else {
        s->fsync_us += (uint64_t)us;
        s->fsyncs++;
        if (seq > s->durable_seq) s->durable_seq = seq;
    }
    spool_save_ack(s);
    if (s->written_seq != s->durable_seq) spool_arm_fsync(s);
    (void)dbefore;
    spool_tell(s);
}

static void spool_fsync_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    spool *s = arg;
    s->fsync_pending = 0;
    uint64_t wbefore = s->written_seq, dbefore = s->durable_seq;
    if (spool_write_out(s) == 0 && s->durable_seq != s->written_seq) {
        if (spool_start_async_sync(s) != 0 && spool_do_fsync(s) != 0) spool_arm_fsync(s); /* try again later */
    } else if (s->write_failing) {
        spool_arm_fsync(s);
    }
    spool_save_ack(s);
    (void)wbefore;
    (void)dbefore;
    spool_tell(s);
}

static int spool_syncer_start(spool *s) {
    if (pipe2(s->done_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
    s->done_ev = event_new(s->base, s->done_pipe[0], EV_READ | EV_PERSIST, spool_sync_done_cb, s);
    if (!s->done_ev || event_add(s->done_ev, NULL) != 0) return -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->syncer, NULL, spool_syncer_main, s) != 0) return -1;
    s->syncer_started = 1;
    return 0;
}

/* Waits for a request in flight to finish, then stops the thread. */
static void spool_syncer_stop(spool *s) {
    if (s->syncer_started) {
        pthread_mutex_lock(&s->mu);
        s->sync_quit = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->syncer, NULL);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        s->syncer_started = 0;
    }
    if (s->done_ev) event_free(s->done_ev);
    s->done_ev = NULL;
    for (int i = 0; i < 2; i++)
        if (s->done_pipe[i] >= 0) close(s->done_pipe[i]);
}

/* Closes the last segment (written + fsync'ed) and starts a new one. */
static int spool_rotate(spool *s) {
    if (spool_do_fsync(s) != 0) return -1;
    spool_tell_soon(s); /* the fsync made records durable: /forward callers wait for that */
    close(s->wfd);
    s->wfd = -1;
    if (spool_new_segment(s, s->next_seq) != 0) {
        spool_open_last(s); /* keep appending to the old one */
        return -1;
    }
    return 0;
}

static int spool_has_room(const spool *s, size_t n, size_t bytes) {
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
    char *h = s->wbuf + s->wlen;
    spool_put_u32(h, (uint32_t)len);
    memcpy(h + SPOOL_RECORD_HEADER, data, len);
    spool_put_u32(h + 4, spool_record_crc(h, data, len));
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
    spool_arm_fsync(s);
    return 0;
}

int spool_sync(spool *s) {
    int rc = spool_do_fsync(s);
    spool_save_ack(s);
    spool_tell_durable(s); /* writers hear at the end of the loop turn, as usual */
    return rc;
}

/* ---- reading ----------------------------------------------------------- */

/* The segment holding `seq`, or the first one after it (gap after corruption). */
static spool_seg *spool_seg_for(spool *s, uint64_t seq) {
    for (size_t i = 0; i < s->nsegs; i++)
        if (seq < s->segs[i].first_seq + s->segs[i].nrec) return &s->segs[i];
    return NULL;
}

static int spool_rd_open(spool *s, const spool_seg *g) {
    if (s->rd_open) close(s->rd.fd);
    s->rd_open = 0;
    char path[4200];
    spool_seg_path(s, g->first_seq, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_error("spool: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    spool_rd_reset(&s->rd, fd, SPOOL_MAGIC_LEN);
    s->rd_open = 1;
    s->rd_seg_first = g->first_seq;
    s->rd_seq = g->first_seq;
    return 0;
}

/* A failure after some records were handed over ends the batch there: the
 * cursor stays at the end of the last record handed over, so the failing
 * record is read again next time (never skipped). */
static int spool_read_failed(size_t got, size_t *n) {
    *n = got;
    return got ? 0 : -1;
}

int spool_read(spool *s, size_t max_records, size_t max_bytes, spool_record_fn fn, void *arg, size_t *n) {
    size_t got = 0, bytes = 1; /* the text "[r1,r2,...]": '[' + each record and its ',' or ']' */
    *n = 0;
    while (got < max_records && s->read_seq < s->written_seq) {
        spool_seg *g = spool_seg_for(s, s->read_seq);
        if (!g) break;
        if (g->first_seq > s->read_seq) s->read_seq = g->first_seq; /* skip a gap */
        if (!s->rd_open || s->rd_seg_first != g->first_seq || s->rd_seq > s->read_seq) {
            if (spool_rd_open(s, g) != 0) return spool_read_failed(got, n);
        }
        const char *data;
        size_t len, pos = s->rd.pos;
        uint64_t off = s->rd.off;
        int rc = spool_rd_record(&s->rd, &data, &len);
        if (rc != 0) {
            log_error("spool: cannot read record %" PRIu64 " (%s)", s->rd_seq,
                      rc < 0 ? strerror(errno) : rc == 1 ? "unexpected end of segment" : "checksum mismatch");
            if (s->rd_open) close(s->rd.fd);
            s->rd_open = 0; /* start over from a fresh open next time */
            return spool_read_failed(got, n);
        }
        if (s->rd_seq < s->read_seq) { /* before the cursor (after a restart) */
            s->rd_seq++;
            continue;
        }
        if (got > 0 && bytes + len + 1 > max_bytes) {
            /* the batch is bounded including its last record: leave it for the next */
            if (s->rd.off == off) s->rd.pos = pos;
            else s->rd_open = (close(s->rd.fd), 0);
            break;
        }
        s->rd_seq++;
        fn(s->read_seq, data, len, arg);
        s->read_seq++;
        got++;
        bytes += len + 1;
    }
    *n = got;
    return 0;
}

void spool_rewind(spool *s, uint64_t seq) {
    if (seq < s->acked_seq) seq = s->acked_seq;
    if (seq >= s->read_seq) return;
    s->read_seq = seq; /* rd_seq > read_seq: the next read reopens the segment */
}

uint64_t spool_unread(const spool *s) { return s->next_seq - s->read_seq; }

uint64_t spool_readable(const spool *s) { return s->written_seq - s->read_seq; }

/* ---- acknowledging and trimming ----------------------------------------- */

int spool_ack(spool *s, uint64_t upto) {
    if (upto > s->read_seq) upto = s->read_seq;
    if (upto <= s->acked_seq) return 0;
    s->acked_seq = upto;
    spool_seg *last = &s->segs[s->nsegs - 1];
    /* A fully acknowledged last segment of some size is closed, so that its
     * space can be given back (matters when max_bytes is small). */
    if (s->acked_seq == s->next_seq && last->nrec > 0 && last->bytes >= s->segment_bytes / 4) spool_rotate(s);
    int freed = 0;
    while (s->nsegs > 1 && s->segs[0].first_seq + s->segs[0].nrec <= s->acked_seq) {
        char path[4200];
        spool_seg_path(s, s->segs[0].first_seq, path, sizeof path);
        if (unlink(path) != 0 && errno != ENOENT) {
            log_error("spool: cannot delete %s: %s", path, strerror(errno));
            break;
        }
        if (s->rd_open && s->rd_seg_first == s->segs[0].first_seq) {
            close(s->rd.fd);
            s->rd_open = 0;
        }
        s->bytes -= s->segs[0].bytes;
        memmove(s->segs, s->segs + 1, (s->nsegs - 1) * sizeof *s->segs);
        s->nsegs--;
        freed = 1;
    }
    if (freed && s->full && spool_has_room(s, 1, 0)) {
        log_info("spool: space freed (%" PRIu64 " bytes used), accepting events again", s->bytes);
        s->full = 0;
    }
    spool_arm_fsync(s); /* saves the ack cursor soon */
    return 0;
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
    if (spool_list_segments(s, &firsts, &n) != 0) {
        log_error("spool: cannot list %s: %s", s->dir, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t nrec, bytes;
        if (spool_scan_segment(s, firsts[i], i == n - 1, &nrec, &bytes) != 0 ||
            spool_segs_push(s, firsts[i], nrec, bytes) != 0) {
            free(firsts);
            return -1;
        }
    }
    free(firsts);
    uint64_t ack = 0;
    int have_ack;
    spool_load_ack(s, &ack, &have_ack);
    if (s->nsegs == 0) {
        if (spool_new_segment(s, ack) != 0) return -1;
    } else if (spool_open_last(s) != 0) {
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
    if (spool_mkdirs(o->dir) != 0) {
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
    s->fsync_ev = evtimer_new(base, spool_fsync_cb, s);
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
        spool_do_fsync(s);
        spool_save_ack(s);
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
