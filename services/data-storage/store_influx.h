/* store_influx.h -- the InfluxDB backend (1.x /write, 2.x/3.x /api/v2/write). */
#ifndef HOMEIQ_STORE_INFLUX_H
#define HOMEIQ_STORE_INFLUX_H

#include "store.h"

int store_influx_open(struct event_base *base, store **out);

#endif
