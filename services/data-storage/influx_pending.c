/* influx_pending.c -- see influx_pending.h: a copy of what the write path
 * applies for each batch that finishes while a restore runs. */
#include "influx_pending.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void influx_pending_clear(influx_pending *p) {
    for (size_t i = 0; i < p->nb; i++) {
        free(p->b[i].home);
        free(p->b[i].late_home);
    }
    free(p->b);
    free(p->f);
    sbuf_free(&p->text);
    *p = (influx_pending){0};
}

/* The offset of s's copy in text, SIZE_MAX for NULL. */
static size_t ipe_text(influx_pending *p, const char *s) {
    if (!s) return SIZE_MAX;
    size_t off = p->text.len;
    sbuf_add(&p->text, s, strlen(s) + 1);
    return off;
}

static int ipe_grow(void **a, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *n = realloc(*a, c * size);
    if (!n) return -1;
    *a = n;
    *cap = c;
    return 0;
}

static int ipe_fact(influx_pending *p, const store_item *it) {
    sbuf scratch;
    sbuf_init(&scratch);
    influx_fact f;
    int rc = influx_item_fact(it, &scratch, &f);
    if (rc == 0) {
        influx_pending_fact *k = &p->f[p->nf++];
        *k = (influx_pending_fact){.time_us = f.time_us, .state_changed = f.state_changed, .numeric = f.numeric};
        k->entity = ipe_text(p, f.entity_id);
        k->domain = ipe_text(p, f.domain);
        k->state = ipe_text(p, f.state);
        if (sbuf_failed(&p->text)) rc = -1;
    }
    sbuf_free(&scratch);
    return rc;
}

int influx_pending_add(influx_pending *p, const store_batch *b, const influx_pending_batch *marks) {
    size_t n = 0;
    for (size_t i = 0; i < b->nitems; i++) n += b->items[i].status == STORE_ITEM_STORED;
    if (p->nf + n > INFLUX_PENDING_MAX || p->nb >= INFLUX_PENDING_MAX_BATCHES) return 1;
    if (ipe_grow((void **)&p->f, &p->capf, p->nf + n, sizeof *p->f) != 0 ||
        ipe_grow((void **)&p->b, &p->capb, p->nb + 1, sizeof *p->b) != 0)
        return -1;
    influx_pending_batch *pb = &p->b[p->nb];
    *pb = *marks;
    pb->late_home = NULL; /* the caller's to set once kept */
    pb->late_n = 0;
    pb->first = p->nf;
    pb->n = n;
    if (!(pb->home = strdup(b->home_id))) return -1;
    p->nb++;
    for (size_t i = 0; i < b->nitems; i++)
        if (b->items[i].status == STORE_ITEM_STORED && ipe_fact(p, &b->items[i]) != 0) return -1;
    return 0;
}

void influx_pending_fact_at(const influx_pending *p, size_t i, influx_fact *out) {
    const influx_pending_fact *k = &p->f[i];
    const char *t = p->text.data;
    *out = (influx_fact){.time_us = k->time_us, .state_changed = k->state_changed, .numeric = k->numeric};
    out->entity_id = k->entity == SIZE_MAX ? NULL : t + k->entity;
    out->domain = k->domain == SIZE_MAX ? "" : t + k->domain;
    out->state = k->state == SIZE_MAX ? NULL : t + k->state;
}
