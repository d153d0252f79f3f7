/* bench_spool.c -- spool write cost: appends N records of SIZE bytes in bursts
 * of 256 (one coalesced HA frame), letting the loop run between bursts so the
 * end-of-turn write and the SPOOL_FSYNC_MS group fsync happen as in the
 * service. Prints one JSON line. Usage: bench_ingestion_spool DIR [N] [SIZE] [FSYNC_MS]
 * Used by bench/ingestion.sh. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spool.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [N] [SIZE] [FSYNC_MS]\n", argv[0]);
        return 2;
    }
    long n = argc > 2 ? atol(argv[2]) : 200000;
    long size = argc > 3 ? atol(argv[3]) : 1157;
    long fsync_ms = argc > 4 ? atol(argv[4]) : 100;
    char *rec = malloc((size_t)size);
    memset(rec, 'e', (size_t)size);
    rec[0] = '{';
    rec[size - 1] = '}';
    struct event_base *base = event_base_new();
    spool_opts o = {.dir = argv[1], .max_bytes = 0, .fsync_ms = fsync_ms};
    spool *s;
    if (spool_open(base, &o, &s) != 0) return 1;
    double t0 = now_s(), c0 = cpu_s();
    for (long i = 0; i < n;) {
        for (int k = 0; k < 256 && i < n; k++, i++) spool_append(s, rec, (size_t)size, NULL);
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
    spool_sync(s);
    double t1 = now_s(), c1 = cpu_s();
    spool_stats st;
    spool_get_stats(s, &st);
    printf("{\"records\":%ld,\"record_payload_bytes\":%ld,\"bytes_per_event\":%.1f,\"wall_s\":%.3f,"
           "\"events_per_s\":%.0f,\"us_per_event_wall\":%.2f,\"us_per_event_cpu\":%.2f,\"fsyncs\":%llu,"
           "\"fsyncs_per_s\":%.1f,\"fsync_ms_avg\":%.2f,\"fsync_ms\":%ld}\n",
           n, size, (double)st.append_bytes / (double)st.appends, t1 - t0, (double)n / (t1 - t0),
           (t1 - t0) * 1e6 / (double)n, (c1 - c0) * 1e6 / (double)n, (unsigned long long)st.fsyncs,
           (double)st.fsyncs / (t1 - t0), st.fsyncs ? (double)st.fsync_us / 1000.0 / (double)st.fsyncs : 0.0,
           fsync_ms);
    spool_close(s);
    event_base_free(base);
    free(rec);
    return 0;
}
