/* spool_int.h -- the spool's inside, shared by its files (not for users of
 * spool.h).
 *
 * Why split: the spool is four concerns, one file each --
 *   spool.c          appending, telling the owner (on_written/on_durable), open/close;
 *   spool_segment.c  segment file format, the buffered reader, recovery of torn tails;
 *   spool_syncer.c   durability: the group fsync timer and the syncer thread;
 *   spool_cursor.c   the read cursor and the ack cursor (and its file), trimming.
 * Threads: everything runs on the process' libevent loop except the syncer
 * thread, which only fdatasyncs a dup'ed fd and touches the sync_* fields
 * under mu (spool_syncer.c says how).
 */
#ifndef HOMEIQ_SPOOL_INT_H
#define HOMEIQ_SPOOL_INT_H

#include "spool.h"
#include "bgthread.h"

#include <event2/util.h>
#include <stddef.h>
#include <stdint.h>

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
typedef struct spool_segment_rd {
    int fd;
    uint64_t off;   /* file offset of buf[0] */
    char *buf;
    size_t cap, pos, len;
} spool_segment_rd;

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

    spool_segment_rd rd;
    uint64_t rd_seg_first;        /* which segment rd has open */
    uint64_t rd_seq;              /* seq of the record at rd.pos */
    int rd_open;

    uint64_t fsyncs, fsync_us, appends, append_bytes, torn_bytes;

    /* the syncer thread: one request at a time, the fields below guarded by syncer.mu */
    bgthread syncer;
    int sync_fd;                  /* dup of wfd to fdatasync; -1 = no request */
    uint64_t sync_seq;            /* records below this are durable when it is done */
    int sync_busy, sync_rc;
    long long sync_us;
    int done_pipe[2];             /* syncer -> loop: "a request finished" */
    struct event *done_ev;

    spool_written_fn on_written;
    spool_durable_fn on_durable;
    void *cb_arg;
};

/* spool_segment.c: format, reader, segments */
/* Writes one record (header + payload, SPOOL_RECORD_HEADER + len bytes) at out. */
void spool_segment_encode(char *out, const char *data, size_t len);
void spool_segment_path(const spool *s, uint64_t first_seq, char *out, size_t outlen);
void spool_segment_rd_reset(spool_segment_rd *r, int fd, uint64_t off);
int spool_segment_rd_record(spool_segment_rd *r, const char **data, size_t *len);
int spool_segment_push(spool *s, uint64_t first_seq, uint64_t nrec, uint64_t bytes);
int spool_segment_list(const spool *s, uint64_t **out, size_t *n);
int spool_segment_scan(spool *s, uint64_t first_seq, int is_last, uint64_t *nrec, uint64_t *bytes);
int spool_segment_new(spool *s, uint64_t first_seq);
int spool_segment_open_last(spool *s);

/* spool_syncer.c: durability */
void spool_syncer_arm(spool *s);
int spool_syncer_fsync(spool *s);
void spool_syncer_tick(evutil_socket_t fd, short what, void *arg);
int spool_syncer_start(spool *s);
void spool_syncer_stop(spool *s);

/* spool_cursor.c: the ack cursor file */
void spool_cursor_load_ack(spool *s, uint64_t *ack, int *have);
void spool_cursor_save_ack(spool *s);

/* spool.c: writing and telling the owner */
void spool_tell_durable(spool *s);
void spool_tell(spool *s);
void spool_tell_soon(spool *s);
int spool_write_out(spool *s);
int spool_rotate(spool *s);
int spool_has_room(const spool *s, size_t n, size_t bytes);

#endif
