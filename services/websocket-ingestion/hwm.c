/* hwm.c -- see hwm.h. */
#include "hwm.h"

#include "event.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hwm {
    char *path;
    int64_t committed;          /* durable mark */
    int64_t pending_t;          /* newest time seen, not yet a candidate */
    uint64_t pending_seq;
    int64_t cand_t;             /* waiting for the spool to be durable past cand_seq */
    uint64_t cand_seq;
    int have_cand;
    int held;
    int64_t live_t;             /* newest live time seen while held */
    uint64_t live_seq;
    int64_t saved;              /* what the file says */
};

static uint64_t hwm_fnv(const char *s) {
    uint64_t h = 14695981039346656037ull; /* FNV-1a 64 */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int hwm_open(const char *dir, const char *instance, hwm **out) {
    hwm *h = calloc(1, sizeof *h);
    if (!h) return -1;
    size_t n = strlen(dir) + 32;
    h->path = malloc(n);
    if (!h->path) {
        free(h);
        return -1;
    }
    snprintf(h->path, n, "%s/hwm-%016" PRIx64, dir, hwm_fnv(instance));
    FILE *f = fopen(h->path, "r");
    if (f) {
        long long v = 0;
        if (fscanf(f, "%lld", &v) == 1 && v > 0) h->committed = h->saved = v;
        else log_warn("%s: unreadable high-water mark; starting without one", h->path);
        fclose(f);
    } else if (errno != ENOENT) {
        log_error("%s: %m", h->path);
        free(h->path);
        free(h);
        return -1;
    }
    if (h->committed) {
        char t[EVENT_TIME_LEN];
        event_time_format(h->committed, t);
        log_info("high-water mark of %s: %s", instance, t);
    }
    *out = h;
    return 0;
}

int64_t hwm_get(const hwm *h) { return h->committed; }
int hwm_held(const hwm *h) { return h->held; }
const char *hwm_path(const hwm *h) { return h->path; }

void hwm_seen(hwm *h, uint64_t seq, int64_t t_us) {
    if (h->held) {
        if (t_us > h->live_t) h->live_t = t_us;
        if (seq > h->live_seq) h->live_seq = seq;
        return;
    }
    if (t_us > h->pending_t) h->pending_t = t_us;
    if (seq > h->pending_seq) h->pending_seq = seq;
}

void hwm_hold(hwm *h) {
    h->held = 1;
    h->live_t = 0;
    h->live_seq = 0;
    /* what was seen before the gap stays a candidate: it was complete */
}

void hwm_complete(hwm *h, uint64_t seq, int64_t t_us) {
    h->held = 0;
    int64_t t = t_us > h->live_t ? t_us : h->live_t;
    uint64_t s = seq > h->live_seq ? seq : h->live_seq;
    if (t > h->pending_t) h->pending_t = t;
    if (s > h->pending_seq) h->pending_seq = s;
}

static void hwm_save(hwm *h) {
    char tmp[4200], t[EVENT_TIME_LEN];
    snprintf(tmp, sizeof tmp, "%s.tmp", h->path);
    event_time_format(h->committed, t);
    FILE *f = fopen(tmp, "w");
    int ok = f && fprintf(f, "%lld %s\n", (long long)h->committed, t) > 0;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, h->path) != 0) {
        log_error("%s: cannot save the high-water mark: %m", h->path);
        return;
    }
    h->saved = h->committed;
}

void hwm_durable(hwm *h, uint64_t durable_seq) {
    if (h->have_cand && h->cand_seq <= durable_seq) {
        if (h->cand_t > h->committed) h->committed = h->cand_t;
        h->have_cand = 0;
    }
    if (!h->have_cand && h->pending_t > h->committed) {
        h->cand_t = h->pending_t;
        h->cand_seq = h->pending_seq;
        h->have_cand = 1;
        if (h->cand_seq <= durable_seq) { /* already durable */
            h->committed = h->cand_t;
            h->have_cand = 0;
        }
    }
    if (h->committed != h->saved) hwm_save(h);
}

void hwm_close(hwm *h) {
    if (!h) return;
    free(h->path);
    free(h);
}
