/* influx_recent.h -- what this process wrote to the events measurement lately:
 * the duplicate check answered from memory instead of a query per batch.
 *
 * Why: before every batch store_influx.c asked InfluxDB which event ids (and
 * nanosecond times) already exist near the batch's times (one /query per
 * batch: at 1,000 events/s one query per ~5-100 events, and one more round
 * trip before each acknowledgement; issue 15). data-storage is the only
 * writer of its database (docs/INFLUX_READS.md), so every point above the
 * newest time stored when this process first wrote was written by this
 * process -- and it knows which. This module keeps the ids and times of the
 * points it wrote (after InfluxDB acknowledged them) and a *horizon*: for a
 * microsecond at or above it, memory holds every stored point, so the check
 * needs no query; below it (backfill, a late re-post, the first batch after a
 * start) the query runs as before. The horizon is:
 *  - at start: unknown until influx_recent_probe_sql's answer (the newest
 *    stored point, one query per process) sets it just above that point;
 *  - raised past an evicted generation (memory is two generations of at most
 *    INFLUX_RECENT_GEN entries, so it stays a few MB);
 *  - after a failed write (which InfluxDB may have applied in part, or will
 *    apply later): memory is dropped and the horizon set above every time this
 *    process ever sent, so anything that write may have stored is asked again;
 *  - unknown again when the database is gone (404): probed again.
 * Facts in memory are only acknowledged points, so consulting it for any item
 * is exact; only *absence* needs the horizon. A retry stays harmless: a
 * re-posted event is found here (or by the query) and not written again.
 *
 * Ownership: the caller owns the influx_recent (influx_recent_new/free). Event
 * loop only. */
#ifndef HOMEIQ_INFLUX_RECENT_H
#define HOMEIQ_INFLUX_RECENT_H

#include "influx_set.h"

#include <stdint.h>

/* Entries per generation (two are kept): ~60 bytes each with the sets' slack. */
#define INFLUX_RECENT_GEN 32768

typedef struct influx_recent influx_recent;

influx_recent *influx_recent_new(void);
void influx_recent_free(influx_recent *r);

/* 1 when the horizon is unknown (start, or database gone): send the probe first. */
int influx_recent_needs_probe(const influx_recent *r);
/* The probe: the newest point of the measurements the duplicate check reads (`from`: their quoted
 * InfluxQL list, influx_ids.h); one row per measurement, or none. */
void influx_recent_probe_sql(char *out, size_t n, const char *from);
/* Its answer: newest_ns of the newest stored point, or have = 0 when none. */
void influx_recent_probed(influx_recent *r, int have, int64_t newest_ns);

/* 1 when memory holds every stored point of microsecond `us` (no query needed). */
int influx_recent_covers(const influx_recent *r, int64_t us);
/* 1 when this process wrote the event id (key = influx_set_id_key(id)). */
int influx_recent_has_id(const influx_recent *r, uint64_t key, const char *id);
/* 1 when this process wrote a point at nanosecond time ns. */
int influx_recent_has_time(const influx_recent *r, uint64_t ns);

/* Changes whenever memory forgets what it held (a failed write, a reset, an evicted generation, out of
 * memory). A duplicate check planned from memory at one epoch and answered at another plans again the
 * items it left to memory (store_influx.c: influx_dup_plan): an id forgotten in between was neither asked
 * nor is it remembered any more (review inflight-1 F5). */
unsigned long long influx_recent_epoch(const influx_recent *r);

/* A point about to be sent (before the request): keeps the top of every time sent. */
void influx_recent_sending(influx_recent *r, uint64_t ns);
/* A point InfluxDB acknowledged. 0, or -1 out of memory (memory was dropped, still exact). */
int influx_recent_stored(influx_recent *r, uint64_t key, const char *id, uint64_t ns);
/* A write failed (InfluxDB may have stored part of it, now or later): forget, raise the horizon. */
void influx_recent_failed(influx_recent *r);
/* The database is gone: forget everything and probe again. */
void influx_recent_reset(influx_recent *r);

#endif
