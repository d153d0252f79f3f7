/* influx_recent.c -- see influx_recent.h. Two generations of sets: when the
 * current one is full the older is dropped and the horizon raised past the
 * newest time it held (no deletion from the open-addressing sets). */
#include "influx_recent.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct ir_gen {
    influx_set ids, times;
    int64_t top_ns;     /* newest time held; INT64_MIN when empty */
} ir_gen;

struct influx_recent {
    ir_gen gen[2];      /* gen[0] current, gen[1] older */
    int known;          /* horizon known (probed, or set by a failure) */
    int64_t horizon_ns; /* memory holds every stored point at or above it */
    int64_t top_ns;     /* newest time ever probed or sent; INT64_MIN when none */
    unsigned long long epoch; /* bumped whenever facts are forgotten (influx_recent_epoch) */
};

static void ir_gen_clear(ir_gen *g) {
    influx_set_free(&g->ids);
    influx_set_free(&g->times);
    g->top_ns = INT64_MIN;
}

influx_recent *influx_recent_new(void) {
    influx_recent *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->gen[0].top_ns = r->gen[1].top_ns = INT64_MIN;
    r->top_ns = INT64_MIN;
    return r;
}

void influx_recent_free(influx_recent *r) {
    if (!r) return;
    ir_gen_clear(&r->gen[0]);
    ir_gen_clear(&r->gen[1]);
    free(r);
}

int influx_recent_needs_probe(const influx_recent *r) { return !r->known; }

void influx_recent_probe_sql(char *out, size_t n, const char *from) {
    snprintf(out, n, "SELECT last(event_id) FROM %s", from);
}

static void ir_raise(influx_recent *r, int64_t ns) {
    int64_t h = ns == INT64_MAX ? INT64_MAX : ns + 1;
    if (h > r->horizon_ns) r->horizon_ns = h;
}

void influx_recent_probed(influx_recent *r, int have, int64_t newest_ns) {
    r->known = 1;
    r->horizon_ns = INT64_MIN;
    if (have) {
        ir_raise(r, newest_ns);
        if (newest_ns > r->top_ns) r->top_ns = newest_ns;
    }
    if (r->top_ns != INT64_MIN) ir_raise(r, r->top_ns); /* anything sent before the probe: asked again */
}

int influx_recent_covers(const influx_recent *r, int64_t us) {
    if (!r || !r->known) return 0;
    if (us > INT64_MAX / 1000) return 0;
    return us * 1000 >= r->horizon_ns;
}

static int ir_has(const influx_set *s, uint64_t key, const char *id) {
    return s->cap ? influx_set_has(s, key, id) : 0;
}

unsigned long long influx_recent_epoch(const influx_recent *r) { return r ? r->epoch : 0; }

int influx_recent_has_id(const influx_recent *r, uint64_t key, const char *id) {
    return r && (ir_has(&r->gen[0].ids, key, id) || ir_has(&r->gen[1].ids, key, id));
}

int influx_recent_has_time(const influx_recent *r, uint64_t ns) {
    uint64_t k = influx_set_mix(ns);
    return r && (ir_has(&r->gen[0].times, k, NULL) || ir_has(&r->gen[1].times, k, NULL));
}

void influx_recent_sending(influx_recent *r, uint64_t ns) {
    if (r && (int64_t)ns > r->top_ns) r->top_ns = (int64_t)ns;
}

void influx_recent_failed(influx_recent *r) {
    if (!r) return;
    r->epoch++;
    ir_gen_clear(&r->gen[0]);
    ir_gen_clear(&r->gen[1]);
    if (r->top_ns != INT64_MIN) ir_raise(r, r->top_ns);
}

void influx_recent_reset(influx_recent *r) {
    if (!r) return;
    r->epoch++;
    ir_gen_clear(&r->gen[0]);
    ir_gen_clear(&r->gen[1]);
    r->known = 0;
    r->horizon_ns = INT64_MIN;
}

int influx_recent_stored(influx_recent *r, uint64_t key, const char *id, uint64_t ns) {
    if (!r || !r->known) return 0;       /* nothing to add to before the horizon is known */
    if (r->gen[0].ids.n >= INFLUX_RECENT_GEN) {
        if (r->gen[1].top_ns != INT64_MIN) {
            ir_raise(r, r->gen[1].top_ns);
            r->epoch++; /* what it held is forgotten */
        }
        ir_gen_clear(&r->gen[1]);
        r->gen[1] = r->gen[0];
        r->gen[0] = (ir_gen){.top_ns = INT64_MIN};
    }
    ir_gen *g = &r->gen[0];
    if (influx_set_put(&g->ids, key, id) < 0 || influx_set_put(&g->times, influx_set_mix(ns), NULL) < 0) {
        influx_recent_failed(r);
        return -1;
    }
    if ((int64_t)ns > g->top_ns) g->top_ns = (int64_t)ns;
    if ((int64_t)ns > r->top_ns) r->top_ns = (int64_t)ns;
    return 0;
}
