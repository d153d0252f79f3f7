/* sim_house.c -- the simulated house: entities from a JSON scenario, their
 * state changes over time, and the HA events those changes fire.
 *
 * Why it is built this way: each entity keeps its current and previous State
 * already serialised, so a state_changed event is two memcpy'd State objects
 * plus a small template, not a jansson tree; that is what lets one core emit
 * well over 30k events/s in load mode. Every event gets a time strictly after
 * the previous one (unique time_fired per entity) and a fresh ULID context. */
#include "sim.h"

#include "log.h"
#include "service.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- scenario loading ---------------------------------------------------- */

static double jnum(json_t *o, const char *k, double def)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : def;
}

static char *jstrdup(json_t *o, const char *k, const char *def)
{
    json_t *v = json_object_get(o, k);
    const char *s = json_is_string(v) ? json_string_value(v) : def;
    return s ? strdup(s) : NULL;
}

static const char *domain_of(const char *entity_id, char *buf, size_t n)
{
    size_t dl = strcspn(entity_id, ".");
    if (dl >= n) dl = n - 1;
    memcpy(buf, entity_id, dl);
    buf[dl] = '\0';
    return buf;
}

static void snap_clear(sim_snap *sn)
{
    json_decref(sn->attrs);
    free(sn->attrs_json);
    free(sn->state_json);
    memset(sn, 0, sizeof *sn);
}

static int load_entity(sim_entity *e, json_t *j)
{
    const char *id = json_string_value(json_object_get(j, "entity_id"));
    if (!id || !strchr(id, '.')) return -1;
    e->entity_id = strdup(id);
    e->interval_s = jnum(j, "interval", 30);
    if (e->interval_s < 0.1) e->interval_s = 0.1;
    json_t *states = json_object_get(j, "states");
    json_t *walk = json_object_get(j, "walk");
    if (json_is_array(states) && json_array_size(states) > 0) {
        e->nstates = json_array_size(states);
        e->states = calloc(e->nstates, sizeof *e->states);
        for (size_t i = 0; i < e->nstates; i++) {
            const char *st = json_string_value(json_array_get(states, i));
            e->states[i] = strdup(st ? st : "unknown");
        }
    } else if (json_object_get(j, "min") && json_object_get(j, "max")) {
        e->numeric = 1;
        e->vmin = jnum(j, "min", 0);
        e->vmax = jnum(j, "max", 100);
        e->vstep = jnum(j, "step", (e->vmax - e->vmin) / 50);
        e->decimals = (int)jnum(j, "decimals", 1);
        e->value = jnum(j, "initial", (e->vmin + e->vmax) / 2);
    } else {
        return -1;
    }
    if (json_is_object(walk)) {
        e->walk_attr = jstrdup(walk, "attribute", NULL);
        e->wmin = jnum(walk, "min", 0);
        e->wmax = jnum(walk, "max", 100);
        e->wstep = jnum(walk, "step", 0.1);
        e->wdecimals = (int)jnum(walk, "decimals", 1);
        e->wval = jnum(walk, "initial", (e->wmin + e->wmax) / 2);
    }
    e->p_state = jnum(j, "p_state", e->walk_attr ? 0.1 : 1.0);
    e->p_unavailable = jnum(j, "p_unavailable", 0);
    e->p_unknown = jnum(j, "p_unknown", 0);
    e->p_user = jnum(j, "p_user", 0);
    char dom[64];
    e->service_domain = jstrdup(j, "service_domain", domain_of(id, dom, sizeof dom));
    json_t *a = json_object_get(j, "attributes");
    e->base_attrs = json_is_object(a) ? json_incref(a) : json_object();
    json_t *sa = json_object_get(j, "state_attributes");
    e->state_attrs = json_is_object(sa) ? json_incref(sa) : NULL;
    return 0;
}

static json_t *load_json_file(const char *path)
{
    json_error_t err;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!root) log_error("scenario %s: %s (line %d, column %d)", path, err.text, err.line, err.column);
    return root;
}

static json_t *make_config(json_t *root)
{
    json_t *cfg = json_object_get(root, "config");
    json_t *c = json_pack("{s:f,s:f,s:i,s:{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s},s:s,s:s,s:[],s:s,s:[s,s,s,s,s,s,s],"
                          "s:s,s:[],s:[],s:n,s:n,s:s,s:s,s:b,s:b,s:b,s:s,s:i,s:s}",
                          "latitude", jnum(cfg, "latitude", 52.3731), "longitude", jnum(cfg, "longitude", 4.8922),
                          "elevation", (int)jnum(cfg, "elevation", 0),
                          "unit_system", "length", "km", "accumulated_precipitation", "mm", "area", "m²",
                          "mass", "g", "pressure", "Pa", "temperature", "°C", "volume", "L", "wind_speed", "m/s",
                          "location_name", json_string_value(json_object_get(cfg, "location_name")) ?: "Home",
                          "time_zone", json_string_value(json_object_get(cfg, "time_zone")) ?: "Europe/Amsterdam",
                          "whitelist_external_dirs", "config_dir", "/config",
                          "components", "automation", "binary_sensor", "climate", "light", "person", "sensor", "websocket_api",
                          "version", SIM_HA_VERSION, "allowlist_external_dirs", "allowlist_external_urls",
                          "external_url", "internal_url", "currency", "EUR", "country", "NL",
                          "recovery_mode", 0, "safe_mode", 0, "debug", 0, "state", "RUNNING", "radius", 100,
                          "language", "en");
    if (c) json_object_set_new(c, "config_source", json_string("storage"));
    return c;
}

static const char *SERVICES_JSON =
    "{\"homeassistant\":{\"restart\":{\"name\":\"Restart\",\"description\":\"Restarts Home Assistant.\",\"fields\":{}},"
    "\"turn_on\":{\"name\":\"Generic turn on\",\"description\":\"Generic action to turn devices on.\",\"fields\":{},"
    "\"target\":{\"entity\":[{}]}}},"
    "\"light\":{\"turn_on\":{\"name\":\"Turn on\",\"description\":\"Turns on one or more lights.\",\"fields\":{"
    "\"brightness\":{\"selector\":{\"number\":{\"min\":0,\"max\":255}}}},\"target\":{\"entity\":[{\"domain\":[\"light\"]}]}},"
    "\"turn_off\":{\"name\":\"Turn off\",\"description\":\"Turns off one or more lights.\",\"fields\":{},"
    "\"target\":{\"entity\":[{\"domain\":[\"light\"]}]}},"
    "\"toggle\":{\"name\":\"Toggle\",\"description\":\"Toggles one or more lights.\",\"fields\":{},"
    "\"target\":{\"entity\":[{\"domain\":[\"light\"]}]}}},"
    "\"switch\":{\"turn_on\":{\"name\":\"Turn on\",\"description\":\"Turns a switch on.\",\"fields\":{},"
    "\"target\":{\"entity\":[{\"domain\":[\"switch\"]}]}},"
    "\"turn_off\":{\"name\":\"Turn off\",\"description\":\"Turns a switch off.\",\"fields\":{},"
    "\"target\":{\"entity\":[{\"domain\":[\"switch\"]}]}}},"
    "\"weather\":{\"get_forecasts\":{\"name\":\"Get forecasts\",\"description\":\"Get weather forecasts.\",\"fields\":{},"
    "\"target\":{\"entity\":[{\"domain\":[\"weather\"]}]},\"response\":{\"optional\":false}}}}";

static void initial_state(sim *s, sim_entity *e, long long now);

int house_load(sim *s, const char *path)
{
    json_t *root = load_json_file(path);
    if (!root) return -1;
    json_t *ents = json_object_get(root, "entities");
    if (!json_is_array(ents) || json_array_size(ents) == 0) {
        log_error("scenario %s: \"entities\" must be a non-empty array", path);
        json_decref(root);
        return -1;
    }
    s->nentities = json_array_size(ents);
    s->entities = calloc(s->nentities, sizeof *s->entities);
    for (size_t i = 0; i < s->nentities; i++) {
        if (load_entity(&s->entities[i], json_array_get(ents, i)) != 0) {
            log_error("scenario %s: entity #%zu is invalid (needs entity_id and states or min/max)", path, i);
            s->nentities = i + 1;
            json_decref(root);
            return -1;
        }
    }
    json_t *autos = json_object_get(root, "automations");
    s->nautomations = json_is_array(autos) ? json_array_size(autos) : 0;
    s->automations = s->nautomations ? calloc(s->nautomations, sizeof *s->automations) : NULL;
    for (size_t i = 0; i < s->nautomations; i++) {
        json_t *a = json_array_get(autos, i);
        sim_automation *au = &s->automations[i];
        au->name = jstrdup(a, "name", "Automation");
        au->entity_id = jstrdup(a, "entity_id", "automation.unnamed");
        au->trigger = jstrdup(a, "trigger", "");
        au->to = jstrdup(a, "to", "on");
        au->target = jstrdup(a, "target", "");
        au->service = jstrdup(a, "service", "turn_on");
    }
    const char *uid = json_string_value(json_object_get(root, "user_id"));
    snprintf(s->user_id, sizeof s->user_id, "%s", uid && strlen(uid) == 32 ? uid : "9d7c2f1a4b8e4c3d9a6f0e1b2c3d4e5f");
    s->config_json = make_config(root);
    s->services_json = json_loads(SERVICES_JSON, 0, NULL);
    if (reg_load(s, root) != 0) {
        json_decref(root);
        return -1;
    }
    json_decref(root);
    if (!s->config_json || !s->services_json) return -1;

    long long now = service_now_us();
    for (size_t i = 0; i < s->nentities; i++) initial_state(s, &s->entities[i], now);
    log_info("scenario %s: %zu entities, %zu automations", path, s->nentities, s->nautomations);
    return 0;
}

void house_free(sim *s)
{
    reg_free(s);
    for (size_t i = 0; i < s->nentities; i++) {
        sim_entity *e = &s->entities[i];
        free(e->entity_id);
        for (size_t k = 0; k < e->nstates; k++) free(e->states[k]);
        free(e->states);
        json_decref(e->base_attrs);
        json_decref(e->state_attrs);
        free(e->walk_attr);
        free(e->service_domain);
        snap_clear(&e->cur);
        snap_clear(&e->prev);
    }
    free(s->entities);
    for (size_t i = 0; i < s->nautomations; i++) {
        sim_automation *a = &s->automations[i];
        free(a->name);
        free(a->entity_id);
        free(a->trigger);
        free(a->to);
        free(a->target);
        free(a->service);
    }
    free(s->automations);
    json_decref(s->config_json);
    json_decref(s->services_json);
    if (s->gen_timer) event_free(s->gen_timer);
    s->gen_timer = NULL;
}

/* ---- building States --------------------------------------------------------- */

/* The next event time, like HA: a float from the wall clock (time.time(),
 * with its sub-microsecond digits) and the microsecond time derived from it
 * by CPython's rounding. Times strictly increase; a bumped time gets a float
 * off the exact microsecond by up to +-0.4 us, as a real clock reading would. */
static long long next_time(sim *s, double *f_out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double f = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    long long us = sim_py_us(f);
    if (us <= s->last_ts) {
        us = s->last_ts + 1;
        f = ((double)us + (sim_rand01() - 0.5) * 0.8) / 1e6;
        if (sim_py_us(f) != us) f = (double)us / 1e6;
    }
    s->last_ts = us;
    if (f_out) *f_out = f;
    return us;
}

static long long next_ts(sim *s) { return next_time(s, NULL); }

static double round_to(double v, int decimals)
{
    double m = pow(10, decimals);
    return round(v * m) / m;
}

/* {"id":...,"parent_id":...,"user_id":...}: an event's context object */
static void add_ctx_object(const sim *s, simbuf *b, const char *ctx, const char *parent, int has_user)
{
    simbuf_printf(b, "{\"id\":\"%s\",\"parent_id\":", ctx);
    if (parent && parent[0]) simbuf_printf(b, "\"%s\"", parent);
    else simbuf_adds(b, "null");
    if (has_user) simbuf_printf(b, ",\"user_id\":\"%s\"}", s->user_id);
    else simbuf_adds(b, ",\"user_id\":null}");
}

/* attributes for `state` (base + overlay + walk attribute) */
static json_t *build_attrs(sim_entity *e, const char *state)
{
    json_t *ov = e->state_attrs ? json_object_get(e->state_attrs, state) : NULL;
    if (!ov && !e->walk_attr) return json_incref(e->base_attrs);
    json_t *a = json_copy(e->base_attrs);
    if (ov) json_object_update(a, ov);
    if (e->walk_attr) json_object_set_new(a, e->walk_attr, json_real(round_to(e->wval, e->wdecimals)));
    return a;
}

static void build_state_json(sim *s, sim_entity *e, sim_snap *sn)
{
    char lc[40], lu[40];
    sim_isotime(sn->lc, lc);
    sim_isotime(sn->lu, lu);
    simbuf *b = &s->tmp;
    b->len = 0;
    simbuf_state_head(b, e->entity_id, "state", sn->state, "attributes", sn->attrs_json);
    simbuf_printf(b, ",\"last_changed\":\"%s\",\"last_reported\":\"%s\",\"last_updated\":\"%s\",\"context\":", lc,
                  lu, lu);
    add_ctx_object(s, b, sn->ctx, sn->parent, sn->has_user);
    simbuf_adds(b, "}");
    free(sn->state_json);
    sn->state_json = strdup(b->p);
}

static void format_value(sim_entity *e, char *out, size_t n)
{
    snprintf(out, n, "%.*f", e->decimals, round_to(e->value, e->decimals));
}

static void initial_state(sim *s, sim_entity *e, long long now)
{
    sim_snap *sn = &e->cur;
    if (e->numeric) format_value(e, sn->state, sizeof sn->state);
    else snprintf(sn->state, sizeof sn->state, "%s", e->states[sim_rand() % e->nstates]);
    sn->attrs = build_attrs(e, sn->state);
    sn->attrs_json = json_dumps(sn->attrs, JSON_COMPACT | JSON_REAL_PRECISION(15));
    sn->lu = now - (long long)(sim_rand() % 3600000000ull) - 1000000;
    sn->lc = sn->lu - (long long)(sim_rand() % 2) * (long long)(sim_rand() % 3600000000ull);
    sn->luf = (double)sn->lu / 1e6;
    sn->lcf = (double)sn->lc / 1e6;
    sim_ulid(sn->lu, sn->ctx);
    build_state_json(s, e, sn);
    e->has_state = 1;
    e->next_due = 0;
}

/* ---- event dispatch ------------------------------------------------------------- */

/* One JSON line per event, for the sent log (--sent-log) and the truth log (--truth-log). */
static void log_event_line(sim *s, FILE *f, const char *entity_id, const char *time_fired, const char *ctx,
                           const char *state, const char *event_type)
{
    if (!f) return;
    simbuf *b = &s->tmp;
    b->len = 0;
    simbuf_adds(b, "{\"entity_id\":");
    simbuf_add_jstr(b, entity_id ? entity_id : "");
    simbuf_printf(b, ",\"time_fired\":\"%s\",\"context_id\":\"%s\",\"state\":", time_fired, ctx);
    if (state) simbuf_add_jstr(b, state);
    else simbuf_adds(b, "null");
    simbuf_printf(b, ",\"event_type\":\"%s\"}\n", event_type);
    fwrite(b->p, 1, b->len, f);
}

/* Sends the coalesced batch ("m1,m2,..." wrapped into an array frame; one
 * message as it is) and empties it. */
static void client_flush(sim_client *c)
{
    simbuf *b = &c->batch;
    if (c->batch_count == 1) {
        ws_send_text(c->ws, b->p, b->len);
    } else if (c->batch_count > 1 && simbuf_reserve(b, 2) == 0) {
        memmove(b->p + 1, b->p, b->len);
        b->p[0] = '[';
        b->p[b->len + 1] = ']';
        b->len += 2;
        ws_send_text(c->ws, b->p, b->len);
    }
    b->len = 0;
    c->batch_count = 0;
}

/* SIMULATOR_JSON_SPACED: msg with a space after every ':' and ',' outside
 * strings, in s->spaced (what Python's json.dumps writes; issue 15 says the
 * cost must not depend on it). */
static void spaced_text(sim *s, const char **msg, size_t *len)
{
    simbuf *b = &s->spaced;
    const char *p = *msg, *end = p + *len;
    int in_str = 0;
    b->len = 0;
    for (; p < end; p++) {
        simbuf_add(b, p, 1);
        if (in_str) {
            if (*p == '\\' && p + 1 < end) simbuf_add(b, ++p, 1);
            else if (*p == '"') in_str = 0;
        } else if (*p == '"') {
            in_str = 1;
        } else if (*p == ':' || *p == ',') {
            simbuf_add(b, " ", 1);
        }
    }
    *msg = b->p;
    *len = b->len;
}

static void client_queue(sim_client *c, const char *msg, size_t len)
{
    if (c->s->json_spaced) spaced_text(c->s, &msg, &len);
    if (!c->coalesce) {
        ws_send_text(c->ws, msg, len);
        return;
    }
    if (c->batch_count > 0) simbuf_add(&c->batch, ",", 1);
    simbuf_add(&c->batch, msg, len);
    if (++c->batch_count >= SIM_COALESCE_MAX) client_flush(c);
}

static void flush_batches(sim *s)
{
    for (sim_client *c = s->clients; c; c = c->next)
        if (c->batch_count) client_flush(c);
}

/* subscribe_entities compressed context: id string, or the full object */
static void add_compressed_ctx(sim *s, simbuf *b, const sim_snap *sn)
{
    if (!sn->parent[0] && !sn->has_user) {
        simbuf_printf(b, "\"%s\"", sn->ctx);
        return;
    }
    add_ctx_object(s, b, sn->ctx, sn->parent, sn->has_user);
}

static void add_compressed_state(sim *s, simbuf *b, const sim_entity *e)
{
    const sim_snap *sn = &e->cur;
    char f[32];
    simbuf_adds(b, "{\"s\":");
    simbuf_add_jstr(b, sn->state);
    simbuf_adds(b, ",\"a\":");
    simbuf_adds(b, sn->attrs_json);
    simbuf_adds(b, ",\"c\":");
    add_compressed_ctx(s, b, sn);
    sim_epoch_float(sn->lc, f);
    simbuf_printf(b, ",\"lc\":%s", f);
    if (sn->lu != sn->lc) {
        sim_epoch_float(sn->lu, f);
        simbuf_printf(b, ",\"lu\":%s", f);
    }
    simbuf_adds(b, "}");
}

/* {"c":{eid:{"+":{...},"-":{"a":[...]}}}} per HA's _state_diff rules */
static void build_entity_diff(sim *s, const sim_entity *e, simbuf *b)
{
    const sim_snap *o = &e->prev, *n = &e->cur;
    char f[32];
    b->len = 0;
    simbuf_adds(b, "{\"c\":{\"");
    simbuf_adds(b, e->entity_id);
    simbuf_adds(b, "\":{\"+\":{");
    int first = 1;
#define SEP() do { if (!first) simbuf_adds(b, ","); first = 0; } while (0)
    if (strcmp(o->state, n->state) != 0) {
        SEP();
        simbuf_adds(b, "\"s\":");
        simbuf_add_jstr(b, n->state);
    }
    if (n->lc != o->lc) {
        SEP();
        sim_epoch_float(n->lc, f);
        simbuf_printf(b, "\"lc\":%s", f);
    } else if (n->lu != o->lu) {
        SEP();
        sim_epoch_float(n->lu, f);
        simbuf_printf(b, "\"lu\":%s", f);
    }
    SEP();
    if (strcmp(o->parent, n->parent) == 0 && o->has_user == n->has_user) {
        simbuf_printf(b, "\"c\":\"%s\"", n->ctx);
    } else {
        simbuf_printf(b, "\"c\":{\"id\":\"%s\"", n->ctx);
        if (strcmp(o->parent, n->parent) != 0) {
            if (n->parent[0]) simbuf_printf(b, ",\"parent_id\":\"%s\"", n->parent);
            else simbuf_adds(b, ",\"parent_id\":null");
        }
        if (o->has_user != n->has_user) {
            if (n->has_user) simbuf_printf(b, ",\"user_id\":\"%s\"", s->user_id);
            else simbuf_adds(b, ",\"user_id\":null");
        }
        simbuf_adds(b, "}");
    }
    /* changed or added attributes */
    const char *k;
    json_t *v;
    int afirst = 1;
    if (n->attrs != o->attrs) {
        json_object_foreach(n->attrs, k, v) {
            json_t *ov = json_object_get(o->attrs, k);
            if (ov && json_equal(ov, v)) continue;
            if (afirst) simbuf_adds(b, ",\"a\":{");
            else simbuf_adds(b, ",");
            afirst = 0;
            simbuf_add_jstr(b, k);
            simbuf_adds(b, ":");
            char *vs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
            simbuf_adds(b, vs ? vs : "null");
            free(vs);
        }
    }
    if (!afirst) simbuf_adds(b, "}");
    simbuf_adds(b, "}");
    int rfirst = 1;
    if (n->attrs != o->attrs) {
        json_object_foreach(o->attrs, k, v) {
            if (json_object_get(n->attrs, k)) continue;
            simbuf_adds(b, rfirst ? ",\"-\":{\"a\":[" : ",");
            rfirst = 0;
            simbuf_add_jstr(b, k);
        }
    }
    if (!rfirst) simbuf_adds(b, "]}");
    simbuf_adds(b, "}}}");
#undef SEP
}

static int entity_in_sub(const sim_sub *sub, const char *entity_id)
{
    if (!sub->entity_ids) return 1;
    for (size_t i = 0; i < sub->nentity_ids; i++)
        if (strcmp(sub->entity_ids[i], entity_id) == 0) return 1;
    return 0;
}

/* Sends the event in s->ev (without its closing "}" and id) to every matching
 * subscription. Returns 1 if it went to at least one connection. */
static int dispatch(sim *s, const char *event_type, const sim_entity *e)
{
    int delivered = 0;
    simbuf diff = {0};
    int have_diff = 0;
    size_t base_len = s->ev.len;
    for (sim_client *c = s->clients; c; c = c->next) {
        if (!c->authed || c->closing) continue;
        for (size_t i = 0; i < c->nsubs; i++) {
            sim_sub *sub = &c->subs[i];
            if (sub->kind == SUB_EVENTS) {
                if (sub->event_type ? strcmp(sub->event_type, event_type) != 0
                                    : strcmp(event_type, "state_reported") == 0)
                    continue;
                s->ev.len = base_len;
                simbuf_printf(&s->ev, ",\"id\":%lld}", sub->id);
                client_queue(c, s->ev.p, s->ev.len);
            } else {
                if (!e || strcmp(event_type, "state_changed") != 0 || !entity_in_sub(sub, e->entity_id)) continue;
                if (!have_diff) {
                    build_entity_diff(s, e, &diff);
                    have_diff = 1;
                }
                s->tmp.len = 0;
                simbuf_adds(&s->tmp, "{\"type\":\"event\",\"event\":");
                simbuf_add(&s->tmp, diff.p, diff.len);
                simbuf_printf(&s->tmp, ",\"id\":%lld}", sub->id);
                client_queue(c, s->tmp.p, s->tmp.len);
            }
            s->deliveries++;
            delivered = 1;
        }
    }
    s->ev.len = base_len;
    simbuf_free(&diff);
    return delivered;
}

static void begin_event(sim *s, const char *event_type)
{
    s->ev.len = 0;
    simbuf_adds(&s->ev, "{\"type\":\"event\",\"event\":{\"event_type\":\"");
    simbuf_adds(&s->ev, event_type);
    simbuf_adds(&s->ev, "\",\"data\":");
}

static void end_event(sim *s, const char *time_fired, const char *ctx, const char *parent, int has_user)
{
    simbuf_printf(&s->ev, ",\"origin\":\"LOCAL\",\"time_fired\":\"%s\",\"context\":", time_fired);
    add_ctx_object(s, &s->ev, ctx, parent, has_user);
    simbuf_adds(&s->ev, "}");
}

/* --count counts events sent; with the house living on unheard (always on), events generated. */
static int count_reached(const sim *s) { return s->count > 0 && (s->always_on ? s->generated : s->sent) >= s->count; }

static void account(sim *s, int delivered, const char *entity_id, const char *tf, const char *ctx,
                    const char *state, const char *event_type)
{
    s->generated++;
    log_event_line(s, s->truth_log, entity_id, tf, ctx, state, event_type);
    if (!delivered) return;
    s->sent++;
    log_event_line(s, s->sent_log, entity_id, tf, ctx, state, event_type);
}

/* A context for a change: parent (automation) and user (call by a person). */
typedef struct cause {
    const char *ctx;     /* NULL = fresh */
    const char *parent;
    int has_user;
} cause;

/* Changes entity `e` (to `forced` if given) and fires state_changed.
 * Returns 1 if the state or attributes changed. */
static int change_entity(sim *s, sim_entity *e, const char *forced, const cause *why)
{
    if (count_reached(s)) return 0;
    char st[64];
    int state_move = 0;
    if (forced) {
        snprintf(st, sizeof st, "%s", forced);
        e->glitch = 0;
    } else {
        double r = sim_rand01();
        if (!e->glitch && r < e->p_unavailable) {
            snprintf(st, sizeof st, "unavailable");
            e->glitch = 1;
        } else if (!e->glitch && r < e->p_unavailable + e->p_unknown) {
            snprintf(st, sizeof st, "unknown");
            e->glitch = 1;
        } else if (e->numeric) {
            e->glitch = 0;
            double old = e->value;
            e->value += (sim_rand01() * 2 - 1) * e->vstep;
            if (e->value < e->vmin || e->value > e->vmax) e->value = old - (e->value - old);
            format_value(e, st, sizeof st);
            if (strcmp(st, e->cur.state) == 0) { /* a write without change would be state_reported */
                e->value += e->value + e->vstep <= e->vmax ? e->vstep : -e->vstep;
                format_value(e, st, sizeof st);
            }
        } else {
            const char *real = e->cur.state;
            if (e->glitch) { /* back from unavailable: to a real state */
                real = e->states[sim_rand() % e->nstates];
                e->glitch = 0;
                state_move = 1;
            } else if (e->nstates > 1 && sim_rand01() < e->p_state) {
                size_t cur = 0;
                for (size_t i = 0; i < e->nstates; i++)
                    if (strcmp(e->states[i], e->cur.state) == 0) cur = i;
                size_t nxt = e->nstates == 2 ? 1 - cur : (cur + 1 + sim_rand() % (e->nstates - 1)) % e->nstates;
                real = e->states[nxt];
                state_move = 1;
            }
            snprintf(st, sizeof st, "%s", real);
        }
    }
    (void)state_move;
    if (e->walk_attr && !e->glitch) {
        double old = e->wval;
        e->wval += (sim_rand01() * 2 - 1) * e->wstep;
        if (e->wval < e->wmin || e->wval > e->wmax) e->wval = old - (e->wval - old);
        if (round_to(e->wval, e->wdecimals) == round_to(old, e->wdecimals))
            e->wval = old + (old + e->wstep <= e->wmax ? e->wstep : -e->wstep);
    }
    json_t *attrs = e->glitch ? json_incref(e->cur.attrs) : build_attrs(e, st);
    int state_changed = strcmp(st, e->cur.state) != 0;
    if (!state_changed && (attrs == e->cur.attrs || json_equal(attrs, e->cur.attrs))) {
        json_decref(attrs);
        return 0; /* HA would fire state_reported; we stay quiet */
    }

    double tsf;
    long long ts = next_time(s, &tsf);
    snap_clear(&e->prev);
    e->prev = e->cur;
    e->has_prev = 1;
    memset(&e->cur, 0, sizeof e->cur);
    sim_snap *n = &e->cur;
    snprintf(n->state, sizeof n->state, "%s", st);
    n->attrs = attrs;
    n->attrs_json = attrs == e->prev.attrs ? strdup(e->prev.attrs_json)
                                          : json_dumps(attrs, JSON_COMPACT | JSON_REAL_PRECISION(15));
    n->lu = ts;
    n->lc = state_changed ? ts : e->prev.lc;
    n->luf = tsf;
    n->lcf = state_changed ? tsf : e->prev.lcf;
    if (why && why->ctx) snprintf(n->ctx, sizeof n->ctx, "%s", why->ctx);
    else sim_ulid(ts, n->ctx);
    if (why && why->parent) snprintf(n->parent, sizeof n->parent, "%s", why->parent);
    n->has_user = why ? why->has_user : 0;
    build_state_json(s, e, n);
    hist_record(s, e);

    char tf[40];
    sim_isotime(ts, tf);
    begin_event(s, "state_changed");
    simbuf_adds(&s->ev, "{\"entity_id\":\"");
    simbuf_adds(&s->ev, e->entity_id);
    simbuf_adds(&s->ev, "\",\"old_state\":");
    simbuf_adds(&s->ev, e->prev.state_json);
    simbuf_adds(&s->ev, ",\"new_state\":");
    simbuf_adds(&s->ev, n->state_json);
    simbuf_adds(&s->ev, "}");
    end_event(s, tf, n->ctx, n->parent, n->has_user);
    int d = dispatch(s, "state_changed", e);
    account(s, d, e->entity_id, tf, n->ctx, n->state, "state_changed");
    return 1;
}

static void fire_call_service(sim *s, const char *domain, const char *service, const char *entity_id,
                              const char *ctx, const char *parent, int has_user)
{
    if (count_reached(s)) return;
    long long ts = next_ts(s);
    char tf[40];
    sim_isotime(ts, tf);
    begin_event(s, "call_service");
    simbuf_printf(&s->ev, "{\"domain\":\"%s\",\"service\":\"%s\",\"service_data\":{\"entity_id\":\"%s\"}}",
                domain, service, entity_id);
    end_event(s, tf, ctx, parent, has_user);
    int d = dispatch(s, "call_service", NULL);
    account(s, d, entity_id, tf, ctx, NULL, "call_service");
}

static sim_entity *find_entity(sim *s, const char *id)
{
    for (size_t i = 0; i < s->nentities; i++)
        if (strcmp(s->entities[i].entity_id, id) == 0) return &s->entities[i];
    return NULL;
}

/* automations whose trigger is `e` reaching its new state */
static void run_automations(sim *s, sim_entity *e)
{
    for (size_t i = 0; i < s->nautomations; i++) {
        sim_automation *a = &s->automations[i];
        if (strcmp(a->trigger, e->entity_id) != 0 || strcmp(a->to, e->cur.state) != 0) continue;
        if (count_reached(s)) return;
        char trig_ctx[27], run_ctx[27];
        snprintf(trig_ctx, sizeof trig_ctx, "%s", e->cur.ctx);
        long long ts = next_ts(s);
        sim_ulid(ts, run_ctx);
        char tf[40];
        sim_isotime(ts, tf);
        begin_event(s, "automation_triggered");
        simbuf_adds(&s->ev, "{\"name\":");
        simbuf_add_jstr(&s->ev, a->name);
        simbuf_printf(&s->ev, ",\"entity_id\":\"%s\",\"source\":\"state of %s\"}", a->entity_id, e->entity_id);
        end_event(s, tf, run_ctx, trig_ctx, 0);
        int d = dispatch(s, "automation_triggered", NULL);
        account(s, d, a->entity_id, tf, run_ctx, NULL, "automation_triggered");

        sim_entity *t = find_entity(s, a->target);
        if (!t) continue;
        char dom[64];
        domain_of(t->entity_id, dom, sizeof dom);
        fire_call_service(s, dom, a->service, t->entity_id, run_ctx, trig_ctx, 0);
        const char *to = strcmp(a->service, "turn_off") == 0 ? "off" : "on";
        cause why = {run_ctx, trig_ctx, 0};
        change_entity(s, t, to, &why);
    }
}

/* One house-mode change of `e`, maybe as a user's service call. */
static void house_step(sim *s, sim_entity *e)
{
    if (e->p_user > 0 && !e->numeric && e->nstates == 2 && sim_rand01() < e->p_user) {
        const char *to = strcmp(e->cur.state, e->states[0]) == 0 ? e->states[1] : e->states[0];
        if (strcmp(to, "on") == 0 || strcmp(to, "off") == 0) {
            long long ts = next_ts(s);
            char ctx[27];
            sim_ulid(ts, ctx);
            fire_call_service(s, e->service_domain, strcmp(to, "on") == 0 ? "turn_on" : "turn_off",
                              e->entity_id, ctx, NULL, 1);
            cause why = {ctx, NULL, 1};
            if (change_entity(s, e, to, &why)) run_automations(s, e);
            return;
        }
    }
    if (change_entity(s, e, NULL, NULL)) run_automations(s, e);
}

/* ---- generation loop --------------------------------------------------------- */

void house_flush(sim *s) { flush_batches(s); }

void house_fire(sim *s, const char *event_type, const char *data)
{
    long long ts = next_ts(s);
    char tf[40], ctx[27];
    sim_isotime(ts, tf);
    sim_ulid(ts, ctx);
    begin_event(s, event_type);
    simbuf_adds(&s->ev, data);
    end_event(s, tf, ctx, NULL, 0);
    dispatch(s, event_type, NULL);
}

/* The event_type an injected body names, so it is routed as HA would route it.
 * The body may be deliberately odd JSON (a test plays a broken HA), which no
 * parser accepts, so this reads the first "event_type":"..." member as text.
 * NULL when there is none: such a body then goes only to subscriptions of
 * every event type. Caller frees. */
static char *inject_event_type(const char *event, size_t len)
{
    static const char key[] = "\"event_type\"";
    const char *end = event + len;
    for (const char *p = event; p && p + sizeof key - 1 < end;
         p = memchr(p + 1, '"', (size_t)(end - p - 1))) {
        if (memcmp(p, key, sizeof key - 1) != 0) continue;
        const char *q = p + sizeof key - 1;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')) q++;
        if (q >= end || *q++ != ':') continue;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')) q++;
        if (q >= end || *q++ != '"') continue;
        const char *e = memchr(q, '"', (size_t)(end - q));
        return e ? strndup(q, (size_t)(e - q)) : NULL;
    }
    return NULL;
}

int house_inject(sim *s, const char *event, size_t len)
{
    int n = 0;
    simbuf m = {0};
    char *type = inject_event_type(event, len);
    flush_batches(s); /* after everything already queued, in order */
    for (sim_client *c = s->clients; c; c = c->next) {
        if (!c->authed || c->closing) continue;
        for (size_t i = 0; i < c->nsubs; i++) {
            if (c->subs[i].kind != SUB_EVENTS) continue;
            /* as dispatch(): a typed subscription hears only its own type */
            if (c->subs[i].event_type && (!type || strcmp(c->subs[i].event_type, type) != 0)) continue;
            m.len = 0;
            simbuf_adds(&m, "{\"type\":\"event\",\"event\":");
            simbuf_add(&m, event, len);
            simbuf_printf(&m, ",\"id\":%lld}", c->subs[i].id);
            ws_send_text(c->ws, m.p, m.len);
            n++;
        }
    }
    simbuf_free(&m);
    free(type);
    return n;
}

int house_generating(const sim *s)
{
    return !s->paused && !count_reached(s) && (s->always_on || proto_subscribed_clients(s) > 0);
}

static int over_backpressure(sim *s)
{
    for (sim_client *c = s->clients; c; c = c->next)
        if (c->nsubs && ws_pending_bytes(c->ws) > SIM_BACKPRESSURE_BYTES) return 1;
    return 0;
}

static void gen_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    house_tick(arg);
}

void house_start_stop(sim *s)
{
    if (!s->gen_timer) {
        s->gen_timer = event_new(s->base, -1, EV_PERSIST, gen_cb, s);
        if (!s->gen_timer) return;
    }
    int on = house_generating(s);
    int pending = event_pending(s->gen_timer, EV_TIMEOUT, NULL);
    if (on && !pending) {
        struct timeval tv = {s->tick_us / 1000000, s->tick_us % 1000000};
        s->last_tick_mono = 0;
        s->credit = 0;
        long long now = service_mono_us();
        /* resume: nobody heard the house while unsubscribed; spread restarts */
        for (size_t i = 0; i < s->nentities; i++) {
            sim_entity *e = &s->entities[i];
            if (e->next_due < now)
                e->next_due = now + (long long)(sim_rand01() * e->interval_s * 1e6);
        }
        event_add(s->gen_timer, &tv);
    } else if (!on && pending) {
        event_del(s->gen_timer);
        s->backpressure = 0;
    }
}

void house_tick(sim *s)
{
    if (!house_generating(s)) {
        house_start_stop(s);
        return;
    }
    long long now = service_mono_us();
    if (over_backpressure(s)) {
        if (!s->backpressure) s->paused_backpressure++;
        s->backpressure = 1;
        s->last_tick_mono = now; /* no catching up afterwards */
        return;
    }
    s->backpressure = 0;
    if (s->load_mode) {
        if (!s->last_tick_mono) s->last_tick_mono = now - s->tick_us;
        s->credit += (double)s->rate * (double)(now - s->last_tick_mono) / 1e6;
        /* catch up at most 50 ms (or 4 ticks) of timer lateness, never more */
        double window = s->tick_us * 4 > 50000 ? s->tick_us * 4 : 50000;
        double cap = (double)s->rate * window / 1e6 + 1;
        if (s->credit > cap) s->credit = cap;
        s->last_tick_mono = now;
        int n = 0;
        while (s->credit >= 1 && !count_reached(s)) {
            sim_entity *e = &s->entities[s->rr++ % s->nentities];
            change_entity(s, e, NULL, NULL);
            s->credit -= 1;
            /* big ticks: look at the queues again every 256 events */
            if ((++n & 255) == 0) {
                flush_batches(s);
                if (over_backpressure(s)) {
                    s->paused_backpressure++;
                    s->backpressure = 1;
                    break;
                }
            }
        }
    } else {
        for (size_t i = 0; i < s->nentities && !count_reached(s); i++) {
            sim_entity *e = &s->entities[i];
            if (e->next_due > now) continue;
            e->next_due = now + (long long)(e->interval_s * (0.7 + 0.6 * sim_rand01()) * 1e6);
            house_step(s, e);
        }
    }
    flush_batches(s);
    if (count_reached(s)) {
        log_info("count reached: %lld events sent; generation stopped", s->sent);
        if (s->sent_log) fflush(s->sent_log);
        house_start_stop(s);
    }
}

/* ---- snapshots for commands ------------------------------------------------- */

void house_rebuild_state(sim *s, sim_entity *e) { build_state_json(s, e, &e->cur); }

void house_states_json(sim *s, simbuf *out)
{
    simbuf_adds(out, "[");
    for (size_t i = 0; i < s->nentities; i++) {
        if (i) simbuf_adds(out, ",");
        simbuf_adds(out, s->entities[i].cur.state_json);
    }
    simbuf_adds(out, "]");
}

void house_entities_snapshot(sim *s, const sim_sub *sub, simbuf *out)
{
    simbuf_adds(out, "{\"a\":{");
    int first = 1;
    for (size_t i = 0; i < s->nentities; i++) {
        sim_entity *e = &s->entities[i];
        if (!entity_in_sub(sub, e->entity_id)) continue;
        if (!first) simbuf_adds(out, ",");
        first = 0;
        simbuf_add_jstr(out, e->entity_id);
        simbuf_adds(out, ":");
        add_compressed_state(s, out, e);
    }
    simbuf_adds(out, "}}");
}
