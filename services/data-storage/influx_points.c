/* influx_points.c -- see influx_points.h. */
#include "influx_points.h"
#include "json_scan.h"
#include "lineproto.h"
#include "service.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ",key=<tag form of value>"; nothing when the value is NULL or empty
 * (InfluxDB has no empty tag values). */
static void influx_points_tag(sbuf *b, const char *key, const char *value) {
    if (!value || !*value) return;
    sbuf_addc(b, ',');
    sbuf_adds(b, key);
    sbuf_addc(b, '=');
    lineproto_tag(b, value);
}

/* ",key=<string field>". */
static void influx_points_field_str(sbuf *b, const char *key, const char *v, size_t n) {
    sbuf_addc(b, ',');
    sbuf_adds(b, key);
    sbuf_addc(b, '=');
    lineproto_field_string(b, v, n);
}

const char *influx_points_text_string(sbuf *scratch, const char *v, size_t n) {
    if (!v || !n || *v != '"') return NULL;
    sbuf_reset(scratch);
    jscan_string_decode(scratch, v, n);
    sbuf_addc(scratch, '\0');
    return sbuf_failed(scratch) ? NULL : scratch->data;
}

int influx_points_text_number(const char *v, size_t n, double *out) {
    if (!v || !n || (*v != '-' && (*v < '0' || *v > '9'))) return -1;
    /* A validated JSON number is followed by ',', '}', ']' or the record's NUL, none of which strtod/strtoll
     * read on. As jansson reads it: an integer (no '.', 'e', 'E') is a json_int_t made a double ("-0" is 0). */
    if (!memchr(v, '.', n) && !memchr(v, 'e', n) && !memchr(v, 'E', n)) {
        errno = 0;
        long long ll = strtoll(v, NULL, 10);
        if (errno == 0) {
            *out = (double)ll;
            return 0;
        }
    }
    *out = strtod(v, NULL);
    return 0;
}

/* ",key=<string field>" for a string member (value text v, n); nothing otherwise. */
static void influx_points_text_str(sbuf *b, sbuf *scratch, const char *key, const char *v, size_t n) {
    if (!v || !n || *v != '"') return;
    const char *s = influx_points_text_string(scratch, v, n); /* NULL now: out of memory */
    if (!s) b->failed = 1;
    else influx_points_field_str(b, key, s, scratch->len - 1); /* without the NUL it appended */
}

/* ",key=<float field>" for a finite numeric member; nothing otherwise. */
static void influx_points_text_float(sbuf *b, const char *key, const char *v, size_t n) {
    double d;
    if (influx_points_text_number(v, n, &d) != 0) return;
    size_t mark = b->len;
    sbuf_addc(b, ',');
    sbuf_adds(b, key);
    sbuf_addc(b, '=');
    if (lineproto_field_float(b, d) != 0) b->len = mark;
}

/* ",key=<tag>" for a string member; nothing otherwise (or when empty). */
static void influx_points_text_tag(sbuf *b, sbuf *scratch, const char *key, const char *v, size_t n) {
    influx_points_tag(b, key, influx_points_text_string(scratch, v, n));
}

typedef struct ip_labels {
    sbuf *t;
    sbuf *scratch;
    size_t n;
} ip_labels;

static int influx_points_label(const char *v, size_t n, void *arg) {
    ip_labels *l = arg;
    const char *s = influx_points_text_string(l->scratch, v, n);
    if (!s || l->scratch->len < 2) return 0; /* not a string, or "" (its decoded text is just the NUL) */
    sbuf_addc(l->t, ',');
    sbuf_adds(l->t, s);
    l->n++;
    return 0;
}

/* labels as one tag, ",a,b," (a label filter is then a regex on ",a,"); none: no tag. */
static void influx_points_labels(sbuf *b, sbuf *scratch, const char *v, size_t n) {
    if (!v || !n || *v != '[') return;
    sbuf t;
    sbuf_init(&t);
    ip_labels l = {&t, scratch, 0};
    (void)jscan_array_trusted(v, n, influx_points_label, &l);
    sbuf_addc(&t, ',');
    if (sbuf_failed(&t) || sbuf_failed(scratch)) b->failed = 1;
    else if (l.n) influx_points_tag(b, "labels", t.data);
    sbuf_free(&t);
}

int influx_points_fields_parse(const char *text, influx_event_fields *out) {
    if (text && strcmp(text, "full") == 0) *out = INFLUX_EVENT_FIELDS_FULL;
    else if (text && strcmp(text, "slim") == 0) *out = INFLUX_EVENT_FIELDS_SLIM;
    else return -1;
    return 0;
}

const char *influx_points_fields_name(influx_event_fields fields) {
    return fields == INFLUX_EVENT_FIELDS_SLIM ? "slim" : "full";
}

const char *influx_points_home_value(const char *home) { return event_home_is_default(home) ? "" : home; }

#define IP_AT(f, k) (f)->len[k] ? json + (f)->off[k] : NULL, (f)->len[k]

void influx_points_registry_tags(sbuf *b, const char *json, const record_fields *f) { /* registry tags: issue 11 */
    sbuf scratch;
    sbuf_init(&scratch);
    influx_points_text_tag(b, &scratch, "area_id", IP_AT(f, RF_AREA_ID));
    influx_points_text_tag(b, &scratch, "device_id", IP_AT(f, RF_DEVICE_ID));
    influx_points_text_tag(b, &scratch, "floor_id", IP_AT(f, RF_FLOOR_ID));
    influx_points_labels(b, &scratch, IP_AT(f, RF_LABELS));
    influx_points_text_tag(b, &scratch, "platform", IP_AT(f, RF_PLATFORM));
    if (sbuf_failed(&scratch)) b->failed = 1;
    sbuf_free(&scratch);
}

/* The members of the event's point that record_fields does not note, found by one walk of its text. */
enum { IP_DEVICE_CLASS, IP_UNIT, IP_OLD_STATE, IP_OLD_VALUE, IP_DURATION, IP_CONTEXT_ID, IP_CONTEXT_PARENT,
       IP_CONTEXT_USER, IP_N };
static const char *const ip_names[IP_N] = {"device_class", "unit_of_measurement", "old_state", "old_value",
                                           "duration_in_state", "context_id", "context_parent_id",
                                           "context_user_id"};

typedef struct ip_walk {
    const char *v[IP_N];
    size_t n[IP_N];
} ip_walk;

static int influx_points_member(const char *k, size_t kl, const char *v, size_t vl, void *arg) {
    ip_walk *w = arg;
    if (kl < 9 || (k[0] != 'd' && k[0] != 'u' && k[0] != 'o' && k[0] != 'c')) return 0;
    for (int i = 0; i < IP_N; i++)
        if (strlen(ip_names[i]) == kl && memcmp(ip_names[i], k, kl) == 0) {
            w->v[i] = v;
            w->n[i] = vl;
            break;
        }
    return 0;
}

/* INFLUXDB_EVENT_FIELDS=full: the fields that copy members of the record (influx_points.h). */
static void influx_points_copies(sbuf *b, sbuf *scratch, const ip_walk *w, const char *json, const record_fields *f) {
    influx_points_text_str(b, scratch, "old_state", w->v[IP_OLD_STATE], w->n[IP_OLD_STATE]);
    influx_points_text_float(b, "old_value", w->v[IP_OLD_VALUE], w->n[IP_OLD_VALUE]);
    influx_points_text_float(b, "duration_in_state", w->v[IP_DURATION], w->n[IP_DURATION]);
    influx_points_text_str(b, scratch, "context_id", w->v[IP_CONTEXT_ID], w->n[IP_CONTEXT_ID]);
    influx_points_text_str(b, scratch, "context_parent_id", w->v[IP_CONTEXT_PARENT], w->n[IP_CONTEXT_PARENT]);
    influx_points_text_str(b, scratch, "context_user_id", w->v[IP_CONTEXT_USER], w->n[IP_CONTEXT_USER]);
    size_t an;
    const char *attrs = record_fields_at(f, json, RF_ATTRIBUTES, &an);
    /* the record's text is canonical (json_text_dump's), so the member's text is the dump of its value */
    if (attrs && *attrs == '{') influx_points_field_str(b, "attributes", attrs, an);
}

void influx_points_event(sbuf *b, const store_item *it, const record_fields *f, uint64_t ns, const char *stored_at,
                         const char *home, influx_event_fields fields) {
    const char *json = it->json;
    ip_walk w;
    memset(&w, 0, sizeof w);
    (void)jscan_object_trusted(it->json, it->json_len, influx_points_member, &w);
    sbuf scratch;
    sbuf_init(&scratch);
    lineproto_measurement(b, INFLUX_MEASUREMENT);
    influx_points_registry_tags(b, json, f);
    influx_points_text_tag(b, &scratch, "device_class", w.v[IP_DEVICE_CLASS], w.n[IP_DEVICE_CLASS]);
    influx_points_tag(b, "domain", it->domain);
    influx_points_tag(b, "entity_id", it->entity_id);
    influx_points_tag(b, "event_type", it->event_type);
    influx_points_tag(b, INFLUX_HOME_TAG, influx_points_home_value(home)); /* issue 18 */
    influx_points_text_tag(b, &scratch, "unit_of_measurement", w.v[IP_UNIT], w.n[IP_UNIT]);
    sbuf_adds(b, " event_id=");
    lineproto_field_string(b, it->event_id, strlen(it->event_id));
    influx_points_field_str(b, "stored_at", stored_at, strlen(stored_at));
    influx_points_field_str(b, "record", it->json, it->json_len);
    influx_points_text_str(b, &scratch, "state", IP_AT(f, RF_STATE));
    influx_points_text_float(b, "value", IP_AT(f, RF_VALUE));
    if (fields == INFLUX_EVENT_FIELDS_FULL) influx_points_copies(b, &scratch, &w, json, f);
    if (sbuf_failed(&scratch)) b->failed = 1;
    sbuf_free(&scratch);
    sbuf_printf(b, " %llu\n", (unsigned long long)ns);
}

void influx_points_dead(sbuf *b, const store_dead_letter *d, int64_t *last_ns, const char *home) {
    int64_t ns = service_now_us() * 1000;
    if (ns <= *last_ns) ns = *last_ns + 1;
    *last_ns = ns;
    lineproto_measurement(b, INFLUX_DEAD_MEASUREMENT);
    influx_points_tag(b, INFLUX_HOME_TAG, influx_points_home_value(home));
    influx_points_tag(b, "source", d->source);
    sbuf_adds(b, " error=");
    lineproto_field_string(b, d->error, strlen(d->error));
    influx_points_field_str(b, "raw", d->raw, strlen(d->raw));
    sbuf_printf(b, " %lld\n", (long long)ns);
}
