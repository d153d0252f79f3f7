/* stats_catchup.h -- statistics for history stored before they existed
 * (an SQLite file migrated from schema <= 4, or a store run with
 * STATISTICS=0): computed in the background, in small steps.
 *
 * Why a background pass and not a migration: a file of millions of events
 * would take minutes to compute, and nothing may block ingestion that long.
 * One entity of one home at a time (in (entity_id, home_id) order, from the
 * entities table; a migrated file's entity whose old statistics mixed homes
 * is computed again here per home, stats_sqlite.h migration 9): when
 * its first stored state is older than its first statistics row, its states
 * from there up to that row are handed to stats_sqlite_catchup in chunks of
 * STATS_CATCHUP_CHUNK states, oldest first, as if they arrived late -- the
 * same code as a late event, so the row where the history meets the existing
 * rows is recomputed with the carry from history and the later cumulative
 * sums move by the difference. Restart-safe: each step runs in the purge
 * step's transaction and records its progress in stats_marks
 * ("catchup_at:<entity>", "catchup_to:<entity>"; another home's
 * "catchup_at@<home>:<entity>"), so a crash repeats at most
 * the step that did not commit. Raw events are purged only after the pass
 * finished (retention_sqlite.c waits), so nothing is dropped before its
 * statistics exist.
 *
 * Ownership: borrows the sqlite3 handle and the stats_sqlite, which outlive it. */
#ifndef HOMEIQ_STATS_CATCHUP_H
#define HOMEIQ_STATS_CATCHUP_H

#include "stats_sqlite.h"

#include <jansson.h>
#include <sqlite3.h>

#define STATS_CATCHUP_CHUNK 500

typedef struct stats_catchup stats_catchup;

int stats_catchup_open(sqlite3 *db, stats_sqlite *stats, stats_catchup **out);
void stats_catchup_close(stats_catchup *c);

/* Work until spent() says the step's time is up (at least one chunk), inside
 * the caller's transaction. 1 = more to do, 0 = the pass is done, -1 = error. */
int stats_catchup_step(stats_catchup *c, int (*spent)(void *arg), void *arg);

int stats_catchup_done(const stats_catchup *c);

/* The step's transaction was rolled back: forget what memory learned (the
 * pass resumes from the committed marks). */
void stats_catchup_reset(stats_catchup *c);

/* {"done":bool,"entities_checked":N,"entities_caught_up":N,"chunks":N,"current":"entity"|null,
 *  "current_home":"home"|null} */
json_t *stats_catchup_info(const stats_catchup *c);

#endif
