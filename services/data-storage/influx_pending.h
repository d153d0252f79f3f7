/* influx_pending.h -- the batches that finished while the entity list was
 * being restored, kept to be applied once the restore is done.
 *
 * Why: data-storage's entity list and totals on InfluxDB are restored in the
 * background (influx_query.c: the last snapshot, then the feed after it,
 * docs/INFLUX_READS.md), after the first batch of a process or after a failed
 * one. A batch that finished meanwhile used to be read back by the restore
 * from the feed -- its feed points and every record -- and the restore read
 * up to wherever the batches had got by then: under a burst it chased the
 * head for the whole burst, reading back each event just written (~1.1 MB of
 * answers and ~25 us of data-storage's CPU per event, 0.6 queries per 1,000
 * events; session 9, docs/BENCHMARKS.md). The write path has those events in
 * hand, so the restore now reads the feed only up to where the batches had got
 * when it started, and the batches after that are kept here (a few strings per
 * event) and applied after it, in the order they finished -- as the write path
 * would have applied them. Bounded: past INFLUX_PENDING_MAX events or
 * INFLUX_PENDING_MAX_BATCHES batches, or after a batch that failed (InfluxDB may hold part of it: only the feed knows), the
 * restore drops these and reads the feed up to the head as before (exact
 * either way).
 *
 * Ownership: an influx_pending owns copies of its facts' strings and its
 * batches' homes and late_home (influx_pending_clear frees them). Event loop only. */
#ifndef HOMEIQ_INFLUX_PENDING_H
#define HOMEIQ_INFLUX_PENDING_H

#include "influx_summary.h"
#include "sbuf.h"
#include "store.h"

#include <stddef.h>
#include <stdint.h>

/* Events kept at most (~100 bytes each); beyond that the restore reads the feed. */
#define INFLUX_PENDING_MAX 65536
/* Batches kept at most (~100 bytes each with the home): a batch of duplicates only keeps no event, so the
 * events' bound alone would not bound them. */
#define INFLUX_PENDING_MAX_BATCHES 65536

/* One finished batch: what the write path adds to memory for it (influx_reads_batch_done). */
typedef struct influx_pending_batch {
    size_t first, n;        /* its facts */
    char *home;             /* the batch's home ("" = the default home) */
    long long stored, dead; /* events stored, dead letters counted now (not the held late ones) */
    int64_t prev;           /* the settled sequence before it finished */
    int64_t settled, settle_ns; /* the marks after it finished */
    char *late_home;        /* an earlier batch's late dead letters its settle mark passed: counted with it, */
    long long late_n;       /* as the write path counts them then (NULL/0: none; set after influx_pending_add) */
} influx_pending_batch;

typedef struct influx_pending_fact {
    int64_t time_us;
    size_t entity, domain, state;   /* offsets in text; SIZE_MAX: none */
    int state_changed, numeric;
} influx_pending_fact;

typedef struct influx_pending {
    influx_pending_fact *f;
    size_t nf, capf;
    influx_pending_batch *b;
    size_t nb, capb;
    sbuf text;              /* the facts' strings, NUL-terminated */
} influx_pending;

/* Keeps batch b's stored items. 0; 1 when it would pass INFLUX_PENDING_MAX or INFLUX_PENDING_MAX_BATCHES (nothing kept);
 * -1 out of memory. */
int influx_pending_add(influx_pending *p, const store_batch *b, const influx_pending_batch *marks);
/* Fact i (its strings point into p until the next add or clear). */
void influx_pending_fact_at(const influx_pending *p, size_t i, influx_fact *out);
void influx_pending_clear(influx_pending *p);

#endif
