/* influx_summary.c -- see influx_summary.h (why a summary, and why it is
 * exact across restarts and retries) and docs/INFLUX_READS.md. */
#include "influx_summary.h"
#include "influx_points.h"
#include "json_text.h"
#include "lineproto.h"

#include <stdlib.h>
#include <string.h>

/* ---- the table ------------------------------------------------------------ */

static void ie_free(influx_entity *e) {
    free(e->id);
    free(e->home);
    free(e->domain);
    free(e->state);
}

void influx_entities_clear(influx_entities *t) {
    for (size_t i = 0; i < t->n; i++) ie_free(&t->e[i]);
    free(t->e);
    *t = (influx_entities){0};
}

void influx_entities_move(influx_entities *dst, influx_entities *src) {
    influx_entities_clear(dst);
    *dst = *src;
    *src = (influx_entities){0};
}

const char *influx_entity_home(const influx_entity *e) { return e->home ? e->home : ""; }

/* Index of (id, home), or where it would go (*found 0); home NULL: the
 * default home, which sorts first among id's entries. */
static size_t ie_search(const influx_entities *t, const char *id, const char *home, int *found) {
    size_t lo = 0, hi = t->n;
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->e[mid].id, id);
        if (c == 0) c = strcmp(influx_entity_home(&t->e[mid]), home ? home : "");
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

influx_entity *influx_entities_find(const influx_entities *t, const char *id, const char *home) {
    int found;
    if (!id) return NULL;
    size_t i = ie_search(t, id, home, &found);
    return found ? &t->e[i] : NULL;
}

const influx_entity *influx_entities_first(const influx_entities *t, const char *id) {
    int found;
    if (!id) return NULL;
    size_t i = ie_search(t, id, "", &found); /* "" sorts before every home: the first of id's entries */
    return i < t->n && strcmp(t->e[i].id, id) == 0 ? &t->e[i] : NULL;
}

influx_entity *influx_entities_get(influx_entities *t, const char *id, const char *home, const char *domain) {
    int found;
    if (home && !*home) home = NULL;
    size_t at = ie_search(t, id, home, &found);
    if (found) return &t->e[at];
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        influx_entity *p = realloc(t->e, cap * sizeof *p);
        if (!p) return NULL;
        t->e = p;
        t->cap = cap;
    }
    influx_entity e = {.id = strdup(id), .domain = domain && *domain ? strdup(domain) : NULL,
                       .home = home ? strdup(home) : NULL};
    if (!e.id || (domain && *domain && !e.domain) || (home && !e.home)) {
        ie_free(&e);
        return NULL;
    }
    memmove(&t->e[at + 1], &t->e[at], (t->n - at) * sizeof *t->e);
    t->e[at] = e;
    t->n++;
    return &t->e[at];
}

/* ---- the homes' totals (issue 18) ---------------------------------------------- */

void influx_homes_clear(influx_homes *t) {
    for (size_t i = 0; i < t->n; i++) free(t->h[i].home);
    free(t->h);
    *t = (influx_homes){0};
}

void influx_homes_move(influx_homes *dst, influx_homes *src) {
    influx_homes_clear(dst);
    *dst = *src;
    *src = (influx_homes){0};
}

/* Index of home, or where it would go (*found 0); "" (the default home) sorts first. */
static size_t ih_search(const influx_homes *t, const char *home, int *found) {
    size_t lo = 0, hi = t->n;
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->h[mid].home ? t->h[mid].home : "", home);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

const influx_home *influx_homes_find(const influx_homes *t, const char *home) {
    int found;
    size_t i = ih_search(t, home ? home : "", &found);
    return found ? &t->h[i] : NULL;
}

influx_home *influx_homes_get(influx_homes *t, const char *home) {
    int found;
    if (!home) home = "";
    size_t at = ih_search(t, home, &found);
    if (found) return &t->h[at];
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        influx_home *p = realloc(t->h, cap * sizeof *p);
        if (!p) return NULL;
        t->h = p;
        t->cap = cap;
    }
    influx_home h = {.home = *home ? strdup(home) : NULL};
    if (*home && !h.home) return NULL;
    memmove(&t->h[at + 1], &t->h[at], (t->n - at) * sizeof *t->h);
    t->h[at] = h;
    t->n++;
    return &t->h[at];
}

int influx_homes_add(influx_homes *t, const char *home, long long events, long long dead, int64_t seq) {
    influx_home *h = influx_homes_get(t, home);
    if (!h) return -1;
    if (!seq || seq > h->seq) h->events += events;
    h->dead += dead;
    h->dirty = 1;
    return 0;
}

/* ---- applying one event ---------------------------------------------------- */

/* The record's state (a string, else NULL) and whether its value is a number:
 * from the tree when the item has one (read back, influx_record_item), else
 * from its text (scratch holds the state). */
static const char *ie_item_state(const store_item *it, sbuf *scratch, int *numeric) {
    *numeric = 0;
    if (it->record) {
        *numeric = json_is_number(json_object_get(it->record, "value"));
        return json_string_value(json_object_get(it->record, "state"));
    }
    if (!it->fields.noted) return NULL;
    size_t sn, vn;
    const char *sv = record_fields_at(&it->fields, it->json, RF_STATE, &sn);
    const char *vv = record_fields_at(&it->fields, it->json, RF_VALUE, &vn);
    double d;
    *numeric = influx_points_text_number(vv, vn, &d) == 0;
    return influx_points_text_string(scratch, sv, sn);
}

static int ie_apply_state(influx_entity *e, const char *st, int numeric, int64_t ns) {
    if (numeric) {
        if (strpbrk(st, "0123456789")) e->numeric = 1;
        else e->mixed = 1;
    }
    if (e->has_state && ns < e->state_ns) return 1; /* older than the newest state: history only */
    if (!e->has_state || strcmp(e->state, st) != 0) {
        char *copy = strdup(st);
        if (!copy) return -1;
        free(e->state);
        e->state = copy;
        e->changed_ns = ns;
        e->has_changed = 1;
    }
    e->has_state = 1;
    e->state_ns = ns;
    return 1;
}

int influx_item_fact(const store_item *it, sbuf *scratch, influx_fact *f) {
    *f = (influx_fact){.time_us = it->time_us, .entity_id = it->entity_id, .domain = it->domain};
    f->state_changed = it->event_type && strcmp(it->event_type, "state_changed") == 0;
    if (!f->state_changed || !it->entity_id || !*it->entity_id) return 0;
    f->state = ie_item_state(it, scratch, &f->numeric);
    return !f->state && sbuf_failed(scratch) ? -1 : 0;
}

int influx_entities_apply_fact(influx_entities *t, const influx_fact *f, const char *home, int64_t seq) {
    if (!f->entity_id || !*f->entity_id) return 0; /* no entity */
    influx_entity *e = influx_entities_get(t, f->entity_id, event_home_is_default(home) ? NULL : home, f->domain);
    if (!e) return -1;
    if (seq && seq <= e->seq) return 0; /* already in the snapshot this entity was read from */
    int64_t ns = f->time_us * 1000;
    e->count++;
    e->dirty = 1;
    if (ns > e->last_ns) e->last_ns = ns;
    if (!f->state_changed || !f->state) return 1;
    return ie_apply_state(e, f->state, f->numeric, ns);
}

int influx_entities_apply(influx_entities *t, const store_item *it, const char *home, int64_t seq) {
    sbuf scratch;
    sbuf_init(&scratch);
    influx_fact f;
    int rc = influx_item_fact(it, &scratch, &f);
    if (rc == 0) rc = influx_entities_apply_fact(t, &f, home, seq);
    sbuf_free(&scratch);
    return rc;
}

/* store.c's rule: the record's domain, else the entity id's prefix. */
static void ie_item_domain(store_item *it) {
    const char *src = json_string_value(json_object_get(it->record, "domain"));
    size_t n = src ? strlen(src) : 0;
    if (!src && it->entity_id) {
        const char *dot = strchr(it->entity_id, '.');
        if (dot) src = it->entity_id, n = (size_t)(dot - it->entity_id);
    }
    if (!src || n >= sizeof it->domain) n = 0;
    if (n) memcpy(it->domain, src, n);
    it->domain[n] = '\0';
}

int influx_record_item(const char *record, store_item *it, const char **home, json_t **hold) {
    memset(it, 0, sizeof *it);
    *home = NULL;
    *hold = json_loads(record, 0, NULL);
    const char *tf = json_string_value(json_object_get(*hold, "time_fired"));
    if (!json_is_object(*hold) || !tf || event_time_parse(tf, &it->time_us) != 0) {
        json_decref(*hold);
        *hold = NULL;
        return -1;
    }
    it->record = *hold;
    it->entity_id = json_string_value(json_object_get(*hold, "entity_id"));
    it->event_type = json_string_value(json_object_get(*hold, "event_type"));
    *home = json_string_value(json_object_get(*hold, STORE_HOME_KEY));
    it->status = STORE_ITEM_STORED;
    ie_item_domain(it);
    return 0;
}

/* ---- the snapshot ---------------------------------------------------------- */

static void ie_line(sbuf *b, const influx_entity *e, const influx_totals *tot) {
    lineproto_measurement(b, INFLUX_SUMMARY_MEASUREMENT);
    sbuf_adds(b, ",entity_id=");
    lineproto_tag(b, e->id);
    if (e->home) {
        sbuf_adds(b, "," INFLUX_HOME_TAG "=");
        lineproto_tag(b, e->home);
    }
    sbuf_adds(b, " domain=");
    lineproto_field_string(b, e->domain ? e->domain : "", e->domain ? strlen(e->domain) : 0);
    sbuf_printf(b, ",count=%lldi,last_ns=%lldi", e->count, (long long)e->last_ns);
    if (e->has_state) {
        sbuf_adds(b, ",state=");
        lineproto_field_string(b, e->state, strlen(e->state));
        sbuf_printf(b, ",state_ns=%lldi", (long long)e->state_ns);
    }
    if (e->has_changed) sbuf_printf(b, ",changed_ns=%lldi", (long long)e->changed_ns);
    sbuf_printf(b, ",numeric=%s,mixed=%s,seq=%lldi %lld\n", e->numeric ? "true" : "false", e->mixed ? "true" : "false",
                (long long)tot->seq, (long long)tot->snap_ns);
}

void influx_summary_lines(sbuf *b, influx_entities *t, influx_homes *h, int all, const influx_totals *tot) {
    for (size_t i = 0; i < t->n; i++) {
        influx_entity *e = &t->e[i];
        if (!all && !e->dirty) continue;
        e->dirty = 0;
        ie_line(b, e, tot);
    }
    for (size_t i = 0; i < h->n; i++) { /* before the totals: they stand for a snapshot that landed */
        influx_home *o = &h->h[i];
        if (!all && !o->dirty) continue;
        o->dirty = 0;
        lineproto_measurement(b, INFLUX_HOMES_MEASUREMENT);
        if (o->home) {
            sbuf_adds(b, "," INFLUX_HOME_TAG "=");
            lineproto_tag(b, o->home);
        }
        sbuf_printf(b, " events=%lldi,dead=%lldi,seq=%lldi %lld\n", o->events, o->dead, (long long)tot->seq,
                    (long long)tot->snap_ns);
    }
    lineproto_measurement(b, INFLUX_TOTALS_MEASUREMENT);
    sbuf_printf(b, " seq=%lldi,events=%lldi,dead=%lldi,dead_ns=%lldi %lld\n", (long long)tot->seq,
                (long long)tot->events, (long long)tot->dead, (long long)tot->dead_ns, (long long)tot->snap_ns);
}

static int ie_col(json_t *cols, const char *name) {
    json_t *c;
    size_t i;
    json_array_foreach(cols, i, c) if (json_is_string(c) && strcmp(json_string_value(c), name) == 0) return (int)i;
    return -1;
}

static json_t *ie_val(json_t *cols, json_t *vals, const char *name) {
    int i = ie_col(cols, name);
    return i < 0 ? NULL : json_array_get(vals, (size_t)i);
}

static int64_t ie_int(json_t *cols, json_t *vals, const char *name, int *ok) {
    json_t *v = ie_val(cols, vals, name);
    if (ok) *ok = json_is_number(v);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : json_is_real(v) ? (int64_t)json_real_value(v) : 0;
}

int influx_summary_row(influx_entities *t, json_t *tags, json_t *cols, json_t *vals) {
    const char *id = json_string_value(json_object_get(tags, "entity_id"));
    if (!id || !*id) return 0;
    const char *dom = json_string_value(ie_val(cols, vals, "domain"));
    influx_entity *e = influx_entities_get(t, id, json_string_value(json_object_get(tags, INFLUX_HOME_TAG)), dom);
    if (!e) return -1;
    const char *st = json_string_value(ie_val(cols, vals, "state"));
    e->count = (long long)ie_int(cols, vals, "count", NULL);
    e->last_ns = ie_int(cols, vals, "last_ns", NULL);
    e->seq = ie_int(cols, vals, "seq", NULL);
    e->numeric = json_is_true(ie_val(cols, vals, "numeric"));
    json_t *mixed = ie_val(cols, vals, "mixed");
    e->mixed = json_is_boolean(mixed) ? json_is_true(mixed) : 1; /* unknown: as if mixed (the exact query) */
    e->changed_ns = ie_int(cols, vals, "changed_ns", &e->has_changed);
    if (st) {
        char *copy = strdup(st);
        if (!copy) return -1;
        free(e->state);
        e->state = copy;
        e->has_state = 1;
        e->state_ns = ie_int(cols, vals, "state_ns", NULL);
    }
    return 0;
}

int influx_homes_row(influx_homes *t, json_t *tags, json_t *cols, json_t *vals) {
    influx_home *h = influx_homes_get(t, json_string_value(json_object_get(tags, INFLUX_HOME_TAG)));
    if (!h) return -1;
    h->events = (long long)ie_int(cols, vals, "events", NULL);
    h->dead = (long long)ie_int(cols, vals, "dead", NULL);
    h->seq = ie_int(cols, vals, "seq", NULL);
    return 0;
}

void influx_totals_row(influx_totals *tot, json_t *cols, json_t *vals) {
    tot->snap_ns = ie_int(cols, vals, "time", NULL);
    tot->seq = ie_int(cols, vals, "seq", NULL);
    tot->events = ie_int(cols, vals, "events", NULL);
    tot->dead = ie_int(cols, vals, "dead", NULL);
    tot->dead_ns = ie_int(cols, vals, "dead_ns", NULL);
    tot->found = 1;
}

/* ---- the window ------------------------------------------------------------- */

void influx_window_free(influx_window *w) {
    for (size_t i = 0; i < INFLUX_WINDOW_S; i++) {
        free(w->slot[i].by_domain);
        w->slot[i] = (influx_window_slot){.sec = -1};
    }
    for (size_t i = 0; i < w->ndomains; i++) free(w->domains[i]);
    free(w->domains);
    w->domains = NULL;
    w->ndomains = 0;
    w->from_s = 0;
}

void influx_window_reset(influx_window *w, int64_t now_s) {
    influx_window_free(w);
    w->from_s = now_s;
}

static long iw_domain(influx_window *w, const char *d) {
    for (size_t i = 0; i < w->ndomains; i++)
        if (strcmp(w->domains[i], d) == 0) return (long)i;
    char **p = realloc(w->domains, (w->ndomains + 1) * sizeof *p);
    if (!p) return -1;
    w->domains = p;
    if (!(w->domains[w->ndomains] = strdup(d))) return -1;
    return (long)w->ndomains++;
}

int influx_window_add(influx_window *w, int64_t time_us, const char *domain) {
    if (!w->from_s) return 0;
    int64_t s = time_us >= 0 ? time_us / 1000000 : (time_us - 999999) / 1000000;
    influx_window_slot *sl = &w->slot[((s % INFLUX_WINDOW_S) + INFLUX_WINDOW_S) % INFLUX_WINDOW_S];
    if (sl->sec > s) return 0; /* older than what this slot holds: outside any window asked */
    if (sl->sec < s) {
        sl->sec = s;
        sl->total = 0;
        for (size_t i = 0; i < sl->ndom; i++) sl->by_domain[i] = 0;
    }
    long d = iw_domain(w, domain ? domain : "");
    if (d < 0) return -1;
    if ((size_t)d >= sl->ndom) {
        long long *p = realloc(sl->by_domain, ((size_t)d + 1) * sizeof *p);
        if (!p) return -1;
        for (size_t i = sl->ndom; i <= (size_t)d; i++) p[i] = 0;
        sl->by_domain = p;
        sl->ndom = (size_t)d + 1;
    }
    sl->total++;
    sl->by_domain[d]++;
    return 0;
}

long long influx_window_count(const influx_window *w, int64_t s) {
    const influx_window_slot *sl = &w->slot[((s % INFLUX_WINDOW_S) + INFLUX_WINDOW_S) % INFLUX_WINDOW_S];
    return sl->sec == s ? sl->total : 0;
}

void influx_window_domains(const influx_window *w, int64_t from_s, int64_t to_s, sbuf *b) {
    int first = 1;
    for (size_t d = 0; d < w->ndomains; d++) {
        long long n = 0;
        for (int64_t s = from_s; s < to_s; s++) {
            const influx_window_slot *sl = &w->slot[((s % INFLUX_WINDOW_S) + INFLUX_WINDOW_S) % INFLUX_WINDOW_S];
            if (sl->sec == s && d < sl->ndom) n += sl->by_domain[d];
        }
        if (!n) continue;
        if (!first) sbuf_addc(b, ',');
        first = 0;
        json_text_string(b, w->domains[d], strlen(w->domains[d]));
        sbuf_printf(b, ":%lld", n);
    }
}
