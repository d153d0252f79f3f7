/* ctl_homes.c -- `homeiqctl homes`, and the --home option every read command
 * takes (issue 18).
 *
 * Why a file of its own: one installation may store many homes (HOMEIQ_HOME_ID
 * per ingestion); an operator asks which homes are stored and then looks at one
 * of them. --home ID (before the command, or as the command's own option) is
 * checked here once, by HOMEIQ_HOME_ID's rules (lib/event.c), and added as
 * home= to the storage reads of events, stats and validate; `homes` lists GET
 * /api/v1/homes. */
#include "ctl.h"
#include "event.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ctl_home;

int ctl_home_set(const char *home) {
    char why[160];
    if (event_home_check(home, why, sizeof why) != 0) {
        fprintf(stderr, "homeiqctl: --home %s: %s\n", home, why);
        return -1;
    }
    ctl_home = home;
    return 0;
}

int ctl_home_query(char **qs) { return ctl_home ? ctl_query_add(qs, "home", ctl_home) : 0; }

static void ctl_homes_usage(FILE *out) {
    fprintf(out,
            "usage: homeiqctl homes [--json]\n"
            "  The homes data-storage holds events of (GET /api/v1/homes), each with its number of\n"
            "  stored events, in home id order. Every read command takes --home ID to look at one:\n"
            "  homeiqctl --home ID events|stats|validate ... (or the command's own --home ID).\n");
}

int ctl_cmd_homes(int argc, char **argv) {
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int as_json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
        if (c == 'j') as_json = 1;
        else if (c == 'h') return ctl_homes_usage(stdout), CTL_OK;
        else return ctl_homes_usage(stderr), CTL_USAGE;
    }
    if (optind < argc) return ctl_homes_usage(stderr), CTL_USAGE;
    if (ctl_home) {
        fprintf(stderr, "homeiqctl: homes lists every home; --home selects one for events, stats and validate\n");
        return CTL_USAGE;
    }
    ctl_reply r;
    ctl_http("GET", ctl_service_url(CTL_STORAGE), "/api/v1/homes", NULL, 15000, &r);
    const json_t *homes = r.json ? json_object_get(r.json, "homes") : NULL;
    int rc = CTL_FAIL;
    if (r.status == 200 && json_is_array(homes)) {
        rc = CTL_OK;
        if (as_json) {
            puts(r.body);
        } else {
            size_t i;
            const json_t *h;
            printf("%-32s %12s\n", "HOME_ID", "EVENTS");
            json_array_foreach(homes, i, h) {
                const char *id = json_string_value(json_object_get(h, "home_id")); /* NULL: a row without one */
                printf("%-32s %12lld\n", id ? id : "", (long long)json_integer_value(json_object_get(h, "events")));
            }
        }
    } else {
        ctl_reply_complain(CTL_STORAGE, "/api/v1/homes", &r);
    }
    ctl_reply_free(&r);
    return rc;
}
