/* ctl_main.c -- homeiqctl: the operator's command line for a running HomeIQ.
 *
 * Why a separate binary: checking a deployment (is every service healthy? does
 * an event really travel from ingestion into storage?), looking at stored
 * events and taking backups are what operators do by hand during a migration
 * or an incident; one small static tool with the same environment variables
 * as the services makes that scriptable. This file only dispatches to the
 * subcommands and documents the environment. */
#include "config.h"
#include "ctl.h"
#include "auth.h"
#include "log.h"
#include "url.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const config_var ctl_vars[] = {
    URL_INGESTION_VAR,
    URL_ENRICHMENT_VAR,
    URL_STORAGE_VAR,
    CONFIG_TEXT("STORAGE_BACKEND", "sqlite", "backup/restore: sqlite or influxdb"),
    CONFIG_TEXT("DATA_DIR", "./data", "backup/restore (sqlite): directory holding events.db"),
    CONFIG_TEXT("INFLUXDB_DATABASE", "home_assistant", "backup/restore (influxdb 1.x): database name"),
    CONFIG_TEXT("INFLUXDB_BACKUP_HOST", "127.0.0.1:8088", "backup/restore (influxdb): influxd RPC address"),
    CONFIG_TEXT("HOMEIQ_API_TOKEN", NULL, "API token sent to the services as 'Authorization: Bearer <token>'"),
    CONFIG_TEXT("HOMEIQ_API_TOKEN_FILE", NULL, "file holding the API token (preferred over HOMEIQ_API_TOKEN in scripts)"),
    CONFIG_END,
};

static const char ctl_usage[] =
    "usage: homeiqctl [--home ID] COMMAND [OPTIONS]\n"
    "\n"
    "  --home ID                  one home's events, statistics and validation (HOMEIQ_HOME_ID of its\n"
    "                             ingestion; `default` is the default home); without it every home's\n"
    "                             events and the default home's statistics. The read commands take it\n"
    "                             as their own option too.\n"
    "\n"
    "Commands:\n"
    "  health [--probe NAME=URL]  health of the three services (and of each probed replica/server) as a\n"
    "                             table; exit 1 if any is unhealthy\n"
    "  validate [--timeout 30s]   checks every /health is 200, then posts a uniquely identified test\n"
    "                             event to ingestion and waits until storage serves exactly that event\n"
    "  events [FILTERS] [--json] [-f]\n"
    "                             stored events, newest first (-f: follow, oldest first, like tail -f)\n"
    "  stats --entity ID [--period hour] [--start T] [--end T] [--types mean,max] [--json]\n"
    "                             long-term statistics (5minute|hour|day|week|month rows)\n"
    "  homes [--json]             the homes stored, each with its number of events\n"
    "  backup --out PATH          consistent copy of the store while it runs (sqlite: online backup\n"
    "                             API into one file; influxdb: runs `influxd backup -portable`)\n"
    "  restore --from PATH [--force]\n"
    "                             replaces the store with a backup (refuses while data-storage runs)\n"
    "  import-history --since 7d [--entity ID]...\n"
    "                             loads HA's recorder history through websocket-ingestion, with progress;\n"
    "                             resumable, idempotent\n"
    "\n"
    "`homeiqctl COMMAND --help` describes a command's options. Exit status: 0 ok, 1 failed, 2 usage.";

void ctl_print_help(void) {
    char *argv[] = {"homeiqctl", "--help", NULL};
    config_parse_args(2, argv, ctl_usage, ctl_vars);
}

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
} ctl_commands[] = {
    {"health", ctl_cmd_health},   {"validate", ctl_cmd_validate}, {"events", ctl_cmd_events},
    {"backup", ctl_cmd_backup},   {"restore", ctl_cmd_restore},   {"import-history", ctl_cmd_import_history},
    {"stats", ctl_cmd_stats},     {"homes", ctl_cmd_homes},
};

/* The commands that read by home (--home, issue 18). */
static int ctl_reads_by_home(const char *cmd) {
    return !strcmp(cmd, "events") || !strcmp(cmd, "stats") || !strcmp(cmd, "validate") || !strcmp(cmd, "homes");
}

/* Options before the command (--home ID, --home=ID): the index of the
 * command, or -1 on a usage error (message printed). */
static int ctl_global_options(int argc, char **argv) {
    int i = 1;
    while (i < argc && strncmp(argv[i], "--home", 6) == 0) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--home") && i + 1 < argc) v = argv[++i];
        else if (!strncmp(argv[i], "--home=", 7)) v = argv[i] + 7;
        if (!v) {
            fprintf(stderr, "homeiqctl: %s: expected --home ID\n", argv[i]);
            return -1;
        }
        if (ctl_home_set(v) != 0) return -1;
        i++;
    }
    return i;
}

/* argv[0] is the command. */
static int ctl_run(int argc, char **argv) {
    for (size_t i = 0; i < sizeof ctl_commands / sizeof ctl_commands[0]; i++)
        if (strcmp(argv[0], ctl_commands[i].name) == 0) return ctl_commands[i].fn(argc, argv);
    fprintf(stderr, "homeiqctl: unknown command '%s'; see homeiqctl --help\n", argv[0]);
    return CTL_USAGE;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (log_init("homeiqctl") != 0 || auth_load() != 0) return CTL_USAGE;
    config_use(ctl_vars); /* the commands read their variables from this table */
    int rc = CTL_USAGE;
    int cmd = ctl_global_options(argc, argv);
    if (cmd < 0) {
        /* usage error, said */
    } else if (cmd >= argc) {
        fprintf(stderr, "%s\n", ctl_usage);
    } else if (cmd == 1 && strncmp(argv[1], "--config-markdown", 17) == 0) { /* README's table (scripts/config-docs) */
        rc = config_parse_args(2, argv, ctl_usage, ctl_vars) == 1 ? CTL_OK : CTL_USAGE;
    } else if (strcmp(argv[cmd], "--help") == 0 || strcmp(argv[cmd], "-h") == 0 || strcmp(argv[cmd], "help") == 0) {
        ctl_print_help();
        rc = CTL_OK;
    } else if (ctl_home && !ctl_reads_by_home(argv[cmd])) {
        fprintf(stderr, "homeiqctl: --home: %s does not read by home (events, stats, validate do)\n", argv[cmd]);
    } else {
        rc = ctl_run(argc - cmd, argv + cmd);
    }
    auth_shutdown();
    log_shutdown();
    return rc;
}
