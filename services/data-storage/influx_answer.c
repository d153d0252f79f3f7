/* influx_answer.c -- see influx_answer.h. */
#include "influx_answer.h"

#include <stdio.h>
#include <string.h>

#define INFLUX_NO_DATABASE "database not found"

/* One document: rows to fn until an error is seen; the error (or NULL) in *e. */
static int influx_answer_doc(json_t *doc, int tolerate_stmt, influx_answer_fn fn, void *arg, const char **e) {
    json_t *res, *ser, *val;
    size_t i, k, v;
    *e = json_string_value(json_object_get(doc, "error"));
    json_array_foreach(json_object_get(doc, "results"), i, res) {
        influx_answer_row row = {.stmt = (int)json_integer_value(json_object_get(res, "statement_id"))};
        const char *se = json_string_value(json_object_get(res, "error"));
        if (se && row.stmt != tolerate_stmt && !strstr(se, INFLUX_NO_DATABASE) && !*e) *e = se;
        json_array_foreach(json_object_get(res, "series"), k, ser) {
            row.columns = json_object_get(ser, "columns");
            row.tags = json_object_get(ser, "tags");
            json_array_foreach(json_object_get(ser, "values"), v, val) {
                row.values = val;
                if (!*e && fn(&row, arg) != 0) return -1;
            }
        }
    }
    if (*e && strstr(*e, INFLUX_NO_DATABASE)) *e = NULL; /* nothing written yet: empty */
    return 0;
}

int influx_answer_walk(const char *body, size_t len, int tolerate_stmt, influx_answer_fn fn, void *arg, char *err,
                       size_t errlen) {
    size_t off = 0;
    while (off < len) {
        while (off < len && (body[off] == '\n' || body[off] == '\r' || body[off] == ' ')) off++;
        if (off >= len) break;
        json_error_t je;
        json_t *doc = json_loadb(body + off, len - off, JSON_DISABLE_EOF_CHECK, &je);
        if (!doc) {
            snprintf(err, errlen, "unreadable answer from InfluxDB: %s", je.text);
            return -1;
        }
        off += (size_t)je.position;
        const char *e = NULL;
        if (influx_answer_doc(doc, tolerate_stmt, fn, arg, &e) != 0) {
            snprintf(err, errlen, "out of memory");
            json_decref(doc);
            return -1;
        }
        if (e) {
            snprintf(err, errlen, "influxdb: %.240s", e);
            json_decref(doc);
            return -1;
        }
        json_decref(doc);
    }
    return 0;
}

int influx_answer_col(json_t *columns, const char *name) {
    json_t *c;
    size_t i;
    json_array_foreach(columns, i, c) if (json_is_string(c) && strcmp(json_string_value(c), name) == 0) return (int)i;
    return -1;
}

json_t *influx_answer_get(const influx_answer_row *row, const char *name) {
    int i = influx_answer_col(row->columns, name);
    return i < 0 ? NULL : json_array_get(row->values, (size_t)i);
}

const char *influx_answer_str(const influx_answer_row *row, const char *name) {
    return json_string_value(influx_answer_get(row, name));
}

int64_t influx_answer_time(const influx_answer_row *row) {
    return (int64_t)json_integer_value(influx_answer_get(row, "time"));
}
