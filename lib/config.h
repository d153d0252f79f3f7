/* config.h -- configuration from environment variables, documented by --help.
 *
 * Each program declares a table of the variables it reads (name, default, help).
 * config_parse_args() prints that table for --help, so the documentation and the
 * code cannot drift apart; the getters below read the environment with the
 * table's default and validate numbers with explicit ranges. */
#ifndef HOMEIQ_CONFIG_H
#define HOMEIQ_CONFIG_H

typedef struct config_var {
    const char *name;     /* environment variable */
    const char *def;      /* default as text, NULL = unset */
    const char *help;     /* one line */
} config_var;

/* Handles --help/-h (prints usage + the table, returns 1) and rejects unknown
 * arguments (returns -1 after printing usage). Returns 0 to go on.
 * `vars` ends with an entry whose name is NULL. */
int config_parse_args(int argc, char **argv, const char *usage, const config_var *vars);

/* The variable's value, or `def` when unset or empty. */
const char *config_str(const char *name, const char *def);

/* Parses an integer variable. 0 on success; -1 (and logs which variable and why)
 * when it is not an integer in [min, max]. Unset/empty gives `def`. */
int config_long(const char *name, long long def, long long min, long long max, long long *out);

/* Boolean: 1/true/yes/on or 0/false/no/off. Unset gives def. -1 when invalid. */
int config_bool(const char *name, int def, int *out);

/* Reads a secret from NAME or, if unset, from the file named by NAME_FILE
 * (trailing newline stripped). Returns a malloc'd string or NULL. The secret is
 * registered with log_add_secret(). */
char *config_secret(const char *name);

#endif
