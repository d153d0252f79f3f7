/* config.h -- configuration from environment variables, declared once.
 *
 * Why one table: a default written in the --help table and again at the call
 * site drifts (SPOOL_SEGMENT_BYTES once said 67108864 in --help and was 0 in
 * the code). Each program therefore declares every variable it reads once --
 * name, type, default, range, help -- and that one table produces --help, the
 * README tables (--config-markdown, checked by tests/run/test_config_docs.sh)
 * and the values: config_int()/config_text()/config_flag() take the default
 * and the range from the table and never from the caller.
 *
 * Tables: a program's table is registered by config_parse_args() and is what
 * a NULL `vars` below means. A library module that reads its own variables
 * (auth.c, httpd.c, storage_maint.c) keeps them in a *_CONFIG_VARS macro that
 * the program tables include (for --help) and that the module turns into its
 * own array (for the values), so unit tests that never call
 * config_parse_args() get the same defaults.
 *
 * Every entry is written with CONFIG_INT/CONFIG_BOOL/CONFIG_TEXT (designated
 * initializers, so -Wmissing-field-initializers stays on).
 * config_long()/config_str()/config_bool() keep working for code not converted
 * yet, but refuse a default that contradicts the registered table. Ownership:
 * tables are static and outlive every call. */
#ifndef HOMEIQ_CONFIG_H
#define HOMEIQ_CONFIG_H

typedef enum config_type {
    CONFIG_TEXT = 0, /* any string; NULL default = unset */
    CONFIG_INT,      /* integer in [min, max] */
    CONFIG_BOOL,     /* 1/true/yes/on or 0/false/no/off */
} config_type;

typedef struct config_var {
    const char *name;     /* environment variable */
    const char *def;      /* default as text, NULL = unset */
    const char *help;     /* one line */
    config_type type;
    long long min, max;   /* CONFIG_INT: the accepted range */
    int shared;           /* 1: a variable every server reads (documented once in the README) */
} config_var;

/* Table entries. The default of an integer is text so that --help prints it as
 * written; config_parse_args() checks that it parses and lies in the range. */
#define CONFIG_INT(n, d, lo, hi, h) {.name = (n), .def = (d), .help = (h), .type = CONFIG_INT, .min = (lo), .max = (hi)}
#define CONFIG_BOOL(n, d, h) {.name = (n), .def = (d), .help = (h), .type = CONFIG_BOOL, .min = 0, .max = 1}
#define CONFIG_TEXT(n, d, h) {.name = (n), .def = (d), .help = (h), .type = CONFIG_TEXT}
#define CONFIG_END {.name = NULL}

/* Registers `vars` as the program's table, then handles --help/-h (prints
 * usage + the table, returns 1), --config-markdown[=shared] (prints the
 * README table rows, returns 1) and rejects unknown arguments (returns -1
 * after printing usage). Returns -1 too when the table itself is wrong (an
 * integer default that does not parse or lies outside its range). 0 to go on.
 * `vars` ends with an entry whose name is NULL. */
int config_parse_args(int argc, char **argv, const char *usage, const config_var *vars);

/* Registers `vars` as the program's table without parsing arguments (tools
 * with their own argument parser, tests). */
void config_use(const config_var *vars);

/* The entry of `name` in `vars` (NULL: the registered table), or NULL. */
const config_var *config_find(const config_var *vars, const char *name);

/* Values from the table. `vars` NULL = the registered table. A name that is
 * not declared there is a programming error: logged, -1 / NULL. */
int config_int(const config_var *vars, const char *name, long long *out);
int config_flag(const config_var *vars, const char *name, int *out);
const char *config_text(const config_var *vars, const char *name); /* the value, or the default (may be NULL) */

/* Prints the table as Markdown rows "| `NAME` | `default` | range | help |"
 * (only the shared entries, or only the others). */
void config_markdown(const config_var *vars, int shared);

/* Older getters with the default at the call site; kept for code not yet on
 * the table. When the registered table declares `name` with a different
 * default, config_long()/config_bool() log the contradiction and fail (a NULL
 * table default means "computed at the call site" and is not compared). */
const char *config_str(const char *name, const char *def);
int config_long(const char *name, long long def, long long min, long long max, long long *out);
int config_bool(const char *name, int def, int *out);

/* Reads a secret from NAME or, if unset, from the file named by NAME_FILE
 * (trailing newline stripped). Returns a malloc'd string or NULL. The secret is
 * registered with log_add_secret(). */
char *config_secret(const char *name);

#endif
