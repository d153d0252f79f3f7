/* influx_set.h -- an open-addressing set of 64-bit keys, optionally with the
 * event id each key stands for.
 *
 * Why a module of its own: the InfluxDB write path needs two sets per batch --
 * the event ids already stored in the batch's time window (the duplicate
 * check) and the nanosecond times already taken there (so two events of one
 * series and microsecond never overwrite each other) -- and a hash table is a
 * job apart from the request plumbing of store_influx.c.
 *
 * Ownership: the caller owns an influx_set (zero-initialised, or grown with
 * influx_set_grow) and frees it with influx_set_free. Not thread-safe; used on
 * data-storage's event loop only. */
#ifndef HOMEIQ_INFLUX_SET_H
#define HOMEIQ_INFLUX_SET_H

#include "event.h"

#include <stddef.h>
#include <stdint.h>

typedef struct influx_set {
    uint64_t *keys;     /* 0 = empty slot */
    char (*ids)[EVENT_ID_LEN];
    size_t cap, n;
} influx_set;

/* A 64-bit mix of x that is never 0 (the empty slot). */
uint64_t influx_set_mix(uint64_t x);
/* The key of an event id (its first 16 hex digits, mixed). */
uint64_t influx_set_id_key(const char *id);
/* Doubles the capacity (1024 from empty); with_ids: the set holds ids too.
 * 0, or -1 out of memory (the set is unchanged). */
int influx_set_grow(influx_set *s, int with_ids);
/* 1 when present; otherwise inserts and returns 0; -1 out of memory.
 * `id` NULL: the set holds bare 64-bit keys (times). */
int influx_set_put(influx_set *s, uint64_t key, const char *id);
/* 1 when present (a set with ids compares `id` too), else 0; never inserts. */
int influx_set_has(const influx_set *s, uint64_t key, const char *id);
void influx_set_free(influx_set *s);

#endif
