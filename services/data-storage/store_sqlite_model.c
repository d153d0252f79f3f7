/* store_sqlite_model.c -- see store_sqlite_model.h. */
#include "store_sqlite_model.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ---- per-item fields -------------------------------------------------------- */

static int sqm_has_digit(const char *s, int n) {
    for (int i = 0; i < n; i++)
        if (s[i] >= '0' && s[i] <= '9') return 1;
    return 0;
}

/* The state string: in place when it has no escape, else decoded. 0/-1. */
static int sqm_state(sqm_fields *f, const char *v, size_t vl) {
    if (vl < 2 || v[0] != '"') return 0; /* null (entity removed) or not a string */
    if (!memchr(v, '\\', vl)) {
        f->state = v + 1;
        f->state_len = (int)(vl - 2);
        return 0;
    }
    json_error_t e;
    json_t *j = json_loadb(v, vl, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!json_is_string(j)) {
        json_decref(j);
        return 0;
    }
    size_t n = json_string_length(j);
    f->state_owned = malloc(n + 1);
    if (f->state_owned) {
        memcpy(f->state_owned, json_string_value(j), n + 1);
        f->state = f->state_owned;
        f->state_len = (int)n;
    }
    json_decref(j);
    return f->state_owned ? 0 : -1;
}

/* From the record's fields (record_fields.h): no walk of the record here. */
static int sqm_item(sqm_fields *f, store_item *it) {
    memset(f, 0, sizeof *f);
    if (!it->event_type || strcmp(it->event_type, "state_changed") != 0 || !it->json) return 0;
    f->kind = 1;
    const record_fields *rf = store_item_fields(it);
    if (!rf) return 0;
    size_t state_len, value_len;
    const char *state = record_fields_at(rf, it->json, RF_STATE, &state_len);
    const char *value = record_fields_at(rf, it->json, RF_VALUE, &value_len);
    if (state && sqm_state(f, state, state_len) != 0) return -1;
    if (f->state && value && value[0] != 'n' && sqm_has_digit(f->state, f->state_len)) {
        char num[64];
        size_t n = value_len < sizeof num - 1 ? value_len : sizeof num - 1;
        memcpy(num, value, n);
        num[n] = '\0';
        char *end;
        f->value = strtod(num, &end);
        f->has_value = end != num;
    }
    return 0;
}

int sqm_prepare(store_sqlite_model *m, store_batch *b) {
    m->n = b->nitems;
    m->f = b->nitems ? calloc(b->nitems, sizeof *m->f) : NULL;
    if (b->nitems && !m->f) return -1;
    for (size_t i = 0; i < b->nitems; i++)
        if (b->items[i].status == STORE_ITEM_PENDING && sqm_item(&m->f[i], &b->items[i]) != 0) return -1;
    return 0;
}

void sqm_bind(const store_sqlite_model *m, size_t i, sqlite3_stmt *st, int col) {
    const sqm_fields *f = &m->f[i];
    if (f->kind) sqlite3_bind_int(st, col, 1);
    else sqlite3_bind_null(st, col);
    if (f->state) sqlite3_bind_text(st, col + 1, f->state, f->state_len, SQLITE_STATIC);
    else sqlite3_bind_null(st, col + 1);
    if (f->has_value) sqlite3_bind_double(st, col + 2, f->value);
    else sqlite3_bind_null(st, col + 2);
}

void sqm_free(store_sqlite_model *m) {
    for (size_t i = 0; i < m->n; i++) free(m->f[i].state_owned);
    free(m->f);
    memset(m, 0, sizeof *m);
}

/* ---- entities, once per entity per batch --------------------------------------- */

typedef struct sqm_ref {
    const store_item *it;
    const sqm_fields *f;
} sqm_ref;

static int sqm_cmp(const void *a, const void *b) {
    const sqm_ref *x = a, *y = b;
    int c = strcmp(x->it->entity_id, y->it->entity_id);
    if (c) return c;
    if (x->it->time_us != y->it->time_us) return x->it->time_us < y->it->time_us ? -1 : 1;
    return x->it->index < y->it->index ? -1 : x->it->index > y->it->index;
}

static int sqm_same_state(const sqm_fields *a, const sqm_fields *b) {
    if (!a->state || !b->state) return !a->state && !b->state;
    return a->state_len == b->state_len && memcmp(a->state, b->state, (size_t)a->state_len) == 0;
}

/* One group: refs [lo, hi) of one entity, in time order. */
static int sqm_upsert_group(const sqm_ref *r, size_t lo, size_t hi, sqlite3_stmt *st) {
    const sqm_ref *last_state = NULL;
    size_t first_state = hi, run = hi;
    int numeric = 0;
    int64_t last_time = r[lo].it->time_us;
    for (size_t i = lo; i < hi; i++) {
        if (r[i].it->time_us > last_time) last_time = r[i].it->time_us;
        if (!r[i].f->kind) continue;
        if (first_state == hi) first_state = i;
        if (!last_state || !sqm_same_state(last_state->f, r[i].f)) run = i; /* a new run of equal states */
        last_state = &r[i];
        numeric |= r[i].f->has_value;
    }
    const store_item *it = r[lo].it;
    sqlite3_bind_text(st, 1, it->entity_id, -1, SQLITE_STATIC);
    if (it->domain[0]) sqlite3_bind_text(st, 2, it->domain, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, 2);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)(hi - lo));
    sqlite3_bind_int64(st, 4, last_time);
    if (last_state) {
        if (last_state->f->state)
            sqlite3_bind_text(st, 5, last_state->f->state, last_state->f->state_len, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 5);
        sqlite3_bind_int64(st, 6, last_state->it->time_us);
        sqlite3_bind_int64(st, 7, r[run].it->time_us);
        sqlite3_bind_int(st, 8, run == first_state);
    } else {
        for (int c = 5; c <= 7; c++) sqlite3_bind_null(st, c);
        sqlite3_bind_int(st, 8, 0);
    }
    sqlite3_bind_int(st, 9, numeric);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int sqm_update_entities(const store_sqlite_model *m, const store_batch *b, sqlite3 *db, sqlite3_stmt *upsert) {
    (void)db;
    size_t n = 0;
    sqm_ref *r = b->nitems ? malloc(b->nitems * sizeof *r) : NULL;
    if (b->nitems && !r) return -1;
    for (size_t i = 0; i < b->nitems; i++)
        if (b->items[i].status == STORE_ITEM_STORED && b->items[i].entity_id && b->items[i].entity_id[0])
            r[n++] = (sqm_ref){&b->items[i], &m->f[i]};
    if (n > 1) qsort(r, n, sizeof *r, sqm_cmp);
    int rc = 0;
    for (size_t lo = 0, hi; lo < n && rc == 0; lo = hi) {
        for (hi = lo + 1; hi < n && strcmp(r[hi].it->entity_id, r[lo].it->entity_id) == 0; hi++) {
        }
        sqlite3_bind_text(upsert, 10, b->home_id[0] ? b->home_id : EVENT_HOME_DEFAULT, -1, SQLITE_STATIC);
        rc = sqm_upsert_group(r, lo, hi, upsert);
    }
    free(r);
    return rc;
}
