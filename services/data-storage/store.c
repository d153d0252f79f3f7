/* store.c -- what every backend shares: choosing the backend, turning a
 * request's events into a prepared batch (validation, identity, exact text),
 * query-parameter validation, and result rows. Kept here so SQLite and
 * InfluxDB accept, reject and answer exactly alike. */
#include "store.h"
#include "store_influx.h"
#include "store_clickhouse.h"
#include "json_text.h"
#include "store_sqlite.h"
#include "config.h"
#include "httpd.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_open(struct event_base *base, store **out) {
    const char *backend = config_text(NULL, "STORAGE_BACKEND");
    if (strcmp(backend, "sqlite") == 0) return store_sqlite_open(base, out);
    if (strcmp(backend, "influxdb") == 0) return store_influx_open(base, out);
    if (strcmp(backend, "clickhouse") == 0) return store_clickhouse_open(base, out);
    log_error("STORAGE_BACKEND=%s: expected sqlite, influxdb or clickhouse", backend);
    return -1;
}

void store_close(store *s) {
    if (s) s->ops->close(s);
}

/* ---- batches ---------------------------------------------------------- */

static char *store_dump(const json_t *j) {
    sbuf b;
    sbuf_init(&b);
    json_text_dump(j, &b);
    return sbuf_take(&b, NULL);
}

int store_batch_add_dead(store_batch *b, const char *source, const char *error, const char *raw) {
    if (b->ndead == b->dead_cap) {
        size_t cap = b->dead_cap ? b->dead_cap * 2 : 8;
        store_dead_letter *d = realloc(b->dead, cap * sizeof *d);
        if (!d) return -1;
        b->dead = d;
        b->dead_cap = cap;
    }
    store_dead_letter *d = &b->dead[b->ndead];
    d->source = strdup(source);
    d->error = strdup(error);
    d->raw = strdup(raw);
    if (!d->source || !d->error || !d->raw) {
        free(d->source);
        free(d->error);
        free(d->raw);
        return -1;
    }
    b->ndead++;
    return 0;
}

static int store_item_reject(store_batch *b, store_item *it, const json_t *raw, const char *why) {
    it->status = STORE_ITEM_REJECTED;
    it->error = strdup(why);
    char *text = store_dump(raw);
    int rc = (it->error && text) ? store_batch_add_dead(b, "data-storage", why, text) : -1;
    free(text);
    return rc;
}

static void store_item_domain(store_item *it) {
    const json_t *d = json_object_get(it->record, "domain");
    const char *src = json_is_string(d) ? json_string_value(d) : NULL;
    size_t n = 0;
    if (src) {
        n = strlen(src);
    } else if (it->entity_id) {
        const char *dot = strchr(it->entity_id, '.');
        if (dot) {
            src = it->entity_id;
            n = (size_t)(dot - src);
        }
    }
    if (!src || n >= sizeof it->domain) n = 0; /* absurdly long domain: not indexed */
    if (n) memcpy(it->domain, src, n);
    it->domain[n] = '\0';
}

static int store_item_prepare(store_batch *b, store_item *it, json_t *ev) {
    char err[256];
    if (!json_is_object(ev)) return store_item_reject(b, it, ev, "event is not a JSON object");
    if (event_record_check(ev, err, sizeof err) != 0) return store_item_reject(b, it, ev, err);
    /* event_id and stored_at belong to storage: a record read back and posted
     * again (backup/restore) must not carry the old ones twice. */
    json_object_del(ev, "event_id");
    json_object_del(ev, "stored_at");
    json_object_del(ev, STORE_HOME_KEY); /* the request's home is the home (store_batch_set_home) */
    const char *tf = json_string_value(json_object_get(ev, "time_fired"));
    if (event_identity(ev, it->event_id) != 0 || !tf || event_time_parse(tf, &it->time_us) != 0)
        return store_item_reject(b, it, ev, "time_fired is not a valid RFC 3339 time");
    it->record = ev;
    const json_t *eid = json_object_get(ev, "entity_id");
    it->entity_id = json_is_string(eid) ? json_string_value(eid) : NULL;
    it->event_type = json_string_value(json_object_get(ev, "event_type"));
    store_item_domain(it);
    sbuf sb;
    sbuf_init(&sb);
    json_text_dump(ev, &sb);
    it->json = sbuf_take(&sb, &it->json_len);
    return it->json ? 0 : -1;
}

static int store_batch_add_given_dead(store_batch *b, json_t *dl) {
    const json_t *err = json_object_get(dl, "error");
    const json_t *src = json_object_get(dl, "source");
    if (!json_is_object(dl) || !json_is_string(err)) {
        char *text = store_dump(dl);
        int rc = text ? store_batch_add_dead(b, "data-storage",
                                             "invalid dead_letters entry (needs an \"error\" string)", text)
                      : -1;
        free(text);
        return rc;
    }
    const json_t *ev = json_object_get(dl, "event");
    char *text = ev ? store_dump(ev) : strdup("null");
    int rc = text ? store_batch_add_dead(b, json_is_string(src) ? json_string_value(src) : "unknown",
                                         json_string_value(err), text)
                  : -1;
    free(text);
    return rc;
}

int store_batch_prepare(store_batch *b, json_t *events, json_t *dead_letters) {
    memset(b, 0, sizeof *b);
    size_t n = json_array_size(events);
    if (n) {
        b->items = calloc(n, sizeof *b->items);
        if (!b->items) return -1;
    }
    b->nitems = n;
    for (size_t i = 0; i < n; i++) {
        b->items[i].index = (int)i;
        if (store_item_prepare(b, &b->items[i], json_array_get(events, i)) != 0) return -1;
    }
    return store_batch_add_dead_letters(b, dead_letters);
}

int store_batch_add_dead_letters(store_batch *b, json_t *dead_letters) {
    for (size_t i = 0; i < json_array_size(dead_letters); i++)
        if (store_batch_add_given_dead(b, json_array_get(dead_letters, i)) != 0) return -1;
    return 0;
}

/* The item's text with "home_id" appended, in one allocation with copies of
 * event_type and entity_id after it (store_text_prepare()'s layout: those may
 * point into the old block, which is freed). 0/-1. */
static int store_item_set_home(store_item *it, const char *home) {
    size_t len = it->json_len;
    while (len && it->json[len - 1] != '}') len--;
    if (len < 2) return 0;
    size_t hl = strlen(home), tl = strlen(it->event_type), el = it->entity_id ? strlen(it->entity_id) : 0;
    const char *sep = len > 2 ? ",\"" STORE_HOME_KEY "\":\"" : "\"" STORE_HOME_KEY "\":\"";
    size_t sl = strlen(sep), jl = len - 1 + sl + hl + 2;
    char *mem = malloc(jl + 1 + tl + 1 + (it->entity_id ? el + 1 : 0));
    if (!mem || event_identity_home(home, it->event_id, it->event_id) != 0) {
        free(mem);
        return -1;
    }
    char *p = mem;
    memcpy(p, it->json, len - 1), p += len - 1;
    memcpy(p, sep, sl), p += sl;
    memcpy(p, home, hl), p += hl; /* [a-z0-9_-]: nothing to escape */
    memcpy(p, "\"}", 3), p += 3;
    memcpy(p, it->event_type, tl + 1);
    it->event_type = p, p += tl + 1;
    if (it->entity_id) {
        memcpy(p, it->entity_id, el + 1);
        it->entity_id = p;
    }
    free(it->json);
    it->json = mem;
    it->json_len = jl;
    return 0;
}

const record_fields *store_item_fields(store_item *it) {
    if (it->fields.noted) return &it->fields;
    if (!it->json || record_fields_scan(&it->fields, it->json, it->json_len) != 0) return NULL;
    return &it->fields;
}

int store_batch_set_home(store_batch *b, const char *home) {
    if (event_home_is_default(home)) return 0;
    snprintf(b->home_id, sizeof b->home_id, "%s", home);
    for (size_t i = 0; i < b->nitems; i++) {
        store_item *it = &b->items[i];
        if (it->status == STORE_ITEM_REJECTED || !it->json) continue;
        if (store_item_set_home(it, home) != 0) return -1;
    }
    return 0;
}

void store_batch_free(store_batch *b) {
    for (size_t i = 0; i < b->nitems; i++) {
        free(b->items[i].error);
        free(b->items[i].json);
    }
    free(b->items);
    for (size_t i = 0; i < b->ndead; i++) {
        free(b->dead[i].source);
        free(b->dead[i].error);
        free(b->dead[i].raw);
    }
    free(b->dead);
    memset(b, 0, sizeof *b);
}

/* ---- query parameters ------------------------------------------------- */

void store_filter_init(store_filter *f) {
    memset(f, 0, sizeof *f);
    f->limit = 100;
}

int store_parse_long(const char *s, long min, long max, long *out) {
    long long v;
    if (httpd_param_long(s, min, max, &v) != 0) return -1;
    *out = (long)v;
    return 0;
}

static int store_filter_string(const char **dst, const char *key, const char *value, char *err, size_t errlen) {
    if (!*value || strlen(value) > 255) {
        snprintf(err, errlen, "%s: must be 1 to 255 characters", key);
        return -1;
    }
    *dst = value;
    return 0;
}

/* HA's registry ids: area, floor and label ids are slugs (lowercase letters, digits, _),
 * device ids 32 hex digits, platforms integration domains; '-' is let through for
 * ids set by hand. Anything else cannot match and gets a 400 naming the parameter. */
static int store_filter_registry_id(const char **dst, const char *key, const char *value, char *err, size_t errlen) {
    size_t n = strlen(value);
    int ok = n > 0 && n <= 128;
    for (const char *p = value; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-';
    if (ok) {
        *dst = value;
        return 0;
    }
    snprintf(err, errlen, "%s: must be an HA %s id (1 to 128 of a-z, 0-9, _ and -), e.g. %s=%s", key, key, key,
             !strcmp(key, "device") ? "8f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e" : !strcmp(key, "platform") ? "zha"
             : !strcmp(key, "floor") ? "ground_floor" : !strcmp(key, "label") ? "battery" : "kitchen");
    return -1;
}

int store_filter_set(store_filter *f, const char *key, const char *value, char *err, size_t errlen) {
    if (strcmp(key, "limit") == 0) {
        if (store_parse_long(value, 1, STORE_MAX_LIMIT, &f->limit) == 0) return 0;
        snprintf(err, errlen, "limit: must be an integer from 1 to %d", STORE_MAX_LIMIT);
        return -1;
    }
    if (strcmp(key, "offset") == 0) {
        if (store_parse_long(value, 0, 1000000000L, &f->offset) == 0) return 0;
        snprintf(err, errlen, "offset: must be an integer from 0 to 1000000000");
        return -1;
    }
    if (strcmp(key, "start") == 0 || strcmp(key, "end") == 0) {
        int is_start = key[0] == 's';
        int64_t us;
        if (event_time_parse(value, &us) != 0) {
            snprintf(err, errlen, "%s: must be an RFC 3339 time such as 2025-06-14T08:33:20Z", key);
            return -1;
        }
        if (is_start) f->start_us = us, f->has_start = 1;
        else f->end_us = us, f->has_end = 1;
        return 0;
    }
    if (strcmp(key, "area") == 0) return store_filter_registry_id(&f->area, key, value, err, errlen);
    if (strcmp(key, "floor") == 0) return store_filter_registry_id(&f->floor, key, value, err, errlen);
    if (strcmp(key, "device") == 0) return store_filter_registry_id(&f->device, key, value, err, errlen);
    if (strcmp(key, "label") == 0) return store_filter_registry_id(&f->label, key, value, err, errlen);
    if (strcmp(key, "platform") == 0) return store_filter_registry_id(&f->platform, key, value, err, errlen);
    if (strcmp(key, "entity_id") == 0) return store_filter_string(&f->entity_id, key, value, err, errlen);
    if (strcmp(key, "domain") == 0) return store_filter_string(&f->domain, key, value, err, errlen);
    if (strcmp(key, "event_type") == 0) return store_filter_string(&f->event_type, key, value, err, errlen);
    if (strcmp(key, "home") == 0) {
        char why[160];
        if (event_home_check(value, why, sizeof why) == 0) {
            f->home_id = value;
            return 0;
        }
        snprintf(err, errlen, "home: %s", why);
        return -1;
    }
    snprintf(err, errlen,
             "%.64s: unknown parameter (known: limit, offset, entity_id, domain, event_type, start, end, area, floor, "
             "device, label, platform, home)",
             key);
    return -1;
}

int store_filter_check(const store_filter *f, char *err, size_t errlen) {
    if (f->has_start && f->has_end && f->start_us > f->end_us) {
        snprintf(err, errlen, "start: must not be after end");
        return -1;
    }
    return 0;
}

/* ---- rows ------------------------------------------------------------- */

int store_rows_add(store_rows *r, char *json) {
    if (!json) return -1;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        char **p = realloc(r->json, cap * sizeof *p);
        if (!p) {
            free(json);
            return -1;
        }
        r->json = p;
        r->cap = cap;
    }
    r->json[r->n++] = json;
    return 0;
}

int store_rows_add_event(store_rows *r, const char *record_json, size_t len, const char *event_id,
                         int64_t stored_at_us) {
    /* The record is an object without event_id/stored_at (stripped on write):
     * append them before its closing brace. */
    while (len && record_json[len - 1] != '}') len--;
    if (len < 2) return -1;
    char at[EVENT_TIME_LEN];
    event_time_format(stored_at_us, at);
    sbuf b;
    sbuf_init(&b);
    sbuf_add(&b, record_json, len - 1);
    sbuf_adds(&b, len > 2 ? ",\"event_id\":\"" : "\"event_id\":\"");
    sbuf_adds(&b, event_id);
    sbuf_adds(&b, "\",\"stored_at\":\"");
    sbuf_adds(&b, at);
    sbuf_add(&b, "\"}", 2);
    return store_rows_add(r, sbuf_take(&b, NULL));
}

int store_rows_add_dead(store_rows *r, long long id, int64_t received_at_us, const char *source, const char *error,
                        const char *raw) {
    char at[EVENT_TIME_LEN];
    event_time_format(received_at_us, at);
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "{\"id\":%lld,\"received_at\":\"%s\",\"source\":", id, at);
    json_text_string(&b, source ? source : "", source ? strlen(source) : 0);
    sbuf_adds(&b, ",\"error\":");
    json_text_string(&b, error ? error : "", error ? strlen(error) : 0);
    sbuf_adds(&b, ",\"event\":");
    sbuf_adds(&b, raw && *raw ? raw : "null");
    sbuf_addc(&b, '}');
    return store_rows_add(r, sbuf_take(&b, NULL));
}

void store_rows_free(store_rows *r) {
    for (size_t i = 0; i < r->n; i++) free(r->json[i]);
    free(r->json);
    memset(r, 0, sizeof *r);
}
