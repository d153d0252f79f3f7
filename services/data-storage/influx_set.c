/* influx_set.c -- see influx_set.h. Linear probing in a power-of-two table
 * kept at most half full. */
#include "influx_set.h"

#include <stdlib.h>
#include <string.h>

uint64_t influx_set_mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x | 1; /* never 0 */
}

uint64_t influx_set_id_key(const char *id) {
    uint64_t k = 0;
    for (int i = 0; i < 16 && id[i]; i++) k = k * 31 + (unsigned char)id[i];
    return influx_set_mix(k);
}

int influx_set_grow(influx_set *s, int with_ids) {
    size_t cap = s->cap ? s->cap * 2 : 1024;
    influx_set n = {calloc(cap, sizeof *n.keys), with_ids ? calloc(cap, sizeof *n.ids) : NULL, cap, 0};
    if (!n.keys || (with_ids && !n.ids)) {
        free(n.keys);
        free(n.ids);
        return -1;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->keys[i]) continue;
        size_t j = s->keys[i] & (cap - 1);
        while (n.keys[j]) j = (j + 1) & (cap - 1);
        n.keys[j] = s->keys[i];
        if (with_ids) memcpy(n.ids[j], s->ids[i], EVENT_ID_LEN);
        n.n++;
    }
    free(s->keys);
    free(s->ids);
    *s = n;
    return 0;
}

int influx_set_put(influx_set *s, uint64_t key, const char *id) {
    if ((s->n + 1) * 2 > s->cap && influx_set_grow(s, id != NULL) != 0) return -1;
    size_t j = key & (s->cap - 1);
    for (; s->keys[j]; j = (j + 1) & (s->cap - 1))
        if (s->keys[j] == key && (!id || strcmp(s->ids[j], id) == 0)) return 1;
    s->keys[j] = key;
    if (id) memcpy(s->ids[j], id, EVENT_ID_LEN);
    s->n++;
    return 0;
}

int influx_set_has(const influx_set *s, uint64_t key, const char *id) {
    if (!s->cap) return 0;
    for (size_t j = key & (s->cap - 1); s->keys[j]; j = (j + 1) & (s->cap - 1))
        if (s->keys[j] == key && (!id || !s->ids || strcmp(s->ids[j], id) == 0)) return 1;
    return 0;
}

void influx_set_free(influx_set *s) {
    free(s->keys);
    free(s->ids);
    memset(s, 0, sizeof *s);
}
