/* clickhouse_read.h -- the dashboard's reads (store_read.h) and the homes
 * list on STORAGE_BACKEND=clickhouse (issue 18): the live tail (feed), the
 * entity list, bucketed series, live totals, every one selectable by home.
 *
 * Why a module of its own: store_clickhouse.c owns the connection and the
 * write contract; this file only builds SELECTs and turns their answers into
 * the same JSON the SQLite reads give (docs/CLICKHOUSE.md, "Reads"). It asks
 * store_clickhouse.c for three things: a query (ch_store_select), the
 * database name and the feed's horizon (the newest stored_at_us no batch can
 * still appear behind).
 *
 * Ownership: as store_read.h -- queries are borrowed for the call, rows and
 * meta passed to callbacks are valid only during the call. */
#ifndef HOMEIQ_CLICKHOUSE_READ_H
#define HOMEIQ_CLICKHOUSE_READ_H

#include "sbuf.h"
#include "store.h"

/* ---- provided by store_clickhouse.c ---- */

/* rc 0: body is the answer (valid during the call); -1: err says why. */
typedef void (*ch_answer_fn)(int rc, const char *body, size_t len, const char *err, void *arg);
/* Runs one SELECT (sql is taken); fn is called exactly once. */
void ch_store_select(store *s, sbuf *sql, ch_answer_fn fn, void *arg);
/* Runs an INSERT whose data is `data` (taken; the query goes in the URL, so
 * binary data cannot be mistaken for it); fn is called exactly once. */
void ch_store_insert(store *s, const char *query, sbuf *data, ch_answer_fn fn, void *arg);
const char *ch_store_db(store *s);
/* Appends the condition that hides expired events (RETENTION_DAYS), if any. */
void ch_store_visible(store *s, sbuf *q);
/* The retention cut-off (epoch seconds, 0 = none). */
int64_t ch_store_cutoff_s(store *s);
/* The feed's horizon: now - CLICKHOUSE_FEED_SETTLE_MS, and before the oldest
 * batch this process still has in flight. Rows stamped later may still be
 * joined by older ones, so the feed never reads past it. */
int64_t ch_store_feed_horizon(store *s, int64_t now_us);

/* ---- store_ops members (clickhouse_read.c) ---- */

void ch_read_feed(store *s, const store_feed_query *q, store_read_cb cb, void *arg);
void ch_read_entities(store *s, const store_entity_query *q, store_read_cb cb, void *arg);
void ch_read_series(store *s, const store_series_query *q, store_read_cb cb, void *arg);
void ch_read_stats(store *s, const store_stats_query *q, store_read_cb cb, void *arg);
void ch_read_homes(store *s, store_rows_cb cb, void *arg);

#endif
