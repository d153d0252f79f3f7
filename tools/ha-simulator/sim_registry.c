/* sim_registry.c -- the simulator's entity, device, area, floor and label registries.
 *
 * Why: HomeIQ puts area/floor/device/labels on every event (issue 11); it reads them
 * with HA's five `config/<kind>_registry/list` commands and follows the `<kind>_registry_updated`
 * events. This module serves those commands in HA's shapes (ha-websocket-protocol.md
 * section 1.5: every field HA sends, nulls included), and lets a test change the house
 * the way a user does in HA's UI -- move an entity or a device to another area, rename
 * an area, add a label -- each change firing the event HA fires, in order with the
 * state changes (house_fire). Two modes play other installations: "old" (an HA before
 * 2024.4: no floor/label registries, no floor_id/labels members), "user" (a
 * non-admin token: every list command is refused with `unauthorized`) and "mute" (the
 * list commands are never answered: a stuck HA, for REGISTRY_HOLD_MAX_MS).
 *
 * Ownership: the registries are jansson arrays in struct sim (reg_*), built once from
 * the scenario's "registry" section by reg_load, freed by reg_free. */
#include "sim.h"

#include "log.h"
#include "service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- building the entries ------------------------------------------------------------ */

/* HA's created_at / modified_at are float epoch seconds. */
static double reg_now(void) { return (double)service_now_us() / 1e6; }

/* 32 lowercase hex characters derived from `s` (HA's ids are uuid4 hex; these are stable). */
static void reg_hex_id(const char *s, char out[33])
{
    uint64_t h1 = 1469598103934665603ULL, h2 = 1099511628211ULL * 31;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h1 = (h1 ^ *p) * 1099511628211ULL;
        h2 = (h2 ^ *p) * 0x100000001b3ULL + 0x9e3779b97f4a7c15ULL;
    }
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h1, (unsigned long long)h2);
}

/* Copies `src` over a fresh object with HA's members; keys absent from src get `defaults`. */
static json_t *reg_entry(json_t *src, const char *defaults)
{
    json_t *o = json_loads(defaults, 0, NULL);
    if (!o) return NULL;
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v) json_object_set(o, k, v);
    double now = reg_now();
    json_object_set_new(o, "created_at", json_real(now - 86400.0 * 30));
    json_object_set_new(o, "modified_at", json_real(now - 86400.0));
    return o;
}

#define REG_FLOOR_DEFAULTS "{\"aliases\":[],\"floor_id\":null,\"icon\":null,\"level\":null,\"name\":null}"
#define REG_AREA_DEFAULTS                                                                                    \
    "{\"aliases\":[],\"area_id\":null,\"floor_id\":null,\"humidity_entity_id\":null,\"icon\":null,"         \
    "\"labels\":[],\"name\":null,\"picture\":null,\"temperature_entity_id\":null}"
#define REG_LABEL_DEFAULTS "{\"color\":null,\"description\":null,\"icon\":null,\"label_id\":null,\"name\":null}"
#define REG_DEVICE_DEFAULTS                                                                                  \
    "{\"area_id\":null,\"configuration_url\":null,\"config_entries\":[],\"config_entries_subentries\":{},"   \
    "\"connections\":[],\"disabled_by\":null,\"entry_type\":null,\"hw_version\":null,\"id\":null,"          \
    "\"identifiers\":[],\"labels\":[],\"manufacturer\":null,\"model\":null,\"model_id\":null,"               \
    "\"name_by_user\":null,\"name\":null,\"primary_config_entry\":null,\"serial_number\":null,"               \
    "\"sw_version\":null,\"via_device_id\":null}"
#define REG_ENTITY_DEFAULTS                                                                                  \
    "{\"area_id\":null,\"categories\":{},\"config_entry_id\":null,\"config_subentry_id\":null,"              \
    "\"device_id\":null,\"disabled_by\":null,\"entity_category\":null,\"entity_id\":null,"                   \
    "\"has_entity_name\":false,\"hidden_by\":null,\"icon\":null,\"id\":null,\"labels\":[],\"name\":null,"    \
    "\"options\":{},\"original_name\":null,\"platform\":null,\"translation_key\":null,\"unique_id\":null}"

static json_t *reg_list(json_t *src, const char *defaults)
{
    json_t *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(src, i, v) if (json_is_object(v)) json_array_append_new(out, reg_entry(v, defaults));
    return out;
}

/* The device (in the scenario) listing entity_id, or NULL. */
static json_t *reg_scenario_device_of(json_t *devices, const char *entity_id)
{
    size_t i, j;
    json_t *d, *e;
    json_array_foreach(devices, i, d) json_array_foreach(json_object_get(d, "entities"), j, e) if (
        json_is_string(e) && !strcmp(json_string_value(e), entity_id)) return d;
    return NULL;
}

static void reg_build_devices(sim *s, json_t *devices)
{
    size_t i;
    json_t *d;
    json_array_foreach(devices, i, d) {
        json_t *o = reg_entry(d, REG_DEVICE_DEFAULTS);
        json_object_del(o, "entities");
        json_object_del(o, "platform");
        const char *platform = json_string_value(json_object_get(d, "platform"));
        const char *id = json_string_value(json_object_get(d, "id"));
        char entry[33];
        reg_hex_id(platform ? platform : "entry", entry);
        json_object_set_new(o, "config_entries", json_pack("[s]", entry));
        json_object_set_new(o, "primary_config_entry", json_string(entry));
        json_object_set_new(o, "identifiers", json_pack("[[s,s]]", platform ? platform : "sim", id ? id : ""));
        json_object_set_new(o, "sw_version", json_string("1.0.0"));
        json_array_append_new(s->reg_devices, o);
    }
}

static void reg_build_entities(sim *s, json_t *devices, json_t *overrides)
{
    for (size_t i = 0; i < s->nentities; i++) {
        const char *eid = s->entities[i].entity_id;
        json_t *dev = reg_scenario_device_of(devices, eid);
        json_t *ov = json_object_get(overrides, eid);
        json_t *o = reg_entry(json_is_object(ov) ? ov : NULL, REG_ENTITY_DEFAULTS);
        char dom[64], id[33], uid[33], entry[33];
        snprintf(dom, sizeof dom, "%.*s", (int)strcspn(eid, "."), eid);
        const char *platform = json_string_value(json_object_get(ov, "platform"));
        if (!platform && dev) platform = json_string_value(json_object_get(dev, "platform"));
        if (!platform) platform = dom;
        reg_hex_id(eid, id);
        snprintf(uid, sizeof uid, "%.32s", id + 3);
        reg_hex_id(platform, entry);
        json_object_set_new(o, "entity_id", json_string(eid));
        json_object_set_new(o, "id", json_string(id));
        json_object_set_new(o, "unique_id", json_string(uid));
        json_object_set_new(o, "platform", json_string(platform));
        json_object_set_new(o, "config_entry_id", json_string(entry));
        if (dev) {
            json_object_set(o, "device_id", json_object_get(dev, "id"));
            json_object_set_new(o, "has_entity_name", json_true());
        }
        json_array_append_new(s->reg_entities, o);
    }
}

int reg_load(sim *s, json_t *root)
{
    json_t *r = json_object_get(root, "registry");
    s->reg_floors = reg_list(json_object_get(r, "floors"), REG_FLOOR_DEFAULTS);
    s->reg_areas = reg_list(json_object_get(r, "areas"), REG_AREA_DEFAULTS);
    s->reg_labels = reg_list(json_object_get(r, "labels"), REG_LABEL_DEFAULTS);
    s->reg_devices = json_array();
    s->reg_entities = json_array();
    if (!s->reg_floors || !s->reg_areas || !s->reg_labels || !s->reg_devices || !s->reg_entities) return -1;
    reg_build_devices(s, json_object_get(r, "devices"));
    reg_build_entities(s, json_object_get(r, "devices"), json_object_get(r, "entities"));
    log_info("registry: %zu floors, %zu areas, %zu labels, %zu devices, %zu entities",
             json_array_size(s->reg_floors), json_array_size(s->reg_areas), json_array_size(s->reg_labels),
             json_array_size(s->reg_devices), json_array_size(s->reg_entities));
    return 0;
}

void reg_free(sim *s)
{
    json_decref(s->reg_floors);
    json_decref(s->reg_areas);
    json_decref(s->reg_labels);
    json_decref(s->reg_devices);
    json_decref(s->reg_entities);
}

/* ---- the list commands ---------------------------------------------------------------- */

/* The entry of `list` whose `key` is `id`, or NULL. */
static json_t *reg_find(json_t *list, const char *key, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        const char *k = json_string_value(json_object_get(v, key));
        if (k && !strcmp(k, id)) return v;
    }
    return NULL;
}

/* The list as this installation would answer it: "old" HA has no floor_id/labels. */
static json_t *reg_view(const sim *s, json_t *list)
{
    if (s->reg_mode != SIM_REG_OLD) return json_incref(list);
    json_t *out = json_deep_copy(list);
    size_t i;
    json_t *v;
    json_array_foreach(out, i, v) {
        json_object_del(v, "floor_id");
        json_object_del(v, "labels");
        json_object_del(v, "categories");
    }
    return out;
}

void reg_command(sim_client *c, long long id, json_t *m)
{
    sim *s = c->s;
    const char *type = json_string_value(json_object_get(m, "type"));
    json_t *list = NULL;
    int newer = 0; /* floors and labels came with HA 2024.4 */
    if (!strcmp(type, "config/entity_registry/list")) list = s->reg_entities;
    else if (!strcmp(type, "config/device_registry/list")) list = s->reg_devices;
    else if (!strcmp(type, "config/area_registry/list")) list = s->reg_areas;
    else if (!strcmp(type, "config/floor_registry/list")) list = s->reg_floors, newer = 1;
    else if (!strcmp(type, "config/label_registry/list")) list = s->reg_labels, newer = 1;
    s->reg_calls++;
    if (!list || (newer && s->reg_mode == SIM_REG_OLD)) {
        proto_send_error(c, id, "unknown_command", "Unknown command.");
        return;
    }
    if (s->reg_mode == SIM_REG_USER) {
        proto_send_error(c, id, "unauthorized", "Unauthorized");
        return;
    }
    if (s->reg_mode == SIM_REG_MUTE) return; /* an HA that never answers: tests REGISTRY_HOLD_MAX_MS */
    json_t *view = reg_view(s, list);
    char *text = json_dumps(view, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(view);
    simbuf r = {0};
    simbuf_printf(&r, "{\"id\":%lld,\"type\":\"result\",\"success\":true,\"result\":%s}", id, text ? text : "[]");
    house_flush(s); /* HA answers in order with the events it fired before */
    proto_send_reply(c, r.p, r.len);
    simbuf_free(&r);
    free(text);
}

/* ---- changes (POST /api/sim/registry/...) ---------------------------------------------- */

/* The event HA fires after a change: {"action":"update",<key>:<id>,"changes":{<field>:<old value>}}. */
static void reg_fire(sim *s, const char *event_type, const char *action, const char *key, const char *id,
                     const char *field, json_t *old)
{
    json_t *data = json_pack("{s:s,s:s}", "action", action, key, id);
    if (field) json_object_set_new(data, "changes", json_pack("{s:O}", field, old ? old : json_null()));
    char *text = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (text) house_fire(s, event_type, text);
    free(text);
    s->reg_changes++;
}

static void reg_touch(json_t *o) { json_object_set_new(o, "modified_at", json_real(reg_now())); }

/* area_id value: "none" = null; else it must be a known area. */
static int reg_area_value(sim *s, const char *v, json_t **out)
{
    if (!strcmp(v, "none")) return *out = json_null(), 0;
    if (!reg_find(s->reg_areas, "area_id", v)) return -1;
    *out = json_string(v);
    return 0;
}

/* "%20" and "+" in a path segment (area names). */
static void reg_unescape(char *p)
{
    char *o = p;
    for (; *p; p++) {
        if (*p == '+') *o++ = ' ';
        else if (*p == '%' && p[1] && p[2]) {
            char hex[3] = {p[1], p[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            p += 2;
        } else *o++ = *p;
    }
    *o = '\0';
}

static int reg_set_area(sim *s, json_t *list, json_t *entry, const char *event_type, const char *key,
                        const char *area, simbuf *out)
{
    (void)list;
    json_t *nv;
    if (reg_area_value(s, area, &nv) != 0) {
        simbuf_printf(out, "{\"message\":\"unknown area\"}");
        return 404;
    }
    json_t *old = json_incref(json_object_get(entry, "area_id"));
    json_object_set_new(entry, "area_id", nv);
    reg_touch(entry);
    const char *id = json_string_value(json_object_get(entry, key));
    reg_fire(s, event_type, "update", !strcmp(key, "entity_id") ? "entity_id" : "device_id", id, "area_id", old);
    json_decref(old);
    log_info("registry: %s moved to area %s", id, area);
    simbuf_printf(out, "{\"%s\":\"%s\",\"area_id\":\"%s\"}", !strcmp(key, "entity_id") ? "entity_id" : "device_id",
                id, area);
    return 200;
}

static int reg_add_label(sim *s, const char *eid, const char *label, simbuf *out)
{
    json_t *e = reg_find(s->reg_entities, "entity_id", eid);
    if (!e) return simbuf_adds(out, "{\"message\":\"unknown entity\"}"), 404;
    if (!reg_find(s->reg_labels, "label_id", label)) {
        json_t *src = json_pack("{s:s,s:s}", "label_id", label, "name", label);
        json_array_append_new(s->reg_labels, reg_entry(src, REG_LABEL_DEFAULTS));
        json_decref(src);
        reg_fire(s, "label_registry_updated", "create", "label_id", label, NULL, NULL);
    }
    json_t *labels = json_object_get(e, "labels");
    json_t *old = json_deep_copy(labels);
    size_t i;
    json_t *v;
    int have = 0;
    json_array_foreach(labels, i, v) have |= !strcmp(json_string_value(v) ? json_string_value(v) : "", label);
    if (!have) json_array_append_new(labels, json_string(label));
    reg_touch(e);
    reg_fire(s, "entity_registry_updated", "update", "entity_id", eid, "labels", old);
    json_decref(old);
    simbuf_printf(out, "{\"entity_id\":\"%s\",\"label_id\":\"%s\"}", eid, label);
    return 200;
}

static int reg_rename_area(sim *s, const char *area, char *name, simbuf *out)
{
    json_t *a = reg_find(s->reg_areas, "area_id", area);
    if (!a) return simbuf_adds(out, "{\"message\":\"unknown area\"}"), 404;
    reg_unescape(name);
    json_object_set_new(a, "name", json_string(name));
    reg_touch(a);
    reg_fire(s, "area_registry_updated", "update", "area_id", area, NULL, NULL);
    simbuf_printf(out, "{\"area_id\":\"%s\"}", area);
    return 200;
}

static int reg_set_mode(sim *s, const char *mode, simbuf *out)
{
    if (!strcmp(mode, "full")) s->reg_mode = SIM_REG_FULL;
    else if (!strcmp(mode, "old")) s->reg_mode = SIM_REG_OLD;
    else if (!strcmp(mode, "user")) s->reg_mode = SIM_REG_USER;
    else if (!strcmp(mode, "mute")) s->reg_mode = SIM_REG_MUTE;
    else return simbuf_adds(out, "{\"message\":\"mode: full, old, user or mute\"}"), 400;
    log_info("registry: mode %s", mode);
    simbuf_printf(out, "{\"mode\":\"%s\"}", mode);
    return 200;
}

/* what: "entity/<eid>/area/<area|none>", "device/<id>/area/<area|none>",
 * "area/<area>/name/<name>", "entity/<eid>/label/<label>", "mode/<full|old|user|mute>". */
int reg_control(sim *s, const char *what, simbuf *out)
{
    char buf[512], *part[4] = {0};
    int n = 0;
    snprintf(buf, sizeof buf, "%s", what);
    for (char *save = NULL, *t = strtok_r(buf, "/", &save); t && n < 4; t = strtok_r(NULL, "/", &save)) part[n++] = t;
    if (n == 2 && !strcmp(part[0], "mode")) return reg_set_mode(s, part[1], out);
    if (n == 4 && !strcmp(part[0], "entity") && !strcmp(part[2], "area")) {
        json_t *e = reg_find(s->reg_entities, "entity_id", part[1]);
        if (!e) return simbuf_adds(out, "{\"message\":\"unknown entity\"}"), 404;
        return reg_set_area(s, s->reg_entities, e, "entity_registry_updated", "entity_id", part[3], out);
    }
    if (n == 4 && !strcmp(part[0], "device") && !strcmp(part[2], "area")) {
        json_t *d = reg_find(s->reg_devices, "id", part[1]);
        if (!d) return simbuf_adds(out, "{\"message\":\"unknown device\"}"), 404;
        return reg_set_area(s, s->reg_devices, d, "device_registry_updated", "id", part[3], out);
    }
    if (n == 4 && !strcmp(part[0], "entity") && !strcmp(part[2], "label")) return reg_add_label(s, part[1], part[3], out);
    if (n == 4 && !strcmp(part[0], "area") && !strcmp(part[2], "name")) return reg_rename_area(s, part[1], part[3], out);
    simbuf_adds(out, "{\"message\":\"expected entity/<id>/area/<area>, device/<id>/area/<area>, "
                   "entity/<id>/label/<label>, area/<id>/name/<name> or mode/<full|old|user|mute>\"}");
    return 404;
}
