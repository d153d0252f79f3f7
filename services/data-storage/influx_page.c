/* influx_page.c -- see influx_page.h. */
#include "influx_page.h"

#include <stdlib.h>

int influx_page_note(influx_page *p, int64_t t_ns) {
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        int64_t *t = realloc(p->t, cap * sizeof *t);
        if (!t) return -1;
        p->t = t;
        p->cap = cap;
    }
    p->t[p->n++] = t_ns;
    return 0;
}

typedef struct influx_page_key {
    int64_t t;
    size_t i;
} influx_page_key;

static int influx_page_cmp(const void *a, const void *b) {
    const influx_page_key *x = a, *y = b;
    if (x->t != y->t) return x->t > y->t ? -1 : 1; /* newest first */
    return x->i < y->i ? -1 : x->i > y->i;          /* then the answer's order */
}

int influx_page_cut(influx_page *p, store_rows *rows, long offset, long limit) {
    if (p->n != rows->n) return -1; /* every row needs its time */
    if (rows->n == 0) return 0;
    influx_page_key *k = malloc(rows->n * sizeof *k);
    char **keep = malloc(rows->n * sizeof *keep);
    if (!k || !keep) {
        free(k);
        free(keep);
        return -1;
    }
    for (size_t i = 0; i < rows->n; i++) k[i] = (influx_page_key){.t = p->t[i], .i = i};
    qsort(k, rows->n, sizeof *k, influx_page_cmp);
    size_t from = (size_t)offset, kept = 0, total = rows->n;
    for (size_t j = 0; j < total; j++) {
        char *row = rows->json[k[j].i];
        if (j >= from && kept < (size_t)limit) keep[kept++] = row;
        else free(row);
    }
    free(rows->json);
    free(k);
    rows->json = keep;
    rows->n = kept;
    rows->cap = total; /* keep's size */
    return 0;
}

void influx_page_free(influx_page *p) {
    free(p->t);
    *p = (influx_page){0};
}
