/* latency.c -- reads every stored event back from data-storage's query API and
 * reports end-to-end latency (stored_at - time_fired: the simulator stamps
 * time_fired when it sends an event, storage stamps stored_at at commit), the
 * span from the first event sent to the last commit, and how many identities
 * occur more than once. The benchmark runner turns this into its results. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "event.h"
#include "httpc.h"

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static double pct(const long long *v, size_t n, double p) {
    if (!n) return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)v[i] / 1000.0;
}

int main(int argc, char **argv) {
    static const config_var vars[] = {CONFIG_END};
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        config_parse_args(2, (char *[]){argv[0], "--help", NULL},
                          "usage: homeiq-bench-latency STORAGE_URL [QUERY]\n"
                          "Pages through STORAGE_URL/api/v1/events?QUERY and prints latency statistics as JSON.",
                          vars);
        return argc < 2 ? 2 : 0;
    }
    const char *base = argv[1], *query = argc > 2 ? argv[2] : "";
    size_t cap = 1 << 16, n = 0;
    long long *lat = malloc(cap * sizeof *lat);
    char **ids = malloc(cap * sizeof *ids);
    long long first_fired = 0, last_stored = 0;
    const int page = 10000;
    for (long offset = 0;; offset += page) {
        char url[1024];
        snprintf(url, sizeof url, "%s/api/v1/events?limit=%d&offset=%ld%s%s", base, page, offset, *query ? "&" : "",
                 query);
        httpc_request req = {.method = "GET", .url = url, .timeout_ms = 120000};
        long status;
        char *body;
        if (httpc_fetch(&req, &status, &body) != 0 || status != 200) {
            fprintf(stderr, "GET %s failed: %ld %s\n", url, status, body ? body : "");
            free(body);
            return 1;
        }
        json_error_t e;
        json_t *doc = json_loads(body, 0, &e);
        free(body);
        json_t *events = json_object_get(doc, "events");
        size_t i;
        json_t *ev;
        json_array_foreach(events, i, ev) {
            int64_t fired, stored;
            if (event_time_parse(json_string_value(json_object_get(ev, "time_fired")), &fired) ||
                event_time_parse(json_string_value(json_object_get(ev, "stored_at")), &stored))
                continue;
            if (n == cap) {
                cap *= 2;
                lat = realloc(lat, cap * sizeof *lat);
                ids = realloc(ids, cap * sizeof *ids);
            }
            const char *id = json_string_value(json_object_get(ev, "event_id"));
            ids[n] = strdup(id ? id : "");
            lat[n++] = stored - fired;
            if (!first_fired || fired < first_fired) first_fired = fired;
            if (stored > last_stored) last_stored = stored;
        }
        size_t got = json_array_size(events);
        json_decref(doc);
        if (got < (size_t)page) break;
    }
    qsort(lat, n, sizeof *lat, cmp_ll);
    qsort(ids, n, sizeof *ids, cmp_str);
    size_t dups = 0;
    for (size_t i = 1; i < n; i++) dups += strcmp(ids[i], ids[i - 1]) == 0;
    char ff[EVENT_TIME_LEN] = "", ls[EVENT_TIME_LEN] = "";
    if (n) event_time_format(first_fired, ff), event_time_format(last_stored, ls);
    printf("{\"count\":%zu,\"duplicates\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
           "\"first_fired\":\"%s\",\"last_stored\":\"%s\",\"span_s\":%.6f}\n",
           n, dups, pct(lat, n, 0.50), pct(lat, n, 0.99), n ? (double)lat[n - 1] / 1000.0 : 0, ff, ls,
           n ? (double)(last_stored - first_fired) / 1e6 : 0);
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(lat);
    return 0;
}
