/* log.c -- see log.h. Lines are formatted into one buffer, scrubbed of secrets,
 * escaped (no value from outside can end or forge a line, or break the JSON),
 * then written with a single write(2) so concurrent processes don't interleave. */
#include "log.h"
#include "json_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_MAX_SECRETS 8
#define LOG_LINE_MAX 8192

static const char *log_service = "homeiq";
#define LOG_LEVEL_DEFAULT LOG_LVL_INFO
static log_level log_min = LOG_LEVEL_DEFAULT;
static int log_json;
static char *log_secrets[LOG_MAX_SECRETS];
static int log_nsecrets;

static const char *const log_names[] = {"debug", "info", "warn", "error"};

const char *log_level_help(void) {
    static char help[64];
    if (!help[0])
        snprintf(help, sizeof help, "%s|%s|%s|%s (default: %s)", log_names[0], log_names[1], log_names[2],
                 log_names[3], log_names[LOG_LEVEL_DEFAULT]);
    return help;
}

const char *log_format_help(void) { return "text|json (default: text)"; }

int log_init(const char *service_name) {
    if (service_name) log_service = service_name;
    const char *lvl = getenv("LOG_LEVEL");
    const char *fmt = getenv("LOG_FORMAT");
    int rc = 0;
    if (lvl && *lvl) {
        int found = 0;
        for (int i = 0; i < 4; i++)
            if (strcasecmp(lvl, log_names[i]) == 0) log_min = (log_level)i, found = 1;
        if (strcasecmp(lvl, "warning") == 0) log_min = LOG_LVL_WARN, found = 1;
        if (!found) rc = -1;
    }
    if (fmt && *fmt) {
        if (strcasecmp(fmt, "json") == 0) log_json = 1;
        else if (strcasecmp(fmt, "text") == 0) log_json = 0;
        else rc = -1;
    }
    if (rc) log_error("invalid LOG_LEVEL or LOG_FORMAT (LOG_LEVEL=debug|info|warn|error, LOG_FORMAT=text|json)");
    return rc;
}

void log_add_secret(const char *secret) {
    if (!secret || strlen(secret) < 4 || log_nsecrets == LOG_MAX_SECRETS) return;
    log_secrets[log_nsecrets++] = strdup(secret);
}

void log_shutdown(void) {
    for (int i = 0; i < log_nsecrets; i++) free(log_secrets[i]);
    log_nsecrets = 0;
}

int log_enabled(log_level level) { return level >= log_min; }

/* Replace every registered secret in `s` (in place; "***" is never longer). */
static void log_scrub(char *s) {
    for (int i = 0; i < log_nsecrets; i++) {
        size_t n = strlen(log_secrets[i]);
        char *p;
        while ((p = strstr(s, log_secrets[i])) != NULL) {
            memcpy(p, "***", 3);
            memmove(p + 3, p + n, strlen(p + n) + 1);
        }
    }
}

/* Copies `s` into `out` so that it cannot end or forge a log line: control
 * characters (newline, carriage return, ANSI escapes...) and bytes that are
 * not UTF-8 become visible escapes. JSON: the inside of a JSON string
 * (\n, \u001b; a bad byte becomes U+FFFD, so the line stays valid JSON).
 * Text: \n, \r, \t, \xNN, and a backslash doubled only before those, so
 * an escape in the input cannot pass for one made here. */
static size_t log_escape(char *out, size_t cap, const char *s, int json) {
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    while (*p && o + 8 < cap) {
        unsigned c = *p;
        size_t n = c < 0x80 ? 1 : json_text_utf8_len(p, (size_t)(end - p));
        if (n == 0) {
            o += (size_t)(json ? snprintf(out + o, cap - o, "\\ufffd") : snprintf(out + o, cap - o, "\\x%02x", c));
            p++;
            continue;
        }
        if (n > 1) {
            memcpy(out + o, p, n), o += n, p += n;
            continue;
        }
        p++;
        if (json && (c == '"' || c == '\\')) out[o++] = '\\', out[o++] = (char)c;
        else if (!json && c == '\\' && (*p == 'n' || *p == 'r' || *p == 't' || *p == 'x' || *p == '\\'))
            out[o++] = '\\', out[o++] = '\\';
        else if (c == '\n') out[o++] = '\\', out[o++] = 'n';
        else if (c == '\r') out[o++] = '\\', out[o++] = 'r';
        else if (c == '\t') out[o++] = '\\', out[o++] = 't';
        else if (c < 0x20 || c == 0x7f)
            o += (size_t)(json ? snprintf(out + o, cap - o, "\\u%04x", c) : snprintf(out + o, cap - o, "\\x%02x", c));
        else out[o++] = (char)c;
    }
    out[o] = '\0';
    return o;
}

void log_msg(log_level level, const char *fmt, ...) {
    if (level < log_min) return;
    char msg[LOG_LINE_MAX], line[LOG_LINE_MAX * 2], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_scrub(msg);

    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", (long)(tv.tv_usec / 1000));

    int len;
    char esc[LOG_LINE_MAX * 2 - 256];
    log_escape(esc, sizeof esc, msg, log_json);
    if (log_json)
        len = snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",\"service\":\"%s\",\"msg\":\"%s\"}\n",
                       ts, log_names[level], log_service, esc);
    else
        len = snprintf(line, sizeof line, "%s %-5s %s: %s\n", ts, log_names[level], log_service, esc);
    if (len < 0) return;
    if ((size_t)len >= sizeof line) len = (int)sizeof line - 1, line[len - 1] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)len);
    (void)w;
}
