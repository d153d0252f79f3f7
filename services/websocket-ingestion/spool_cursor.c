/* spool_cursor.c -- the spool's two cursors: reading (spool_read, rewind)
 * and acknowledging (spool_ack, which deletes fully acknowledged segments,
 * and the "ack" file that keeps acked_seq across restarts).
 *
 * Policy: the read cursor never passes written_seq (only records that reached
 * the file are handed out), a failed read leaves the cursor on the failing
 * record, and rewind never goes below acked_seq. Runs on the loop thread only.
 */
#include "spool_int.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- ack cursor file ---------------------------------------------------- */

void spool_cursor_load_ack(spool *s, uint64_t *ack, int *have) {
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
void spool_cursor_save_ack(spool *s) {
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

/* ---- reading ----------------------------------------------------------- */

/* The segment holding `seq`, or the first one after it (gap after corruption). */
static spool_seg *spool_cursor_seg_for(spool *s, uint64_t seq) {
    for (size_t i = 0; i < s->nsegs; i++)
        if (seq < s->segs[i].first_seq + s->segs[i].nrec) return &s->segs[i];
    return NULL;
}

static int spool_cursor_rd_open(spool *s, const spool_seg *g) {
    if (s->rd_open) close(s->rd.fd);
    s->rd_open = 0;
    char path[4200];
    spool_segment_path(s, g->first_seq, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_error("spool: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    spool_segment_rd_reset(&s->rd, fd, SPOOL_MAGIC_LEN);
    s->rd_open = 1;
    s->rd_seg_first = g->first_seq;
    s->rd_seq = g->first_seq;
    return 0;
}

/* A failure after some records were handed over ends the batch there: the
 * cursor stays at the end of the last record handed over, so the failing
 * record is read again next time (never skipped). */
static int spool_cursor_read_failed(size_t got, size_t *n) {
    *n = got;
    return got ? 0 : -1;
}

int spool_read(spool *s, size_t max_records, size_t max_bytes, spool_record_fn fn, void *arg, size_t *n) {
    size_t got = 0, bytes = 1; /* the text "[r1,r2,...]": '[' + each record and its ',' or ']' */
    *n = 0;
    while (got < max_records && s->read_seq < s->written_seq) {
        spool_seg *g = spool_cursor_seg_for(s, s->read_seq);
        if (!g) break;
        if (g->first_seq > s->read_seq) s->read_seq = g->first_seq; /* skip a gap */
        if (!s->rd_open || s->rd_seg_first != g->first_seq || s->rd_seq > s->read_seq) {
            if (spool_cursor_rd_open(s, g) != 0) return spool_cursor_read_failed(got, n);
        }
        const char *data;
        size_t len, pos = s->rd.pos;
        uint64_t off = s->rd.off;
        int rc = spool_segment_rd_record(&s->rd, &data, &len);
        if (rc != 0) {
            log_error("spool: cannot read record %" PRIu64 " (%s)", s->rd_seq,
                      rc < 0 ? strerror(errno) : rc == 1 ? "unexpected end of segment" : "checksum mismatch");
            if (s->rd_open) close(s->rd.fd);
            s->rd_open = 0; /* start over from a fresh open next time */
            return spool_cursor_read_failed(got, n);
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
        spool_segment_path(s, s->segs[0].first_seq, path, sizeof path);
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
    spool_syncer_arm(s); /* saves the ack cursor soon */
    return 0;
}

