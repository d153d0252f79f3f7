/* store_sqlite_domain.c -- see store_sqlite_domain.h. */
#include "store_sqlite_domain.h"
#include "store_sqlite_home.h"
#include "store_sqlite_identity.h"

#include <stdlib.h>
#include <string.h>

static int sqd_counts(const store_item *it) {
    return it->status == STORE_ITEM_STORED && it->entity_id && it->entity_id[0] && it->domain[0];
}

static int sqd_cmp(const void *a, const void *b) {
    const store_item *x = *(const store_item *const *)a, *y = *(const store_item *const *)b;
    int c = strcmp(x->entity_id, y->entity_id);
    return c ? c : strcmp(x->domain, y->domain);
}

static int sqd_upsert(sqlite3_stmt *up, const store_item *it, int64_t first, int64_t last) {
    sqlite3_bind_text(up, 1, it->domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(up, 2, it->entity_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(up, 4, first);
    sqlite3_bind_int64(up, 5, last);
    int rc = sqlite3_step(up);
    sqlite3_reset(up);
    return rc == SQLITE_DONE ? 0 : -1;
}

int sqd_update(const store_batch *b, sqlite3_stmt *upsert) {
    const store_item **r = b->nitems ? malloc(b->nitems * sizeof *r) : NULL;
    size_t n = 0;
    if (b->nitems && !r) return -1;
    for (size_t i = 0; i < b->nitems; i++)
        if (sqd_counts(&b->items[i])) r[n++] = &b->items[i];
    if (n > 1) qsort(r, n, sizeof *r, sqd_cmp);
    sqlite3_bind_text(upsert, 3, store_sqlite_home_of(b->home_id), -1, SQLITE_STATIC);
    int rc = 0;
    for (size_t lo = 0, hi; lo < n && rc == 0; lo = hi) {
        int64_t first = r[lo]->time_us, last = first;
        for (hi = lo + 1; hi < n && sqd_cmp(&r[hi], &r[lo]) == 0; hi++) {
            if (r[hi]->time_us < first) first = r[hi]->time_us;
            if (r[hi]->time_us > last) last = r[hi]->time_us;
        }
        rc = sqd_upsert(upsert, r[lo], first, last);
    }
    free(r);
    return rc;
}

int sqd_dense(sqlite3 *db, const store_filter *f) {
    if (!f->domain || f->area || f->floor || f->device || f->platform) return 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*), coalesce(sum(event_count), 0), (SELECT coalesce(sum(event_count), 0)"
                           " FROM entities) FROM entities WHERE domain = ?1 AND (?2 IS NULL OR home_id = ?2)",
                           -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, f->domain, -1, SQLITE_STATIC);
    if (f->home_id) sqlite3_bind_text(st, 2, f->home_id, -1, SQLITE_STATIC);
    int dense = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        double k = (double)sqlite3_column_int64(st, 0), in = (double)sqlite3_column_int64(st, 1),
               all = (double)sqlite3_column_int64(st, 2);
        double rows = (double)f->offset + (double)f->limit; /* what the page reads through */
        dense = in > 0 && rows * all / in <= SQD_MERGE_ROW * (rows + k);
    }
    sqlite3_finalize(st);
    return dense;
}

/* Migration 11 frees the old index's pages (freelist), writes the small partial index
 * and event_domains, and sorts the events with an entity by (domain, entity, home) for
 * the fill's GROUP BY (a temporary file of ~60 bytes per event): an eighth is asked. */
int sqd_room(sqlite3 *db) {
    return sqi_room(db, sqi_file_bytes(db) / 8, "migration 11 (domain reads over the entity index)");
}
