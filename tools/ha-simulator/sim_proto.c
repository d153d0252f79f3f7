/* sim_proto.c -- the Home Assistant WebSocket API as seen by one client:
 * auth phase, command phase with HA's id/shape/error rules, subscriptions.
 *
 * Why it follows HA so literally (error codes, messages, the order of the
 * checks in ActiveConnection.async_handle): the simulator exists to test real
 * HA clients, ours and the official JS one, so any leniency here would hide
 * bugs that a real Home Assistant would expose. */
#include "sim.h"

#include "log.h"

#include <stdlib.h>
#include <string.h>

static void on_text(ws_conn *ws, const char *msg, size_t len, void *arg);
static void on_close(ws_conn *ws, int code, const char *reason, void *arg);

const ws_callbacks proto_ws_callbacks = {
    .on_open = NULL,
    .on_text = on_text,
    .on_close = on_close,
};

/* ---- client list -------------------------------------------------------------- */

static void auth_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sim_client *c = arg;
    if (c->authed || c->closing) return;
    log_info("client did not authenticate within 10 s; closing");
    c->closing = 1;
    ws_close(c->ws, 1000, NULL);
}

sim_client *proto_client_new(sim *s)
{
    sim_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->s = s;
    c->auth_timer = evtimer_new(s->base, auth_timeout_cb, c);
    if (!c->auth_timer) {
        free(c);
        return NULL;
    }
    c->next = s->clients;
    if (s->clients) s->clients->prev = c;
    s->clients = c;
    s->connections_total++;
    return c;
}

void proto_client_start(sim_client *c)
{
    static const char msg[] = "{\"type\":\"auth_required\",\"ha_version\":\"" SIM_HA_VERSION "\"}";
    struct timeval tv = {10, 0};
    evtimer_add(c->auth_timer, &tv);
    ws_send_text(c->ws, msg, sizeof msg - 1);
}

static void sub_free(sim_sub *sub)
{
    free(sub->event_type);
    for (size_t i = 0; i < sub->nentity_ids; i++) free(sub->entity_ids[i]);
    free(sub->entity_ids);
}

void proto_client_free(sim_client *c)
{
    sim *s = c->s;
    if (c->prev) c->prev->next = c->next;
    else s->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    for (size_t i = 0; i < c->nsubs; i++) sub_free(&c->subs[i]);
    free(c->subs);
    simbuf_free(&c->batch);
    event_free(c->auth_timer);
    ws_free(c->ws);
    free(c);
}

void proto_drop_all(sim *s)
{
    while (s->clients) {
        proto_client_free(s->clients);
        s->drops++;
    }
    house_start_stop(s);
}

int proto_subscribed_clients(const sim *s)
{
    int n = 0;
    for (const sim_client *c = s->clients; c; c = c->next)
        if (c->authed && !c->closing && c->nsubs) n++;
    return n;
}

long long proto_subscriptions(const sim *s)
{
    long long n = 0;
    for (const sim_client *c = s->clients; c; c = c->next) n += (long long)c->nsubs;
    return n;
}

/* ---- replies ------------------------------------------------------------------------ */

void proto_send_reply(sim_client *c, const char *msg, size_t len)
{
    if (!c->closing) ws_send_text(c->ws, msg, len);
}

static void send_result(sim_client *c, long long id, const char *result)
{
    simbuf *b = &c->s->tmp;
    b->len = 0;
    simbuf_printf(b, "{\"id\":%lld,\"type\":\"result\",\"success\":true,\"result\":", id);
    simbuf_adds(b, result ? result : "null");
    simbuf_adds(b, "}");
    proto_send_reply(c, b->p, b->len);
}

/* id_json: the raw id as JSON text ("null" when absent) */
static void send_error_raw(sim_client *c, const char *id_json, const char *code, const char *message)
{
    simbuf b = {0};
    simbuf_printf(&b, "{\"id\":%s,\"type\":\"result\",\"success\":false,\"error\":{\"code\":\"%s\",\"message\":", id_json,
                code);
    simbuf_add_jstr(&b, message);
    simbuf_adds(&b, "}}");
    proto_send_reply(c, b.p, b.len);
    simbuf_free(&b);
}

static void send_error(sim_client *c, long long id, const char *code, const char *message)
{
    char idj[32];
    snprintf(idj, sizeof idj, "%lld", id);
    send_error_raw(c, idj, code, message);
}

void proto_send_error(sim_client *c, long long id, const char *code, const char *message)
{
    send_error(c, id, code, message);
}

/* ---- auth phase ---------------------------------------------------------------------- */

static void auth_fail(sim_client *c, const char *message)
{
    simbuf b = {0};
    simbuf_adds(&b, "{\"type\":\"auth_invalid\",\"message\":");
    simbuf_add_jstr(&b, message);
    simbuf_adds(&b, "}");
    proto_send_reply(c, b.p, b.len);
    simbuf_free(&b);
    c->closing = 1;
    ws_close(c->ws, 1000, NULL);
}

static int token_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la && i < lb; i++) diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

static void handle_auth(sim_client *c, json_t *m)
{
    if (!json_is_object(m)) {
        auth_fail(c, "Auth message incorrectly formatted: expected a dictionary");
        return;
    }
    const char *k;
    json_t *v;
    char why[200];
    json_object_foreach(m, k, v) {
        if (strcmp(k, "type") && strcmp(k, "access_token") && strcmp(k, "api_password")) {
            snprintf(why, sizeof why, "Auth message incorrectly formatted: extra keys not allowed @ data['%.80s']", k);
            auth_fail(c, why);
            return;
        }
    }
    const char *type = json_string_value(json_object_get(m, "type"));
    if (!type || strcmp(type, "auth") != 0) {
        auth_fail(c, "Auth message incorrectly formatted: value must be one of ['auth'] for dictionary value @ "
                     "data['type']");
        return;
    }
    json_t *tok = json_object_get(m, "access_token");
    if (tok && json_object_get(m, "api_password")) {
        auth_fail(c, "Auth message incorrectly formatted: two or more values in the same group of exclusion "
                     "'login' @ data[<login>]");
        return;
    }
    if (!json_is_string(tok) || !token_equal(json_string_value(tok), c->s->token)) {
        log_info("client sent an invalid access token");
        auth_fail(c, "Invalid access token or password");
        return;
    }
    c->authed = 1;
    evtimer_del(c->auth_timer);
    static const char ok[] = "{\"type\":\"auth_ok\",\"ha_version\":\"" SIM_HA_VERSION "\"}";
    proto_send_reply(c, ok, sizeof ok - 1);
    log_info("client authenticated");
}

/* ---- command phase --------------------------------------------------------------------- */

/* "extra keys not allowed" check; allowed is a NULL-terminated list besides id/type */
static int check_keys(sim_client *c, long long id, json_t *m, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v) {
        if (!strcmp(k, "id") || !strcmp(k, "type")) continue;
        int ok = 0;
        for (const char *const *a = allowed; a && *a; a++)
            if (!strcmp(*a, k)) ok = 1;
        if (!ok) {
            char why[160];
            snprintf(why, sizeof why, "extra keys not allowed @ data['%.80s']", k);
            send_error(c, id, "invalid_format", why);
            return -1;
        }
    }
    return 0;
}

static sim_sub *add_sub(sim_client *c, long long id, sub_kind kind)
{
    if (c->nsubs == c->capsubs) {
        size_t cap = c->capsubs ? c->capsubs * 2 : 4;
        sim_sub *p = realloc(c->subs, cap * sizeof *p);
        if (!p) return NULL;
        c->subs = p;
        c->capsubs = cap;
    }
    sim_sub *sub = &c->subs[c->nsubs++];
    memset(sub, 0, sizeof *sub);
    sub->id = id;
    sub->kind = kind;
    return sub;
}

static void cmd_ping(sim_client *c, long long id, json_t *m)
{
    (void)m;
    char buf[64];
    int n = snprintf(buf, sizeof buf, "{\"id\":%lld,\"type\":\"pong\"}", id);
    proto_send_reply(c, buf, (size_t)n);
}

static void cmd_supported_features(sim_client *c, long long id, json_t *m)
{
    static const char *const keys[] = {"features", NULL};
    if (check_keys(c, id, m, keys)) return;
    json_t *f = json_object_get(m, "features");
    if (!json_is_object(f)) {
        send_error(c, id, "invalid_format",
                   f ? "expected dict for dictionary value @ data['features']"
                     : "required key not provided @ data['features']. Got None");
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(f, k, v) {
        if (!json_is_integer(v)) {
            char why[160];
            snprintf(why, sizeof why, "expected int for dictionary value @ data['features']['%.60s']", k);
            send_error(c, id, "invalid_format", why);
            return;
        }
    }
    json_t *co = json_object_get(f, "coalesce_messages");
    c->coalesce = json_is_integer(co) && json_integer_value(co) != 0;
    send_result(c, id, NULL);
}

static void cmd_subscribe_events(sim_client *c, long long id, json_t *m)
{
    static const char *const keys[] = {"event_type", NULL};
    if (check_keys(c, id, m, keys)) return;
    json_t *et = json_object_get(m, "event_type");
    if (et && !json_is_string(et)) {
        send_error(c, id, "invalid_format", "expected str for dictionary value @ data['event_type']");
        return;
    }
    sim_sub *sub = add_sub(c, id, SUB_EVENTS);
    if (!sub) {
        send_error(c, id, "unknown_error", "Unknown error");
        return;
    }
    const char *t = et ? json_string_value(et) : "*";
    sub->event_type = strcmp(t, "*") == 0 ? NULL : strdup(t);
    send_result(c, id, NULL);
    house_start_stop(c->s);
}

static void cmd_unsubscribe_events(sim_client *c, long long id, json_t *m)
{
    static const char *const keys[] = {"subscription", NULL};
    if (check_keys(c, id, m, keys)) return;
    json_t *sj = json_object_get(m, "subscription");
    if (!json_is_integer(sj)) {
        send_error(c, id, "invalid_format",
                   sj ? "expected int for dictionary value @ data['subscription']"
                      : "required key not provided @ data['subscription']. Got None");
        return;
    }
    long long sid = json_integer_value(sj);
    for (size_t i = 0; i < c->nsubs; i++) {
        if (c->subs[i].id != sid) continue;
        sub_free(&c->subs[i]);
        memmove(&c->subs[i], &c->subs[i + 1], (c->nsubs - i - 1) * sizeof *c->subs);
        c->nsubs--;
        send_result(c, id, NULL);
        house_start_stop(c->s);
        return;
    }
    send_error(c, id, "not_found", "Subscription not found.");
}

static void cmd_subscribe_entities(sim_client *c, long long id, json_t *m)
{
    static const char *const keys[] = {"entity_ids", "include", "exclude", NULL};
    if (check_keys(c, id, m, keys)) return;
    json_t *ids = json_object_get(m, "entity_ids");
    if (ids && !json_is_array(ids)) {
        send_error(c, id, "invalid_format", "expected a list for dictionary value @ data['entity_ids']");
        return;
    }
    sim_sub *sub = add_sub(c, id, SUB_ENTITIES);
    if (!sub) return;
    if (ids) {
        sub->nentity_ids = json_array_size(ids);
        sub->entity_ids = calloc(sub->nentity_ids ? sub->nentity_ids : 1, sizeof *sub->entity_ids);
        for (size_t i = 0; i < sub->nentity_ids; i++) {
            const char *e = json_string_value(json_array_get(ids, i));
            sub->entity_ids[i] = strdup(e ? e : "");
        }
    }
    send_result(c, id, NULL);
    simbuf b = {0};
    simbuf_adds(&b, "{\"type\":\"event\",\"event\":");
    house_entities_snapshot(c->s, sub, &b);
    simbuf_printf(&b, ",\"id\":%lld}", id);
    proto_send_reply(c, b.p, b.len);
    simbuf_free(&b);
    house_start_stop(c->s);
}

static void cmd_get_states(sim_client *c, long long id, json_t *m)
{
    (void)m;
    simbuf b = {0};
    house_states_json(c->s, &b);
    simbuf r = {0};
    simbuf_printf(&r, "{\"id\":%lld,\"type\":\"result\",\"success\":true,\"result\":", id);
    simbuf_add(&r, b.p, b.len);
    simbuf_adds(&r, "}");
    proto_send_reply(c, r.p, r.len);
    simbuf_free(&b);
    simbuf_free(&r);
}

static void send_json_result(sim_client *c, long long id, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (!s) {
        send_error(c, id, "unknown_error", "Invalid JSON in response");
        return;
    }
    simbuf r = {0};
    simbuf_printf(&r, "{\"id\":%lld,\"type\":\"result\",\"success\":true,\"result\":", id);
    simbuf_adds(&r, s);
    simbuf_adds(&r, "}");
    proto_send_reply(c, r.p, r.len);
    simbuf_free(&r);
    free(s);
}

static void cmd_get_config(sim_client *c, long long id, json_t *m)
{
    (void)m;
    send_json_result(c, id, c->s->config_json);
}

static void cmd_get_services(sim_client *c, long long id, json_t *m)
{
    (void)m;
    send_json_result(c, id, c->s->services_json);
}

typedef struct command {
    const char *type;
    void (*fn)(sim_client *c, long long id, json_t *m);
    int type_only;   /* schema allows no other keys */
} command;

static const command COMMANDS[] = {
    {"ping", cmd_ping, 1},
    {"supported_features", cmd_supported_features, 0},
    {"subscribe_events", cmd_subscribe_events, 0},
    {"unsubscribe_events", cmd_unsubscribe_events, 0},
    {"subscribe_entities", cmd_subscribe_entities, 0},
    {"get_states", cmd_get_states, 1},
    {"get_config", cmd_get_config, 1},
    {"get_services", cmd_get_services, 1},
    {"history/history_during_period", hist_command, 0},
    {"config/entity_registry/list", reg_command, 1},
    {"config/device_registry/list", reg_command, 1},
    {"config/area_registry/list", reg_command, 1},
    {"config/floor_registry/list", reg_command, 1},
    {"config/label_registry/list", reg_command, 1},
    {NULL, NULL, 0},
};

static void handle_command(sim_client *c, json_t *m)
{
    if (c->closing) return;
    json_t *idj = json_is_object(m) ? json_object_get(m, "id") : NULL;
    json_t *tj = json_is_object(m) ? json_object_get(m, "type") : NULL;
    /* 1. shape */
    if (!json_is_object(m) || !json_is_integer(idj) || json_integer_value(idj) < 1 || !json_is_string(tj)
        || json_string_length(tj) == 0) {
        char *raw = idj ? json_dumps(idj, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
        send_error_raw(c, raw ? raw : "null", "invalid_format", "Message incorrectly formatted.");
        free(raw);
        return;
    }
    long long id = json_integer_value(idj);
    /* 2. id order */
    if (id <= c->last_id) {
        send_error(c, id, "id_reuse", "Identifier values have to increase.");
        return;
    }
    /* 3. lookup */
    const char *type = json_string_value(tj);
    const command *cmd = COMMANDS;
    while (cmd->type && strcmp(cmd->type, type) != 0) cmd++;
    if (cmd->fn == hist_command && !c->s->history_on) cmd = &COMMANDS[sizeof COMMANDS / sizeof *COMMANDS - 1];
    if (!cmd->type) {
        send_error(c, id, "unknown_command", "Unknown command.");
        return;
    }
    /* 4.-5. schema + handler; 6. bookkeeping */
    if (!cmd->type_only || check_keys(c, id, m, NULL) == 0) cmd->fn(c, id, m);
    c->last_id = id;
}

static void on_text(ws_conn *ws, const char *msg, size_t len, void *arg)
{
    (void)ws;
    sim_client *c = arg;
    if (c->closing) return;
    json_error_t err;
    json_t *m = json_loadb(msg, len, JSON_DECODE_ANY, &err);
    if (!m) {
        log_info("client sent invalid JSON (%s at position %d); closing", err.text, err.position);
        c->closing = 1;
        ws_close(c->ws, 1000, NULL);
        return;
    }
    if (!c->authed) {
        handle_auth(c, m);
    } else if (json_is_array(m)) {
        size_t i;
        json_t *el;
        json_array_foreach(m, i, el) handle_command(c, el);
    } else {
        handle_command(c, m);
    }
    json_decref(m);
}

static void on_close(ws_conn *ws, int code, const char *reason, void *arg)
{
    (void)ws;
    sim_client *c = arg;
    sim *s = c->s;
    log_info("client disconnected (%d%s%s)", code, *reason ? " " : "", reason);
    proto_client_free(c);   /* frees ws too */
    house_start_stop(s);
}
