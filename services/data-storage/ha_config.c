/* ha_config.c -- see ha_config.h. */
#include "ha_config.h"
#include "config.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* ---- a loaded YAML file --------------------------------------------------- */

typedef struct hc_yaml {
    yaml_document_t doc;
    int loaded;
} hc_yaml;

typedef struct hc {
    const char *path;
    hc_yaml conf, secrets;
    int secrets_tried;
    char *err;
    size_t errlen;
    int quiet; /* no warnings (the first of the two passes) */
    /* connection keys, borrowed from the document */
    const char *host, *path_key, *database, *username, *password, *token, *org, *bucket, *ssl_ca_cert;
    long long port, api_version, max_retries;
    int has_port, has_api_version, ssl, has_ssl, verify_ssl, has_verify_ssl;
} hc;

static int hc_fail(hc *h, const yaml_node_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int hc_fail(hc *h, const yaml_node_t *n, const char *fmt, ...) {
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n) snprintf(h->err, h->errlen, "%s line %zu: %s", h->path, n->start_mark.line + 1, msg);
    else snprintf(h->err, h->errlen, "%s: %s", h->path, msg);
    return -1;
}

static int hc_load(hc_yaml *y, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    int ok = yaml_parser_load(&p, &y->doc);
    if (!ok)
        snprintf(err, errlen, "%s line %zu: %s %s", path, p.problem_mark.line + 1, p.problem ? p.problem : "YAML error",
                 p.context ? p.context : "");
    yaml_parser_delete(&p);
    fclose(f);
    y->loaded = ok;
    return ok ? 0 : -1;
}

static void hc_unload(hc_yaml *y) {
    if (y->loaded) yaml_document_delete(&y->doc);
    y->loaded = 0;
}

static yaml_node_t *hc_node(hc_yaml *y, int i) { return yaml_document_get_node(&y->doc, i); }

static const char *hc_tag(const yaml_node_t *n) { return n->tag ? (const char *)n->tag : ""; }

static int hc_is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || hc_tag(n)[0] == '!')
        return 0;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* Value of key in a mapping node, or NULL. */
static yaml_node_t *hc_get(hc_yaml *y, const yaml_node_t *map, const char *key) {
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = hc_node(y, p->key);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, key))
            return hc_node(y, p->value);
    }
    return NULL;
}

/* A scalar's text, resolving `!secret name` from secrets.yaml beside the file. */
static int hc_scalar(hc *h, const yaml_node_t *n, const char *key, const char **out) {
    if (n->type != YAML_SCALAR_NODE) return hc_fail(h, n, "%s: expected a single value, got a %s", key,
                                                    n->type == YAML_MAPPING_NODE ? "mapping" : "list");
    const char *v = (const char *)n->data.scalar.value;
    if (strcmp(hc_tag(n), "!secret") != 0) {
        if (hc_tag(n)[0] == '!') return hc_fail(h, n, "%s: the tag %s is not supported here (only !secret)", key, hc_tag(n));
        *out = v;
        return 0;
    }
    if (!h->secrets_tried) {
        h->secrets_tried = 1;
        char dir[1024], spath[1100], e[300];
        snprintf(dir, sizeof dir, "%s", h->path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
        snprintf(spath, sizeof spath, "%s/secrets.yaml", dir);
        if (hc_load(&h->secrets, spath, e, sizeof e) != 0) return hc_fail(h, n, "%s: !secret %s: %s", key, v, e);
    }
    if (!h->secrets.loaded) return hc_fail(h, n, "%s: !secret %s: secrets.yaml could not be read", key, v);
    yaml_node_t *s = hc_get(&h->secrets, yaml_document_get_root_node(&h->secrets.doc), v);
    if (!s || s->type != YAML_SCALAR_NODE)
        return hc_fail(h, n, "%s: !secret %s is not defined in secrets.yaml beside the file", key, v);
    *out = (const char *)s->data.scalar.value;
    log_add_secret(*out);
    return 0;
}

static int hc_str(hc *h, const yaml_node_t *n, const char *key, const char **out) {
    if (hc_is_null(n)) {
        *out = NULL;
        return 0;
    }
    return hc_scalar(h, n, key, out);
}

static int hc_int(hc *h, const yaml_node_t *n, const char *key, long long *out) {
    const char *v;
    if (hc_scalar(h, n, key, &v) != 0) return -1;
    char *end;
    errno = 0;
    *out = strtoll(v, &end, 10);
    if (!*v || *end || errno) return hc_fail(h, n, "%s: expected an integer, got \"%.60s\"", key, v);
    return 0;
}

/* YAML 1.1 booleans, as PyYAML reads them. */
static int hc_bool(hc *h, const yaml_node_t *n, const char *key, int *out) {
    const char *v;
    if (hc_scalar(h, n, key, &v) != 0) return -1;
    static const char *t[] = {"true", "yes", "on", "y"}, *f[] = {"false", "no", "off", "n"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(v, t[i])) return *out = 1, 0;
        if (!strcasecmp(v, f[i])) return *out = 0, 0;
    }
    return hc_fail(h, n, "%s: expected true or false, got \"%.60s\"", key, v);
}

/* A list of strings, or one string (HA's cv.ensure_list); `split` also
 * splits a string at commas (cv.entity_ids). */
static int hc_list(hc *h, const yaml_node_t *n, const char *key, int split, ha_strlist *out) {
    ha_strlist_free(out);
    if (hc_is_null(n)) return 0;
    if (n->type == YAML_MAPPING_NODE) return hc_fail(h, n, "%s: expected a list, got a mapping", key);
    if (n->type == YAML_SCALAR_NODE) {
        const char *v;
        if (hc_scalar(h, n, key, &v) != 0) return -1;
        if (!split) return ha_strlist_add(out, v) ? hc_fail(h, n, "out of memory") : 0;
        char *copy = strdup(v);
        if (!copy) return hc_fail(h, n, "out of memory");
        for (char *save, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ') t++;
            size_t l = strlen(t);
            while (l && t[l - 1] == ' ') t[--l] = '\0';
            if (*t && ha_strlist_add(out, t) != 0) {
                free(copy);
                return hc_fail(h, n, "out of memory");
            }
        }
        free(copy);
        return 0;
    }
    for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top; i++) {
        yaml_node_t *e = hc_node(&h->conf, *i);
        const char *v;
        if (!e || e->type != YAML_SCALAR_NODE) return hc_fail(h, e ? e : n, "%s: expected a list of strings", key);
        if (hc_scalar(h, e, key, &v) != 0) return -1;
        if (ha_strlist_add(out, v) != 0) return hc_fail(h, e, "out of memory");
    }
    return 0;
}

static void hc_warn_unknown(hc *h, const yaml_node_t *k, const char *where) {
    if (!h->quiet && k->type == YAML_SCALAR_NODE)
        log_warn("%s line %zu: %s%s is not a known key; ignored", h->path, k->start_mark.line + 1, where,
                 (const char *)k->data.scalar.value);
}

/* ---- the point options ---------------------------------------------------- */

static int hc_set_str(hc *h, const yaml_node_t *n, const char *key, char **dst) {
    const char *v;
    if (hc_str(h, n, key, &v) != 0) return -1;
    free(*dst);
    *dst = v ? strdup(v) : NULL;
    return v && !*dst ? hc_fail(h, n, "out of memory") : 0;
}

static int hc_measurement_attr(const char *v, ha_measurement_attr *out) {
    if (!strcmp(v, "unit_of_measurement")) *out = HA_MEAS_UNIT_OF_MEASUREMENT;
    else if (!strcmp(v, "domain__device_class")) *out = HA_MEAS_DOMAIN_DEVICE_CLASS;
    else if (!strcmp(v, "entity_id")) *out = HA_MEAS_ENTITY_ID;
    else return -1;
    return 0;
}

static int hc_precision(const char *v, ha_precision *out) {
    static const char *names[] = {"ns", "us", "ms", "s"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(v, names[i])) return *out = (ha_precision)i, 0;
    return -1;
}

/* component_config / _glob / _domain: {key: {override_measurement, ignore_attributes}} */
static int hc_component(hc *h, const yaml_node_t *n, const char *key, ha_entity_confs *list) {
    if (hc_is_null(n)) return 0;
    if (n->type != YAML_MAPPING_NODE) return hc_fail(h, n, "%s: expected a mapping", key);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = hc_node(&h->conf, p->key), *v = hc_node(&h->conf, p->value);
        if (!k || k->type != YAML_SCALAR_NODE) return hc_fail(h, n, "%s: keys must be strings", key);
        char where[300];
        snprintf(where, sizeof where, "%s.%.200s", key, (const char *)k->data.scalar.value);
        ha_entity_conf *e = ha_point_config_entity(list, (const char *)k->data.scalar.value);
        if (!e) return hc_fail(h, k, "out of memory");
        if (hc_is_null(v)) continue;
        if (v->type != YAML_MAPPING_NODE) return hc_fail(h, v, "%s: expected a mapping", where);
        for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
            yaml_node_t *k2 = hc_node(&h->conf, q->key), *v2 = hc_node(&h->conf, q->value);
            const char *name = k2 && k2->type == YAML_SCALAR_NODE ? (const char *)k2->data.scalar.value : "";
            char full[400];
            snprintf(full, sizeof full, "%s.%s", where, name);
            if (!strcmp(name, "override_measurement")) {
                if (hc_set_str(h, v2, full, &e->override_measurement) != 0) return -1;
            } else if (!strcmp(name, "ignore_attributes")) {
                if (hc_list(h, v2, full, 0, &e->ignore_attributes) != 0) return -1;
                e->has_ignore = 1;
            } else if (k2) {
                char w[320];
                snprintf(w, sizeof w, "%s.", where);
                hc_warn_unknown(h, k2, w);
            }
        }
    }
    return 0;
}

/* include: / exclude: {entities, domains, entity_globs} */
static int hc_filter(hc *h, const yaml_node_t *n, const char *key, ha_strlist *entities, ha_strlist *domains,
                     ha_strlist *globs) {
    if (hc_is_null(n)) return 0;
    if (n->type != YAML_MAPPING_NODE) return hc_fail(h, n, "%s: expected a mapping", key);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = hc_node(&h->conf, p->key), *v = hc_node(&h->conf, p->value);
        const char *name = k && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
        char full[128];
        snprintf(full, sizeof full, "%s.%.60s", key, name);
        int rc = 0;
        if (!strcmp(name, "entities")) rc = hc_list(h, v, full, 1, entities);
        else if (!strcmp(name, "domains")) rc = hc_list(h, v, full, 0, domains);
        else if (!strcmp(name, "entity_globs")) rc = hc_list(h, v, full, 0, globs);
        else if (k) {
            char w[140];
            snprintf(w, sizeof w, "%s.", key);
            hc_warn_unknown(h, k, w);
        }
        if (rc) return -1;
    }
    return 0;
}

static int hc_tags(hc *h, const yaml_node_t *n, ha_point_config *c) {
    ha_strlist_free(&c->tag_keys);
    ha_strlist_free(&c->tag_values);
    if (hc_is_null(n)) return 0;
    if (n->type != YAML_MAPPING_NODE) return hc_fail(h, n, "influxdb.tags: expected a mapping of tag: value");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = hc_node(&h->conf, p->key), *v = hc_node(&h->conf, p->value);
        const char *kv, *vv;
        if (hc_scalar(h, k, "influxdb.tags", &kv) != 0 || hc_scalar(h, v, "influxdb.tags", &vv) != 0) return -1;
        if (ha_strlist_add(&c->tag_keys, kv) || ha_strlist_add(&c->tag_values, vv)) return hc_fail(h, v, "out of memory");
    }
    return 0;
}

/* One key of the influxdb: block. */
static int hc_key(hc *h, const yaml_node_t *k, const yaml_node_t *v, ha_point_config *c) {
    const char *name = (const char *)k->data.scalar.value;
    char full[128];
    snprintf(full, sizeof full, "influxdb.%.60s", name);
    const char *s = NULL;
    /* connection */
    if (!strcmp(name, "host")) return hc_str(h, v, full, &h->host);
    if (!strcmp(name, "path")) return hc_str(h, v, full, &h->path_key);
    if (!strcmp(name, "database")) return hc_str(h, v, full, &h->database);
    if (!strcmp(name, "username")) return hc_str(h, v, full, &h->username);
    if (!strcmp(name, "password")) return hc_str(h, v, full, &h->password);
    if (!strcmp(name, "token")) return hc_str(h, v, full, &h->token);
    if (!strcmp(name, "organization")) return hc_str(h, v, full, &h->org);
    if (!strcmp(name, "bucket")) return hc_str(h, v, full, &h->bucket);
    if (!strcmp(name, "ssl_ca_cert")) return hc_str(h, v, full, &h->ssl_ca_cert);
    if (!strcmp(name, "port")) return h->has_port = 1, hc_int(h, v, full, &h->port);
    if (!strcmp(name, "max_retries")) return hc_int(h, v, full, &h->max_retries);
    if (!strcmp(name, "api_version")) {
        if (hc_int(h, v, full, &h->api_version) != 0) return -1;
        h->has_api_version = 1;
        return h->api_version == 1 || h->api_version == 2 ? 0 : hc_fail(h, v, "%s: expected 1 or 2", full);
    }
    if (!strcmp(name, "ssl")) return h->has_ssl = 1, hc_bool(h, v, full, &h->ssl);
    if (!strcmp(name, "verify_ssl")) return h->has_verify_ssl = 1, hc_bool(h, v, full, &h->verify_ssl);
    /* point options */
    if (!strcmp(name, "default_measurement")) return hc_set_str(h, v, full, &c->default_measurement);
    if (!strcmp(name, "override_measurement")) return hc_set_str(h, v, full, &c->override_measurement);
    if (!strcmp(name, "measurement_attr")) {
        if (hc_str(h, v, full, &s) != 0) return -1;
        if (s && hc_measurement_attr(s, &c->measurement_attr) != 0)
            return hc_fail(h, v, "%s: expected unit_of_measurement, domain__device_class or entity_id, got \"%.60s\"",
                           full, s);
        return 0;
    }
    if (!strcmp(name, "precision")) {
        if (hc_str(h, v, full, &s) != 0) return -1;
        if (s && hc_precision(s, &c->precision) != 0)
            return hc_fail(h, v, "%s: expected ns, us, ms or s, got \"%.60s\"", full, s);
        return 0;
    }
    if (!strcmp(name, "tags")) return hc_tags(h, v, c);
    if (!strcmp(name, "tags_attributes")) return hc_list(h, v, full, 0, &c->tags_attributes);
    if (!strcmp(name, "ignore_attributes")) return hc_list(h, v, full, 0, &c->ignore_attributes);
    if (!strcmp(name, "component_config")) return hc_component(h, v, full, &c->by_entity);
    if (!strcmp(name, "component_config_glob")) return hc_component(h, v, full, &c->by_glob);
    if (!strcmp(name, "component_config_domain")) return hc_component(h, v, full, &c->by_domain);
    if (!strcmp(name, "include"))
        return hc_filter(h, v, full, &c->filter.include_entities, &c->filter.include_domains,
                         &c->filter.include_globs);
    if (!strcmp(name, "exclude"))
        return hc_filter(h, v, full, &c->filter.exclude_entities, &c->filter.exclude_domains,
                         &c->filter.exclude_globs);
    hc_warn_unknown(h, k, "influxdb.");
    return 0;
}

/* Loads the file and walks its influxdb: block. */
static int hc_read(hc *h, ha_point_config *c) {
    char e[400];
    if (hc_load(&h->conf, h->path, e, sizeof e) != 0) return snprintf(h->err, h->errlen, "%s", e), -1;
    yaml_node_t *root = yaml_document_get_root_node(&h->conf.doc);
    yaml_node_t *block = root ? hc_get(&h->conf, root, "influxdb") : NULL;
    if (!block) return hc_fail(h, root, "no influxdb: block at the top level");
    if (hc_is_null(block)) return 0;
    if (block->type != YAML_MAPPING_NODE) {
        if (hc_tag(block)[0] == '!')
            return hc_fail(h, block, "influxdb: %s is not supported; point INFLUXDB_HA_CONFIG at a file holding the block",
                           hc_tag(block));
        return hc_fail(h, block, "influxdb: expected a mapping");
    }
    for (yaml_node_pair_t *p = block->data.mapping.pairs.start; p < block->data.mapping.pairs.top; p++) {
        yaml_node_t *k = hc_node(&h->conf, p->key), *v = hc_node(&h->conf, p->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE) return hc_fail(h, block, "influxdb: keys must be strings");
        if (hc_key(h, k, v, c) != 0) return -1;
    }
    /* HA: v1 and v2 settings do not mix */
    int v2 = h->has_api_version && h->api_version == 2;
    if (v2 && (h->username || h->password || h->database))
        return hc_fail(h, block, "influxdb: username, password and database are v1 settings; api_version 2 uses "
                                 "token, organization and bucket");
    if (!v2 && (h->token || h->org || h->bucket))
        return hc_fail(h, block, "influxdb: token, organization and bucket need api_version: 2");
    if (v2 && (!h->token || !h->org)) return hc_fail(h, block, "influxdb: api_version 2 needs token and organization");
    return 0;
}

static void hc_free(hc *h) {
    hc_unload(&h->conf);
    hc_unload(&h->secrets);
}

int ha_config_yaml(const char *path, ha_point_config *cfg, char *err, size_t errlen) {
    hc h = {.path = path, .err = err, .errlen = errlen};
    int rc = hc_read(&h, cfg);
    hc_free(&h);
    return rc;
}

/* ---- connection defaults into the environment -------------------------------- */

static void hc_default_env(const char *name, const char *value) {
    if (value && !config_str(name, NULL)) setenv(name, value, 1);
}

static void hc_check_backend(void) {
    const char *schema = config_str("INFLUXDB_SCHEMA", HA_CONFIG_SCHEMA_DEFAULT),
               *backend = config_str("STORAGE_BACKEND", STORE_BACKEND_DEFAULT);
    if (strcmp(schema, "homeiq") != 0 && strcmp(backend, "influxdb") != 0)
        log_warn("INFLUXDB_SCHEMA=%s has no effect with STORAGE_BACKEND=%s", schema, backend);
}

int ha_config_env_defaults(void) {
    const char *path = config_str("INFLUXDB_HA_CONFIG", NULL);
    if (!path) {
        hc_check_backend();
        return 0;
    }
    char err[512];
    ha_point_config scratch = {0};
    hc h = {.path = path, .err = err, .errlen = sizeof err, .quiet = 1};
    int rc = hc_read(&h, &scratch);
    ha_point_config_free(&scratch);
    if (rc != 0) {
        log_error("INFLUXDB_HA_CONFIG: %s", err);
        hc_free(&h);
        return -1;
    }
    log_add_secret(h.password);
    log_add_secret(h.token);
    int v2 = h.has_api_version && h.api_version == 2;
    int ssl = h.has_ssl ? h.ssl : v2;
    char url[1200], port[32] = "";
    const char *host = h.host ? h.host : v2 ? "us-west-2-1.aws.cloud2.influxdata.com" : "localhost";
    if (h.has_port) snprintf(port, sizeof port, ":%lld", h.port);
    else if (!v2) snprintf(port, sizeof port, ":8086");
    const char *p = h.path_key ? h.path_key : "";
    snprintf(url, sizeof url, "%s://%s%s%s%s", ssl ? "https" : "http", host, port, *p && *p != '/' ? "/" : "", p);
    hc_default_env("STORAGE_BACKEND", "influxdb");
    hc_default_env("INFLUXDB_SCHEMA", "homeassistant");
    hc_default_env("INFLUXDB_URL", url);
    hc_default_env("INFLUXDB_API_VERSION", v2 ? "2" : "1");
    if (v2) {
        hc_default_env("INFLUXDB_TOKEN", h.token);
        hc_default_env("INFLUXDB_ORG", h.org);
        hc_default_env("INFLUXDB_BUCKET", h.bucket ? h.bucket : "Home Assistant");
    } else {
        hc_default_env("INFLUXDB_DATABASE", h.database ? h.database : "home_assistant");
        hc_default_env("INFLUXDB_USERNAME", h.username);
        hc_default_env("INFLUXDB_PASSWORD", h.password);
    }
    if (h.has_verify_ssl && !h.verify_ssl)
        log_warn("%s: verify_ssl: false is not supported; InfluxDB's certificate is always verified", path);
    if (h.ssl_ca_cert) log_warn("%s: ssl_ca_cert is not supported; the system CA certificates are used", path);
    log_info("INFLUXDB_HA_CONFIG %s: InfluxDB API v%d at %s (environment variables that are set take precedence)",
             path, v2 ? 2 : 1, config_str("INFLUXDB_URL", url));
    hc_check_backend();
    hc_free(&h);
    return 0;
}

/* ---- the point options: YAML, then the environment --------------------------- */

static int hc_env_list(const char *name, int split_tags, ha_strlist *keys, ha_strlist *values) {
    const char *v = config_str(name, NULL);
    if (!v) return 0;
    ha_strlist_free(keys);
    if (values) ha_strlist_free(values);
    char *copy = strdup(v);
    if (!copy) return -1;
    int rc = 0;
    for (char *save, *t = strtok_r(copy, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        size_t l = strlen(t);
        while (l && t[l - 1] == ' ') t[--l] = '\0';
        if (!*t) continue;
        if (!split_tags) {
            rc = ha_strlist_add(keys, t);
            continue;
        }
        char *eq = strchr(t, '=');
        if (!eq || eq == t) {
            log_error("%s: \"%s\" is not key=value", name, t);
            rc = -1;
            break;
        }
        *eq = '\0';
        rc = ha_strlist_add(keys, t) || ha_strlist_add(values, eq + 1);
    }
    free(copy);
    return rc ? -1 : 0;
}

static int hc_env_str(const char *name, char **dst) {
    const char *v = config_str(name, NULL);
    if (!v) return 0;
    free(*dst);
    return (*dst = strdup(v)) ? 0 : -1;
}

static int hc_env(ha_point_config *c) {
    const char *v;
    if ((v = config_str("INFLUXDB_MEASUREMENT_ATTR", NULL)) && hc_measurement_attr(v, &c->measurement_attr) != 0) {
        log_error("INFLUXDB_MEASUREMENT_ATTR=%s: expected unit_of_measurement, domain__device_class or entity_id", v);
        return -1;
    }
    if ((v = config_str("INFLUXDB_PRECISION", NULL)) && hc_precision(v, &c->precision) != 0) {
        log_error("INFLUXDB_PRECISION=%s: expected ns, us, ms or s", v);
        return -1;
    }
    ha_filter *f = &c->filter;
    if (hc_env_str("INFLUXDB_DEFAULT_MEASUREMENT", &c->default_measurement) ||
        hc_env_str("INFLUXDB_OVERRIDE_MEASUREMENT", &c->override_measurement) ||
        hc_env_list("INFLUXDB_TAGS", 1, &c->tag_keys, &c->tag_values) ||
        hc_env_list("INFLUXDB_TAGS_ATTRIBUTES", 0, &c->tags_attributes, NULL) ||
        hc_env_list("INFLUXDB_REGISTRY_TAGS", 0, &c->registry_tags, NULL) ||
        hc_env_list("INFLUXDB_IGNORE_ATTRIBUTES", 0, &c->ignore_attributes, NULL) ||
        hc_env_list("INFLUXDB_INCLUDE_ENTITIES", 0, &f->include_entities, NULL) ||
        hc_env_list("INFLUXDB_INCLUDE_DOMAINS", 0, &f->include_domains, NULL) ||
        hc_env_list("INFLUXDB_INCLUDE_ENTITY_GLOBS", 0, &f->include_globs, NULL) ||
        hc_env_list("INFLUXDB_EXCLUDE_ENTITIES", 0, &f->exclude_entities, NULL) ||
        hc_env_list("INFLUXDB_EXCLUDE_DOMAINS", 0, &f->exclude_domains, NULL) ||
        hc_env_list("INFLUXDB_EXCLUDE_ENTITY_GLOBS", 0, &f->exclude_globs, NULL))
        return -1;
    for (size_t i = 0; i < c->registry_tags.n; i++)
        if (!ha_point_registry_tag_ok(c->registry_tags.v[i])) {
            log_error("INFLUXDB_REGISTRY_TAGS: %s is not a registry field (area_id, area, floor_id, floor, device_id, "
                      "device, manufacturer, model, labels, platform, entity_category)", c->registry_tags.v[i]);
            return -1;
        }
    /* issue 18: the home_id tag is HomeIQ's, set per home (ha_point.h); a static one would
     * put every home's points, the default home's too, under one home */
    if (ha_strlist_has(&c->tag_keys, HA_POINT_HOME_TAG) || ha_strlist_has(&c->tags_attributes, HA_POINT_HOME_TAG)) {
        log_error("influxdb tags / tags_attributes (INFLUXDB_TAGS, INFLUXDB_TAGS_ATTRIBUTES): %s is reserved: HomeIQ "
                  "tags the points of each home other than the default one with it (set HOMEIQ_HOME_ID on the "
                  "ingestion instead)", HA_POINT_HOME_TAG);
        return -1;
    }
    return 0;
}

int ha_config_load(ha_point_config *cfg, int *enabled) {
    const char *schema = config_str("INFLUXDB_SCHEMA", HA_CONFIG_SCHEMA_DEFAULT);
    memset(cfg, 0, sizeof *cfg);
    *enabled = 0;
    if (!strcmp(schema, "homeiq")) return 0;
    if (strcmp(schema, "homeassistant") != 0) {
        log_error("INFLUXDB_SCHEMA=%s: expected homeiq or homeassistant", schema);
        return -1;
    }
    const char *path = config_str("INFLUXDB_HA_CONFIG", NULL);
    char err[512];
    if (path && ha_config_yaml(path, cfg, err, sizeof err) != 0) {
        log_error("INFLUXDB_HA_CONFIG: %s", err);
        ha_point_config_free(cfg);
        return -1;
    }
    if (hc_env(cfg) != 0) {
        ha_point_config_free(cfg);
        return -1;
    }
    *enabled = 1;
    static const char *attrs[] = {"unit_of_measurement", "domain__device_class", "entity_id"};
    static const char *precs[] = {"ns", "us", "ms", "s"};
    log_info("InfluxDB schema homeassistant: measurement_attr %s, precision %s, %zu static tags, %zu tag attributes, "
             "%zu ignored attributes, %zu/%zu/%zu component configs, filter %s",
             attrs[cfg->measurement_attr], precs[cfg->precision], cfg->tag_keys.n, cfg->tags_attributes.n,
             cfg->ignore_attributes.n, cfg->by_entity.n, cfg->by_glob.n, cfg->by_domain.n,
             ha_filter_active(&cfg->filter) ? "on" : "off");
    return 0;
}
