/* ctl_stats.c -- `homeiqctl stats`: long-term statistics of entities.
 *
 * Why: the statistics are what is left of a day once its raw events are
 * purged; operators want them without curl + jq. Options map one to one to
 * GET /api/v1/statistics (storage validates them and names a bad one); the
 * output is a table per entity, or the JSON as served (--json). */
#include "ctl.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char ctl_stats_usage[] =
    "usage: homeiqctl stats --entity ID[,ID...] [--period 5minute|hour|day|week|month]\n"
    "                       [--start RFC3339] [--end RFC3339] [--types mean,min,max,sum,...] [--json]\n"
    "                       [--home ID]\n"
    "  --start defaults to 24 hours ago; --period to hour. Times in the table are UTC.\n"
    "  --home ID: that home's statistics (also homeiqctl --home ID stats); without it the default home's.";

static void ctl_stats_cell(const json_t *row, const char *key) {
    const json_t *v = json_object_get(row, key);
    if (json_is_number(v)) printf(" %14.4f", json_number_value(v));
    else printf(" %14s", "-");
}

static void ctl_stats_table(const json_t *answer) {
    static const char *const cols[] = {"mean", "min", "max", "last", "sum", "change"};
    const char *entity;
    const json_t *rows;
    json_object_foreach((json_t *)answer, entity, rows) {
        printf("%s\n%-20s", entity, "start (UTC)");
        for (size_t c = 0; c < sizeof cols / sizeof *cols; c++) printf(" %14s", cols[c]);
        printf(" %8s\n", "count");
        size_t i;
        const json_t *row;
        json_array_foreach(rows, i, row) {
            time_t t = (time_t)(json_integer_value(json_object_get(row, "start")) / 1000);
            struct tm tm;
            char when[32];
            gmtime_r(&t, &tm);
            strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
            printf("%-20s", when);
            for (size_t c = 0; c < sizeof cols / sizeof *cols; c++) ctl_stats_cell(row, cols[c]);
            const json_t *n = json_object_get(row, "count");
            if (json_is_integer(n)) printf(" %8lld\n", (long long)json_integer_value(n));
            else printf(" %8s\n", "-");
        }
    }
}

int ctl_cmd_stats(int argc, char **argv) {
    static const struct option opts[] = {
        {"entity", required_argument, NULL, 'e'}, {"period", required_argument, NULL, 'p'},
        {"start", required_argument, NULL, 's'},  {"end", required_argument, NULL, 'E'},
        {"types", required_argument, NULL, 't'},  {"json", no_argument, NULL, 'j'},
        {"home", required_argument, NULL, 'H'},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *entity = NULL, *period = "hour", *start = NULL, *end = NULL, *types = NULL;
    int as_json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'e': entity = optarg; break;
        case 'p': period = optarg; break;
        case 's': start = optarg; break;
        case 'E': end = optarg; break;
        case 't': types = optarg; break;
        case 'j': as_json = 1; break;
        case 'H':
            if (ctl_home_set(optarg) != 0) return CTL_USAGE;
            break;
        case 'h': puts(ctl_stats_usage); return CTL_OK;
        default: fprintf(stderr, "%s\n", ctl_stats_usage); return CTL_USAGE;
        }
    }
    if (!entity || optind < argc) {
        fprintf(stderr, "%s\n", ctl_stats_usage);
        return CTL_USAGE;
    }
    char start_buf[32];
    if (!start) {
        time_t t = time(NULL) - 86400;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(start_buf, sizeof start_buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
        start = start_buf;
    }
    char *qs = NULL;
    int rc = ctl_query_add(&qs, "entity_id", entity) | ctl_query_add(&qs, "period", period) |
             ctl_query_add(&qs, "start", start);
    if (end) rc |= ctl_query_add(&qs, "end", end);
    if (types) rc |= ctl_query_add(&qs, "types", types);
    rc |= ctl_home_query(&qs);
    size_t n = (qs ? strlen(qs) : 0) + 32;
    char *path = rc ? NULL : malloc(n);
    if (!path) {
        free(qs);
        return CTL_FAIL;
    }
    snprintf(path, n, "/api/v1/statistics%s", qs);
    free(qs);
    ctl_reply r;
    ctl_http("GET", ctl_service_url(CTL_STORAGE), path, NULL, 15000, &r);
    int out = CTL_OK;
    if (r.status == 200 && json_is_object(r.json)) {
        if (as_json) printf("%s\n", r.body);
        else ctl_stats_table(r.json);
    } else {
        ctl_reply_complain(CTL_STORAGE, path, &r);
        out = r.status == 400 ? CTL_USAGE : CTL_FAIL;
    }
    ctl_reply_free(&r);
    free(path);
    return out;
}
