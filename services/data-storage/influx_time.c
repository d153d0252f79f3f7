/* influx_time.c -- see influx_time.h. */
#include "influx_time.h"

#include <stdio.h>
#include <stdlib.h>

int influx_time_check(int64_t us, char *why, size_t n) {
    if (us >= INFLUX_TIME_MIN_US && us <= INFLUX_TIME_MAX_US) return 0;
    snprintf(why, n, "time_fired is outside what InfluxDB can store (1970-01-01T00:00:00Z .. "
                     "2262-04-11T23:47:16.854774Z)");
    return -1;
}

int64_t influx_time_ns_sat(int64_t us) {
    if (us > INT64_MAX / 1000) return INT64_MAX;
    if (us < INT64_MIN / 1000) return INT64_MIN;
    return us * 1000;
}

static int influx_cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

size_t influx_dup_ranges(int64_t *us, size_t n, influx_us_range *out) {
    if (n == 0) return 0;
    qsort(us, n, sizeof *us, influx_cmp_i64);
    size_t k = 0;
    out[0] = (influx_us_range){us[0], us[0]};
    for (size_t i = 1; i < n; i++) {
        if ((uint64_t)us[i] - (uint64_t)out[k].hi <= (uint64_t)INFLUX_DUP_GAP_US) /* sorted: no overflow */ out[k].hi = us[i];
        else out[++k] = (influx_us_range){us[i], us[i]};
    }
    return k + 1;
}
