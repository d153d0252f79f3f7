/* store_influx.h -- the InfluxDB backend (1.x /write, 2.x/3.x /api/v2/write). */
#ifndef HOMEIQ_STORE_INFLUX_H
#define HOMEIQ_STORE_INFLUX_H

#include "config.h"
#include "influx_points.h"
#include "store.h"

/* INFLUXDB_WRITES_INFLIGHT's ceiling, and the batches the feed keeps open at a time (influx_query.c's
 * IQ_OPEN_MAX is this): every batch being written holds the feed's head below it until it is done. A batch
 * opened beyond what the feed tracks would not, and a reader at the head would skip what it writes after
 * (review inflight-1 F1: the range went to 16 while the feed tracked 8). */
#define INFLUX_WRITES_MAX 8

/* The InfluxDB backend's variables, declared once: main.c's table includes
 * them (--help, README) and store_influx.c reads its values from them. */
#define INFLUX_CONFIG_VARS                                                                                             \
    CONFIG_TEXT("INFLUXDB_URL", "http://127.0.0.1:8086", "influxdb: base URL"),                                        \
        CONFIG_INT("INFLUXDB_API_VERSION", NULL, 1, 2,                                                                 \
                   "influxdb: 1 or 2 (default: 2 when INFLUXDB_TOKEN/ORG/BUCKET is set, else 1)"),                     \
        CONFIG_TEXT("INFLUXDB_DATABASE", "home_assistant", "influxdb v1: database (created at start if missing)"),     \
        CONFIG_TEXT("INFLUXDB_USERNAME", NULL, "influxdb v1: user"),                                                   \
        CONFIG_TEXT("INFLUXDB_PASSWORD", NULL, "influxdb v1: password (or INFLUXDB_PASSWORD_FILE); never logged"),      \
        CONFIG_TEXT("INFLUXDB_ORG", NULL, "influxdb v2/v3: organization"),                                             \
        CONFIG_TEXT("INFLUXDB_BUCKET", NULL,                                                                           \
                    "influxdb v2/v3: bucket, also the database name for queries (default: INFLUXDB_DATABASE)"),        \
        CONFIG_TEXT("INFLUXDB_TOKEN", NULL, "influxdb v2/v3: API token (or INFLUXDB_TOKEN_FILE); never logged"),       \
        CONFIG_INT("INFLUXDB_TIMEOUT_MS", "10000", 100, 600000, "influxdb: timeout of one HTTP request"),              \
        CONFIG_INT("INFLUXDB_CHUNK_LINES", "5000", 1, 100000, "influxdb: most lines in one write request"),            \
        CONFIG_INT("INFLUXDB_PING_INTERVAL_MS", "5000", 50, 3600000, "influxdb: how often /health pings InfluxDB"),   \
        CONFIG_INT("INFLUXDB_WRITE_LINGER_MS", "0", 0, 1000,                                                           \
                   "influxdb: a batch starts at least this long after the one before (0: at once; more: fewer, "        \
                   "larger writes under steady load, each event that much later)"),                      \
        CONFIG_TEXT("INFLUXDB_EVENT_FIELDS", INFLUX_EVENT_FIELDS_DEFAULT,                                              \
                    "influxdb: fields of each home_assistant_events point: full (also old_state, old_value, "          \
                    "duration_in_state, context_id, context_parent_id, context_user_id, attributes: copies of the "    \
                    "record's members) | slim (only event_id, stored_at, record, state, value: what HomeIQ's reads "   \
                    "use, about a third less InfluxDB CPU per event); switchable at any restart"),                     \
        CONFIG_INT("INFLUXDB_WRITES_INFLIGHT", "2", 1, INFLUX_WRITES_MAX,                                              \
                   "influxdb: batches written at a time (they finish in order); each one more holds a POST's piece, "  \
                   "its chunk's body and the HTTP copy of it, ~5-8 MB at FORWARD_BATCH_MAX=5000: over 2 is not "      \
                   "measured within the 64 MB bound; not more than 2 with STATISTICS=1: a burst's statistics fall "  \
                   "to their slow path (docs/INFLUXDB.md)")

int store_influx_open(struct event_base *base, store **out);

#endif
