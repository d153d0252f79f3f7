/* backfill_api.c -- the HTTP side of the backfill (websocket-ingestion):
 *  GET  /api/v1/backfill           the current / last run, the mark, the import's progress
 *  POST /api/v1/backfill/import    {"since":"7d"|seconds, "entity_ids":[...]?}: read that much of
 *                                  HA's history into the spool (homeiqctl import-history)
 * and the "backfill" object of /health. Why a file of its own: the backfill is its own
 * concern (backfill.c); ingest_api.c keeps the spool's API. */
#include "backfill_api.h"

#include "event.h"

#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

static json_t *bfa_time(int64_t us) {
    if (us <= 0) return json_null();
    char t[EVENT_TIME_LEN];
    event_time_format(us, t);
    return json_string(t);
}

json_t *backfill_api_json(ingest *in) {
    if (!in->bf) return json_null();
    backfill_stats bs;
    backfill_get_stats(in->bf, &bs);
    json_t *j = json_pack("{s:s,s:s,s:I,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:s}", "state", bs.state, "kind",
                          bs.kind, "runs", (json_int_t)bs.runs, "from", bfa_time(bs.from_us), "to", bfa_time(bs.to_us),
                          "entities", (json_int_t)bs.entities, "entities_done", (json_int_t)bs.entities_done,
                          "windows", (json_int_t)bs.windows, "windows_done", (json_int_t)bs.windows_done, "events",
                          (json_int_t)bs.events, "events_total", (json_int_t)bs.events_total, "requests",
                          (json_int_t)bs.requests_total, "failures", (json_int_t)bs.failures_total, "duration_s",
                          bs.duration_s, "last_error", bs.last_error);
    json_object_set_new(j, "high_water_mark", bfa_time(hwm_get(in->hw)));
    int pending;
    int64_t from, to, next;
    backfill_import_status(in->bf, &pending, &from, &to, &next);
    json_object_set_new(j, "import",
                        pending ? json_pack("{s:b,s:o,s:o,s:o}", "pending", 1, "from", bfa_time(from), "to",
                                            bfa_time(to), "next", bfa_time(next))
                                : json_pack("{s:b}", "pending", 0));
    return j;
}

static void bfa_get(struct evhttp_request *req, void *arg) {
    ingest *in = arg;
    if (httpd_require_method(req, EVHTTP_REQ_GET)) return;
    if (!in->bf) {
        httpd_reply_error(req, 404, "no home assistant connection (HOME_ASSISTANT_URL=none): no backfill");
        return;
    }
    httpd_reply_json(req, 200, json_pack("{s:o}", "backfill", backfill_api_json(in)));
}

/* "7d", "36h", "90m", "3600s", "3600" or a JSON number of seconds -> seconds; -1 when bad */
static long long bfa_since(json_t *v) {
    if (json_is_integer(v)) return json_integer_value(v);
    const char *s = json_string_value(v);
    if (!s || !*s) return -1;
    char *end;
    long long n = strtoll(s, &end, 10);
    if (end == s || n < 0) return -1;
    long long mul = !*end || !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60 : !strcmp(end, "h") ? 3600
                  : !strcmp(end, "d") ? 86400 : -1;
    return mul < 0 ? -1 : n * mul;
}

static void bfa_import(struct evhttp_request *req, void *arg) {
    ingest *in = arg;
    if (httpd_require_method(req, EVHTTP_REQ_POST)) return;
    if (!in->bf) {
        httpd_reply_error(req, 404, "no home assistant connection (HOME_ASSISTANT_URL=none): no backfill");
        return;
    }
    json_t *body;
    if (httpd_read_json(req, &body) != 0) return;
    long long since = bfa_since(json_object_get(body, "since"));
    json_t *ids = json_object_get(body, "entity_ids");
    size_t n = json_is_array(ids) ? json_array_size(ids) : 0;
    const char **list = calloc(n ? n : 1, sizeof *list);
    char dom[256];
    const char *obj;
    int bad = !json_is_object(body) || since <= 0 || since > 86400ll * 3650 || (ids && !json_is_array(ids)) || !list;
    for (size_t i = 0; !bad && i < n; i++) {
        list[i] = json_string_value(json_array_get(ids, i));
        if (!list[i] || event_entity_split(list[i], dom, sizeof dom, &obj) != 0) bad = 1;
    }
    if (bad) {
        httpd_reply_error(req, 400, "expected {\"since\":\"7d\"|\"36h\"|seconds, \"entity_ids\":[\"domain.object\",...]}");
    } else {
        int rc = backfill_import(in->bf, since * 1000000, list, n);
        if (rc < 0)
            httpd_reply_error(req, 409, "backfill is off (BACKFILL=0)");
        else
            httpd_reply_json(req, rc == 0 ? 202 : 200,
                             json_pack("{s:b,s:o}", "already_running", rc == 1, "backfill", backfill_api_json(in)));
    }
    free(list);
    json_decref(body);
}

int backfill_api_init(ingest *in) {
    if (httpd_route(in->hd, "/api/v1/backfill", bfa_get, in) != 0) return -1;
    return httpd_route(in->hd, "/api/v1/backfill/import", bfa_import, in);
}
