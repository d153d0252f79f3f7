/* store_clickhouse.h -- STORAGE_BACKEND=clickhouse (issue 18): many homes on a
 * ClickHouse node or cluster, behind store_ops. docs/CLICKHOUSE.md. */
#ifndef HOMEIQ_STORE_CLICKHOUSE_H
#define HOMEIQ_STORE_CLICKHOUSE_H

#include "config.h"
#include "store.h"

/* The backend's variables, for data-storage's --help table (main.c). */
#define CLICKHOUSE_CONFIG_VARS                                                                                       \
    CONFIG_TEXT("CLICKHOUSE_URL", "http://127.0.0.1:8123",                                                           \
                "clickhouse: HTTP interface URL; several, comma-separated, for failover (the next on a transport "   \
                "error, 502, 503, 504)"),                                                                            \
        CONFIG_TEXT("CLICKHOUSE_DATABASE", "homeiq",                                                                 \
                    "clickhouse: database (created at start with the versioned schema, docs/CLICKHOUSE.md)"),      \
        CONFIG_TEXT("CLICKHOUSE_USER", "default", "clickhouse: user"),                                               \
        CONFIG_TEXT("CLICKHOUSE_PASSWORD", NULL, "clickhouse: password (or CLICKHOUSE_PASSWORD_FILE); never logged"), \
        CONFIG_TEXT("CLICKHOUSE_CLUSTER", NULL,                                                                      \
                    "clickhouse: cluster name; set: tables ON CLUSTER, Distributed over ReplicatedReplacingMergeTree"), \
        CONFIG_INT("CLICKHOUSE_TIMEOUT_MS", "10000", 100, 600000,                                                    \
                   "clickhouse: timeout of one HTTP request (DDL at start: 6 times this)"),                          \
        CONFIG_INT("CLICKHOUSE_PING_INTERVAL_MS", "2000", 50, 3600000, "clickhouse: how often /health pings ClickHouse"), \
        CONFIG_INT("CLICKHOUSE_FEED_SETTLE_MS", "1000", 0, 600000,                                                   \
                   "clickhouse: the live tail shows a batch this long after it was stamped (other replicas' inserts " \
                   "in flight; docs/CLICKHOUSE.md)"),                                                          \
        CONFIG_INT("CLICKHOUSE_STATISTICS", "0", 0, 1,                                                               \
                   "clickhouse: 1 = keep long-term statistics (table statistics, recomputed before each ack; "      \
                   "docs/CLICKHOUSE.md)"),                                                                     \
        CONFIG_INT("CLICKHOUSE_INSERT_QUORUM", "0", 0, 16,                                                           \
                   "clickhouse (cluster): 0 = a batch is acked once one replica of each shard has it; N = only "    \
                   "once N replicas have it (insert_quorum; every shard needs N live replicas; docs/CLICKHOUSE.md)")

int store_clickhouse_open(struct event_base *base, store **out);

#endif
