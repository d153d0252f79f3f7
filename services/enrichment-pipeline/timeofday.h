/* timeofday.h -- which part of the day and which weekday an event happened on,
 * in the home's time zone.
 *
 * Why: "is the heating on at night?" is a question about local time. The
 * Python HomeIQ used the UTC hour, so every label was off by the UTC offset.
 * The zone is the process' TZ (an IANA name such as Europe/Amsterdam; unset =
 * the system zone, /etc/localtime), applied through the C library, so
 * daylight-saving changes are handled by tzdata.
 *
 * Ranges (local hour): night 00:00-05:59, morning 06:00-11:59,
 * afternoon 12:00-17:59, evening 18:00-23:59. */
#ifndef HOMEIQ_ENRICH_TIMEOFDAY_H
#define HOMEIQ_ENRICH_TIMEOFDAY_H

#include <stdint.h>

/* Labels for `us` (microseconds since the epoch, UTC) in the local zone:
 * *time_of_day is night|morning|afternoon|evening, *weekday is monday..sunday.
 * Both static strings. 0, or -1 when the C library cannot convert the time. */
int timeofday_classify(int64_t us, const char **time_of_day, const char **weekday);

/* Label for a local hour 0..23. */
const char *timeofday_label(int hour);

#endif
