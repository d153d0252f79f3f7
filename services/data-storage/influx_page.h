/* influx_page.h -- one newest-first page of GET /api/v1/events read from two
 * measurements in one SELECT (INFLUXDB_SCHEMA=homeassistant).
 *
 * Why: on that schema a state_changed event's record is in its identity
 * point (`homeiq_ids`, influx_ids.h) and every other event's in
 * `home_assistant_events`, so an unfiltered page reads
 * `FROM "home_assistant_events","homeiq_ids"`. InfluxQL applies LIMIT and
 * OFFSET to each measurement of a FROM list on its own (LIMIT 3 answers up
 * to 3 rows of each, as separate series). So the read asks each for its
 * newest offset+limit rows (no OFFSET), and this merges them by time, newest
 * first, and keeps rows offset .. offset+limit-1 -- the page a single
 * measurement would have answered. Equal times keep the answer's order.
 *
 * Ownership: an influx_page owns its times; the rows stay the caller's
 * store_rows (influx_page_cut frees the rows it drops). */
#ifndef HOMEIQ_INFLUX_PAGE_H
#define HOMEIQ_INFLUX_PAGE_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct influx_page {
    int64_t *t; /* t[i] = the time of rows->json[i] */
    size_t n, cap;
} influx_page;

/* The time of the row just added to the caller's rows. 0/-1 (out of memory). */
int influx_page_note(influx_page *p, int64_t t_ns);
/* Orders rows (one noted time each) newest first and keeps [offset, offset+limit). 0/-1. */
int influx_page_cut(influx_page *p, store_rows *rows, long offset, long limit);
void influx_page_free(influx_page *p);

#endif
