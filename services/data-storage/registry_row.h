/* registry_row.h -- the text of the entity registry's context and of one
 * GET /api/v1/registry answer row, the same for every backend that keeps them
 * (SQLite's registry table, ClickHouse's newest record per entity).
 *
 * Why shared: the context text is what both backends compare to find when an
 * entity's context changed ("since"; ClickHouse hashes it), and the answer row
 * is the API's shape: written once, they cannot drift apart.
 *
 * Ownership: appends to the caller's sbuf; reads record text it does not keep. */
#ifndef HOMEIQ_REGISTRY_ROW_H
#define HOMEIQ_REGISTRY_ROW_H

#include "record_fields.h"
#include "sbuf.h"

#include <stddef.h>
#include <stdint.h>

/* Appends the context object of a record: its eleven context members in
 * record order (docs/EVENTS.md section 3), an absent one null (labels []). */
void registry_context(sbuf *o, const record_fields *rf, const char *json);

/* Appends one answer row: {"entity_id","since","last_seen"[,"home_id" when
 * not the default home], then the members of `context` (an object's text as
 * registry_context wrote it; NULL or "{}" = none)}. */
void registry_row(sbuf *o, const char *entity_id, int64_t since_us, int64_t seen_us, const char *home,
                  const char *context, size_t context_len);

#endif
