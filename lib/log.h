/* log.h -- leveled logging to stderr, as text or one JSON object per line.
 *
 * Every HomeIQ program logs through here so that LOG_LEVEL / LOG_FORMAT mean the
 * same thing everywhere, and so that secrets registered with log_add_secret()
 * can never reach a log line, whatever code path formats them. */
#ifndef HOMEIQ_LOG_H
#define HOMEIQ_LOG_H

typedef enum { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR } log_level;

/* Reads LOG_LEVEL (debug|info|warn|error, default info) and LOG_FORMAT (text|json,
 * default text). Returns 0, or -1 when a value is invalid (and logs why). */
int log_init(const char *service_name);
/* The help line of LOG_LEVEL and LOG_FORMAT, from the values log_init reads
 * (lib/config.c's --help and README tables print it). */
const char *log_level_help(void);
const char *log_format_help(void);

/* Every later log line has each occurrence of `secret` replaced by "***". */
void log_add_secret(const char *secret);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int log_enabled(log_level level);

/* Frees the registered secrets (call at exit so leak checkers stay quiet). */
void log_shutdown(void);

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

#endif
