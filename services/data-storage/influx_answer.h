/* influx_answer.h -- reading InfluxDB's /query answer.
 *
 * Why a module of its own: every InfluxDB reader (the store's duplicate check
 * and reads, statistics, the dashboard's reads) gets the same answer shape --
 * with chunked=true one JSON document per chunk, separated by newlines, each
 * {"results":[{"statement_id":N,"series":[{"name","tags","columns","values"}],
 * "error"}],"error"} -- and the same two facts about it: "database not found"
 * means nothing was written yet (an empty answer, not a failure), and an error
 * anywhere fails the read. One walker keeps those rules in one place.
 *
 * Ownership: the walker only reads the body; the json_t pointers handed to the
 * row callback belong to the walker and are valid only during the call. */
#ifndef HOMEIQ_INFLUX_ANSWER_H
#define HOMEIQ_INFLUX_ANSWER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct influx_answer_row {
    int stmt;          /* the statement's statement_id */
    json_t *tags;      /* the series' tags (an object), NULL when it has none */
    json_t *columns;   /* the series' column names */
    json_t *values;    /* this row's values, in column order */
} influx_answer_row;

/* Called for each value row; non-0 stops the walk ("out of memory"). */
typedef int (*influx_answer_fn)(const influx_answer_row *row, void *arg);

/* Walks the answer `body`: skips the whitespace between documents, parses each
 * document (JSON_DISABLE_EOF_CHECK) and calls fn for each value row of each
 * series of each statement, in order. "database not found" is an empty answer.
 * The statement whose statement_id is tolerate_stmt may fail without failing
 * the walk (-1: none may). Rows are not delivered once an error is seen.
 * 0, or -1 with err: "influxdb: <its error>", "unreadable answer from InfluxDB:
 * ..." or "out of memory" (fn failed). */
int influx_answer_walk(const char *body, size_t len, int tolerate_stmt, influx_answer_fn fn, void *arg, char *err,
                       size_t errlen);

/* The index of column `name` in a series' columns, or -1. */
int influx_answer_col(json_t *columns, const char *name);
/* The value of column `name` in the row, or NULL when there is no such column. */
json_t *influx_answer_get(const influx_answer_row *row, const char *name);
/* The string in column `name`, or NULL (absent, null or not a string). */
const char *influx_answer_str(const influx_answer_row *row, const char *name);
/* The "time" column as an integer (epoch=ns), or 0 when absent. */
int64_t influx_answer_time(const influx_answer_row *row);

#endif
