/* ha_config.h -- configuration of INFLUXDB_SCHEMA=homeassistant: environment
 * variables and the user's own `influxdb:` block of HA's configuration.yaml.
 *
 * Why: someone switching from HA's InfluxDB integration already has that
 * block (connection, measurement options, tags, filters, component_config);
 * pointing INFLUXDB_HA_CONFIG at their configuration.yaml must give the same
 * series without rewriting it as environment variables. So the block is read
 * with libyaml: `!secret name` comes from secrets.yaml beside the file,
 * unknown keys are warned about (not fatal), a wrong type stops the start
 * with an error naming the key and line. Connection keys map onto
 * data-storage's own settings (v1 host/port/path/ssl/database/username/
 * password, v2 api_version/token/organization/bucket; mixing them is an
 * error, as in HA); an environment variable that is set always wins.
 * The point options (measurement, tags, ignore lists, precision, filters)
 * may also be given as INFLUXDB_* variables (declared with their help in
 * main.c's table); per-entity component_config exists only in YAML.
 *
 * Ownership: ha_config_load fills a caller-owned ha_point_config
 * (ha_point_config_free). Secrets are registered with log_add_secret(). */
#ifndef HOMEIQ_HA_CONFIG_H
#define HOMEIQ_HA_CONFIG_H

#include "ha_point.h"

/* INFLUXDB_SCHEMA's default (main.c's table; read here before the table is). */
#define HA_CONFIG_SCHEMA_DEFAULT "homeiq"

/* Called before the backend is chosen: when INFLUXDB_HA_CONFIG is set,
 * reads its connection keys and sets the unset variables among
 * STORAGE_BACKEND (influxdb), INFLUXDB_SCHEMA (homeassistant), INFLUXDB_URL,
 * INFLUXDB_API_VERSION, _DATABASE, _USERNAME, _PASSWORD, _TOKEN, _ORG,
 * _BUCKET. 0, or -1 after logging why. */
int ha_config_env_defaults(void);

/* INFLUXDB_SCHEMA: *enabled = 1 for homeassistant (then *cfg is filled from
 * INFLUXDB_HA_CONFIG and the INFLUXDB_* point variables), 0 for homeiq.
 * 0, or -1 after logging why (unknown schema, bad value, bad YAML). */
int ha_config_load(ha_point_config *cfg, int *enabled);

/* Reads the point options of an `influxdb:` block from a YAML file into cfg
 * (exposed for tests). 0, or -1 with err set. */
int ha_config_yaml(const char *path, ha_point_config *cfg, char *err, size_t errlen);

#endif
