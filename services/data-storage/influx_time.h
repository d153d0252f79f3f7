/* influx_time.h -- the times InfluxDB can hold, and the time ranges the
 * duplicate check reads.
 *
 * Why: InfluxDB stores a point's time as int64 nanoseconds since 1970. HomeIQ
 * times are microseconds (1970..9999 after enrichment's check), so
 * time_us * 1000 overflowed for years after 2262: an event from 2600 was
 * written at 2015-06-13, and a query with start=2300 was undefined behaviour
 * (issue 14, finding 7). And the duplicate check read every event_id between
 * a batch's earliest and latest time: a batch spanning years pulled them all
 * into memory (finding 8). Both rules are here, apart from store_influx.c's
 * request plumbing, so they can be unit-tested. */
#ifndef HOMEIQ_INFLUX_TIME_H
#define HOMEIQ_INFLUX_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Event times stored in InfluxDB: [1970-01-01T00:00:00Z, 2262-04-11T23:47:16.854774Z]
 * (every ns offset within the last microsecond still fits int64). */
#define INFLUX_TIME_MIN_US 0LL
#define INFLUX_TIME_MAX_US 9223372036854774LL

/* 0 when us is storable; else -1 with a reason for the dead letter. */
int influx_time_check(int64_t us, char *why, size_t n);

/* Nanoseconds for a query bound: us * 1000 saturated to int64 (never UB). */
int64_t influx_time_ns_sat(int64_t us);

/* A closed range of microseconds the duplicate check reads. */
typedef struct influx_us_range {
    int64_t lo, hi;
} influx_us_range;

/* Times closer than this share one range. */
#define INFLUX_DUP_GAP_US 1000000LL

/* The ranges covering the n event times (any order; sorted in place): times
 * within INFLUX_DUP_GAP_US of each other share a range, so the check reads
 * only the stored points near the batch's own times, never the years between
 * them. out must hold n ranges; returns how many were written. */
size_t influx_dup_ranges(int64_t *us, size_t n, influx_us_range *out);

#endif
