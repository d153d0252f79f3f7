/* clickhouse_sql.h -- the SQL text HomeIQ sends to ClickHouse: the versioned
 * schema (single node or ON CLUSTER), literals, identifiers and WHERE terms;
 * and the JSONEachRow text its SELECTs answer.
 *
 * Why its own module: everything interpolated into ClickHouse SQL goes
 * through the two quoting functions here, and the schema is one table of
 * statements that tests and docs/CLICKHOUSE.md can be checked against. Pure
 * text, no I/O: unit-tested without a server.
 *
 * Only what ClickHouse 18.16 (Debian 12, the tests) and current releases both
 * accept is used: DateTime (no DateTime64: microseconds in an Int64 column),
 * no LowCardinality, no JSONExtract, no fsync_after_insert (see
 * docs/CLICKHOUSE.md, "Versions"). */
#ifndef HOMEIQ_CLICKHOUSE_SQL_H
#define HOMEIQ_CLICKHOUSE_SQL_H

#include "sbuf.h"

#include <jansson.h>
#include <stddef.h>

/* The schema this binary writes and reads. A store holding a newer version
 * is refused (health 503 clickhouse_schema_newer); an older one is upgraded
 * by the statements of the versions after it (none yet). */
#define CH_SCHEMA_VERSION 3 /* 2: statistics (issue 18); 3: registry columns of events (issue 11) */

/* 1 when `s` is a safe identifier for a database or cluster name:
 * [A-Za-z_][A-Za-z0-9_]{0,63}. */
int ch_ident_ok(const char *s);
/* Appends s as a ClickHouse string literal ('...' with \\ and \' escaped). */
void ch_quote(sbuf *b, const char *s);
/* Appends s %-encoded for a URL query parameter. */
void ch_urlencode(sbuf *b, const char *s);
/* Appends " AND col = 'v'" (v quoted by ch_quote); nothing when v is NULL.
 * col is the caller's constant, never user text. */
void ch_where_eq(sbuf *b, const char *col, const char *v);

/* Calls fn(ctx, row) for each line of a FORMAT JSONEachRow answer (empty
 * lines skipped); row is freed after fn returns. 0, or -1 at the first line
 * that is not JSON or for which fn returns non-zero. */
int ch_json_lines(const char *body, size_t len, int (*fn)(void *ctx, json_t *row), void *ctx);

/* The start-up statements, in order, each idempotent (IF NOT EXISTS): the
 * database, the version table, events and dead_letters. `cluster` NULL: one
 * node, ReplacingMergeTree tables. Else every statement is ON CLUSTER: local
 * tables <name>_local as ReplicatedReplacingMergeTree (ZooKeeper path
 * /clickhouse/tables/{shard}/<db>/<name>_local, replica {replica}: the
 * server's macros) under Distributed tables sharded by home + entity.
 * Returns the number of statements written into out[] (at most max), each a
 * malloc'd string the caller frees; -1 on out of memory. */
int ch_schema_statements(const char *db, const char *cluster, char **out, int max);

/* The statements that bring a store at schema version `from` (1..) up to
 * CH_SCHEMA_VERSION, in order (none when from is current). Each may fail
 * with ClickHouse's "already exists" when a previous start ran it but did not
 * record the version: the caller takes that as done. Count, or -1. */
int ch_schema_upgrade_statements(const char *db, const char *cluster, long from, char **out, int max);

/* The query answering the stored schema version (one row, one number; 0 when
 * the version table is empty). */
int ch_schema_version_query(sbuf *b, const char *db);

#endif
