/* ctl_events.c -- `homeiqctl events`: query stored events; -f follows them.
 *
 * Why: operators want to see what HomeIQ stored without writing curl + jq:
 * the storage query API's filters as options, a readable table (or the JSON
 * as served), and a tail -f style follow mode to watch events arrive.
 *
 * Follow mode: the API serves newest first by time_fired and filters by a
 * time range, so each poll asks for everything at or after the newest
 * time_fired seen so far (paging with offset), drops what was already printed
 * (the event ids at that boundary time are remembered; pages shifted by
 * arrivals are de-duplicated by event_id) and prints the rest oldest first.
 * An event whose time_fired is older than the newest one printed (e.g. a
 * spool replay long after the fact) is not shown by follow mode; a plain
 * query shows it. */
#include "ctl.h"
#include "event.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTL_FOLLOW_PAGE 1000
#define CTL_FOLLOW_MAX_PAGES 20

typedef struct ctl_events_opts {
    const char *entity_id, *domain, *event_type, *start, *end;
    const char *area, *floor, *device, *label, *platform; /* HA registry ids (issue 11) */
    const char *limit, *offset;
    int as_json, follow;
    long interval_ms;
} ctl_events_opts;

/* Builds "/api/v1/events?..." from the filters; start overrides o->start when
 * non-NULL. Returns a malloc'd path or NULL. */
static char *ctl_events_path(const ctl_events_opts *o, const char *start, const char *limit, const char *offset) {
    char *qs = NULL;
    int rc = 0;
    if (o->entity_id) rc |= ctl_query_add(&qs, "entity_id", o->entity_id);
    if (o->domain) rc |= ctl_query_add(&qs, "domain", o->domain);
    if (o->event_type) rc |= ctl_query_add(&qs, "event_type", o->event_type);
    if (o->area) rc |= ctl_query_add(&qs, "area", o->area);
    if (o->floor) rc |= ctl_query_add(&qs, "floor", o->floor);
    if (o->device) rc |= ctl_query_add(&qs, "device", o->device);
    if (o->label) rc |= ctl_query_add(&qs, "label", o->label);
    if (o->platform) rc |= ctl_query_add(&qs, "platform", o->platform);
    if (start ? start : o->start) rc |= ctl_query_add(&qs, "start", start ? start : o->start);
    if (o->end) rc |= ctl_query_add(&qs, "end", o->end);
    rc |= ctl_home_query(&qs); /* --home (issue 18) */
    if (limit) rc |= ctl_query_add(&qs, "limit", limit);
    if (offset) rc |= ctl_query_add(&qs, "offset", offset);
    size_t n = (qs ? strlen(qs) : 0) + 32;
    char *path = rc ? NULL : malloc(n);
    if (path) snprintf(path, n, "/api/v1/events%s", qs ? qs : "");
    free(qs);
    return path;
}

/* GETs one page; 0 and a new reference to the answer's "events" array, or -1
 * (message printed). */
static int ctl_events_fetch(const char *path, json_t **events) {
    ctl_reply r;
    ctl_http("GET", ctl_service_url(CTL_STORAGE), path, NULL, 15000, &r);
    const json_t *ev = r.json ? json_object_get(r.json, "events") : NULL;
    int rc = 0;
    if (r.status == 200 && json_is_array(ev)) {
        *events = json_incref((json_t *)ev);
    } else {
        ctl_reply_complain(CTL_STORAGE, path, &r);
        rc = -1;
    }
    ctl_reply_free(&r);
    return rc;
}

static const char *ctl_str(const json_t *e, const char *key, const char *def) {
    const char *s = json_string_value(json_object_get(e, key));
    return s ? s : def;
}

static void ctl_events_print_header(void) {
    printf("%-27s %-16s %-40s %s\n", "TIME_FIRED", "EVENT_TYPE", "ENTITY_ID", "STATE");
}

static void ctl_events_print_row(const json_t *e, int as_json) {
    if (as_json) {
        char *text = json_dumps(e, JSON_COMPACT);
        if (text) puts(text);
        free(text);
        return;
    }
    const char *state = ctl_str(e, "state", json_is_null(json_object_get(e, "state")) ? "(removed)" : "");
    const char *unit = ctl_str(e, "unit_of_measurement", NULL);
    printf("%-27s %-16s %-40s %.60s%s%s\n", ctl_str(e, "time_fired", "?"), ctl_str(e, "event_type", "?"),
           ctl_str(e, "entity_id", "-"), state, unit ? " " : "", unit ? unit : "");
}

static int64_t ctl_event_time(const json_t *e) {
    int64_t us = 0;
    event_time_parse(ctl_str(e, "time_fired", ""), &us);
    return us;
}

static int ctl_events_once(const ctl_events_opts *o) {
    char *path = ctl_events_path(o, NULL, o->limit ? o->limit : "20", o->offset);
    if (!path) return CTL_FAIL;
    ctl_reply r;
    ctl_http("GET", ctl_service_url(CTL_STORAGE), path, NULL, 15000, &r);
    int rc = CTL_FAIL;
    const json_t *events = r.json ? json_object_get(r.json, "events") : NULL;
    if (r.status == 200 && json_is_array(events)) {
        rc = CTL_OK;
        if (o->as_json) {
            puts(r.body);
        } else {
            size_t i;
            const json_t *e;
            ctl_events_print_header();
            json_array_foreach(events, i, e) ctl_events_print_row(e, 0);
            printf("(%zu events, newest first)\n", json_array_size(events));
        }
    } else {
        ctl_reply_complain(CTL_STORAGE, path, &r);
    }
    ctl_reply_free(&r);
    free(path);
    return rc;
}

/* ---- follow mode ------------------------------------------------------ */

typedef struct ctl_follow {
    int64_t cursor_us;      /* newest time_fired printed; -1 = nothing yet */
    json_t *at_cursor;      /* object used as a set: event ids printed with time == cursor */
} ctl_follow;

static int ctl_follow_cmp(const void *a, const void *b) {
    int64_t ta = ctl_event_time(*(json_t *const *)a), tb = ctl_event_time(*(json_t *const *)b);
    return ta < tb ? -1 : ta > tb;
}

/* Prints the not-yet-printed events of `batch` oldest first, moves the cursor. */
static void ctl_follow_emit(ctl_follow *f, json_t *batch, int as_json) {
    size_t n = json_array_size(batch), k = 0;
    json_t **list = n ? malloc(n * sizeof *list) : NULL;
    json_t *seen = json_object();
    for (size_t i = 0; list && i < n; i++) {
        json_t *e = json_array_get(batch, i);
        const char *id = ctl_str(e, "event_id", "");
        int64_t t = ctl_event_time(e);
        if (f->cursor_us >= 0 && (t < f->cursor_us || (t == f->cursor_us && json_object_get(f->at_cursor, id))))
            continue;
        if (json_object_get(seen, id)) continue;
        json_object_set_new(seen, id, json_true());
        list[k++] = e;
    }
    if (k > 1) qsort(list, k, sizeof *list, ctl_follow_cmp); /* events with equal times: any order */
    for (size_t i = 0; i < k; i++) {
        int64_t t = ctl_event_time(list[i]);
        if (t > f->cursor_us) {
            f->cursor_us = t;
            json_object_clear(f->at_cursor);
        }
        if (t == f->cursor_us) json_object_set_new(f->at_cursor, ctl_str(list[i], "event_id", ""), json_true());
        ctl_events_print_row(list[i], as_json);
    }
    fflush(stdout);
    json_decref(seen);
    free(list);
}

/* Everything at or after the cursor, in pages. 0/-1. */
static int ctl_follow_poll(const ctl_events_opts *o, ctl_follow *f, json_t *batch) {
    char start[EVENT_TIME_LEN], limit[16], offset[24];
    if (f->cursor_us >= 0) event_time_format(f->cursor_us, start);
    snprintf(limit, sizeof limit, "%d", CTL_FOLLOW_PAGE);
    for (int page = 0; page < CTL_FOLLOW_MAX_PAGES; page++) {
        snprintf(offset, sizeof offset, "%d", page * CTL_FOLLOW_PAGE);
        char *path = ctl_events_path(o, f->cursor_us >= 0 ? start : NULL, limit, offset);
        json_t *events = NULL;
        int rc = path ? ctl_events_fetch(path, &events) : -1;
        free(path);
        if (rc != 0) return -1;
        json_array_extend(batch, events);
        size_t got = json_array_size(events);
        json_decref(events);
        if (got < CTL_FOLLOW_PAGE) return 0;
    }
    fprintf(stderr, "homeiqctl: more than %d new events per poll; showing the oldest may lag\n",
            CTL_FOLLOW_PAGE * CTL_FOLLOW_MAX_PAGES);
    return 0;
}

static void ctl_on_signal(int sig) {
    (void)sig;
    ctl_interrupted = 1;
}

static int ctl_events_follow(const ctl_events_opts *o) {
    struct sigaction sa = {0};
    sa.sa_handler = ctl_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    ctl_follow f = {.cursor_us = -1, .at_cursor = json_object()};
    /* Like tail: start with the last few events, then follow. */
    char *path = ctl_events_path(o, NULL, o->limit ? o->limit : "10", NULL);
    json_t *first = NULL;
    int rc = path ? ctl_events_fetch(path, &first) : -1;
    free(path);
    if (rc == 0) {
        if (!o->as_json) ctl_events_print_header();
        ctl_follow_emit(&f, first, o->as_json);
        json_decref(first);
    }
    while (rc == 0 && !ctl_interrupted) {
        ctl_sleep_ms(o->interval_ms);
        if (ctl_interrupted) break;
        json_t *batch = json_array();
        if (ctl_follow_poll(o, &f, batch) == 0) ctl_follow_emit(&f, batch, o->as_json);
        json_decref(batch); /* a failed poll is retried at the next interval */
    }
    json_decref(f.at_cursor);
    return rc == 0 ? CTL_OK : CTL_FAIL;
}

static void ctl_events_usage(FILE *out) {
    fprintf(out,
            "usage: homeiqctl events [--limit N] [--offset N] [--entity-id ID] [--domain D]\n"
            "                        [--event-type T] [--start TIME] [--end TIME] [--json]\n"
            "                        [--area ID] [--floor ID] [--device ID] [--label ID] [--platform P]\n"
            "                        [-f|--follow] [--interval DURATION] [--home ID]\n"
            "  Queries data-storage's GET /api/v1/events (times are RFC 3339, start inclusive, end\n"
            "  exclusive). Prints a table, newest first (--limit default 20, at most 10000).\n"
            "  --json prints the answer as served: {\"events\":[...],\"count\":N}.\n"
            "  -f/--follow prints the last --limit (default 10) events, then polls every --interval\n"
            "  (default 1s) and prints new events oldest first until Ctrl-C; with --json one JSON\n"
            "  object per line. --area/--floor/--device/--label/--platform take HA's registry ids\n"
            "  (--area kitchen). --home ID: only that home's events (also homeiqctl --home ID events).\n"
            "  URL: DATA_STORAGE_URL (see homeiqctl --help).\n");
}

int ctl_cmd_events(int argc, char **argv) {
    static const struct option opts[] = {
        {"limit", required_argument, NULL, 'l'},      {"offset", required_argument, NULL, 'o'},
        {"entity-id", required_argument, NULL, 'e'},  {"domain", required_argument, NULL, 'd'},
        {"event-type", required_argument, NULL, 't'}, {"start", required_argument, NULL, 's'},
        {"end", required_argument, NULL, 'E'},        {"json", no_argument, NULL, 'j'},
        {"follow", no_argument, NULL, 'f'},           {"interval", required_argument, NULL, 'i'},
        {"area", required_argument, NULL, 'A'},       {"floor", required_argument, NULL, 'F'},
        {"device", required_argument, NULL, 'D'},     {"label", required_argument, NULL, 'L'},
        {"platform", required_argument, NULL, 'P'},   {"home", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0},
    };
    ctl_events_opts o = {.interval_ms = 1000};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "l:o:e:d:t:s:E:jfi:hA:F:D:L:P:", opts, NULL)) != -1) {
        switch (c) {
        case 'l': o.limit = optarg; break;
        case 'o': o.offset = optarg; break;
        case 'e': o.entity_id = optarg; break;
        case 'd': o.domain = optarg; break;
        case 't': o.event_type = optarg; break;
        case 's': o.start = optarg; break;
        case 'E': o.end = optarg; break;
        case 'j': o.as_json = 1; break;
        case 'A': o.area = optarg; break;
        case 'F': o.floor = optarg; break;
        case 'D': o.device = optarg; break;
        case 'L': o.label = optarg; break;
        case 'P': o.platform = optarg; break;
        case 'H':
            if (ctl_home_set(optarg) != 0) return CTL_USAGE;
            break;
        case 'f': o.follow = 1; break;
        case 'i':
            if (ctl_parse_duration_ms(optarg, &o.interval_ms) == 0 && o.interval_ms > 0) break;
            fprintf(stderr, "homeiqctl: --interval %s: expected a duration like 1s or 500ms\n", optarg);
            return CTL_USAGE;
        case 'h': ctl_events_usage(stdout); return CTL_OK;
        default: ctl_events_usage(stderr); return CTL_USAGE;
        }
    }
    if (optind < argc) return ctl_events_usage(stderr), CTL_USAGE;
    if (o.follow && o.offset) {
        fprintf(stderr, "homeiqctl: --offset cannot be combined with --follow\n");
        return CTL_USAGE;
    }
    return o.follow ? ctl_events_follow(&o) : ctl_events_once(&o);
}
