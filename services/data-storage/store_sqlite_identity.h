/* store_sqlite_identity.h -- the SQLite identity index: UNIQUE(time_us, event_id).
 *
 * Why: an event's identity (event_id, lib/event.h) is a hash, so a UNIQUE index on
 * event_id alone puts each new event at a random place: once the index is larger than a
 * batch, every insert dirties another page (~750 WAL frames per 1,000 events, and on a
 * large store a read from disk per event). The identity is a function of the event's
 * time: event_identity_parts() hashes time_fired (state_changed: entity + the parsed
 * microsecond), and time_us is event_time_parse() of that same time_fired; the home
 * variant hashes that identity again. So two rows with one event_id always have one
 * time_us, and UNIQUE(time_us, event_id) refuses exactly what UNIQUE(event_id) refused
 * (dedup stays exact, not probabilistic) -- but its keys arrive in time order, so live
 * inserts append at the right edge of the index (a few pages per batch) and a purge by
 * time deletes a contiguous range.
 *
 * The migration (STORE_SQLITE_IDENTITY_MIGRATION, run by store_sqlite_migrate in the
 * migration's transaction): SQLite cannot drop the UNIQUE constraint written in
 * CREATE TABLE events, so the table is rebuilt: the same CREATE TABLE text (whatever
 * columns earlier migrations, this branch's or another's, added) without that UNIQUE,
 * every row copied in id order (ids kept: event_labels refers to them), the old table
 * dropped, the new one renamed, and every index and trigger events had re-created from
 * its own SQL, plus events_identity. Cost, once, at the first start of the new binary:
 * one copy of the events table (free disk about twice events.db: the copy and the WAL
 * holding it; 40,000 events / 67 MB: 1.85 s CPU, disk-bound wall time).
 *
 * Ownership: none; functions work on the caller's connection. */
#ifndef HOMEIQ_STORE_SQLITE_IDENTITY_H
#define HOMEIQ_STORE_SQLITE_IDENTITY_H

#include <sqlite3.h>

/* The migration list's entry for this migration: not SQL, a marker store_sqlite_migrate
 * hands to sqi_migrate(). */
#define STORE_SQLITE_IDENTITY_MIGRATION "-- homeiq: events identity index by time (store_sqlite_identity.c)"

/* Rebuilds events as described above, inside the caller's transaction. 0/-1 (logged). */
int sqi_migrate(sqlite3 *db);

/* A migration about to write up to `need` bytes: 0 when the disk of db's file has
 * them (plus 1 MB), else -1 and the reason logged, naming `what`, before anything changed. */
int sqi_room(sqlite3 *db, long long need, const char *what);
/* The first column of the first row of one statement (a pragma, a count), or -1. */
long long sqi_scalar(sqlite3 *db, const char *sql);
/* The size of db's main file (0 when unknown). */
long long sqi_file_bytes(sqlite3 *db);

#endif
