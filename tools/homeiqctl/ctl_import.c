/* ctl_import.c -- `homeiqctl import-history --since 7d [--entity ID]...`: loads HA's
 * recorder history into HomeIQ (a fresh install, or history older than the gap
 * backfill looks at), with a progress bar.
 *
 * Why through websocket-ingestion and not a connection of its own: ingestion is
 * HomeIQ's only HA client and owns the spool; an import there travels the same
 * contract (spool, ack, identities) as every other event. The import runs in
 * ingestion (POST /api/v1/backfill/import); this command starts it and watches
 * GET /api/v1/backfill. Ctrl-C stops watching only: the import goes on in
 * ingestion, keeps its progress across ingestion's restarts, and running the
 * command again shows it. Run twice, it stores nothing twice (identities). */
#include "ctl.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void ctl_import_usage(FILE *out) {
    fprintf(out,
            "usage: homeiqctl import-history --since DURATION [--entity ENTITY_ID]... [--quiet]\n"
            "  Reads the last DURATION (7d, 36h, 90m, 3600s) of Home Assistant's recorder history\n"
            "  through websocket-ingestion into HomeIQ (all entities, or those given). Shows progress\n"
            "  until done. Ctrl-C stops watching; the import continues in websocket-ingestion and\n"
            "  resumes after its restart; run the command again to watch it. Stored events are never\n"
            "  duplicated, so running it twice is harmless. Exit 0 when done, 1 on failure.\n");
}

static void ctl_import_on_signal(int sig) {
    (void)sig;
    ctl_interrupted = 1;
}

/* One progress line from GET /api/v1/backfill's "backfill" object. */
static void ctl_import_progress(json_t *bf, int tty) {
    json_t *imp = json_object_get(bf, "import");
    long long wd = json_integer_value(json_object_get(bf, "windows_done"));
    long long w = json_integer_value(json_object_get(bf, "windows"));
    long long ev = json_integer_value(json_object_get(bf, "events"));
    const char *kind = json_string_value(json_object_get(bf, "kind"));
    const char *state = json_string_value(json_object_get(bf, "state"));
    const char *next = json_string_value(json_object_get(imp, "next"));
    int is_import = kind && !strcmp(kind, "import");
    int pct = is_import && w > 0 ? (int)(wd * 100 / w) : 0;
    char bar[31];
    for (int i = 0; i < 30; i++) bar[i] = i < pct * 30 / 100 ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "%s[%s] %3d%%  %lld events  %s%s%s%s", tty ? "\r" : "", bar, pct, is_import ? ev : 0,
            is_import ? state : "waiting for the gap backfill", next && is_import ? "  at " : "",
            next && is_import ? next : "", tty ? "   " : "\n");
    fflush(stderr);
}

int ctl_cmd_import_history(int argc, char **argv) {
    static const struct option opts[] = {
        {"since", required_argument, NULL, 's'}, {"entity", required_argument, NULL, 'e'},
        {"quiet", no_argument, NULL, 'q'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *since = NULL;
    int quiet = 0, c;
    json_t *ids = json_array();
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:e:qh", opts, NULL)) != -1) {
        if (c == 's') since = optarg;
        else if (c == 'e') json_array_append_new(ids, json_string(optarg));
        else if (c == 'q') quiet = 1;
        else if (c == 'h') return json_decref(ids), ctl_import_usage(stdout), CTL_OK;
        else return json_decref(ids), ctl_import_usage(stderr), CTL_USAGE;
    }
    if (!since || optind < argc) return json_decref(ids), ctl_import_usage(stderr), CTL_USAGE;
    json_t *req = json_pack("{s:s}", "since", since);
    if (json_array_size(ids)) json_object_set(req, "entity_ids", ids);
    json_decref(ids);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    const char *base = ctl_service_url(CTL_INGESTION);
    ctl_reply r;
    ctl_http("POST", base, "/api/v1/backfill/import", body, 10000, &r);
    free(body);
    if (r.status != 202 && r.status != 200) {
        char why[300];
        ctl_reply_reason(&r, why, sizeof why);
        long status = r.status;
        fprintf(stderr, "homeiqctl: websocket-ingestion refused the import (%ld): %s\n", status, why);
        ctl_reply_free(&r);
        return status == 400 ? CTL_USAGE : CTL_FAIL;
    }
    int already = json_is_true(json_object_get(r.json, "already_running"));
    ctl_reply_free(&r);
    if (!quiet)
        fprintf(stderr, already ? "an import is already under way in websocket-ingestion; watching it\n"
                                : "import of the last %s of Home Assistant's history started\n", since);

    struct sigaction sa = {0};
    sa.sa_handler = ctl_import_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int tty = isatty(2), rc = CTL_FAIL, polls = 0;
    while (!ctl_interrupted) {
        ctl_http("GET", base, "/api/v1/backfill", NULL, 10000, &r);
        json_t *bf = json_object_get(r.json, "backfill");
        if (r.status != 200 || !bf) {
            char why[300];
            ctl_reply_reason(&r, why, sizeof why);
            fprintf(stderr, "%shomeiqctl: cannot read the import's progress: %s (retrying)\n", tty ? "\n" : "", why);
        } else {
            const char *state = json_string_value(json_object_get(bf, "state"));
            const char *kind = json_string_value(json_object_get(bf, "kind"));
            int pending = json_is_true(json_object_get(json_object_get(bf, "import"), "pending"));
            if (!quiet && (tty || polls % 10 == 0)) ctl_import_progress(bf, tty);
            if (!pending && kind && !strcmp(kind, "import") && state && !strcmp(state, "done")) {
                if (!quiet) ctl_import_progress(bf, tty);
                fprintf(stdout, "%simport done: %lld events read from Home Assistant's history\n", tty ? "\n" : "",
                        (long long)json_integer_value(json_object_get(bf, "events")));
                rc = CTL_OK;
                ctl_reply_free(&r);
                break;
            }
            if (!pending && state && !strcmp(state, "unsupported")) {
                fprintf(stderr, "%shomeiqctl: %s\n", tty ? "\n" : "",
                        json_string_value(json_object_get(bf, "last_error")));
                ctl_reply_free(&r);
                break;
            }
        }
        ctl_reply_free(&r);
        polls++;
        ctl_sleep_ms(500);
    }
    if (ctl_interrupted) {
        fprintf(stderr, "%sstopped watching; the import continues in websocket-ingestion (and resumes after a "
                        "restart). Run the same command again to watch it.\n", tty ? "\n" : "");
        rc = 130;
    }
    return rc;
}
