/* main.c -- homeiq-ha-simulator: a Home Assistant WebSocket API server for the
 * demo, the tests and the benchmark.
 *
 * Why a C simulator rather than a real HA: tests need a deterministic,
 * controllable peer (seeded house, exact event counts, forced disconnects,
 * back-pressure) that starts in milliseconds and can push far more events
 * than a real house. It speaks the real protocol so clients cannot tell. */
#include "sim.h"

#include "auth.h"
#include "config.h"
#include "log.h"
#include "service.h"

#include <stdlib.h>
#include <string.h>

#ifndef SIM_SCENARIO_DIR
#define SIM_SCENARIO_DIR "scenarios"
#endif

static const config_var VARS[] = {
    CONFIG_INT("SIMULATOR_PORT", "8123", 1, 65535, "TCP port for the WebSocket API and the control endpoints (--port P)"),
    CONFIG_TEXT("SIMULATOR_BIND", "127.0.0.1", "IP address to bind"),
    CONFIG_TEXT("SIMULATOR_TOKEN", "homeiq-simulator-token", "the access token clients must send (or SIMULATOR_TOKEN_FILE)"),
    CONFIG_TEXT("HOMEIQ_API_TOKEN", NULL, "when set (or HOMEIQ_API_TOKEN_FILE): POST /api/sim/* needs 'Authorization: Bearer <token>'"),
    CONFIG_TEXT("HOMEIQ_API_TOKEN_FILE", NULL, "file holding that token"),
    CONFIG_TEXT("SIMULATOR_SCENARIO", SIM_SCENARIO_DIR "/house.json", "JSON scenario describing the house's entities (--scenario FILE)"),
    CONFIG_INT("SIMULATOR_RATE", NULL, 0, 100000000, "load mode: events/s in total, cycling the entities (--rate N); unset = house mode"),
    CONFIG_INT("SIMULATOR_COUNT", "0", 0, (long long)1 << 62, "stop generating after N events were sent; keep serving (--count N); 0 = no limit"),
    CONFIG_INT("SIMULATOR_SEED", "1", 0, (long long)1 << 62, "random seed, for deterministic runs (--seed S)"),
    CONFIG_TEXT("SIMULATOR_SENT_LOG", NULL, "append one JSON line per event actually sent to this file (--sent-log FILE)"),
    CONFIG_TEXT("SIMULATOR_TRUTH_LOG", NULL, "append one JSON line per event generated, sent or not (--truth-log FILE)"),
    CONFIG_BOOL("SIMULATOR_ALWAYS_ON", "0", "1 = the house lives on without subscribers, like a real HA (--always-on)"),
    CONFIG_BOOL("SIMULATOR_HISTORY", "1", "0 = no recorder/history component: history commands are unknown_command"),
    CONFIG_BOOL("SIMULATOR_JSON_SPACED", "0", "1 = event messages with a space after every ':' and ',' (Python json.dumps' spacing; bench/whitespace.sh)"),
    CONFIG_TEXT("SIMULATOR_HISTORY_FILE", NULL, "keep the recorder's rows in this file and restore them on start (HA restart)"),
    CONFIG_INT("SIMULATOR_HISTORY_MAX_ROWS", "4000000", 0, (long long)1 << 40, "recorder rows kept in memory; beyond, an entity's oldest quarter is purged"),
    CONFIG_END,
};

static const char USAGE[] =
    "usage: homeiq-ha-simulator [--rate N] [--count N] [--seed S] [--sent-log FILE] [--port P]\n"
    "                           [--scenario FILE] [--truth-log FILE] [--history-file FILE] [--always-on]\n"
    "                           [--help]\n\n"
    "Serves the Home Assistant WebSocket API at ws://SIMULATOR_BIND:SIMULATOR_PORT/api/websocket\n"
    "(auth, supported_features, subscribe_events, unsubscribe_events, subscribe_entities, get_states,\n"
    "get_config, get_services, ping, history/history_during_period), generating events from a simulated\n"
    "house, or at a fixed rate in load mode. Events are generated only while a client is subscribed,\n"
    "unless --always-on. Every state change is recorded (float times, like HA's recorder).\n\n"
    "Control endpoints (plain HTTP, same port):\n"
    "  GET  /health          200 {\"status\":\"healthy\"}\n"
    "  GET  /api/sim/stats   counters: sent, clients, subscribed, paused_backpressure, ...\n"
    "  POST /api/sim/drop    drop every WebSocket connection abruptly (no close frame)\n"
    "  POST /api/sim/pause   pause event generation; /api/sim/resume resumes it\n"
    "  POST /api/sim/history/fail/N   the next N history calls fail (unknown_error)\n"
    "  POST /api/sim/history/off|on   unload / load the history component\n\n"
    "Command-line options override the matching environment variables.";

/* --rate/--count/--seed/--sent-log become environment variables; anything
 * else is left for config_parse_args (which handles --help / rejects it). */
static int take_options(int argc, char **argv, int *out_argc)
{
    static const struct { const char *opt, *env; } MAP[] = {
        {"--rate", "SIMULATOR_RATE"},   {"--count", "SIMULATOR_COUNT"},
        {"--seed", "SIMULATOR_SEED"},   {"--sent-log", "SIMULATOR_SENT_LOG"},
        {"--port", "SIMULATOR_PORT"},   {"--scenario", "SIMULATOR_SCENARIO"},
        {"--truth-log", "SIMULATOR_TRUTH_LOG"}, {"--history-file", "SIMULATOR_HISTORY_FILE"},
    };
    int n = 1;
    for (int i = 1; i < argc; i++) {
        int used = 0;
        if (!strcmp(argv[i], "--always-on")) {
            setenv("SIMULATOR_ALWAYS_ON", "1", 1);
            continue;
        }
        for (size_t k = 0; k < sizeof MAP / sizeof MAP[0]; k++) {
            size_t ol = strlen(MAP[k].opt);
            if (strncmp(argv[i], MAP[k].opt, ol) != 0) continue;
            if (argv[i][ol] == '=') {
                setenv(MAP[k].env, argv[i] + ol + 1, 1);
                used = 1;
            } else if (argv[i][ol] == '\0') {
                if (i + 1 >= argc) {
                    fprintf(stderr, "%s needs a value\n", MAP[k].opt);
                    return -1;
                }
                setenv(MAP[k].env, argv[++i], 1);
                used = 1;
            }
            if (used) break;
        }
        if (!used) argv[n++] = argv[i];
    }
    *out_argc = n;
    return 0;
}

static void on_stop(void *arg)
{
    sim *s = arg;
    log_info("stopping: %lld events sent", s->sent);
    if (s->sent_log) fflush(s->sent_log);
    if (s->truth_log) fflush(s->truth_log);
    if (s->history_file) fflush(s->history_file);
}

int main(int argc, char **argv)
{
    int nargc;
    if (take_options(argc, argv, &nargc) != 0) return 2;
    int r = config_parse_args(nargc, argv, USAGE, VARS);
    if (r > 0) return 0;
    if (r < 0) return 2;
    if (log_init("ha-simulator") != 0 || auth_load() != 0) return 2;

    sim s;
    memset(&s, 0, sizeof s);
    long long port, rate = 0;
    int rc = 1;
    if (config_int(VARS, "SIMULATOR_PORT", &port) != 0
        || config_int(VARS, "SIMULATOR_RATE", &rate) != 0
        || config_int(VARS, "SIMULATOR_COUNT", &s.count) != 0
        || config_int(VARS, "SIMULATOR_SEED", &s.seed) != 0
        || config_int(VARS, "SIMULATOR_HISTORY_MAX_ROWS", &s.history_max_rows) != 0)
        goto out_log;
    s.rate = rate;
    if (config_flag(VARS, "SIMULATOR_ALWAYS_ON", &s.always_on) != 0 || config_flag(VARS, "SIMULATOR_HISTORY", &s.history_on) != 0 ||
        config_flag(VARS, "SIMULATOR_JSON_SPACED", &s.json_spaced) != 0)
        goto out_log;
    s.load_mode = rate > 0;
    s.token = config_secret("SIMULATOR_TOKEN");
    if (!s.token) {
        s.token = strdup(config_find(VARS, "SIMULATOR_TOKEN")->def); /* the table's default */
        log_add_secret(s.token);
    }
    sim_seed((uint64_t)s.seed);
    if (s.load_mode) {
        long long t = 1000000 / rate;
        s.tick_us = t < 1000 ? 1000 : t > 100000 ? 100000 : t;
    } else {
        s.tick_us = 100000;
    }
    const char *log_path = config_text(VARS, "SIMULATOR_SENT_LOG");
    if (log_path) {
        s.sent_log = fopen(log_path, "a");
        if (!s.sent_log) {
            log_error("SIMULATOR_SENT_LOG=%s: cannot open: %m", log_path);
            goto out_log;
        }
        setvbuf(s.sent_log, NULL, _IOFBF, 1 << 20);
    }
    const char *truth_path = config_text(VARS, "SIMULATOR_TRUTH_LOG");
    if (truth_path) {
        s.truth_log = fopen(truth_path, "a");
        if (!s.truth_log) {
            log_error("SIMULATOR_TRUTH_LOG=%s: cannot open: %m", truth_path);
            goto out_log;
        }
        setvbuf(s.truth_log, NULL, _IOFBF, 1 << 20);
    }

    service *svc = NULL;
    if (service_new("ha-simulator", &svc) != 0) goto out_log;
    s.base = service_base(svc);
    service_on_stop(svc, on_stop, &s);
    const char *scenario = config_text(VARS, "SIMULATOR_SCENARIO");
    if (house_load(&s, scenario) != 0) goto out;
    const char *hist_path = config_text(VARS, "SIMULATOR_HISTORY_FILE");
    if (hist_path && hist_load(&s, hist_path) != 0) goto out;
    if (s.always_on) log_info("always on: the house lives on without subscribers");
    if (http_listen(&s, config_text(VARS, "SIMULATOR_BIND"), (int)port) != 0) goto out;
    if (s.load_mode)
        log_info("load mode: %lld events/s%s", s.rate, s.count ? "" : " (no count limit)");
    if (s.count) log_info("will stop generating after %lld events", s.count);
    house_start_stop(&s);
    service_run(svc);
    rc = 0;
out:
    while (s.clients) proto_client_free(s.clients);
    http_free_all(&s);
    hist_free(&s);
    house_free(&s);
    simbuf_free(&s.ev);
    simbuf_free(&s.tmp);
    simbuf_free(&s.spaced);
    service_free(svc);
out_log:
    if (s.sent_log) fclose(s.sent_log);
    if (s.truth_log) fclose(s.truth_log); /* opened before start-up failed */
    free(s.token);
    auth_shutdown();
    log_shutdown();
    return rc;
}
