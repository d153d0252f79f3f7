/* retention_phases.c -- see retention_phases.h. */
#include "retention_phases.h"

#include <time.h>

static const long long rp_le_us[RP_BUCKETS - 1] = {1000, 2000, 5000, 10000, 25000, 50000, 100000};
static const char *const rp_le_name[RP_BUCKETS] = {"1", "2", "5", "10", "25", "50", "100", "inf"};
static const char *const rp_name[RP_N] = {"delete", "vacuum", "commit", "checkpoint_purge", "checkpoint_batch",
                                         "checkpoint_thread", "wal_flush", "step", "batch_idle", "batch_purging",
                                         "batch_checkpoint"};

long long retention_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

void retention_phases_add(retention_phases *p, retention_phase ph, long long us) {
    retention_phases_hist_add(&p->h[ph], us);
}

void retention_phases_hist_add(retention_hist *h, long long us) {
    int b = 0;
    while (b < RP_BUCKETS - 1 && us > rp_le_us[b]) b++;
    h->le[b]++;
    h->n++;
    h->total_us += us;
    if (us > h->max_us) h->max_us = us;
}

/* Count of samples above `us` (a bucket bound). */
static unsigned long long retention_hist_over(const retention_hist *h, long long us) {
    unsigned long long n = 0;
    for (int b = RP_BUCKETS - 1; b > 0 && rp_le_us[b - 1] >= us; b--) n += h->le[b];
    return n;
}

json_t *retention_phases_json(const retention_phases *p) {
    json_t *o = json_object();
    for (int i = 0; o && i < RP_N; i++) {
        const retention_hist *h = &p->h[i];
        json_t *le = json_object();
        for (int b = 0; le && b < RP_BUCKETS; b++) json_object_set_new(le, rp_le_name[b], json_integer((json_int_t)h->le[b]));
        json_object_set_new(o, rp_name[i],
                            json_pack("{s:I,s:I,s:I,s:I,s:I,s:o*}", "n", (json_int_t)h->n, "max_us", (json_int_t)h->max_us,
                                      "total_us", (json_int_t)h->total_us, "over_10ms",
                                      (json_int_t)retention_hist_over(h, 10000), "over_25ms",
                                      (json_int_t)retention_hist_over(h, 25000), "le_ms", le));
    }
    return o;
}
