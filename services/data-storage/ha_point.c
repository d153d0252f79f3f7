/* ha_point.c -- see ha_point.h. */
#include "ha_point.h"
#include "lineproto.h"
#include "pyval.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration ------------------------------------------------------ */

ha_entity_conf *ha_point_config_entity(ha_entity_confs *list, const char *key) {
    ha_entity_conf *v = realloc(list->v, (list->n + 1) * sizeof *v);
    if (!v) return NULL;
    list->v = v;
    ha_entity_conf *e = &v[list->n];
    memset(e, 0, sizeof *e);
    if (!(e->key = strdup(key))) return NULL;
    list->n++;
    return e;
}

static void ha_point_confs_free(ha_entity_confs *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].key);
        free(l->v[i].override_measurement);
        ha_strlist_free(&l->v[i].ignore_attributes);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void ha_point_config_free(ha_point_config *c) {
    free(c->default_measurement);
    free(c->override_measurement);
    ha_strlist_free(&c->tag_keys);
    ha_strlist_free(&c->tag_values);
    ha_strlist_free(&c->tags_attributes);
    ha_strlist_free(&c->registry_tags);
    ha_strlist_free(&c->ignore_attributes);
    ha_point_confs_free(&c->by_entity);
    ha_point_confs_free(&c->by_glob);
    ha_point_confs_free(&c->by_domain);
    ha_filter_free(&c->filter);
    memset(c, 0, sizeof *c);
}

const char *ha_point_result_name(ha_point_result r) {
    static const char *names[] = {"written", "removed", "unknown", "unavailable", "empty_state", "excluded", "error"};
    return (unsigned)r < HA_POINT_NSKIP ? names[r] : "?";
}

/* ---- a small ordered map with Python dict set/delete semantics ----------- */

enum { HP_DELETED = 0, HP_FLOAT, HP_STR };

typedef struct hp_kv {
    size_t koff, klen, voff, vlen; /* into the scratch text */
    int type;
    double num;
} hp_kv;

typedef struct hp_map {
    hp_kv *v;
    size_t n, cap;
} hp_map;

typedef struct hp_ctx {
    sbuf text; /* every key and string value, addressed by offset */
    hp_map tags, fields;
    int oom;
} hp_ctx;

static const char *hp_key(const hp_ctx *x, const hp_kv *kv) { return x->text.data + kv->koff; }

static hp_kv *hp_find(hp_ctx *x, hp_map *m, const char *k, size_t klen) {
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].type != HP_DELETED && m->v[i].klen == klen && memcmp(hp_key(x, &m->v[i]), k, klen) == 0)
            return &m->v[i];
    return NULL;
}

static int hp_inside(const hp_ctx *x, const char *s) {
    return x->text.data && s >= x->text.data && s < x->text.data + x->text.cap;
}

/* Appends s to the scratch text (NUL-terminated); its offset. */
static size_t hp_text(hp_ctx *x, const char *s, size_t n) {
    size_t off = x->text.len;
    if (hp_inside(x, s)) { /* the append may move the buffer s points into */
        char *tmp = malloc(n + 1);
        if (!tmp) {
            x->oom = 1;
            return off;
        }
        memcpy(tmp, s, n);
        sbuf_add(&x->text, tmp, n);
        free(tmp);
    } else {
        sbuf_add(&x->text, s, n);
    }
    sbuf_addc(&x->text, '\0');
    return off;
}

/* m[k] = value; k and the string value are copied into the scratch text
 * first (they may point into it). */
static hp_kv *hp_set(hp_ctx *x, hp_map *m, const char *k, size_t klen) {
    size_t koff = hp_text(x, k, klen);
    if (x->oom || sbuf_failed(&x->text)) {
        x->oom = 1;
        return NULL;
    }
    hp_kv *kv = hp_find(x, m, x->text.data + koff, klen);
    if (kv) return kv;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        hp_kv *v = realloc(m->v, cap * sizeof *v);
        if (!v) {
            x->oom = 1;
            return NULL;
        }
        m->v = v;
        m->cap = cap;
    }
    kv = &m->v[m->n++];
    *kv = (hp_kv){.koff = koff, .klen = klen};
    return kv;
}

static void hp_set_float(hp_ctx *x, hp_map *m, const char *k, size_t klen, double v) {
    hp_kv *kv = hp_set(x, m, k, klen);
    if (!kv) return;
    kv->type = HP_FLOAT;
    kv->num = v;
}

static void hp_registry_tags(hp_ctx *x, const ha_point_config *c, const json_t *record);
static void hp_set_str(hp_ctx *x, hp_map *m, const char *k, size_t klen, const char *s, size_t n) {
    size_t soff = hp_inside(x, s) ? (size_t)(s - x->text.data) : (size_t)-1; /* hp_set may move the text */
    hp_kv *kv = hp_set(x, m, k, klen);
    if (!kv) return;
    size_t voff = hp_text(x, soff != (size_t)-1 ? x->text.data + soff : s, n);
    kv->voff = voff;
    kv->vlen = n;
    kv->type = HP_STR;
}

/* Appends str(v) to the scratch text; its offset and length. */
static size_t hp_pystr(hp_ctx *x, const json_t *v, size_t *len) {
    size_t off = x->text.len;
    pyval_str(&x->text, v);
    *len = x->text.len - off;
    sbuf_addc(&x->text, '\0');
    return off;
}

/* ---- the rules ---------------------------------------------------------- */

typedef struct hp_entity {
    const char *override_measurement;
    const ha_strlist *ignore;
} hp_entity;

static void hp_apply(hp_entity *r, const ha_entity_conf *e) {
    if (e->override_measurement) r->override_measurement = e->override_measurement;
    if (e->has_ignore) r->ignore = &e->ignore_attributes;
}

/* HA's EntityValues.get: domain, then every matching glob in order, then the
 * exact entity, each replacing the keys it sets. */
static hp_entity hp_entity_conf(const ha_point_config *c, const char *entity_id, const char *domain, size_t dlen) {
    hp_entity r = {0};
    for (size_t i = 0; i < c->by_domain.n; i++)
        if (strlen(c->by_domain.v[i].key) == dlen && memcmp(c->by_domain.v[i].key, domain, dlen) == 0)
            hp_apply(&r, &c->by_domain.v[i]);
    for (size_t i = 0; i < c->by_glob.n; i++)
        if (fnmatch(c->by_glob.v[i].key, entity_id, FNM_NOESCAPE) == 0) hp_apply(&r, &c->by_glob.v[i]);
    for (size_t i = 0; i < c->by_entity.n; i++)
        if (strcmp(c->by_entity.v[i].key, entity_id) == 0) hp_apply(&r, &c->by_entity.v[i]);
    return r;
}

/* HA's state_helper.state_as_number for non-numeric states. */
static int hp_state_as_number(const char *s, double *out) {
    static const char *one[] = {"on", "locked", "above_horizon", "open", "home"};
    static const char *zero[] = {"off", "unlocked", "unknown", "below_horizon", "closed", "not_home"};
    for (size_t i = 0; i < sizeof one / sizeof *one; i++)
        if (!strcmp(s, one[i])) return *out = 1.0, 0;
    for (size_t i = 0; i < sizeof zero / sizeof *zero; i++)
        if (!strcmp(s, zero[i])) return *out = 0.0, 0;
    return -1;
}

/* The measurement into the scratch text (offset, *len); sets include_uom /
 * include_dc as HA does. */
static size_t hp_measurement(hp_ctx *x, const ha_point_config *c, const hp_entity *ec, const char *entity_id,
                             const char *domain, size_t dlen, const json_t *attrs, int *include_uom, int *include_dc,
                             size_t *len) {
    const char *m = NULL;
    if (ec->override_measurement && *ec->override_measurement) m = ec->override_measurement;
    else if (c->override_measurement && *c->override_measurement) m = c->override_measurement;
    if (m) {
        *len = strlen(m);
        return hp_text(x, m, *len);
    }
    size_t off = x->text.len, n = 0;
    if (c->measurement_attr == HA_MEAS_ENTITY_ID) {
        off = hp_text(x, entity_id, n = strlen(entity_id));
    } else if (c->measurement_attr == HA_MEAS_DOMAIN_DEVICE_CLASS) {
        const json_t *dc = json_object_get(attrs, "device_class");
        if (!dc || json_is_null(dc)) {
            off = hp_text(x, domain, n = dlen);
        } else {
            sbuf_add(&x->text, domain, dlen);
            sbuf_adds(&x->text, "__");
            pyval_str(&x->text, dc);
            n = x->text.len - off;
            sbuf_addc(&x->text, '\0');
            *include_dc = 0;
        }
    } else {
        const json_t *u = json_object_get(attrs, "unit_of_measurement");
        if (u && !json_is_null(u)) off = hp_pystr(x, u, &n);
    }
    if (n == 0) {
        const char *d = c->default_measurement && *c->default_measurement ? c->default_measurement : entity_id;
        off = hp_text(x, d, n = strlen(d));
    } else {
        *include_uom = c->measurement_attr != HA_MEAS_UNIT_OF_MEASUREMENT;
    }
    *len = n;
    return off;
}

static int hp_ignored(const ha_point_config *c, const hp_entity *ec, const char *key) {
    return ha_strlist_has(&c->ignore_attributes, key) || (ec->ignore && ha_strlist_has(ec->ignore, key));
}

/* One attribute, as HA's loop body: the key_ rename, float or _str with the
 * digit tail, non-finite deleted. */
static void hp_attribute(hp_ctx *x, const char *key, const json_t *v) {
    size_t klen = strlen(key);
    size_t koff = hp_text(x, key, klen);
    if (hp_find(x, &x->fields, x->text.data + koff, klen)) {
        x->text.len--; /* drop the NUL, append '_' */
        sbuf_adds(&x->text, "_");
        sbuf_addc(&x->text, '\0');
        klen++;
    }
    if (sbuf_failed(&x->text)) {
        x->oom = 1;
        return;
    }
    double d;
    if (pyval_float(v, &d) == 0) {
        hp_set_float(x, &x->fields, x->text.data + koff, klen, d);
    } else {
        size_t slen, soff = hp_pystr(x, v, &slen);
        size_t kstr = hp_text(x, x->text.data + koff, klen); /* copies safely from inside the text */
        if (x->oom || sbuf_failed(&x->text)) {
            x->oom = 1;
            return;
        }
        x->text.len--; /* drop its NUL, append "_str" */
        sbuf_adds(&x->text, "_str");
        sbuf_addc(&x->text, '\0');
        if (sbuf_failed(&x->text)) {
            x->oom = 1;
            return;
        }
        hp_set_str(x, &x->fields, x->text.data + kstr, klen + 4, x->text.data + soff, slen);
        if (!x->oom && pyval_digit_tail(x->text.data + soff, slen, &d))
            hp_set_float(x, &x->fields, x->text.data + koff, klen, d);
    }
    if (x->oom) return;
    hp_kv *kv = hp_find(x, &x->fields, x->text.data + koff, klen);
    if (kv && kv->type == HP_FLOAT && !isfinite(kv->num)) kv->type = HP_DELETED;
}

/* ---- output ------------------------------------------------------------- */

static const hp_ctx *hp_sort_ctx;

static int hp_cmp(const void *a, const void *b) {
    const hp_kv *x = *(hp_kv *const *)a, *y = *(hp_kv *const *)b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int r = memcmp(hp_key(hp_sort_ctx, x), hp_key(hp_sort_ctx, y), n);
    return r ? r : (x->klen > y->klen) - (x->klen < y->klen);
}

/* Live entries of m sorted by key (influxdb-python's order). NULL on OOM. */
static hp_kv **hp_sorted(const hp_ctx *x, const hp_map *m, size_t *n) {
    hp_kv **v = malloc((m->n ? m->n : 1) * sizeof *v);
    if (!v) return NULL;
    *n = 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].type != HP_DELETED && m->v[i].klen > 0) v[(*n)++] = &m->v[i];
    hp_sort_ctx = x;
    qsort(v, *n, sizeof *v, hp_cmp);
    return v;
}

static int64_t hp_time_ns(int64_t us, ha_precision p) {
    int64_t unit = p == HA_PREC_S ? 1000000 : p == HA_PREC_MS ? 1000 : 1;
    int64_t t = us / unit;
    if (us < 0 && t * unit != us) t--; /* floor */
    return t * unit * 1000;
}

static int hp_write(const hp_ctx *x, size_t moff, sbuf *out, int64_t ns) {
    size_t nt, nf;
    hp_kv **tags = hp_sorted(x, &x->tags, &nt), **fields = hp_sorted(x, &x->fields, &nf);
    if (!tags || !fields) {
        free(tags);
        free(fields);
        return -1;
    }
    lineproto_measurement(out, x->text.data + moff);
    for (size_t i = 0; i < nt; i++) {
        if (tags[i]->vlen == 0) continue; /* InfluxDB has no empty tag values; influxdb-python skips them */
        sbuf_addc(out, ',');
        lineproto_tag(out, hp_key(x, tags[i]));
        sbuf_addc(out, '=');
        lineproto_tag(out, x->text.data + tags[i]->voff);
    }
    for (size_t i = 0; i < nf; i++) {
        sbuf_addc(out, i ? ',' : ' ');
        lineproto_tag(out, hp_key(x, fields[i]));
        sbuf_addc(out, '=');
        if (fields[i]->type == HP_FLOAT) pyval_repr_float(out, fields[i]->num);
        else lineproto_field_string(out, x->text.data + fields[i]->voff, fields[i]->vlen);
    }
    sbuf_printf(out, " %lld\n", (long long)ns);
    free(tags);
    free(fields);
    return 0;
}

/* ---- the builder -------------------------------------------------------- */

static ha_point_result hp_skip(const ha_point_config *c, const char *entity_id, const json_t *state) {
    if (!json_is_string(state)) return HA_POINT_SKIP_REMOVED;
    const char *s = json_string_value(state);
    if (!strcmp(s, "unknown")) return HA_POINT_SKIP_UNKNOWN;
    if (!strcmp(s, "unavailable")) return HA_POINT_SKIP_UNAVAILABLE;
    if (!*s) return HA_POINT_SKIP_EMPTY;
    if (!ha_filter_pass(&c->filter, entity_id)) return HA_POINT_SKIP_EXCLUDED;
    return HA_POINT_WRITTEN;
}

static ha_point_result hp_build(hp_ctx *x, const ha_point_config *c, const json_t *rec, int64_t time_us,
                                const char *home, sbuf *out, char *err, size_t errlen) {
    const char *entity_id = json_string_value(json_object_get(rec, "entity_id"));
    const char *dot = entity_id ? strchr(entity_id, '.') : NULL;
    if (!dot) {
        snprintf(err, errlen, "state_changed record without a valid entity_id");
        return HA_POINT_ERROR;
    }
    const json_t *state = json_object_get(rec, "state");
    ha_point_result skip = hp_skip(c, entity_id, state);
    if (skip != HA_POINT_WRITTEN) return skip;
    const char *s = json_string_value(state);
    const json_t *attrs = json_object_get(rec, "attributes");
    if (!json_is_object(attrs)) attrs = NULL;
    size_t dlen = (size_t)(dot - entity_id);

    /* state fields */
    double value;
    int include_value = pyval_float_str(s, json_string_length(state), &value) == 0, include_state = 0;
    if (!include_value) {
        include_state = 1;
        include_value = hp_state_as_number(s, &value) == 0;
    }
    if (include_value && !isfinite(value)) {
        snprintf(err, errlen, "state \"%.40s\" reads as a non-finite number, which InfluxDB cannot store", s);
        return HA_POINT_ERROR;
    }

    hp_entity ec = hp_entity_conf(c, entity_id, entity_id, dlen);
    int include_uom = 1, include_dc = 1;
    size_t mlen, moff = hp_measurement(x, c, &ec, entity_id, entity_id, dlen, attrs, &include_uom, &include_dc, &mlen);
    (void)mlen;

    hp_set_str(x, &x->tags, "domain", 6, entity_id, dlen);
    hp_set_str(x, &x->tags, "entity_id", 9, dot + 1, strlen(dot + 1));
    if (include_state) hp_set_str(x, &x->fields, "state", 5, s, json_string_length(state));
    if (include_value) hp_set_float(x, &x->fields, "value", 5, value);

    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)attrs, key, v) {
        if (x->oom) break;
        if (ha_strlist_has(&c->tags_attributes, key)) {
            size_t n, off = json_is_null(v) ? hp_text(x, "", n = 0) : hp_pystr(x, v, &n);
            hp_set_str(x, &x->tags, key, strlen(key), x->text.data + off, n);
        } else if ((strcmp(key, "unit_of_measurement") || include_uom) && (strcmp(key, "device_class") || include_dc) &&
                   !hp_ignored(c, &ec, key)) {
            hp_attribute(x, key, v);
        }
    }
    for (size_t i = 0; i < c->tag_keys.n && !x->oom; i++)
        hp_set_str(x, &x->tags, c->tag_keys.v[i], strlen(c->tag_keys.v[i]), c->tag_values.v[i],
                   strlen(c->tag_values.v[i]));
    if (home && *home) hp_set_str(x, &x->tags, HA_POINT_HOME_TAG, strlen(HA_POINT_HOME_TAG), home, strlen(home));
    hp_registry_tags(x, c, rec);
    if (x->oom || sbuf_failed(&x->text) || hp_write(x, moff, out, hp_time_ns(time_us, c->precision)) != 0) {
        snprintf(err, errlen, "out of memory");
        return HA_POINT_ERROR;
    }
    return HA_POINT_WRITTEN;
}

static const char *const hp_registry_fields[] = {"area_id", "area", "floor_id", "floor", "device_id", "device",
                                                 "manufacturer", "model", "labels", "platform", "entity_category"};

int ha_point_registry_tag_ok(const char *name) {
    for (size_t i = 0; i < sizeof hp_registry_fields / sizeof *hp_registry_fields; i++)
        if (!strcmp(name, hp_registry_fields[i])) return 1;
    return 0;
}

/* INFLUXDB_REGISTRY_TAGS: the record's registry fields as tags (labels as ",a,b,"); absent/null: no tag. */
static void hp_registry_tags(hp_ctx *x, const ha_point_config *c, const json_t *record) {
    for (size_t i = 0; i < c->registry_tags.n && !x->oom; i++) {
        const char *k = c->registry_tags.v[i];
        const json_t *v = json_object_get(record, k);
        if (json_is_string(v) && json_string_length(v)) {
            hp_set_str(x, &x->tags, k, strlen(k), json_string_value(v), json_string_length(v));
        } else if (json_is_array(v) && json_array_size(v)) {
            sbuf t;
            sbuf_init(&t);
            size_t j;
            json_t *l;
            json_array_foreach(v, j, l) if (json_is_string(l)) sbuf_addc(&t, ','), sbuf_adds(&t, json_string_value(l));
            sbuf_addc(&t, ',');
            if (sbuf_failed(&t)) x->oom = 1;
            else if (t.len > 1) hp_set_str(x, &x->tags, k, strlen(k), t.data, t.len);
            sbuf_free(&t);
        }
    }
}

ha_point_result ha_point_build(const ha_point_config *c, const json_t *record, int64_t time_us, const char *home,
                               sbuf *out, char *err, size_t errlen) {
    hp_ctx x = {0};
    sbuf_init(&x.text);
    size_t mark = out->len;
    ha_point_result r = hp_build(&x, c, record, time_us, home, out, err, errlen);
    if (r != HA_POINT_WRITTEN) out->len = mark;
    if (out->data && r != HA_POINT_WRITTEN) out->data[mark] = '\0';
    sbuf_free(&x.text);
    free(x.tags.v);
    free(x.fields.v);
    return r;
}
