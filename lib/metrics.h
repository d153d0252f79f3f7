/* metrics.h -- a process-wide Prometheus registry: counters, gauges and
 * histograms, rendered as text exposition format for GET /metrics.
 * Metrics are created once at start-up and live until metrics_free_all(). */
#ifndef HOMEIQ_METRICS_H
#define HOMEIQ_METRICS_H

#include <stddef.h>

typedef struct metric metric;

/* `labels` is the inside of {} for one series, e.g. "reason=\"bad_time\"", or NULL.
 * Two calls with the same name share HELP/TYPE and differ in labels. */
metric *metrics_counter(const char *name, const char *help, const char *labels);
metric *metrics_gauge(const char *name, const char *help, const char *labels);
/* A gauge whose value is computed when rendered. */
metric *metrics_gauge_fn(const char *name, const char *help, const char *labels, double (*fn)(void *), void *arg);
/* Histogram with the given upper bounds (ascending, +Inf implied). */
metric *metrics_histogram(const char *name, const char *help, const char *labels, const double *bounds, size_t nbounds);

void metrics_add(metric *m, double v);     /* counter/gauge */
void metrics_set(metric *m, double v);     /* gauge */
void metrics_observe(metric *m, double v); /* histogram */
double metrics_value(const metric *m);     /* counter/gauge current value */

/* Latency buckets in seconds, 100 µs .. 10 s. */
extern const double metrics_latency_bounds[];
extern const size_t metrics_latency_nbounds;

/* Renders every metric; returns a malloc'd string (caller frees) and its length. */
char *metrics_render(size_t *len);
void metrics_free_all(void);

#endif
