/* hwm.h -- the high-water mark: up to which HA time every event is spooled.
 *
 * Why: HA keeps living while ingestion is away (killed, restarted, link cut,
 * HA restarting) and never replays; its recorder does keep every state change.
 * To ask for exactly what was missed, ingestion must know, across crashes, the
 * newest HA time (time_fired) up to which nothing is missing from its spool,
 * per HA instance. "Spooled" is what counts, not "forwarded": the spool keeps
 * everything after it.
 *
 * The mark only moves to times whose events are durable in the spool: a
 * candidate (time, end seq) is committed when the spool's group fsync
 * made every record below that end seq durable, then saved (tmp + rename; not fsync'ed: a stale file only
 * makes the next backfill re-read more, which identities make harmless).
 * While a backfill is filling a gap the mark is held: live events after the
 * gap do not move it (a crash mid-backfill must backfill the gap again);
 * hwm_complete moves it past the gap and the live events seen meanwhile.
 *
 * File: SPOOL_DIR/hwm-<16 hex of the HA URL>, one line: microseconds since the
 * epoch (UTC) and the time in RFC 3339 for humans. Owner: main.c (ingest). */
#ifndef HOMEIQ_HWM_H
#define HOMEIQ_HWM_H

#include <stdint.h>

typedef struct hwm hwm;

/* Loads (or starts without) the mark of the HA instance `instance` (its URL). 0/-1. */
int hwm_open(const char *dir, const char *instance, hwm **out);
/* The committed mark, microseconds; 0 = none yet (first start). */
int64_t hwm_get(const hwm *h);
/* A live event with HA time `t_us` was appended as spool record end_seq - 1. */
void hwm_seen(hwm *h, uint64_t end_seq, int64_t t_us);
/* A backfill starts: hold the mark (live events only remembered). */
void hwm_hold(hwm *h);
/* The backfill spooled everything up to `t_us`, in records below end_seq: release the hold. */
void hwm_complete(hwm *h, uint64_t end_seq, int64_t t_us);
/* The spool is durable below record `durable_seq`: commit what it covers, save. */
void hwm_durable(hwm *h, uint64_t durable_seq);
int hwm_held(const hwm *h);
const char *hwm_path(const hwm *h);
void hwm_close(hwm *h);

#endif
