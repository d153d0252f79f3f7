/* fuzz_config_env.c -- lib/config on arbitrary values: integer and boolean
 * variables, a secret read from NAME_FILE, and command lines. Input: fields
 * separated by '\n': integer value, boolean value, secret file contents, then
 * one argv word per remaining line. An accepted integer is in its range and
 * is exactly the number written; a refused one keeps the caller's value; a
 * boolean is 0 or 1; a secret never keeps trailing newlines. No crash, no
 * leak, whatever the bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

static char secret_path[64];

/* The table's defaults agree with the older getters' below (config_long and
 * config_bool refuse a default that contradicts the registered table). */
static const config_var vars[] = {CONFIG_INT("FUZZ_INT", "7", -1000, 1000000, "an integer"),
                                  CONFIG_BOOL("FUZZ_BOOL", "1", "a boolean"), CONFIG_TEXT("FUZZ_SECRET", NULL, "a secret"),
                                  CONFIG_END};

/* The next '\n'-terminated field of [*p, end) as a NUL-terminated copy. */
static char *field(const char **p, const char *end) {
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    const char *e = nl ? nl : end;
    size_t n = (size_t)(e - *p);
    char *s = malloc(n + 1);
    memcpy(s, *p, n);
    s[n] = '\0';
    *p = nl ? nl + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!secret_path[0]) {
        snprintf(secret_path, sizeof secret_path, "/tmp/homeiq-fuzz-secret.%d", (int)getpid());
        if (!freopen("/dev/null", "w", stdout)) abort(); /* --help and usage texts */
    }
    const char *p = (const char *)data, *end = p + size;
    char *iv = field(&p, end), *bv = field(&p, end), *sv = field(&p, end);

    setenv("FUZZ_INT", iv, 1);
    long long out = -12345;
    if (config_long("FUZZ_INT", 7, -1000, 1000000, &out) == 0) {
        if (*iv ? (out < -1000 || out > 1000000) : out != 7) abort();
        char back[32];
        snprintf(back, sizeof back, "%lld", out);
        if (*iv && strtoll(iv, NULL, 10) != out) abort();
    } else if (out != -12345) {
        abort();
    }
    long long tout = -12345; /* the table getter reads the same value the same way */
    int trc = config_int(vars, "FUZZ_INT", &tout);
    if (trc != (out == -12345 ? -1 : 0) || (trc == 0 && tout != out)) abort();
    setenv("FUZZ_BOOL", bv, 1);
    int b = -7, tb = -7;
    int brc = config_bool("FUZZ_BOOL", 1, &b);
    if (brc == 0 && b != 0 && b != 1) abort();
    if (config_flag(vars, "FUZZ_BOOL", &tb) != brc || (brc == 0 && tb != b)) abort();

    FILE *f = fopen(secret_path, "wb");
    if (!f) abort();
    fputs(sv, f);
    fclose(f);
    unsetenv("FUZZ_SECRET");
    setenv("FUZZ_SECRET_FILE", secret_path, 1);
    char *sec = config_secret("FUZZ_SECRET");
    if (sec) {
        size_t n = strlen(sec);
        if (n && (sec[n - 1] == '\n' || sec[n - 1] == '\r')) abort();
        free(sec);
    }

    char *argv[34];
    int argc = 0;
    argv[argc++] = strdup("homeiq-fuzz");
    while (p < end && argc < 33) argv[argc++] = field(&p, end);
    argv[argc] = NULL;
    int rc = config_parse_args(argc, argv, "usage: homeiq-fuzz", vars);
    if (rc < -1 || rc > 1) abort();
    for (int i = 0; i < argc; i++) free(argv[i]);
    free(iv);
    free(bv);
    free(sv);
    unlink(secret_path);
    return 0;
}
