/* sim_history.c -- the simulator's recorder: every state change it generates,
 * kept like HA's `states` table (float epoch last_updated/last_changed, state,
 * attributes) and served by history/history_during_period; plus the truth log.
 *
 * Why: a real HA keeps living and recording while no client listens, and a
 * client that was away asks the recorder for what it missed. Testing that
 * needs a peer that (1) records with HA's float times, whose rounding differs
 * from the ISO times it fired, (2) answers with HA's compressed rows and HA's
 * errors, (3) keeps its history across a restart (SIMULATOR_HISTORY_FILE), and
 * (4) writes down every change it generated, heard or not (SIMULATOR_TRUTH_LOG),
 * so a test can compare storage with the truth instead of with what was sent.
 *
 * Rows live in memory per entity (oldest first; attributes shared with the
 * previous row when equal) and are appended to the history file as one JSON
 * line each: {"entity_id","s","a","lu","lc"}. */
#include "sim.h"

#include "event.h"
#include "log.h"
#include "service.h"

#include <stdlib.h>
#include <string.h>

/* ---- recording ------------------------------------------------------------------ */

static int hist_push(sim_entity *e, double lu, double lc, const char *state, const char *attrs)
{
    if (e->nhist == e->caphist) {
        size_t cap = e->caphist ? e->caphist * 2 : 64;
        sim_hrow *p = realloc(e->hist, cap * sizeof *p);
        if (!p) return -1;
        e->hist = p;
        e->caphist = cap;
    }
    sim_hrow *r = &e->hist[e->nhist];
    r->lu = lu;
    r->lc = lc;
    r->state = strdup(state);
    if (e->nhist > 0 && strcmp(e->hist[e->nhist - 1].attrs, attrs) == 0) {
        r->attrs = e->hist[e->nhist - 1].attrs;
        r->owns_attrs = 0;
    } else {
        r->attrs = strdup(attrs);
        r->owns_attrs = 1;
    }
    if (!r->state || !r->attrs) {
        free(r->state);
        if (r->owns_attrs) free(r->attrs);
        return -1;
    }
    e->nhist++;
    return 0;
}

/* Like the recorder's purge: an entity over its share of SIMULATOR_HISTORY_MAX_ROWS loses its
 * oldest quarter (memory stays bounded in long, fast runs such as the benchmarks). */
static void hist_purge(sim *s, sim_entity *e)
{
    size_t cap = s->nentities ? (size_t)(s->history_max_rows / (long long)s->nentities) : 0;
    if (cap < 4 || e->nhist < cap) return;
    size_t drop = e->nhist / 4;
    /* the first kept row may share the attributes of a dropped one (rows share only with the row
     * before, so the sharers are the rows right after it): it takes a copy, they follow it */
    if (!e->hist[drop].owns_attrs) {
        char *old = e->hist[drop].attrs, *copy = strdup(old);
        if (!copy) return;
        for (size_t k = drop; k < e->nhist && e->hist[k].attrs == old; k++) e->hist[k].attrs = copy;
        e->hist[drop].owns_attrs = 1;
    }
    for (size_t k = 0; k < drop; k++) {
        free(e->hist[k].state);
        if (e->hist[k].owns_attrs) free(e->hist[k].attrs);
    }
    memmove(e->hist, e->hist + drop, (e->nhist - drop) * sizeof *e->hist);
    e->nhist -= drop;
    s->history_purged += (long long)drop;
}

void hist_record(sim *s, sim_entity *e)
{
    const sim_snap *n = &e->cur;
    hist_purge(s, e);
    if (hist_push(e, n->luf, n->lcf, n->state, n->attrs_json) != 0) {
        log_error("history: out of memory; row of %s not recorded", e->entity_id);
        return;
    }
    s->history_rows++;
    if (!s->history_file) return;
    char lu[32], lc[32];
    sim_pyfloat(n->luf, lu);
    sim_pyfloat(n->lcf, lc);
    simbuf *b = &s->tmp;
    b->len = 0;
    simbuf_state_head(b, e->entity_id, "s", n->state, "a", n->attrs_json);
    simbuf_printf(b, ",\"lu\":%s,\"lc\":%s}\n", lu, lc);
    fwrite(b->p, 1, b->len, s->history_file);
}

/* ---- HA restart: the recorder survives ------------------------------------------ */

static sim_entity *hist_entity(sim *s, const char *id)
{
    for (size_t i = 0; i < s->nentities; i++)
        if (strcmp(s->entities[i].entity_id, id) == 0) return &s->entities[i];
    return NULL;
}

/* The entity's current state becomes its newest recorded row (HA restores it). */
static void hist_restore(sim *s, sim_entity *e)
{
    const sim_hrow *r = &e->hist[e->nhist - 1];
    json_t *attrs = json_loads(r->attrs, 0, NULL);
    if (!attrs) return;
    sim_snap *sn = &e->cur;
    json_decref(sn->attrs);
    free(sn->attrs_json);
    sn->attrs = attrs;
    sn->attrs_json = strdup(r->attrs);
    snprintf(sn->state, sizeof sn->state, "%s", r->state);
    sn->luf = r->lu;
    sn->lcf = r->lc;
    sn->lu = sim_py_us(r->lu);
    sn->lc = sim_py_us(r->lc);
    sim_ulid(sn->lu, sn->ctx);
    sn->parent[0] = '\0';
    sn->has_user = 0;
    if (e->numeric) e->value = strtod(r->state, NULL);
    house_rebuild_state(s, e);
    if (sn->lu > s->last_ts) s->last_ts = sn->lu;
}

int hist_load(sim *s, const char *path)
{
    FILE *f = fopen(path, "r");
    long long rows = 0, skipped = 0;
    if (f) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, f)) > 0) {
            json_t *j = json_loadb(line, (size_t)n, 0, NULL);
            const char *id = json_string_value(json_object_get(j, "entity_id"));
            const char *st = json_string_value(json_object_get(j, "s"));
            json_t *a = json_object_get(j, "a"), *lu = json_object_get(j, "lu"), *lc = json_object_get(j, "lc");
            sim_entity *e = id ? hist_entity(s, id) : NULL;
            char *aj = json_is_object(a) ? json_dumps(a, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
            if (e && st && aj && json_is_number(lu) && json_is_number(lc) &&
                hist_push(e, json_number_value(lu), json_number_value(lc), st, aj) == 0)
                rows++;
            else
                skipped++; /* a torn last line after a kill, or an entity no longer in the scenario */
            free(aj);
            json_decref(j);
        }
        free(line);
        fclose(f);
        for (size_t i = 0; i < s->nentities; i++)
            if (s->entities[i].nhist) hist_restore(s, &s->entities[i]);
        s->history_rows = rows;
        log_info("history %s: %lld row(s) restored%s", path, rows, skipped ? " (some lines skipped)" : "");
    }
    s->history_file = fopen(path, "a");
    if (!s->history_file) {
        log_error("SIMULATOR_HISTORY_FILE=%s: cannot open: %m", path);
        return -1;
    }
    setvbuf(s->history_file, NULL, _IOFBF, 1 << 20);
    return 0;
}

void hist_free(sim *s)
{
    for (size_t i = 0; i < s->nentities; i++) {
        sim_entity *e = &s->entities[i];
        for (size_t k = 0; k < e->nhist; k++) {
            free(e->hist[k].state);
            if (e->hist[k].owns_attrs) free(e->hist[k].attrs);
        }
        free(e->hist);
        e->hist = NULL;
        e->nhist = e->caphist = 0;
    }
    if (s->history_file) fclose(s->history_file);
    if (s->truth_log) fclose(s->truth_log);
    s->history_file = s->truth_log = NULL;
}

/* ---- history/history_during_period -------------------------------------------- */

static int hist_domain_in(const char *entity_id, const char *const *domains)
{
    size_t dl = strcspn(entity_id, ".");
    for (; *domains; domains++)
        if (strlen(*domains) == dl && !strncmp(entity_id, *domains, dl)) return 1;
    return 0;
}

/* HA keeps attribute-only rows for these even with significant_changes_only */
static const char *const SIGNIFICANT_DOMAINS[] = {"climate", "device_tracker", "humidifier", "thermostat",
                                                  "water_heater", NULL};
/* ... and their attributes even with no_attributes */
static const char *const KEEP_ATTR_DOMAINS[] = {"climate", "humidifier", "input_datetime", "thermostat",
                                                "water_heater", NULL};

static void hist_row_json(simbuf *b, const char *state, const char *attrs, double lu, double lc)
{
    char f[32];
    simbuf_adds(b, "{\"s\":");
    simbuf_add_jstr(b, state);
    if (attrs) {
        simbuf_adds(b, ",\"a\":");
        simbuf_adds(b, attrs);
    }
    sim_pyfloat(lu, f);
    simbuf_printf(b, ",\"lu\":%s", f);
    if (lc != lu) {
        sim_pyfloat(lc, f);
        simbuf_printf(b, ",\"lc\":%s", f);
    }
    simbuf_adds(b, "}");
}

typedef struct hist_query {
    double start, end;
    int start_state, significant, minimal, no_attrs;
} hist_query;

static void hist_entity_rows(const sim_entity *e, const hist_query *q, simbuf *b, long long *nrows)
{
    int keep_attr_only = hist_domain_in(e->entity_id, SIGNIFICANT_DOMAINS);
    int keep_attrs = !q->no_attrs || hist_domain_in(e->entity_id, KEEP_ATTR_DOMAINS);
    size_t first = 0, hi = e->nhist; /* the first row after start (rows are in time order) */
    while (first < hi) {
        size_t mid = first + (hi - first) / 2;
        if (e->hist[mid].lu <= q->start) first = mid + 1;
        else hi = mid;
    }
    int n = 0;
    if (q->start_state && first > 0) { /* the state at start, stamped start_time */
        const sim_hrow *r = &e->hist[first - 1];
        hist_row_json(b, r->state, keep_attrs ? r->attrs : NULL, q->start, q->start);
        n++;
    }
    for (size_t i = first; i < e->nhist && e->hist[i].lu < q->end; i++) {
        const sim_hrow *r = &e->hist[i];
        if (q->significant && !keep_attr_only && r->lc != r->lu) continue;
        if (n) simbuf_adds(b, ",");
        hist_row_json(b, r->state, keep_attrs && !(q->minimal && n > 0) ? r->attrs : NULL, r->lu, r->lc);
        n++;
    }
    *nrows += n;
}

static int hist_bool(json_t *m, const char *key, int def, int *out)
{
    json_t *v = json_object_get(m, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v)) return -1;
    *out = json_is_true(v);
    return 0;
}

void hist_command(sim_client *c, long long id, json_t *m)
{
    sim *s = c->s;
    static const char *const keys[] = {"start_time", "end_time", "entity_ids", "include_start_time_state",
                                       "significant_changes_only", "minimal_response", "no_attributes", NULL};
    const char *k;
    json_t *v;
    char why[160];
    json_object_foreach(m, k, v) {
        int ok = !strcmp(k, "id") || !strcmp(k, "type");
        for (const char *const *a = keys; *a && !ok; a++) ok = !strcmp(*a, k);
        if (!ok) {
            snprintf(why, sizeof why, "extra keys not allowed @ data['%.80s']", k);
            proto_send_error(c, id, "invalid_format", why);
            return;
        }
    }
    s->history_calls++;
    hist_query q = {0};
    if (hist_bool(m, "include_start_time_state", 1, &q.start_state) || hist_bool(m, "significant_changes_only", 1,
                                                                                 &q.significant) ||
        hist_bool(m, "minimal_response", 0, &q.minimal) || hist_bool(m, "no_attributes", 0, &q.no_attrs)) {
        proto_send_error(c, id, "invalid_format", "expected bool");
        return;
    }
    json_t *st = json_object_get(m, "start_time"), *et = json_object_get(m, "end_time");
    if (!json_is_string(st)) {
        proto_send_error(c, id, "invalid_format",
                         st ? "expected str for dictionary value @ data['start_time']"
                            : "required key not provided @ data['start_time']. Got None");
        return;
    }
    if (s->history_fail > 0) { /* the recorder's database failing under the handler */
        s->history_fail--;
        proto_send_error(c, id, "unknown_error", "Unknown error");
        return;
    }
    int64_t start_us, end_us;
    if (event_time_parse(json_string_value(st), &start_us) != 0) {
        proto_send_error(c, id, "invalid_start_time", "Invalid start_time");
        return;
    }
    long long now = service_now_us();
    if (et && (!json_is_string(et) || event_time_parse(json_string_value(et), &end_us) != 0)) {
        proto_send_error(c, id, "invalid_end_time", "Invalid end_time");
        return;
    }
    if (!et) end_us = now;
    if (start_us > now) {
        simbuf b = {0};
        simbuf_printf(&b, "{\"id\":%lld,\"type\":\"result\",\"success\":true,\"result\":{}}", id);
        proto_send_reply(c, b.p, b.len);
        simbuf_free(&b);
        return;
    }
    json_t *ids = json_object_get(m, "entity_ids");
    size_t i;
    if (!json_is_array(ids) || json_array_size(ids) == 0) {
        proto_send_error(c, id, "invalid_entity_ids", "Invalid entity_ids");
        return;
    }
    json_array_foreach(ids, i, v) {
        const char *eid = json_string_value(v);
        char dom[64];
        const char *obj;
        if (!eid || (!hist_entity(s, eid) && event_entity_split(eid, dom, sizeof dom, &obj) != 0)) {
            proto_send_error(c, id, "invalid_entity_ids", "Invalid entity_ids");
            return;
        }
    }
    q.start = (double)start_us / 1e6;
    q.end = (double)end_us / 1e6;
    simbuf b = {0};
    simbuf_printf(&b, "{\"id\":%lld,\"type\":\"result\",\"success\":true,\"result\":{", id);
    int first = 1;
    long long nrows = 0;
    json_array_foreach(ids, i, v) {
        const sim_entity *e = hist_entity(s, json_string_value(v));
        if (!e || !e->nhist) continue; /* entities without data are omitted */
        size_t mark = b.len;
        if (!first) simbuf_adds(&b, ",");
        simbuf_add_jstr(&b, e->entity_id);
        simbuf_adds(&b, ":[");
        long long before = nrows;
        hist_entity_rows(e, &q, &b, &nrows);
        if (nrows == before) {
            b.len = mark; /* nothing in the window: omitted too */
            continue;
        }
        simbuf_adds(&b, "]");
        first = 0;
    }
    simbuf_adds(&b, "}}");
    proto_send_reply(c, b.p, b.len);
    log_debug("history: %lld row(s) for %zu entit(ies)", nrows, json_array_size(ids));
    simbuf_free(&b);
}
