/* influx_ha.c -- see influx_ha.h. */
#include "influx_ha.h"
#include "ha_config.h"
#include "ha_point.h"
#include "influx_ids.h"
#include "influx_points.h"
#include "log.h"
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct influx_ha {
    ha_point_config cfg;
    unsigned long long counts[HA_POINT_NSKIP];
    metric *m[HA_POINT_NSKIP];
};

int influx_ha_open(influx_ha **out) {
    *out = NULL;
    influx_ha *h = calloc(1, sizeof *h);
    if (!h) return -1;
    int enabled = 0;
    if (ha_config_load(&h->cfg, &enabled) != 0) {
        free(h);
        return -1;
    }
    if (!enabled) {
        free(h);
        return 0;
    }
    for (int r = 0; r < HA_POINT_NSKIP; r++) {
        char label[48];
        snprintf(label, sizeof label, "result=\"%s\"", ha_point_result_name((ha_point_result)r));
        h->m[r] = metrics_counter("homeiq_storage_ha_points_total",
                                  "state_changed events by outcome on INFLUXDB_SCHEMA=homeassistant (written, or "
                                  "skipped as HA skips them: removed, unknown, unavailable, empty_state, excluded "
                                  "by the filter; error: dead-lettered).",
                                  label);
    }
    *out = h;
    return 0;
}

void influx_ha_free(influx_ha *h) {
    if (!h) return;
    ha_point_config_free(&h->cfg);
    free(h);
}

int influx_ha_owns(const influx_ha *h, const store_item *it) {
    return h && it->event_type && strcmp(it->event_type, "state_changed") == 0 && (it->record || it->json);
}

static void influx_ha_count(influx_ha *h, ha_point_result r) {
    h->counts[r]++;
    if (h->m[r]) metrics_add(h->m[r], 1);
}

influx_ha_result influx_ha_line(influx_ha *h, store_batch *b, store_item *it, sbuf *body) {
    if (!influx_ha_owns(h, it)) return INFLUX_HA_NOT_MINE;
    char err[200];
    /* a batch built from the request's text (store_text.c) has no tree: this one record's, only while its point is
       built, so a piece never holds a tree per record (issue 15) */
    json_t *parsed = it->record ? NULL : json_loadb(it->json, it->json_len, JSON_ALLOW_NUL, NULL);
    if (!it->record && !parsed) return INFLUX_HA_OOM; /* its text was validated: only out of memory */
    ha_point_result r = ha_point_build(&h->cfg, it->record ? it->record : parsed, it->time_us,
                                       influx_points_home_value(b->home_id), body, err, sizeof err);
    json_decref(parsed);
    influx_ha_count(h, r);
    if (r == HA_POINT_WRITTEN) return sbuf_failed(body) ? INFLUX_HA_OOM : INFLUX_HA_LINE;
    if (r != HA_POINT_ERROR) {
        it->status = STORE_ITEM_SKIPPED;
        b->skipped++;
        return INFLUX_HA_NO_LINE;
    }
    if (!strcmp(err, "out of memory")) return INFLUX_HA_OOM;
    char reason[300];
    snprintf(reason, sizeof reason, "homeassistant schema: %s", err);
    log_warn("event %d (%s) cannot be written as HA's point: %s", it->index, it->event_id, err);
    it->status = STORE_ITEM_REJECTED;
    free(it->error);
    it->error = strdup(reason);
    if (!it->error || store_batch_add_dead(b, "data-storage", reason, it->json) != 0) return INFLUX_HA_OOM;
    return INFLUX_HA_NO_LINE;
}

int influx_ha_query_from(const influx_ha *h, const store_filter *f, const char **from) {
    int sc = f->event_type && strcmp(f->event_type, "state_changed") == 0;
    if (!h || (f->event_type && !sc)) {
        *from = INFLUX_IDS_FROM_HOMEIQ;
        return 1;
    }
    *from = sc ? "\"" INFLUX_IDS_MEASUREMENT "\"" : INFLUX_IDS_FROM_HA;
    return sc ? 1 : 2;
}

void influx_ha_info(const influx_ha *h, json_t *o) {
    if (!o) return;
    json_object_set_new(o, "schema", json_string(h ? "homeassistant" : "homeiq"));
    if (!h) return;
    json_t *c = json_object();
    for (int r = 0; r < HA_POINT_NSKIP; r++)
        json_object_set_new(c, ha_point_result_name((ha_point_result)r), json_integer((json_int_t)h->counts[r]));
    json_object_set_new(o, "ha_points", c);
}
