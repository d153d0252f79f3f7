/* spool.h -- the durable, append-only event spool of websocket-ingestion.
 *
 * Why: Home Assistant does not replay events. Whatever ingestion received must
 * survive enrichment or storage being down, and ingestion itself crashing, so
 * every event is appended here before it is forwarded, and removed only after
 * downstream acknowledged a durable commit. (The Python original kept events
 * in memory and lost them on any downstream failure.)
 *
 * Model: records get consecutive sequence numbers (uint64, persistent across
 * restarts). Four positions move forward only:
 *   acked_seq <= read_seq <= written_seq <= next_seq, and durable_seq <= written_seq
 *   - next_seq:    the seq the next append gets;
 *   - written_seq: records below it are in the segment file (write(2) done);
 *   - durable_seq: records below it are fsync'ed (group fsync every fsync_ms);
 *   - read_seq:    the forwarder's read cursor (spool_read);
 *   - acked_seq:   records below it were acknowledged downstream; whole segment
 *                  files below it are deleted.
 * Format on disk: docs/SPOOL.md. Threads: every function here must be called
 * on the process' libevent loop, and every callback runs there; inside, one
 * syncer thread does the group fdatasync (spool_syncer.c, spool_int.h).
 */
#ifndef HOMEIQ_SPOOL_H
#define HOMEIQ_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "event.h" /* EVENT_RAW_MAX */

struct event_base;

#define SPOOL_EFULL (-2)                         /* spool_append: over max_bytes */
#define SPOOL_MAX_RECORD (EVENT_RAW_MAX + 4096u) /* largest record payload (lib/event.h) */
#define SPOOL_RECORD_HEADER 8                    /* u32 length + u32 crc32c, little endian */

typedef struct spool spool;

typedef struct spool_opts {
    const char *dir;         /* created if missing */
    uint64_t max_bytes;      /* all segment files together; 0 = no limit */
    uint64_t segment_bytes;  /* rotate after this size; 0 = 64 MiB (capped to max_bytes/8) */
    long fsync_ms;           /* group fsync delay after an append; 0 = next loop turn */
} spool_opts;

typedef struct spool_stats {
    uint64_t next_seq, written_seq, durable_seq, read_seq, acked_seq;
    uint64_t bytes;          /* on disk (and in the write buffer), all segments */
    uint64_t max_bytes;
    uint64_t segments;
    uint64_t fsyncs;         /* group fsyncs done */
    uint64_t fsync_us;       /* time spent in fdatasync, total */
    uint64_t appends;        /* records appended since open */
    uint64_t append_bytes;   /* bytes (headers included) appended since open */
    uint64_t torn_bytes;     /* bytes dropped at open after an invalid record */
    int full;                /* an append was refused since the last trim, or bytes >= max */
} spool_stats;

/* Called (on the loop) after new records reached the file, so readers can go on. */
typedef void (*spool_written_fn)(void *arg);
/* Called after a group fsync; every record below durable_seq is durable. */
typedef void (*spool_durable_fn)(uint64_t durable_seq, void *arg);
/* One record for spool_read. `data` is valid only during the call. */
typedef void (*spool_record_fn)(uint64_t seq, const char *data, size_t len, void *arg);

/* Opens (or creates) the spool in o->dir: scans every segment, checks every
 * record's checksum, truncates a torn tail, restores the ack cursor. The read
 * cursor starts at the ack cursor, so unacknowledged records are read again.
 * 0, or -1 (logged). */
int spool_open(struct event_base *base, const spool_opts *o, spool **out);

void spool_set_listener(spool *s, spool_written_fn on_written, spool_durable_fn on_durable, void *arg);

/* Appends one record (copied). 0 and *seq (may be NULL); SPOOL_EFULL when the
 * spool is at max_bytes (nothing written, the oldest data is never dropped);
 * -1 on a record too large. The write(2) happens at the end of the current
 * loop turn (or at once when a lot is buffered), the fsync fsync_ms later. */
int spool_append(spool *s, const char *data, size_t len, uint64_t *seq);

/* Whether `n` records of `bytes` payload in total would fit now. A "no"
 * marks the spool full (health) until the next trim frees space. */
int spool_fits(spool *s, size_t n, size_t bytes);

/* Writes buffered records and fsyncs now (tests, shutdown). 0 or -1. */
int spool_sync(spool *s);

/* Reads up to max_records from the read cursor, stopping at written_seq;
 * calls fn for each and advances the cursor. max_bytes bounds the batch text
 * "[r1,r2,...]" INCLUDING the last record (a single record is always read,
 * whatever its size: the caller decides what to do with it). *n = records
 * read. A read error after some records ends the batch there (0, *n > 0, the
 * cursor right after the last record handed over); -1 only when none was
 * read. No record is ever skipped. */
int spool_read(spool *s, size_t max_records, size_t max_bytes, spool_record_fn fn, void *arg, size_t *n);

/* Moves the read cursor back to seq (not below acked_seq): records handed
 * over by spool_read that the caller could not use are read again. */
void spool_rewind(spool *s, uint64_t seq);

/* Records [acked_seq, upto) are acknowledged downstream: moves the ack cursor
 * and deletes segment files that hold only acknowledged records. upto is
 * clamped to read_seq. 0 or -1. */
int spool_ack(spool *s, uint64_t upto);

/* Unread records (written or buffered, past the read cursor). */
uint64_t spool_unread(const spool *s);
/* Unread records that spool_read can return now (already written). */
uint64_t spool_readable(const spool *s);
void spool_get_stats(const spool *s, spool_stats *st);

/* Writes, fsyncs, saves the ack cursor and frees everything. NULL is fine. */
void spool_close(spool *s);

#endif
