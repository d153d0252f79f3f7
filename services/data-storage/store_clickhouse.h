/* store_clickhouse.h -- STORAGE_BACKEND=clickhouse (issue 18): many homes on a
 * ClickHouse node or cluster, behind store_ops. docs/CLICKHOUSE.md. */
#ifndef HOMEIQ_STORE_CLICKHOUSE_H
#define HOMEIQ_STORE_CLICKHOUSE_H

#include "store.h"

/* The backend's variables, for data-storage's --help table (main.c). */
#define CLICKHOUSE_CONFIG_VARS                                                                                       \
    {"CLICKHOUSE_URL", "http://127.0.0.1:8123",                                                                      \
     "clickhouse: HTTP interface URL; several, comma-separated, for failover (tried in turn on a transport error)"}, \
        {"CLICKHOUSE_DATABASE", "homeiq", "clickhouse: database (created at start with the schema, docs/CLICKHOUSE.md)"}, \
        {"CLICKHOUSE_USER", "default", "clickhouse: user"},                                                          \
        {"CLICKHOUSE_PASSWORD", NULL, "clickhouse: password (or CLICKHOUSE_PASSWORD_FILE); never logged"},           \
        {"CLICKHOUSE_CLUSTER", NULL,                                                                                 \
         "clickhouse: cluster name; set: tables ON CLUSTER, Distributed over ReplicatedReplacingMergeTree"},        \
        {"CLICKHOUSE_TIMEOUT_MS", "10000", "clickhouse: timeout of one HTTP request (DDL at start: 6 times this)"},  \
    {                                                                                                                \
        "CLICKHOUSE_PING_INTERVAL_MS", "2000", "clickhouse: how often /health pings ClickHouse"                      \
    }

int store_clickhouse_open(struct event_base *base, store **out);

#endif
