/* fuzz_ha_config_yaml.c -- data-storage's reader of HA's configuration.yaml
 * (ha_config.c, libyaml) on arbitrary file contents: it answers 0 or -1 with
 * an error text, never crashes, hangs or leaks; `!secret` lookups read a
 * secrets.yaml beside the file (written once, empty of surprises). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ha_config.h"
#include "ha_point.h"
#include "log.h"

static char dir[64], path[96];

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/homeiq-fuzz-yaml.XXXXXX");
    if (!mkdtemp(dir)) abort();
    snprintf(path, sizeof path, "%s/configuration.yaml", dir);
    char sec[96];
    snprintf(sec, sizeof sec, "%s/secrets.yaml", dir);
    FILE *f = fopen(sec, "w");
    if (!f) abort();
    fputs("influx_pw: hunter2\ntoken: abc\nlist: [1, 2]\n", f);
    fclose(f);
    setenv("LOG_LEVEL", "error", 1); /* warnings about unknown keys: not output */
    log_init("fuzz");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) setup();
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fwrite(data, 1, size, f);
    fclose(f);
    ha_point_config cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[256] = "";
    int rc = ha_config_yaml(path, &cfg, err, sizeof err);
    if (rc != 0 && !err[0]) abort(); /* a refusal always says why */
    if (rc != 0 && !memchr(err, '\0', sizeof err)) abort();
    ha_point_config_free(&cfg);
    return 0;
}
