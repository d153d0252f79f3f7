/* record_fields.h -- where in a stored record's text the top-level members
 * the SQLite writer reads are: the dashboard columns (state, value), the
 * statistics' inputs (event_type, entity_id, state_class, attributes) and the
 * registry context (area_id ... entity_category).
 *
 * Why: three readers (store_sqlite_model.c, store_sqlite_registry.c,
 * stats_sqlite.c) each walked every record's ~30 members again, skipping the
 * nested attributes each time -- a third of data-storage's JSON work per
 * event. The text path (store_text.c) notes the spans while it writes the
 * record, so no reader walks it again; a record built otherwise (the
 * jansson path) is walked once here.
 *
 * Ownership: plain offsets into the record's text (valid while that text is;
 * store_batch_set_home appends after every member, so they stay valid). */
#ifndef HOMEIQ_RECORD_FIELDS_H
#define HOMEIQ_RECORD_FIELDS_H

#include <stddef.h>
#include <stdint.h>

enum {
    RF_EVENT_TYPE, RF_ENTITY_ID, RF_STATE, RF_VALUE, RF_STATE_CLASS, RF_ATTRIBUTES,
    /* the registry context, in record order (docs/EVENTS.md section 3) */
    RF_AREA_ID, RF_AREA, RF_FLOOR_ID, RF_FLOOR, RF_DEVICE_ID, RF_DEVICE, RF_MANUFACTURER, RF_MODEL, RF_LABELS,
    RF_PLATFORM, RF_CATEGORY,
    RF_N
};
#define RF_CONTEXT_FIRST RF_AREA_ID
#define RF_CONTEXT_N (RF_N - RF_AREA_ID)

typedef struct record_fields {
    uint32_t off[RF_N];   /* the member's value text: json + off[k] */
    uint32_t len[RF_N];   /* its length; 0 = the member is absent */
    int noted;            /* 1 once filled (by store_text.c or record_fields_scan) */
} record_fields;

/* RF_* of a top-level key (its raw text, without quotes), or -1. */
int record_fields_key(const char *k, size_t n);
/* The key's name (RF_* -> "area_id"...). */
const char *record_fields_name(int field);
/* One walk of a record's validated text. 0, or -1 (not an object). A member
 * seen twice keeps its last value. */
int record_fields_scan(record_fields *f, const char *json, size_t len);
/* Notes member `field` at [off, off+len). */
static inline void record_fields_note(record_fields *f, int field, size_t off, size_t len) {
    f->off[field] = (uint32_t)off;
    f->len[field] = (uint32_t)len;
}
/* The value's text, NULL when absent. */
static inline const char *record_fields_at(const record_fields *f, const char *json, int field, size_t *len) {
    *len = f->len[field];
    return f->len[field] ? json + f->off[field] : NULL;
}

#endif
