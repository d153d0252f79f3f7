/* ctl.h -- what the homeiqctl subcommands share.
 *
 * Why: homeiqctl is the operator's view of a running HomeIQ (health, the
 * end-to-end validation, event queries, backup/restore). Each subcommand
 * lives in its own file (ctl_health.c, ctl_validate.c, ctl_events.c,
 * ctl_backup.c) and talks to the services only through the small blocking
 * HTTP helpers declared here (ctl_http.c), so that URLs, timeouts and error
 * texts are the same everywhere. Subcommands return the process exit code. */
#ifndef HOMEIQ_CTL_H
#define HOMEIQ_CTL_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* Exit codes. */
#define CTL_OK 0
#define CTL_FAIL 1      /* the check failed / the operation failed */
#define CTL_USAGE 2     /* bad command line */

/* The three services, in pipeline order. */
typedef enum { CTL_INGESTION = 0, CTL_ENRICHMENT, CTL_STORAGE, CTL_NSERVICES } ctl_service;

/* Service name ("websocket-ingestion"...). */
const char *ctl_service_name(ctl_service s);
/* Base URL from its environment variable (trailing '/' removed), e.g.
 * WEBSOCKET_INGESTION_URL, default http://127.0.0.1:8001. Static storage. */
const char *ctl_service_url(ctl_service s);

/* One HTTP exchange. status 0 = no answer (then body holds the transport error). */
typedef struct ctl_reply {
    long status;
    char *body;     /* owned, NUL-terminated, never NULL after ctl_http() */
    json_t *json;   /* parsed body when it is JSON, else NULL (owned) */
} ctl_reply;

/* Performs METHOD base+path (body may be NULL) with a timeout in ms, fills
 * *r (always; free with ctl_reply_free). 0 when an HTTP answer came back
 * (any status), -1 when none did. */
int ctl_http(const char *method, const char *base, const char *path, const char *body, long timeout_ms,
             ctl_reply *r);
void ctl_reply_free(ctl_reply *r);

/* A short human reason for a reply: "connection refused ..." when no answer,
 * the JSON "reason"/"error"/"status" field when present, else the status line. */
void ctl_reply_reason(const ctl_reply *r, char *out, size_t outlen);
/* Tells stderr why service s's answer to GET path was not the one wanted:
 * "homeiqctl: data-storage /api/v1/homes: HTTP 503: <reason>", or
 * "homeiqctl: data-storage at <url>: no answer: <transport error>". */
void ctl_reply_complain(ctl_service s, const char *path, const ctl_reply *r);

/* Appends "&key=value" (value URL-encoded) to a query string in *qs
 * (malloc'd, grows; the first parameter starts with '?'). 0/-1. */
int ctl_query_add(char **qs, const char *key, const char *value);

/* Parses a duration like "30", "30s", "500ms", "2m" into milliseconds. 0/-1. */
int ctl_parse_duration_ms(const char *s, long *ms);

/* Sleeps `ms` milliseconds (restarted on EINTR unless ctl_interrupted). */
void ctl_sleep_ms(long ms);
/* Set by SIGINT/SIGTERM in follow mode (ctl_events.c installs the handler). */
extern volatile int ctl_interrupted;

/* Subcommands (argv[0] is the subcommand name). */
int ctl_cmd_health(int argc, char **argv);
int ctl_cmd_validate(int argc, char **argv);
int ctl_cmd_events(int argc, char **argv);
int ctl_cmd_backup(int argc, char **argv);
int ctl_cmd_restore(int argc, char **argv);
int ctl_cmd_stats(int argc, char **argv);
int ctl_cmd_import_history(int argc, char **argv);
int ctl_cmd_homes(int argc, char **argv);

/* --home ID (issue 18, ctl_homes.c): the home the read commands select
 * (NULL: every home). ctl_home_set checks it by HOMEIQ_HOME_ID's rules
 * (message printed; -1 = usage error); ctl_home_query adds home= to a query
 * string when one is set. 0/-1. */
extern const char *ctl_home;
int ctl_home_set(const char *home);
int ctl_home_query(char **qs);

/* Prints homeiqctl's usage and the environment variables it reads. */
void ctl_print_help(void);

/* One service's GET /health. */
typedef struct ctl_health_result {
    long status;            /* HTTP status, 0 = no answer */
    char reason[256];       /* why it is unhealthy (or the body's status) */
    char detail[400];       /* data-storage: the store's own error (backend.cluster_error / last_error), or "" */
} ctl_health_result;
/* 0 when /health answered 200, -1 otherwise (r filled either way). */
int ctl_health_check(ctl_service s, long timeout_ms, ctl_health_result *r);

#endif
