/* ctl_health.c -- `homeiqctl health`: every service's /health in one table.
 *
 * Why: the first question in any incident is "which service is unhappy and
 * why"; each service answers 503 with a machine-readable reason, and this
 * puts the three answers side by side with an exit code scripts can use.
 * Behind a load balancer the service URLs are the balanced ones, which hide a
 * dead replica (the balancer retries on the other): --probe NAME=URL adds a
 * row per replica (its own /health) or per ClickHouse server (/ping), so the
 * table says which hop is down while it is (docs/CLICKHOUSE.md, Scale-out). */
#include "ctl.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#define CTL_MAX_PROBES 32

/* GET base+path; the reason, and in `detail` the store's own error when the
 * answer carries one (data-storage: backend.cluster_error / backend.last_error,
 * which name the ClickHouse server that failed). */
static int ctl_health_get(const char *base, const char *path, long timeout_ms, ctl_health_result *r) {
    ctl_reply rep;
    ctl_http("GET", base, path, NULL, timeout_ms, &rep);
    r->status = rep.status;
    ctl_reply_reason(&rep, r->reason, sizeof r->reason);
    json_t *backend = rep.status != 200 ? json_object_get(rep.json, "backend") : NULL;
    const char *detail = json_string_value(json_object_get(backend, "cluster_error"));
    if (!detail) detail = json_string_value(json_object_get(backend, "last_error"));
    snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "");
    ctl_reply_free(&rep);
    return r->status == 200 ? 0 : -1;
}

int ctl_health_check(ctl_service s, long timeout_ms, ctl_health_result *r) {
    return ctl_health_get(ctl_service_url(s), "/health", timeout_ms, r);
}

static void ctl_health_usage(FILE *out) {
    fprintf(out, "usage: homeiqctl health [--json] [--timeout DURATION] [--probe NAME=URL]...\n"
                 "  Prints every service's GET /health (HTTP status and reason); exit 0 only when all\n"
                 "  three answer 200. --timeout per request (default 5s). URLs: see homeiqctl --help.\n"
                 "  --probe NAME=URL (repeatable, at most %d): one more row, GET URL as given, healthy on\n"
                 "  200; e.g. each replica behind a load balancer (http://10.0.0.5:8004/health) or each\n"
                 "  ClickHouse server (http://10.0.0.7:8123/ping). Also counted in the exit status.\n",
            CTL_MAX_PROBES);
}

typedef struct ctl_row {
    const char *name, *url;
    ctl_health_result res;
} ctl_row;

static void ctl_health_print_json(const ctl_row *rows, int n) {
    json_t *out = json_object();
    for (int i = 0; i < n; i++) {
        json_t *o = json_pack("{s:s, s:I, s:b, s:s}", "url", rows[i].url, "status", (json_int_t)rows[i].res.status,
                              "healthy", rows[i].res.status == 200, "reason", rows[i].res.reason);
        if (o && rows[i].res.detail[0]) json_object_set_new(o, "detail", json_string(rows[i].res.detail));
        json_object_set_new(out, rows[i].name, o);
    }
    char *text = json_dumps(out, JSON_INDENT(2));
    if (text) puts(text);
    free(text);
    json_decref(out);
}

int ctl_cmd_health(int argc, char **argv) {
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},  {"timeout", required_argument, NULL, 't'},
        {"probe", required_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int as_json = 0, c, nrows = CTL_NSERVICES;
    long timeout_ms = 5000;
    ctl_row rows[CTL_NSERVICES + CTL_MAX_PROBES];
    char names[CTL_MAX_PROBES][64];
    for (int i = 0; i < CTL_NSERVICES; i++)
        rows[i] = (ctl_row){.name = ctl_service_name((ctl_service)i), .url = ctl_service_url((ctl_service)i)};
    optind = 1;
    while ((c = getopt_long(argc, argv, "jt:p:h", opts, NULL)) != -1) {
        if (c == 'j') as_json = 1;
        else if (c == 't' && ctl_parse_duration_ms(optarg, &timeout_ms) == 0) continue;
        else if (c == 'p') {
            const char *eq = strchr(optarg, '=');
            int k = nrows - CTL_NSERVICES;
            if (!eq || eq == optarg || (size_t)(eq - optarg) >= sizeof names[0] || k == CTL_MAX_PROBES ||
                (strncmp(eq + 1, "http://", 7) != 0 && strncmp(eq + 1, "https://", 8) != 0)) {
                fprintf(stderr, "homeiqctl health: --probe %s: expected NAME=http(s)://URL (at most %d)\n", optarg,
                        CTL_MAX_PROBES);
                return CTL_USAGE;
            }
            snprintf(names[k], sizeof names[k], "%.*s", (int)(eq - optarg), optarg);
            rows[nrows++] = (ctl_row){.name = names[k], .url = eq + 1};
        }
        else if (c == 'h') return ctl_health_usage(stdout), CTL_OK;
        else return ctl_health_usage(stderr), CTL_USAGE;
    }
    if (optind < argc) return ctl_health_usage(stderr), CTL_USAGE;

    int unhealthy = 0;
    for (int i = 0; i < nrows; i++) {
        int rc = i < CTL_NSERVICES ? ctl_health_check((ctl_service)i, timeout_ms, &rows[i].res)
                                   : ctl_health_get(rows[i].url, "", timeout_ms, &rows[i].res);
        if (rc != 0) unhealthy++;
    }
    if (as_json) {
        ctl_health_print_json(rows, nrows);
    } else {
        printf("%-21s %-30s %-4s %-9s %s\n", "SERVICE", "URL", "HTTP", "HEALTH", "REASON");
        for (int i = 0; i < nrows; i++) {
            const ctl_health_result *r = &rows[i].res;
            char code[8];
            if (r->status) snprintf(code, sizeof code, "%ld", r->status);
            else snprintf(code, sizeof code, "-");
            const char *state = r->status == 200 ? "healthy" : r->status ? "UNHEALTHY" : "DOWN";
            printf("%-21s %-30s %-4s %-9s %s%s%s\n", rows[i].name, rows[i].url, code, state,
                   r->status == 200 ? "-" : r->reason, r->detail[0] ? ": " : "", r->detail);
        }
    }
    return unhealthy ? CTL_FAIL : CTL_OK;
}
