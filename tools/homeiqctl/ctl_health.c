/* ctl_health.c -- `homeiqctl health`: every service's /health in one table.
 *
 * Why: the first question in any incident is "which service is unhappy and
 * why"; each service answers 503 with a machine-readable reason, and this
 * puts the three answers side by side with an exit code scripts can use. */
#include "ctl.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

int ctl_health_check(ctl_service s, long timeout_ms, ctl_health_result *r) {
    ctl_reply rep;
    ctl_http("GET", ctl_service_url(s), "/health", NULL, timeout_ms, &rep);
    r->status = rep.status;
    ctl_reply_reason(&rep, r->reason, sizeof r->reason);
    ctl_reply_free(&rep);
    return r->status == 200 ? 0 : -1;
}

static void ctl_health_usage(FILE *out) {
    fprintf(out, "usage: homeiqctl health [--json] [--timeout DURATION]\n"
                 "  Prints every service's GET /health (HTTP status and reason); exit 0 only when all\n"
                 "  three answer 200. --timeout per request (default 5s). URLs: see homeiqctl --help.\n");
}

static void ctl_health_print_json(const ctl_health_result *res) {
    json_t *out = json_object();
    for (int i = 0; i < CTL_NSERVICES; i++) {
        json_t *o = json_pack("{s:s, s:I, s:b, s:s}", "url", ctl_service_url((ctl_service)i), "status",
                              (json_int_t)res[i].status, "healthy", res[i].status == 200, "reason",
                              res[i].reason);
        json_object_set_new(out, ctl_service_name((ctl_service)i), o);
    }
    char *text = json_dumps(out, JSON_INDENT(2));
    if (text) puts(text);
    free(text);
    json_decref(out);
}

int ctl_cmd_health(int argc, char **argv) {
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0},
    };
    int as_json = 0, c;
    long timeout_ms = 5000;
    optind = 1;
    while ((c = getopt_long(argc, argv, "jt:h", opts, NULL)) != -1) {
        if (c == 'j') as_json = 1;
        else if (c == 't' && ctl_parse_duration_ms(optarg, &timeout_ms) == 0) continue;
        else if (c == 'h') return ctl_health_usage(stdout), CTL_OK;
        else return ctl_health_usage(stderr), CTL_USAGE;
    }
    if (optind < argc) return ctl_health_usage(stderr), CTL_USAGE;

    ctl_health_result res[CTL_NSERVICES];
    int unhealthy = 0;
    for (int i = 0; i < CTL_NSERVICES; i++)
        if (ctl_health_check((ctl_service)i, timeout_ms, &res[i]) != 0) unhealthy++;
    if (as_json) {
        ctl_health_print_json(res);
    } else {
        printf("%-21s %-30s %-4s %-9s %s\n", "SERVICE", "URL", "HTTP", "HEALTH", "REASON");
        for (int i = 0; i < CTL_NSERVICES; i++) {
            char code[8];
            if (res[i].status) snprintf(code, sizeof code, "%ld", res[i].status);
            else snprintf(code, sizeof code, "-");
            const char *state = res[i].status == 200 ? "healthy" : res[i].status ? "UNHEALTHY" : "DOWN";
            printf("%-21s %-30s %-4s %-9s %s\n", ctl_service_name((ctl_service)i),
                   ctl_service_url((ctl_service)i), code, state, res[i].status == 200 ? "-" : res[i].reason);
        }
    }
    return unhealthy ? CTL_FAIL : CTL_OK;
}
