/* influx_feed.c -- see influx_feed.h (the two forms of homeiq_feed's points).
 *
 * Why the entries are plain tab/newline text in one string field: influxd's
 * cost is per point, per field and per byte parsed; one string field per
 * point is the least of each, and the tag forms the columns hold can never
 * contain a tab or a newline, so nothing needs escaping but line protocol's
 * own '"' and '\'. */
#include "influx_feed.h"
#include "influx_points.h"
#include "lineproto.h"

#include <stdlib.h>
#include <string.h>

#define FEED_COLS 6

void influx_feed_batch_init(influx_feed_batch *fb) {
    memset(fb, 0, sizeof *fb);
    sbuf_init(&fb->text);
}

void influx_feed_batch_free(influx_feed_batch *fb) {
    sbuf_free(&fb->text);
    free(fb->pts);
    memset(fb, 0, sizeof *fb);
}

void influx_feed_batch_reset(influx_feed_batch *fb) {
    sbuf_reset(&fb->text);
    fb->npts = 0;
    fb->failed = 0;
}

/* The tag form of s (no tab, newline or backslash: influx_feed.h). */
static void feed_col(sbuf *b, const char *s) {
    if (s && *s) lineproto_tag_form(b, s);
}

/* A new point for the entry built at text offset off. -1 out of memory. */
static int feed_new_point(influx_feed_batch *fb, size_t off, int64_t seq) {
    if (fb->npts == fb->cap) {
        size_t cap = fb->cap ? fb->cap * 2 : 8;
        influx_feed_span *q = realloc(fb->pts, cap * sizeof *q);
        if (!q) return -1;
        fb->pts = q;
        fb->cap = cap;
    }
    fb->pts[fb->npts++] = (influx_feed_span){.off = off, .seq0 = seq};
    return 0;
}

int influx_feed_batch_add(influx_feed_batch *fb, const influx_feed_entry *e) {
    influx_feed_span *p = fb->npts ? &fb->pts[fb->npts - 1] : NULL;
    int join = p && e->seq == p->seq0 + (int64_t)p->n && p->n < INFLUX_FEED_MAX_ENTRIES;
    sbuf *b = &fb->text;
    size_t before = b->len;
    if (join) sbuf_addc(b, '\n');
    sbuf_adds(b, e->event_id);
    sbuf_printf(b, "\t%lld\t", (long long)e->t_ns);
    feed_col(b, e->entity_id);
    sbuf_addc(b, '\t');
    feed_col(b, e->domain);
    sbuf_addc(b, '\t');
    feed_col(b, e->event_type);
    sbuf_addc(b, '\t');
    feed_col(b, e->area);
    if (sbuf_failed(b)) return fb->failed = 1, -1;
    size_t len = b->len - before;
    /* the columns are unbounded (event_type, domain, area_id): a point stays below the limit by measuring
     * the entry, not by headroom (review-feed 6); one entry longer than it is a point of its own */
    if (join && p->len + len > INFLUX_FEED_POINT_BYTES) {
        memmove(b->data + before, b->data + before + 1, len - 1); /* without its '\n' */
        b->data[--b->len] = '\0';
        len--;
        join = 0;
    }
    if (!join && feed_new_point(fb, before, e->seq) != 0) return fb->failed = 1, -1;
    p = &fb->pts[fb->npts - 1];
    p->len += len;
    p->n++;
    return 0;
}

void influx_feed_batch_line(const influx_feed_batch *fb, size_t i, const char *home, sbuf *body) {
    const influx_feed_span *p = &fb->pts[i];
    lineproto_measurement(body, INFLUX_FEED_MEASUREMENT);
    if (home && *home) {
        sbuf_adds(body, "," INFLUX_HOME_TAG "=");
        lineproto_tag(body, home);
    }
    sbuf_adds(body, " e=");
    lineproto_field_string(body, fb->text.data + p->off, p->len);
    sbuf_printf(body, ",n=%zui %lld\n", p->n, (long long)p->seq0 * 1000);
}

/* ---- reading ---- */

static const char *feed_text(const influx_answer_row *row, const char *name) {
    const char *v = influx_answer_str(row, name);
    if (!v && row->tags) v = json_string_value(json_object_get(row->tags, name));
    return v && *v ? v : NULL;
}

static int64_t feed_int(const influx_answer_row *row, const char *name, int *ok) {
    json_t *v = influx_answer_get(row, name);
    if (ok) *ok = json_is_number(v);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : json_is_real(v) ? (int64_t)json_real_value(v) : 0;
}

/* The per-event form: one entry. */
static int feed_row_event(const influx_answer_row *row, int64_t seq, int64_t after, influx_feed_entry_fn fn,
                          void *arg) {
    const char *id = influx_answer_str(row, "event_id");
    if (!id || seq <= after) return 0;
    influx_feed_entry e = {.seq = seq,
                           .t_ns = feed_int(row, "t", NULL),
                           .event_id = id,
                           .entity_id = feed_text(row, "entity_id"),
                           .domain = feed_text(row, "domain"),
                           .event_type = feed_text(row, "event_type"),
                           .area = feed_text(row, "area_id"),
                           .home = feed_text(row, INFLUX_HOME_TAG)};
    return fn(&e, arg);
}

/* One line of the batch form's text, split in place (copy is writable). */
static void feed_split(char *line, influx_feed_entry *e) {
    char *col[FEED_COLS] = {0};
    int k = 0;
    col[k++] = line;
    for (char *p = line; *p && k < FEED_COLS; p++)
        if (*p == '\t') {
            *p = '\0';
            col[k++] = p + 1;
        }
    e->event_id = col[0];
    e->t_ns = col[1] ? strtoll(col[1], NULL, 10) : 0;
    const char **txt[4] = {&e->entity_id, &e->domain, &e->event_type, &e->area};
    for (int i = 0; i < 4; i++) *txt[i] = col[2 + i] && *col[2 + i] ? col[2 + i] : NULL;
}

/* The batch form: n entries from seq0. */
static int feed_row_batch(const influx_answer_row *row, const char *text, int64_t seq0, int64_t after, int reverse,
                          influx_feed_entry_fn fn, void *arg, int64_t *last) {
    size_t len = strlen(text), n = 0;
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, text, len + 1);
    for (size_t i = 0; i <= len; i++) n += copy[i] == '\n' || copy[i] == '\0';
    char **lines = malloc(n * sizeof *lines);
    if (!lines) {
        free(copy);
        return -1;
    }
    size_t k = 0;
    lines[k++] = copy;
    for (size_t i = 0; i < len; i++)
        if (copy[i] == '\n') {
            copy[i] = '\0';
            lines[k++] = copy + i + 1;
        }
    *last = seq0 + (int64_t)k - 1;
    const char *home = feed_text(row, INFLUX_HOME_TAG);
    int rc = 0;
    for (size_t j = 0; j < k && rc == 0; j++) {
        size_t i = reverse ? k - 1 - j : j;
        influx_feed_entry e = {.seq = seq0 + (int64_t)i, .home = home};
        if (e.seq <= after) continue;
        feed_split(lines[i], &e);
        if (!*e.event_id) continue;
        rc = fn(&e, arg);
    }
    free(lines);
    free(copy);
    return rc;
}

int influx_feed_row(const influx_answer_row *row, int64_t after, int reverse, influx_feed_entry_fn fn, void *arg,
                    int64_t *last_seq) {
    int64_t seq = influx_answer_time(row) / 1000, last = 0;
    const char *text = influx_answer_str(row, "e");
    int rc;
    if (text) {
        rc = feed_row_batch(row, text, seq, after, reverse, fn, arg, &last);
    } else {
        last = influx_answer_str(row, "event_id") ? seq : 0;
        rc = feed_row_event(row, seq, after, fn, arg);
    }
    if (last_seq) *last_seq = last;
    return rc;
}

int64_t influx_feed_head_row(const influx_answer_row *row) {
    int64_t seq = influx_answer_time(row) / 1000;
    int ok = 0;
    int64_t n = feed_int(row, "last", &ok);
    if (ok && !json_is_string(influx_answer_get(row, "last"))) return n > 0 ? seq + n - 1 : seq; /* last(n) */
    return influx_answer_get(row, "last") ? seq : 0;                                             /* last(event_id) */
}

static void feed_where_home(sbuf *sql, const char *home) {
    if (!home) return;
    sbuf_adds(sql, "\"" INFLUX_HOME_TAG "\" = ");
    sbuf form;
    sbuf_init(&form);
    lineproto_tag_form(&form, home);
    influxql_string(sql, form.data ? form.data : "");
    sbuf_free(&form);
    sbuf_adds(sql, " AND ");
}

void influx_feed_sql_head(sbuf *sql, int64_t below) {
    const char *col[2] = {"event_id", "n"};
    for (int k = 0; k < 2; k++) {
        sbuf_printf(sql, "%sSELECT last(%s) FROM \"" INFLUX_FEED_MEASUREMENT "\"", k ? ";" : "", col[k]);
        if (below > 0) sbuf_printf(sql, " WHERE time < %lld", (long long)below * 1000);
    }
}

void influx_feed_sql_before(sbuf *sql, const char *home, int64_t after) {
    int64_t lo = after - INFLUX_FEED_MAX_ENTRIES;
    sbuf_adds(sql, "SELECT n, e FROM \"" INFLUX_FEED_MEASUREMENT "\" WHERE ");
    feed_where_home(sql, home);
    sbuf_printf(sql, "time > %lld AND time <= %lld ORDER BY time DESC LIMIT 1", (long long)(lo > 0 ? lo : 0) * 1000,
                (long long)(after > 0 ? after : 0) * 1000);
}

static void feed_where_filter(sbuf *sql, const char *key, const char *form) {
    if (!form) return;
    sbuf_printf(sql, "(\"%s\" = ", key);
    influxql_string(sql, form);
    sbuf_adds(sql, " OR \"n\" > 0) AND ");
}

void influx_feed_sql_after(sbuf *sql, const char *home, const influx_feed_filter *f, int64_t after, int64_t upto,
                           int asc, long points) {
    sbuf_adds(sql, "SELECT " INFLUX_FEED_COLUMNS " FROM \"" INFLUX_FEED_MEASUREMENT "\" WHERE ");
    feed_where_home(sql, home);
    if (f) {
        feed_where_filter(sql, "entity_id", f->entity_id);
        feed_where_filter(sql, "domain", f->domain);
        feed_where_filter(sql, "event_type", f->event_type);
        feed_where_filter(sql, "area_id", f->area_id);
    }
    sbuf_printf(sql, "time > %lld AND time <= %lld ORDER BY time %s LIMIT %ld", (long long)after * 1000,
                (long long)upto * 1000, asc ? "ASC" : "DESC", points);
}
