/* stats.h -- long-term statistics math: time-weighted mean, min, max, last,
 * count and HA's cumulative sum with meter resets, for fixed periods.
 *
 * Why pure functions: the numbers are the product here (years of history are
 * answered from them once raw events are purged), so the math lives apart from
 * SQLite, is fed plain arrays, and is unit-tested against an independent
 * computation (tests/storage/test_stats.c). stats_sqlite.c does the storage.
 * The rules, and where they follow Home Assistant's recorder, are in
 * docs/STATISTICS.md.
 *
 * Ownership: callers own every array; nothing here allocates except
 * stats_sample_from_record's nothing (it fills a caller's struct). */
#ifndef HOMEIQ_STATS_H
#define HOMEIQ_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "record_fields.h"

#define STATS_5MIN_US (300LL * 1000000LL)
#define STATS_HOUR_US (3600LL * 1000000LL)

typedef enum {
    STATS_KIND_MEASUREMENT = 0, /* mean/min/max/last/count only */
    STATS_KIND_TOTAL = 1,       /* + state and sum; a new last_reset starts a cycle */
    STATS_KIND_TOTAL_INCREASING = 2, /* + state and sum; a drop below 90 % is a meter reset */
} stats_kind;

/* One state of an entity, as read from a stored record. */
typedef struct stats_sample {
    int64_t t_us;
    int numeric;            /* the state parses as a finite number */
    double v;
    int has_last_reset;
    int64_t last_reset_us;  /* attributes.last_reset, when a valid time */
} stats_sample;

/* What one period hands to the next. */
typedef struct stats_carry {
    int in_force;           /* a numeric value holds at this instant */
    double value;           /* ... and it is this one */
    int has_prev;           /* a numeric value was ever seen (sum's reference) */
    double prev;            /* the latest numeric value (HA's "state") */
    double sum;
    int has_last_reset;
    int64_t last_reset_us;
} stats_carry;

/* One row: a period [start_us, start_us + period). */
typedef struct stats_row {
    int64_t start_us;
    double mean, min, max;  /* mean is NaN when no time was covered */
    int has_last;           /* a numeric value is in force at the period's end */
    double last;
    int has_state;
    double state, sum;      /* state: latest numeric value; sum: when kind != MEASUREMENT */
    int has_last_reset;
    int64_t last_reset_us;
    long long count;        /* numeric samples recorded in the period */
    int64_t covered_us;     /* time a numeric value was in force */
} stats_row;

/* Calls emit for every period start in [from_us, to_us) (both multiples of
 * period_us): row = NULL when the period gets no row (no sample in it and no
 * numeric value in force). A period with samples but no numeric value in force
 * and none recorded gets a *break marker* (count 0, covered 0, mean/min/max
 * NaN): stored so the next update carries "no value" from it, never shown. samples: sorted by time, all in [from_us, to_us).
 * *carry: in = state at from_us, out = state at to_us. 0, or the first
 * non-zero emit return. */
typedef int (*stats_emit_fn)(const stats_row *row, int64_t start_us, void *arg);
int stats_compute(stats_kind kind, stats_carry *carry, const stats_sample *samples, size_t n, int64_t period_us,
                  int64_t from_us, int64_t to_us, stats_emit_fn emit, void *arg);

static inline int stats_row_is_marker(const stats_row *r) {
    return r->count == 0 && r->covered_us == 0;
}

/* The carry after a row (the state at its end). */
void stats_carry_from_row(const stats_row *r, stats_carry *c);

/* Merges rows (sorted by start, all within one longer period) into one row
 * starting at start_us: mean weighted by covered time, min of mins, max of
 * maxes, counts and covered time added, last/state/sum/last_reset of the
 * latest row. n >= 1. */
void stats_merge(const stats_row *rows, size_t n, int64_t start_us, stats_row *out);

/* Reads the sample of a stored record text (canonical JSON, docs/EVENTS.md):
 * numeric when "state" is a number (value is a finite number and the state is
 * not one of the binary words); kind from "state_class"; last_reset from
 * attributes.last_reset. Returns 1 for a state_changed record with an
 * entity_id, 0 for any other record, -1 for unreadable text. */
int stats_sample_from_record(const char *json, size_t len, stats_sample *s, stats_kind *kind);
/* The same from a record's noted fields (record_fields.h): no walk of the record. */
int stats_sample_from_fields(const char *json, const record_fields *rf, stats_sample *s, stats_kind *kind);

static inline int64_t stats_floor(int64_t t, int64_t period) {
    int64_t q = t / period;
    if (t % period < 0) q--;
    return q * period;
}

#endif
