/* metrics.c -- see metrics.h. A flat list in creation order is enough: a
 * service has a few dozen series, rendered only when /metrics is scraped. */
#include "metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM } metric_type;

struct metric {
    metric_type type;
    char *name, *help, *labels;
    double value;
    double (*fn)(void *);
    void *fn_arg;
    double *bounds;       /* histogram upper bounds */
    unsigned long long *buckets; /* per-bound counts (non-cumulative), last = +Inf */
    size_t nbounds;
    double sum;
    unsigned long long count;
    struct metric *next;
};

static metric *metrics_head, *metrics_tail;

const double metrics_latency_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                         0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5, 5, 10};
const size_t metrics_latency_nbounds = sizeof metrics_latency_bounds / sizeof metrics_latency_bounds[0];

static metric *metrics_new(metric_type type, const char *name, const char *help, const char *labels) {
    metric *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->type = type;
    m->name = strdup(name);
    m->help = strdup(help ? help : "");
    m->labels = labels ? strdup(labels) : NULL;
    if (!m->name || !m->help || (labels && !m->labels)) abort();
    if (metrics_tail) metrics_tail->next = m;
    else metrics_head = m;
    metrics_tail = m;
    return m;
}

metric *metrics_counter(const char *name, const char *help, const char *labels) {
    return metrics_new(METRIC_COUNTER, name, help, labels);
}

metric *metrics_gauge(const char *name, const char *help, const char *labels) {
    return metrics_new(METRIC_GAUGE, name, help, labels);
}

metric *metrics_gauge_fn(const char *name, const char *help, const char *labels, double (*fn)(void *), void *arg) {
    metric *m = metrics_new(METRIC_GAUGE, name, help, labels);
    m->fn = fn;
    m->fn_arg = arg;
    return m;
}

metric *metrics_histogram(const char *name, const char *help, const char *labels, const double *bounds,
                          size_t nbounds) {
    metric *m = metrics_new(METRIC_HISTOGRAM, name, help, labels);
    m->bounds = malloc(nbounds * sizeof *bounds);
    m->buckets = calloc(nbounds + 1, sizeof *m->buckets);
    if (!m->bounds || !m->buckets) abort();
    memcpy(m->bounds, bounds, nbounds * sizeof *bounds);
    m->nbounds = nbounds;
    return m;
}

void metrics_add(metric *m, double v) {
    if (m) m->value += v;
}

void metrics_set(metric *m, double v) {
    if (m) m->value = v;
}

void metrics_observe(metric *m, double v) {
    if (!m || m->type != METRIC_HISTOGRAM) return;
    size_t i = 0;
    while (i < m->nbounds && v > m->bounds[i]) i++;
    m->buckets[i]++;
    m->sum += v;
    m->count++;
}

double metrics_value(const metric *m) {
    if (!m) return 0;
    return m->fn ? m->fn(m->fn_arg) : m->value;
}

/* A growable string for rendering. */
typedef struct {
    char *s;
    size_t len, cap;
} mbuf;

static void mbuf_printf(mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mbuf_printf(mbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (!b->s) abort();
    }
}

static int metrics_seen_before(const metric *m) {
    for (const metric *p = metrics_head; p != m; p = p->next)
        if (strcmp(p->name, m->name) == 0) return 1;
    return 0;
}

static void metrics_fmt_value(char *out, size_t n, double v) {
    if (isinf(v)) snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
    else if (v == (double)(long long)v && fabs(v) < 1e15) snprintf(out, n, "%lld", (long long)v);
    else snprintf(out, n, "%.9g", v);
}

static void metrics_render_histogram(mbuf *b, const metric *m) {
    const char *sep = m->labels ? "," : "";
    const char *lab = m->labels ? m->labels : "";
    unsigned long long cum = 0;
    char bound[32];
    for (size_t i = 0; i <= m->nbounds; i++) {
        cum += m->buckets[i];
        if (i < m->nbounds) metrics_fmt_value(bound, sizeof bound, m->bounds[i]);
        else snprintf(bound, sizeof bound, "+Inf");
        mbuf_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", m->name, lab, sep, bound, cum);
    }
    char sum[32];
    metrics_fmt_value(sum, sizeof sum, m->sum);
    if (m->labels) {
        mbuf_printf(b, "%s_sum{%s} %s\n%s_count{%s} %llu\n", m->name, lab, sum, m->name, lab, m->count);
    } else {
        mbuf_printf(b, "%s_sum %s\n%s_count %llu\n", m->name, sum, m->name, m->count);
    }
}

char *metrics_render(size_t *len) {
    static const char *const types[] = {"counter", "gauge", "histogram"};
    mbuf b = {malloc(4096), 0, 4096};
    if (!b.s) abort();
    b.s[0] = '\0';
    for (const metric *m = metrics_head; m; m = m->next) {
        if (!metrics_seen_before(m)) {
            mbuf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, types[m->type]);
            /* keep all series of one name together: emit them now */
            for (const metric *s = m; s; s = s->next) {
                if (strcmp(s->name, m->name) != 0) continue;
                if (s->type == METRIC_HISTOGRAM) {
                    metrics_render_histogram(&b, s);
                    continue;
                }
                char v[32];
                metrics_fmt_value(v, sizeof v, metrics_value(s));
                if (s->labels) mbuf_printf(&b, "%s{%s} %s\n", s->name, s->labels, v);
                else mbuf_printf(&b, "%s %s\n", s->name, v);
            }
        }
    }
    *len = b.len;
    return b.s;
}

void metrics_free_all(void) {
    metric *m = metrics_head;
    while (m) {
        metric *next = m->next;
        free(m->name);
        free(m->help);
        free(m->labels);
        free(m->bounds);
        free(m->buckets);
        free(m);
        m = next;
    }
    metrics_head = metrics_tail = NULL;
}
