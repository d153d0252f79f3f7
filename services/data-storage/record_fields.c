/* record_fields.c -- see record_fields.h. */
#include "record_fields.h"
#include "json_scan.h"

#include <string.h>

#define RF_NAME(s) {s, sizeof s - 1}
static const struct {
    const char *name;
    unsigned char len;
} rf_names[RF_N] = {
    RF_NAME("event_type"), RF_NAME("entity_id"), RF_NAME("state"), RF_NAME("value"), RF_NAME("state_class"),
    RF_NAME("attributes"), RF_NAME("area_id"), RF_NAME("area"), RF_NAME("floor_id"), RF_NAME("floor"),
    RF_NAME("device_id"), RF_NAME("device"), RF_NAME("manufacturer"), RF_NAME("model"), RF_NAME("labels"),
    RF_NAME("platform"), RF_NAME("entity_category"),
};
#undef RF_NAME

/* Called for each of a record's ~30 members: the length and first byte rule out almost
 * every other key before a compare. */
int record_fields_key(const char *k, size_t n) {
    for (int i = 0; i < RF_N; i++)
        if (rf_names[i].len == n && rf_names[i].name[0] == k[0] && memcmp(rf_names[i].name, k, n) == 0) return i;
    return -1;
}

const char *record_fields_name(int field) { return rf_names[field].name; }

typedef struct rf_walk {
    record_fields *f;
    const char *base;
} rf_walk;

static int rf_member(const char *k, size_t kl, const char *v, size_t vl, void *arg) {
    rf_walk *w = arg;
    int field = record_fields_key(k, kl);
    if (field >= 0) record_fields_note(w->f, field, (size_t)(v - w->base), vl);
    return 0;
}

int record_fields_scan(record_fields *f, const char *json, size_t len) {
    memset(f, 0, sizeof *f);
    rf_walk w = {f, json};
    if (jscan_first(json, len) != '{' || jscan_object_trusted(json, len, rf_member, &w) != 0) return -1;
    f->noted = 1;
    return 0;
}
