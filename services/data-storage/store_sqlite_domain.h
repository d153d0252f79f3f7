/* store_sqlite_domain.h -- what domain= reads on SQLite since schema 11, instead of the
 * index events_domain_time(domain, time_us) over every event (issue 15).
 *
 * Why: that index put every event into one more B-tree, at one place per domain: with
 * events_identity and events_entity_series it was the third index entry of each event,
 * ~1.6-2.5 us of storage's CPU per event in a 1,000-event burst (docs/BENCHMARKS.md,
 * session 9). But an event's domain belongs to its entity (enrichment takes it from the
 * entity id), so the same answer is had the way area= has it since schema 10
 * (store_sqlite_context.h): a small table of domain spans -- per (domain, entity, home)
 * the first and last time an event of that domain was stored -- and the entity index
 * every event is in already. domain=light becomes "these entities, between these times",
 * merged by time (store_sqlite_merge.h); every row is still checked against its own
 * domain column, so a record whose domain is not its entity's prefix is found exactly
 * where the old index found it. Events without an entity_id but with a domain keep the
 * index, partial on entity_id IS NULL: a handful of rows.
 *
 * Writes: one upsert per distinct (entity, domain) of a batch's stored events, which
 * changes a row only when the batch widens its span (live: last_us, once per entity per
 * batch, in a table of a few pages).
 *
 * Since schema 12 the rows with an entity and no domain (an entity id without a dot and
 * no domain member, a record's "" domain) have spans too, under the domain '' (which no
 * domain= can name: store_filter_string wants 1 to 255 characters): then the spans of an
 * entity say every domain its rows can have at any time, and a range of the entity
 * index where only one (domain, home) has a span holds that domain's rows only -- counted
 * from the index alone when a deep offset= page skips them (store_sqlite_merge.c). Such
 * rows are rare (enrichment always has a domain): no upsert more for an ordinary event.
 *
 * Retention's domain rules (RETENTION_OVERRIDES) delete through the spans and the
 * entity index too (retention_sqlite.c, SQD_RULE_SELECT).
 *
 * Ownership: none; functions work on the caller's statements and batch. */
#ifndef HOMEIQ_STORE_SQLITE_DOMAIN_H
#define HOMEIQ_STORE_SQLITE_DOMAIN_H

#include "store.h"

#include <sqlite3.h>

/* Migration 11. IF [NOT] EXISTS: a store a test put back to an older user_version runs
 * it again over its own result. The fill reads every event with an entity once. */
#define STORE_SQLITE_DOMAIN_MIGRATION                                                                        \
    "DROP INDEX IF EXISTS events_domain_time;"                                                               \
    "CREATE INDEX events_domain_time ON events(domain, time_us) WHERE domain IS NOT NULL"                     \
    "  AND entity_id IS NULL;"                                                                               \
    "CREATE TABLE IF NOT EXISTS event_domains (domain TEXT NOT NULL, entity_id TEXT NOT NULL,"              \
    "  home_id TEXT NOT NULL, first_us INTEGER NOT NULL, last_us INTEGER NOT NULL,"                          \
    "  PRIMARY KEY (domain, entity_id, home_id)) WITHOUT ROWID;"                                             \
    "INSERT OR IGNORE INTO event_domains SELECT domain, entity_id, home_id, min(time_us), max(time_us)"     \
    "  FROM events WHERE entity_id IS NOT NULL AND domain IS NOT NULL GROUP BY 1, 2, 3;"

/* Migration 12: the spans of the rows with an entity and no domain (domain ''), read
 * once from the table (no index has them; a store has few or none). */
#define STORE_SQLITE_DOMAIN_NONE_MIGRATION                                                                   \
    "INSERT OR IGNORE INTO event_domains SELECT '', entity_id, home_id, min(time_us), max(time_us)"          \
    "  FROM events WHERE entity_id IS NOT NULL AND domain IS NULL GROUP BY 2, 3;"

/* ?1 domain ?2 entity ?3 home ?4 first ?5 last */
#define STORE_SQLITE_DOMAIN_UPSERT                                                                           \
    "INSERT INTO event_domains VALUES (?1, ?2, ?3, ?4, ?5)"                                                 \
    " ON CONFLICT DO UPDATE SET first_us = min(first_us, excluded.first_us),"                                \
    "  last_us = max(last_us, excluded.last_us)"                                                              \
    " WHERE excluded.first_us < first_us OR excluded.last_us > last_us"

/* Retention: the spans that end before the oldest stored event cover nothing. */
#define STORE_SQLITE_DOMAIN_PURGE                                                                            \
    "DELETE FROM event_domains WHERE last_us < (SELECT coalesce(min(time_us), 9223372036854775807) FROM events)"

/* A domain rule's rows older than ?1 (retention_sqlite.c): the domain's entities' ranges
 * of events_entity_series -- each span's first_us..min(last_us, ?1), one index range (an
 * entity with 300,000 rows of another domain and one of this is a one-row range, not
 * 300,000) -- and the entity-less rows of the partial events_domain_time.
 * printf arguments: the quoted domain (%Q) three times, the entity exclusions (on e.)
 * between the first and second. Not in time order: the rule deletes all of them. */
#define SQD_RULE_SELECT                                                                                      \
    "SELECT e.id FROM event_domains d JOIN events e INDEXED BY events_entity_series"                          \
    " ON e.entity_id = d.entity_id AND e.time_us >= d.first_us AND e.time_us < min(d.last_us + 1, ?1)"         \
    " WHERE d.domain = %Q AND d.first_us < ?1"                                                               \
    " AND e.home_id = d.home_id AND e.domain = %Q%s"                                                         \
    " UNION ALL SELECT id FROM events INDEXED BY events_domain_time WHERE entity_id IS NULL AND domain = %Q"  \
    " AND time_us < ?1"

/* The spans of the batch's STORED items with an entity (domain '' when they have none),
 * one upsert per distinct (entity, domain). 0/-1. */
int sqd_update(const store_batch *b, sqlite3_stmt *upsert);

/* domain= alone (no registry filter): 1 when reading events by time and skipping the
 * other domains' rows costs less than merging the domain's entities' ranges. From the
 * entities table (one row per entity and home, its event count): k entities holding a
 * share p of the events, a page of r = offset + limit rows. Either way the cost is the
 * table pages read (each row's domain is checked on its row): by time reads r / p rows in
 * id order, ~7 to a page; the merge reads r rows, each of them on a page of its own when
 * the entities' events interleave, plus one statement per entity, and log2(k) comparisons
 * per row (store_sqlite_merge.c's heap). By time when r / p <= SQD_MERGE_ROW * (r + k):
 * a domain with more than 1/7 of the events, or a rarer one's shallow pages. Measured
 * with bench/filter_reads.sh (1.5M events, 3,000 entities): a page at offset 100,000 of
 * binary_sensor (10 %) costs ~760 ms of CPU merged row by row and would read 1M rows by time
 * (a deep offset now counts what it skips: below). Both ways give the same rows. 0 on any error (the merge is exact
 * too); 0 for an empty domain (no entity: the merge has only the entity-less rows).
 * A page that counts what it skips (sqx_skips, schema 12) costs instead a statement per
 * range for each window (~10x fewer rows left per window) and for the merge's start, each
 * about SQD_MERGE_ROW rows read by time (bench/filter_reads.sh: 1,800 ranges of sensor
 * 4-5 us each, rows by time ~0.7 us): by time when r / p <= SQD_MERGE_ROW * k * (2 +
 * log10(offset / SQX_SKIP_ROWS)) -- sensor's offset 5,000, not its offset 200,000. */
#define SQD_MERGE_ROW 7
int sqd_dense(sqlite3 *db, const store_filter *f);

/* Before migration 11: 0 when the disk has room for it, else -1 with the reason logged. */
int sqd_room(sqlite3 *db);

/* Migration 11 in the caller's transaction: sqd_room, then STORE_SQLITE_DOMAIN_MIGRATION,
 * logged at its start (events, MB, where the sort spills) and end (spans, entity-less rows
 * with a domain, seconds). 0, or -1 with the reason logged. */
int sqd_migrate(sqlite3 *db);

/* Migration 12 in the caller's transaction: STORE_SQLITE_DOMAIN_NONE_MIGRATION, logged at
 * its start (events, MB) and end (spans of domain '', seconds). 0, or -1 with the reason logged. */
int sqd_migrate_none(sqlite3 *db);

#endif
