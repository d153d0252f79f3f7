/* retention_phases.h -- where a purge step's time goes: one histogram per
 * phase (each DELETE statement, each incremental_vacuum, the step's COMMIT,
 * each WAL checkpoint -- split by whether a purge step or a batch's commit ran
 * it -- and the whole step), shown in /health under retention.phases.
 *
 * The batch_* histograms time each batch's own write (BEGIN..COMMIT, with
 * its fsync) by what ran beside it: what a purge costs a batch besides the
 * wait for the end of a step (the purge's unsynced frames its fsync carries,
 * a checkpoint's I/O competing with it).
 *
 * Why: the step budget (PURGE_STEP_BUDGET_MS) only decides whether to *start*
 * a statement; what a statement, a commit's fsync or a checkpoint then costs
 * is not bounded by it. These counts say which one breaks the latency target
 * on a given disk, and stay meaningful on a loaded machine (counts over 10 and
 * 25 ms, not averages).
 *
 * Ownership: plain data inside retention_sqlite; no allocation. */
#ifndef HOMEIQ_RETENTION_PHASES_H
#define HOMEIQ_RETENTION_PHASES_H

#include <jansson.h>

typedef enum {
    RP_DELETE,            /* one DELETE statement (events, a rule, 5-minute rows) */
    RP_VACUUM,            /* one PRAGMA incremental_vacuum */
    RP_COMMIT,            /* a step's COMMIT, without the checkpoint it may run */
    RP_CHECKPOINT_PURGE,  /* a WAL checkpoint run by the purge */
    RP_CHECKPOINT_BATCH,  /* a WAL checkpoint run in a batch's commit */
    RP_CHECKPOINT_THREAD, /* a WAL checkpoint run off the loop (retention_wal.h) */
    RP_WAL_FLUSH,         /* that thread's fdatasync of the WAL after a purge step */
    RP_STEP,              /* a whole purge step */
    RP_BATCH_IDLE,        /* a batch's write (BEGIN..COMMIT), no purge under way, no checkpoint running */
    RP_BATCH_PURGING,     /* a batch's write while a purge is under way (between its steps) */
    RP_BATCH_CHECKPOINT,  /* a batch's write while the checkpointer thread ran */
    RP_N
} retention_phase;

#define RP_BUCKETS 8   /* <= 1, 2, 5, 10, 25, 50, 100 ms, more */

typedef struct {
    unsigned long long n, le[RP_BUCKETS];
    long long max_us, total_us;
} retention_hist;

typedef struct {
    retention_hist h[RP_N];
} retention_phases;

void retention_phases_add(retention_phases *p, retention_phase ph, long long us);
void retention_phases_hist_add(retention_hist *h, long long us);
/* {"delete":{"n":..,"max_us":..,"total_us":..,"over_10ms":..,"over_25ms":..,
 *  "le_ms":{"1":..,"2":..,"5":..,"10":..,"25":..,"50":..,"100":..,"inf":..}},...} */
json_t *retention_phases_json(const retention_phases *p);

long long retention_mono_us(void);

#endif
