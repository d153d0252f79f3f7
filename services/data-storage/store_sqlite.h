/* store_sqlite.h -- the embedded SQLite backend (the default). */
#ifndef HOMEIQ_STORE_SQLITE_H
#define HOMEIQ_STORE_SQLITE_H

#include "store.h"

/* Opens DATA_DIR/events.db (creating DATA_DIR), migrates the schema, and
 * starts the writer thread whose reports arrive on base (store_sqlite_writer.h). 0/-1. */
int store_sqlite_open(struct event_base *base, store **out);
/* Opens a specific file (tests, tools); batches are written inline. */
int store_sqlite_open_path(const char *path, long busy_timeout_ms, store **out);

/* Tests of upgrades: a new file at schema `version` (1..latest-1). 0/-1. */
int store_sqlite_create_at_version(const char *path, int version);
int store_sqlite_latest_version(void);
/* The schema version that added the home_id columns (issue 18; tests). */
int store_sqlite_home_version(void);

#endif
