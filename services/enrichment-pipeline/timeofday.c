/* timeofday.c -- see timeofday.h. */
#include "timeofday.h"

#include <time.h>

static const char *const timeofday_weekdays[7] = {
    "sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
};

const char *timeofday_label(int hour) {
    if (hour < 6) return "night";
    if (hour < 12) return "morning";
    if (hour < 18) return "afternoon";
    return "evening";
}

int timeofday_classify(int64_t us, const char **time_of_day, const char **weekday) {
    /* floor division, so times before 1970 still land in the right second */
    time_t secs = (time_t)(us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000));
    struct tm tm;
    if (!localtime_r(&secs, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6) return -1;
    *time_of_day = timeofday_label(tm.tm_hour);
    *weekday = timeofday_weekdays[tm.tm_wday];
    return 0;
}
