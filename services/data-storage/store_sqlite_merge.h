/* store_sqlite_merge.h -- GET /api/v1/events with area= / floor= / device= / platform=
 * (and no entity_id) on SQLite since schema 10, and with domain= since schema 11
 * (store_sqlite_domain.h): a page merged from entity ranges.
 *
 * Why: those filters have no index of their own any more (store_sqlite_context.h). The
 * events they match are those of a few entities between known times (event_contexts'
 * spans), each range read newest first from the entity index every event is in, plus
 * the entity-less events with a context (the partial registry indexes). A page is the
 * newest `offset + limit` of the union: each range is read in small, growing chunks and
 * merged by (time_us, id) descending, so a page costs one index seek per range and per
 * chunk plus the rows it returns -- like the old index, never a scan of the table or of
 * everything the filter matches. Every row is checked against the whole filter (its own
 * area_id, ... columns), so a span that also holds other contexts' events changes
 * nothing but the work; ranges of one (entity, home) are merged first so no event is
 * read twice.
 *
 * Ownership: none kept; the rows are added to the caller's store_rows. */
#ifndef HOMEIQ_STORE_SQLITE_MERGE_H
#define HOMEIQ_STORE_SQLITE_MERGE_H

#include "store.h"

#include <sqlite3.h>

/* The filters sqx_query serves: a registry column filter, or domain= (unless with an event
 * type other than state_changed), and no entity or label. */
int sqx_applies(const store_filter *f);

/* domain= alone (home=, start=, end= allowed; no event_type) with offset > SQX_SKIP_ROWS:
 * the newest rows the offset passes are mostly counted, not merged (issue 15: deep pages
 * were 25-60x main's, docs/BENCHMARKS.md). Time windows, newest first, are counted over
 * every range at once -- from events_entity_series alone for a range where the entity's
 * spans (store_sqlite_domain.h, schema 12) prove every row is the filter's, with a check
 * of each row's home and domain otherwise -- until at most SQX_SKIP_ROWS are left to skip;
 * the merge goes on from there. The same rows as merging all of them. */
#define SQX_SKIP_ROWS 512
int sqx_skips(const store_filter *f);

/* The page for f, newest first, into rows. 0, or -1 with the reason in err. */
int sqx_query(sqlite3 *db, const store_filter *f, store_rows *rows, char *err, size_t errlen);

/* For the plan test: the statement that reads one entity's range (ranges of entity
 * NULL: the same with "entity_id IS NULL"), before the filter's own terms. */
#define SQX_RANGE_SELECT "SELECT time_us, id FROM events WHERE "
#define SQX_RANGE_ENTITY "entity_id = ?1 AND home_id = ?2"
#define SQX_RANGE_TIME                                                                                        \
    " AND time_us >= ?3 AND time_us <= ?4 AND (time_us < ?4 OR id < ?5)"
#define SQX_RANGE_ORDER " ORDER BY time_us DESC, id DESC LIMIT ?6"

#endif
