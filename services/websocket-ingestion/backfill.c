/* backfill.c -- see backfill.h. One run is a small state machine:
 *
 *   subscribed --> LISTING (get_states) --> FETCHING (history, window by window,
 *   chunk by chunk, one request in flight, BACKFILL_INTERVAL_MS between) --> DONE
 *   an error answer / timeout / spool full --> RETRYING (same request, backoff)
 *   unknown_command (no history component) --> UNSUPPORTED (gap declared lost)
 *   connection lost --> INTERRUPTED (the next subscribe starts over from the mark)
 *
 * Answers are read as text with json_scan (ha_client validated the message),
 * never as a jansson tree: a history answer can be tens of MB, and the state
 * and attribute texts are copied into the events byte for byte. */
#include "backfill.h"

#include "event.h"
#include "json_scan.h"
#include "log.h"
#include "metrics.h"
#include "sbuf.h"
#include "service.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { BF_OFF, BF_IDLE, BF_LISTING, BF_FETCHING, BF_RETRYING, BF_DONE, BF_INTERRUPTED, BF_UNSUPPORTED } bf_state;

static const char *const BF_NAMES[] = {"off",  "idle",        "listing",    "fetching",
                                       "retrying", "done", "interrupted", "unsupported"};

struct backfill {
    struct event_base *base;
    backfill_opts o;
    ha_client *ha;
    spool *sp;
    hwm *hw;
    bf_state state;
    struct event *timer;        /* next request / retry */
    struct event *timeout;      /* request answer deadline */
    long long req_id;           /* pending request, -1 = none */
    int listing;                /* the pending request is get_states */
    long retry_ms;

    int64_t mark, from, to, win_from, win_to, subscribed;
    char **entities;
    size_t nentities, chunk;    /* chunk = index of the first entity of the current request */
    json_t *prev;               /* entity -> previous row's new_state text (old_state of the next) */
    sbuf ev, st;
    long long started_mono;
    backfill_stats s;
    metric *m_events, *m_requests, *m_failures;

    int connected;              /* subscribed now */
    int lost_in_request;        /* the connection ended while a history request was pending */
    int shrink;                 /* windows are window_us >> shrink: an answer too large for the
                                   connection (HA_MAX_MESSAGE_BYTES) must not cut it forever */
    int64_t window_us;          /* of the current run */
    int import_run;             /* the current run is an import (homeiqctl import-history) */
    int import_pending;         /* an import is asked for / to be resumed (file SPOOL_DIR/import) */
    int64_t imp_from, imp_to, imp_next; /* imp_next: start of the first window not yet done */
    char **imp_ids;             /* entity filter, NULL = every entity get_states lists */
    size_t nimp_ids;
};

static void bf_after_run(backfill *b);
static void bf_import_save(backfill *b);
static void bf_import_forget(backfill *b);

/* ---- helpers ----------------------------------------------------------------- */

static void bf_set_state(backfill *b, bf_state st) {
    b->state = st;
    b->s.state = BF_NAMES[st];
}

static void bf_arm(struct event *ev, long ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static void bf_free_entities(backfill *b) {
    for (size_t i = 0; i < b->nentities; i++) free(b->entities[i]);
    free(b->entities);
    b->entities = NULL;
    b->nentities = 0;
}

static void bf_stop_request(backfill *b) {
    if (b->req_id >= 0) ha_client_cancel(b->ha, b->req_id);
    b->req_id = -1;
    evtimer_del(b->timeout);
    evtimer_del(b->timer);
}

static void bf_iso(int64_t us, char out[EVENT_TIME_LEN]) { event_time_format(us, out); }

/* the members of a result message */
typedef struct bf_result {
    const char *success, *result, *error;
    size_t slen, rlen, elen;
} bf_result;

static int bf_result_member(const char *k, size_t kl, const char *v, size_t vl, void *arg) {
    bf_result *r = arg;
    if (kl == 7 && !memcmp(k, "success", 7)) r->success = v, r->slen = vl;
    else if (kl == 6 && !memcmp(k, "result", 6)) r->result = v, r->rlen = vl;
    else if (kl == 5 && !memcmp(k, "error", 5)) r->error = v, r->elen = vl;
    return 0;
}

/* error.code / error.message of a failed result, as text */
typedef struct bf_err {
    char code[64], message[128];
} bf_err;

static void bf_copy_str(char *out, size_t n, const char *v, size_t vl) {
    if (vl >= 2 && v[0] == '"') v++, vl -= 2;
    if (vl >= n) vl = n - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
}

static int bf_err_member(const char *k, size_t kl, const char *v, size_t vl, void *arg) {
    bf_err *e = arg;
    if (kl == 4 && !memcmp(k, "code", 4)) bf_copy_str(e->code, sizeof e->code, v, vl);
    else if (kl == 7 && !memcmp(k, "message", 7)) bf_copy_str(e->message, sizeof e->message, v, vl);
    return 0;
}

/* 1 = success, 0 = failed (err filled), -1 = not a result message */
static int bf_parse_result(const char *msg, size_t len, bf_result *r, bf_err *err) {
    memset(r, 0, sizeof *r);
    memset(err, 0, sizeof *err);
    if (jscan_object_trusted(msg, len, bf_result_member, r) != 0 || !r->success) return -1;
    if (r->slen == 4 && !memcmp(r->success, "true", 4)) return 1;
    if (r->error) jscan_object_trusted(r->error, r->elen, bf_err_member, err);
    if (!err->code[0]) snprintf(err->code, sizeof err->code, "?");
    return 0;
}

/* ---- one row -> one event ------------------------------------------------------- */

typedef struct bf_row {
    const char *s, *a, *lu, *lc;
    size_t sl, al, lul, lcl;
} bf_row;

static int bf_row_member(const char *k, size_t kl, const char *v, size_t vl, void *arg) {
    bf_row *r = arg;
    if (kl != 1 && kl != 2) return 0;
    if (kl == 1 && k[0] == 's') r->s = v, r->sl = vl;
    else if (kl == 1 && k[0] == 'a') r->a = v, r->al = vl;
    else if (kl == 2 && !memcmp(k, "lu", 2)) r->lu = v, r->lul = vl;
    else if (kl == 2 && !memcmp(k, "lc", 2)) r->lc = v, r->lcl = vl;
    return 0;
}

static int bf_epoch(const char *v, size_t vl, int64_t *us) {
    char buf[64];
    if (!v || vl == 0 || vl >= sizeof buf || (v[0] != '-' && (v[0] < '0' || v[0] > '9'))) return -1;
    memcpy(buf, v, vl);
    buf[vl] = '\0';
    char *end;
    double d = strtod(buf, &end);
    if (*end) return -1;
    return event_time_from_epoch(d, us);
}

/* HA's isoformat: +00:00, 6 fraction digits (HA drops them at .000000; both parse alike) */
static void bf_ha_time(sbuf *b, int64_t us) {
    char t[EVENT_TIME_LEN];
    bf_iso(us, t);
    size_t n = strlen(t);
    if (n && t[n - 1] == 'Z') t[--n] = '\0';
    sbuf_addc(b, '"');
    sbuf_add(b, t, n);
    sbuf_adds(b, "+00:00\"");
}

int backfill_row_event(const char *entity, size_t elen, const char *row, size_t rlen, const char *prev_state,
                       sbuf *ev, sbuf *state_out, int64_t *time_us) {
    bf_row r = {0};
    if (jscan_first(row, rlen) != '{' || jscan_object_trusted(row, rlen, bf_row_member, &r) != 0) return -1;
    int64_t lu, lc;
    if (!r.s || r.s[0] != '"' || bf_epoch(r.lu, r.lul, &lu) != 0) return -1;
    if (!r.lc) lc = lu;
    else if (bf_epoch(r.lc, r.lcl, &lc) != 0) return -1;
    if (r.a && r.a[0] != '{') return -1;
    sbuf_reset(state_out);
    sbuf_adds(state_out, "{\"entity_id\":\"");
    sbuf_add(state_out, entity, elen);
    sbuf_adds(state_out, "\",\"state\":");
    sbuf_add(state_out, r.s, r.sl);
    sbuf_adds(state_out, ",\"attributes\":");
    if (r.a) sbuf_add(state_out, r.a, r.al);
    else sbuf_adds(state_out, "{}");
    sbuf_adds(state_out, ",\"last_changed\":");
    bf_ha_time(state_out, lc);
    sbuf_adds(state_out, ",\"last_reported\":");
    bf_ha_time(state_out, lu);
    sbuf_adds(state_out, ",\"last_updated\":");
    bf_ha_time(state_out, lu);
    sbuf_addc(state_out, '}');

    sbuf_reset(ev);
    sbuf_adds(ev, "{\"event_type\":\"state_changed\",\"data\":{\"entity_id\":\"");
    sbuf_add(ev, entity, elen);
    sbuf_adds(ev, "\",\"old_state\":");
    sbuf_adds(ev, prev_state ? prev_state : "null");
    sbuf_adds(ev, ",\"new_state\":");
    sbuf_add(ev, state_out->data, state_out->len);
    sbuf_adds(ev, "},\"origin\":\"HOMEIQ_BACKFILL\",\"time_fired\":");
    bf_ha_time(ev, lu);
    sbuf_addc(ev, '}');
    *time_us = lu;
    return sbuf_failed(ev) || sbuf_failed(state_out) ? -1 : 0;
}

/* ---- requests -------------------------------------------------------------------- */

static void bf_send_next(backfill *b);
static void bf_on_result(const char *msg, size_t len, void *arg);

static void bf_retry(backfill *b, const char *fmt, const char *a, const char *c) {
    b->s.failures_total++;
    metrics_add(b->m_failures, 1);
    snprintf(b->s.last_error, sizeof b->s.last_error, fmt, a, c);
    log_warn("backfill: %s; retrying in %.1f s", b->s.last_error, (double)b->retry_ms / 1000.0);
    bf_set_state(b, BF_RETRYING);
    bf_arm(b->timer, b->retry_ms);
    b->retry_ms = b->retry_ms * 2 > b->o.retry_max_ms ? b->o.retry_max_ms : b->retry_ms * 2;
}

static void bf_request(backfill *b, json_t *msg, int listing) {
    b->listing = listing;
    b->s.requests_total++;
    metrics_add(b->m_requests, 1);
    b->req_id = ha_client_request(b->ha, msg, bf_on_result, b);
    if (b->req_id < 0) {
        /* not subscribed any more (the lost hook ran) or too many pending: try again later */
        if (b->state == BF_INTERRUPTED) return;
        bf_retry(b, "%s%s", "cannot send the request to home assistant", "");
        return;
    }
    bf_arm(b->timeout, b->o.timeout_ms);
}

static void bf_send_listing(backfill *b) {
    bf_set_state(b, BF_LISTING);
    bf_request(b, json_pack("{s:s}", "type", "get_states"), 1);
}

static void bf_complete(backfill *b) {
    if (b->o.flush) b->o.flush(b->o.append_arg); /* rows handed to append but held: into the spool first */
    if (b->import_run) {
        bf_import_forget(b);
    } else {
        spool_stats ss;
        spool_get_stats(b->sp, &ss);
        /* complete up to the subscribe (history covered it; `to` is later only to absorb clock skew),
         * and live events since then up to the newest spooled (hwm keeps the later of the two) */
        hwm_complete(b->hw, ss.next_seq, b->subscribed);
        hwm_durable(b->hw, ss.durable_seq);
    }
    b->s.duration_s = (double)(service_mono_us() - b->started_mono) / 1e6;
    bf_set_state(b, BF_DONE);
    b->s.last_error[0] = '\0';
    char f[EVENT_TIME_LEN], t[EVENT_TIME_LEN];
    bf_iso(b->from, f);
    bf_iso(b->to, t);
    log_info("backfill: %s done, %llu event(s) from %s to %s (%zu entities) in %.1f s",
             b->import_run ? "import" : "gap", (unsigned long long)b->s.events, f, t, b->nentities,
             b->s.duration_s);
    bf_free_entities(b);
    json_object_clear(b->prev);
    b->shrink = 0;
    bf_after_run(b);
}

static void bf_send_history(backfill *b) {
    char st[EVENT_TIME_LEN], en[EVENT_TIME_LEN];
    /* HA selects last_updated > start and < end: a row exactly at a window boundary would be in
     * neither window; starting 1 us earlier puts it in the later one (a row read twice is one record) */
    bf_iso(b->win_from - 1, st);
    bf_iso(b->win_to, en);
    json_t *ids = json_array();
    size_t end = b->chunk + (size_t)b->o.chunk_entities;
    if (end > b->nentities) end = b->nentities;
    for (size_t i = b->chunk; i < end; i++) json_array_append_new(ids, json_string(b->entities[i]));
    json_t *m = json_pack("{s:s,s:s,s:s,s:o,s:b,s:b,s:b,s:b}", "type", "history/history_during_period",
                          "start_time", st, "end_time", en, "entity_ids", ids, "include_start_time_state", 0,
                          "significant_changes_only", 0, "minimal_response", 0, "no_attributes", 0);
    bf_set_state(b, BF_FETCHING);
    bf_request(b, m, 0);
}

/* The next request of the run: next chunk, next window, or done. */
static void bf_send_next(backfill *b) {
    if (b->chunk >= b->nentities) {
        b->chunk = 0;
        b->s.entities_done = 0;
        b->win_from = b->win_to;
        b->s.windows_done++;
        if (b->import_run) { /* resumable from here */
            b->imp_next = b->win_from;
            bf_import_save(b);
        }
        if (b->win_from >= b->to || b->nentities == 0) {
            bf_complete(b);
            return;
        }
        b->win_to = b->win_from + b->window_us < b->to ? b->win_from + b->window_us : b->to;
    }
    bf_send_history(b);
}

static void bf_timer_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    backfill *b = arg;
    if (b->state == BF_INTERRUPTED || b->state == BF_DONE) return;
    if (!b->entities && b->nentities == 0 && b->listing) bf_send_listing(b);
    else bf_send_next(b);
}

static void bf_timeout_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    backfill *b = arg;
    if (b->req_id >= 0) ha_client_cancel(b->ha, b->req_id);
    b->req_id = -1;
    char s[32];
    snprintf(s, sizeof s, "%ld", b->o.timeout_ms / 1000);
    bf_retry(b, "no answer within %s s%s", s, "");
}

/* ---- answers ------------------------------------------------------------------------ */

typedef struct bf_walk {
    backfill *b;
    const char *entity;
    size_t elen;
    int first;
    int failed;                 /* spool refused */
    uint64_t bad;
} bf_walk;

static int bf_state_entity(const char *k, size_t kl, const char *v, size_t vl, void *arg) {
    char **out = arg;
    if (kl == 9 && !memcmp(k, "entity_id", 9) && vl >= 2 && v[0] == '"' && !memchr(v, '\\', vl))
        *out = strndup(v + 1, vl - 2);
    return 0;
}

static int bf_collect_entity(const char *v, size_t vl, void *arg) {
    backfill *b = arg;
    char *id = NULL;
    if (jscan_first(v, vl) == '{') jscan_object_trusted(v, vl, bf_state_entity, &id);
    if (!id) return 0;
    char **p = realloc(b->entities, (b->nentities + 1) * sizeof *p);
    if (!p) {
        free(id);
        return 1;
    }
    b->entities = p;
    b->entities[b->nentities++] = id;
    return 0;
}

static int bf_cmp(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }
static void bf_windows(backfill *b);

static void bf_on_states(backfill *b, const bf_result *r) {
    bf_free_entities(b);
    if (!r->result || jscan_first(r->result, r->rlen) != '[' ||
        jscan_array(r->result, r->rlen, bf_collect_entity, b) != 0) {
        b->listing = 1; /* the retry asks for the list again */
        bf_retry(b, "get_states answer unreadable%s%s", "", "");
        return;
    }
    qsort(b->entities, b->nentities, sizeof *b->entities, bf_cmp);
    bf_windows(b);
}

/* The run's entity list is known: the first window. */
static void bf_windows(backfill *b) {
    b->chunk = 0;
    b->win_from = b->from;
    b->win_to = b->from + b->window_us < b->to ? b->from + b->window_us : b->to;
    b->s.entities = b->nentities;
    b->s.entities_done = 0;
    b->s.windows = (b->to - b->from + b->window_us - 1) / b->window_us;
    b->s.windows_done = 0;
    log_info("backfill: %zu entities, %lld window(s) of history to read", b->nentities, (long long)b->s.windows);
    long wait = b->o.delay_ms - (long)((service_mono_us() - b->started_mono) / 1000);
    if (wait > 0) { /* let HA's recorder commit what was fired just before the subscribe */
        bf_set_state(b, BF_FETCHING);
        bf_arm(b->timer, wait);
        return;
    }
    bf_send_next(b);
}

static int bf_row_cb(const char *v, size_t vl, void *arg) {
    bf_walk *w = arg;
    backfill *b = w->b;
    char key[300];
    if (w->elen >= sizeof key) return 1;
    memcpy(key, w->entity, w->elen);
    key[w->elen] = '\0';
    const char *prev = json_string_value(json_object_get(b->prev, key));
    int64_t t;
    if (backfill_row_event(w->entity, w->elen, v, vl, prev, &b->ev, &b->st, &t) != 0) {
        w->bad++;
        return 0;
    }
    int primer = w->first && t <= b->mark; /* spooled before the mark: only the next row's old_state */
    w->first = 0;
    if (!primer) {
        int rc = b->o.append ? b->o.append(b->ev.data, b->ev.len, b->o.append_arg)
                             : spool_append(b->sp, b->ev.data, b->ev.len, NULL);
        if (rc != 0) {
            w->failed = rc;
            return 1;
        }
        b->s.events++;
        b->s.events_total++;
        metrics_add(b->m_events, 1);
    }
    json_object_set_new(b->prev, key, json_stringn(b->st.data, b->st.len));
    return 0;
}

static int bf_entity_cb(const char *k, size_t kl, const char *v, size_t vl, void *arg) {
    bf_walk *w = arg;
    if (jscan_first(v, vl) != '[') return 0;
    w->entity = k;
    w->elen = kl;
    w->first = 1;
    if (jscan_array(v, vl, bf_row_cb, w) != 0 && !w->failed) w->bad++;
    return w->failed ? 1 : 0;
}

static void bf_on_history(backfill *b, const bf_result *r) {
    bf_walk w = {.b = b};
    if (!r->result || jscan_first(r->result, r->rlen) != '{') {
        bf_retry(b, "history answer unreadable%s%s", "", "");
        return;
    }
    jscan_object_trusted(r->result, r->rlen, bf_entity_cb, &w);
    if (w.failed) { /* the spool is full: the same request again later (re-sent rows are duplicates) */
        bf_retry(b, "%s%s", w.failed == SPOOL_EFULL ? "spool full (SPOOL_MAX_BYTES)" : "event too large to spool",
                 "");
        return;
    }
    if (w.bad) log_warn("backfill: %llu history row(s) not understood, skipped", (unsigned long long)w.bad);
    b->retry_ms = b->o.retry_min_ms;
    b->chunk += (size_t)b->o.chunk_entities;
    b->s.entities_done = b->chunk < b->nentities ? b->chunk : b->nentities;
    bf_set_state(b, BF_FETCHING);
    bf_arm(b->timer, b->o.interval_ms); /* rate limit */
}

static void bf_on_result(const char *msg, size_t len, void *arg) {
    backfill *b = arg;
    b->req_id = -1;
    evtimer_del(b->timeout);
    if (!msg) { /* connection lost: on_lost handles it */
        b->lost_in_request = !b->listing;
        return;
    }
    bf_result r;
    bf_err e;
    int ok = bf_parse_result(msg, len, &r, &e);
    if (ok < 0) {
        bf_retry(b, "unreadable answer to %s%s", b->listing ? "get_states" : "history", "");
        return;
    }
    if (!ok && !b->listing && !strcmp(e.code, "unknown_command")) {
        char f[EVENT_TIME_LEN], t[EVENT_TIME_LEN];
        bf_iso(b->from, f);
        bf_iso(b->to, t);
        snprintf(b->s.last_error, sizeof b->s.last_error,
                 "home assistant has no history component: changes from %s to %s cannot be recovered", f, t);
        log_error("backfill: %s (live ingestion goes on)", b->s.last_error);
        bf_set_state(b, BF_UNSUPPORTED);
        spool_stats ss;
        spool_get_stats(b->sp, &ss);
        if (b->import_run) bf_import_forget(b); /* nothing can be imported either */
        else hwm_complete(b->hw, ss.next_seq, b->subscribed); /* nothing more can be had; the mark moves on */
        hwm_durable(b->hw, ss.durable_seq);
        bf_free_entities(b);
        bf_after_run(b);
        return;
    }
    if (!ok) {
        bf_retry(b, "%s failed: %s", b->listing ? "get_states" : "history/history_during_period", e.code);
        return;
    }
    if (b->listing) {
        b->listing = 0;
        bf_on_states(b, &r);
    } else {
        bf_on_history(b, &r);
    }
}

/* ---- hooks ------------------------------------------------------------------------------ */

/* A run over [from, to]: the gap after the mark, or an import. */
static void bf_start_run(backfill *b, int64_t from, int64_t to, int import) {
    b->import_run = import;
    b->window_us = b->o.window_us >> b->shrink;
    b->from = from;
    b->to = to;
    json_object_clear(b->prev);
    bf_free_entities(b);
    b->s.kind = import ? "import" : "gap";
    b->s.from_us = b->from;
    b->s.to_us = b->to;
    b->s.events = 0;
    b->s.entities = b->s.entities_done = 0;
    b->s.windows = b->s.windows_done = 0;
    b->s.runs++;
    b->s.duration_s = 0;
    b->retry_ms = b->o.retry_min_ms;
    b->started_mono = service_mono_us();
    char f[EVENT_TIME_LEN], t[EVENT_TIME_LEN];
    bf_iso(b->from, f);
    bf_iso(b->to, t);
    log_info("backfill: %s: reading home assistant's history from %s to %s", import ? "import" : "gap", f, t);
    if (import && b->imp_ids) { /* the entities asked for: no listing */
        b->entities = calloc(b->nimp_ids ? b->nimp_ids : 1, sizeof *b->entities);
        for (size_t i = 0; b->entities && i < b->nimp_ids; i++) b->entities[b->nentities++] = strdup(b->imp_ids[i]);
        bf_set_state(b, BF_FETCHING);
        bf_windows(b);
        return;
    }
    bf_send_listing(b);
}

/* After a run: a pending import goes next. */
static void bf_after_run(backfill *b) {
    if (!b->import_pending || !b->connected || !b->o.enabled) return;
    b->mark = 0; /* an import re-sends every row it reads */
    bf_start_run(b, b->imp_next, b->imp_to, 1);
}

static void bf_on_subscribed(void *arg) {
    backfill *b = arg;
    bf_stop_request(b);
    b->connected = 1;
    if (!b->o.enabled) {
        bf_set_state(b, BF_OFF);
        return;
    }
    int64_t now = service_now_us();
    b->mark = hwm_get(b->hw);
    if (!b->mark) { /* first start: no gap to catch up with (import-history is for older history) */
        bf_set_state(b, BF_IDLE);
        if (hwm_held(b->hw)) hwm_complete(b->hw, 0, 0);
        bf_after_run(b);
        return;
    }
    int64_t from = b->mark - b->o.overlap_us;
    int64_t oldest = now - b->o.max_age_us;
    if (from < oldest) {
        char m[EVENT_TIME_LEN], o[EVENT_TIME_LEN];
        bf_iso(b->mark, m);
        bf_iso(oldest, o);
        log_warn("backfill: the gap starts at %s, older than BACKFILL_MAX_AGE; changes before %s are not asked for",
                 m, o);
        from = oldest;
    }
    b->subscribed = now;
    hwm_hold(b->hw);
    bf_start_run(b, from, now + b->o.overlap_us, 0);
}

static void bf_on_lost(void *arg) {
    backfill *b = arg;
    b->connected = 0;
    if (b->state != BF_LISTING && b->state != BF_FETCHING && b->state != BF_RETRYING) return;
    if (b->lost_in_request && b->shrink < 12 && (b->o.window_us >> (b->shrink + 1)) >= 60000000) {
        b->shrink++;
        log_warn("backfill: the connection ended during a history request; the next run asks for %lld s at a time",
                 (long long)((b->o.window_us >> b->shrink) / 1000000));
    }
    b->lost_in_request = 0;
    bf_stop_request(b);
    bf_set_state(b, BF_INTERRUPTED);
    b->s.duration_s = (double)(service_mono_us() - b->started_mono) / 1e6;
    log_warn("backfill: %s interrupted (connection lost) after %llu event(s); %s on reconnect",
             b->import_run ? "import" : "gap", (unsigned long long)b->s.events,
             b->import_run ? "resumes from its last finished window" : "starts over from the mark");
}

/* ---- import (homeiqctl import-history) ----------------------------------------------------
 * The request and its progress (the first window not yet done) live in o.import_path, so an
 * import survives ingestion's restart and a lost connection, and resumes where it was. */

static void bf_import_save(backfill *b) {
    if (!b->o.import_path) return;
    json_t *ids = json_array();
    for (size_t i = 0; i < b->nimp_ids; i++) json_array_append_new(ids, json_string(b->imp_ids[i]));
    json_t *j = json_pack("{s:I,s:I,s:I,s:o}", "from", (json_int_t)b->imp_from, "to", (json_int_t)b->imp_to, "next",
                          (json_int_t)b->imp_next, "entity_ids", b->imp_ids ? ids : json_null());
    if (!b->imp_ids) json_decref(ids);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", b->o.import_path);
    if (!j || json_dump_file(j, tmp, JSON_COMPACT) != 0 || rename(tmp, b->o.import_path) != 0)
        log_error("backfill: cannot save the import's progress to %s", b->o.import_path);
    json_decref(j);
}

static void bf_import_ids_free(backfill *b) {
    for (size_t i = 0; i < b->nimp_ids; i++) free(b->imp_ids[i]);
    free(b->imp_ids);
    b->imp_ids = NULL;
    b->nimp_ids = 0;
}

static void bf_import_forget(backfill *b) {
    b->import_pending = 0;
    bf_import_ids_free(b);
    if (b->o.import_path) remove(b->o.import_path);
}

static void bf_import_load(backfill *b) {
    if (!b->o.import_path) return;
    json_t *j = json_load_file(b->o.import_path, 0, NULL);
    if (!j) return;
    json_t *ids = json_object_get(j, "entity_ids");
    b->imp_from = json_integer_value(json_object_get(j, "from"));
    b->imp_to = json_integer_value(json_object_get(j, "to"));
    b->imp_next = json_integer_value(json_object_get(j, "next"));
    if (json_is_array(ids)) {
        b->imp_ids = calloc(json_array_size(ids) + 1, sizeof *b->imp_ids);
        size_t i;
        json_t *v;
        json_array_foreach(ids, i, v) if (json_is_string(v)) b->imp_ids[b->nimp_ids++] = strdup(json_string_value(v));
    }
    json_decref(j);
    if (b->imp_to <= 0 || b->imp_next < b->imp_from || b->imp_next > b->imp_to) {
        log_warn("backfill: %s is not a valid import; ignored", b->o.import_path);
        bf_import_forget(b);
        return;
    }
    b->import_pending = 1;
    char n[EVENT_TIME_LEN];
    bf_iso(b->imp_next, n);
    log_info("backfill: an unfinished import resumes from %s once home assistant is connected", n);
}

int backfill_import(backfill *b, int64_t since_us, const char *const *entity_ids, size_t n) {
    if (!b->o.enabled) return -1;
    if (b->import_pending) return 1; /* one at a time: the caller watches the running one */
    int64_t now = service_now_us();
    b->imp_from = b->imp_next = now - since_us;
    b->imp_to = now;
    bf_import_ids_free(b);
    if (n) {
        b->imp_ids = calloc(n, sizeof *b->imp_ids);
        for (size_t i = 0; b->imp_ids && i < n; i++) b->imp_ids[b->nimp_ids++] = strdup(entity_ids[i]);
    }
    b->import_pending = 1;
    bf_import_save(b);
    if (b->state != BF_LISTING && b->state != BF_FETCHING && b->state != BF_RETRYING) bf_after_run(b);
    return 0;
}

void backfill_import_status(const backfill *b, int *pending, int64_t *from, int64_t *to, int64_t *next) {
    *pending = b->import_pending;
    *from = b->imp_from;
    *to = b->imp_to;
    *next = b->imp_next;
}

/* ---- life cycle ------------------------------------------------------------------------ */

int backfill_new(struct event_base *base, const backfill_opts *o, ha_client *ha, spool *sp, hwm *hw,
                 backfill **out) {
    backfill *b = calloc(1, sizeof *b);
    if (!b) return -1;
    b->base = base;
    b->o = *o;
    if (b->o.chunk_entities < 1) b->o.chunk_entities = 1;
    if (b->o.window_us < 1000000) b->o.window_us = 1000000;
    if (b->o.retry_min_ms < 1) b->o.retry_min_ms = 1000;
    if (b->o.retry_max_ms < b->o.retry_min_ms) b->o.retry_max_ms = b->o.retry_min_ms;
    if (b->o.timeout_ms < 1000) b->o.timeout_ms = 1000;
    b->ha = ha;
    b->sp = sp;
    b->hw = hw;
    b->req_id = -1;
    b->timer = evtimer_new(base, bf_timer_cb, b);
    b->timeout = evtimer_new(base, bf_timeout_cb, b);
    b->prev = json_object();
    sbuf_init(&b->ev);
    sbuf_init(&b->st);
    if (!b->timer || !b->timeout || !b->prev) {
        backfill_free(b);
        return -1;
    }
    bf_set_state(b, o->enabled ? BF_IDLE : BF_OFF);
    b->s.kind = "gap";
    if (b->o.import_path) b->o.import_path = strdup(b->o.import_path);
    if (o->enabled) bf_import_load(b);
    ha_client_set_hooks(ha, bf_on_subscribed, bf_on_lost, b);
    *out = b;
    return 0;
}

void backfill_get_stats(const backfill *b, backfill_stats *st) {
    *st = b->s;
    if (b->state == BF_LISTING || b->state == BF_FETCHING || b->state == BF_RETRYING)
        st->duration_s = (double)(service_mono_us() - b->started_mono) / 1e6;
}

static double bf_running(void *arg) {
    const backfill *b = arg;
    return b->state == BF_LISTING || b->state == BF_FETCHING || b->state == BF_RETRYING;
}

static double bf_unsupported(void *arg) { return ((const backfill *)arg)->state == BF_UNSUPPORTED; }

void backfill_metrics(backfill *b) {
    b->m_events = metrics_counter("homeiq_ingestion_backfill_events_total",
                                  "State changes read back from HA's history and spooled", NULL);
    b->m_requests = metrics_counter("homeiq_ingestion_backfill_requests_total",
                                    "get_states / history requests sent for backfill", NULL);
    b->m_failures = metrics_counter("homeiq_ingestion_backfill_failures_total",
                                    "Backfill requests that failed or timed out (retried)", NULL);
    metrics_gauge_fn("homeiq_ingestion_backfill_running", "1 while a backfill run is in progress", NULL, bf_running,
                     b);
    metrics_gauge_fn("homeiq_ingestion_backfill_unsupported", "1 when HA answered that it has no history component",
                     NULL, bf_unsupported, b);
}

void backfill_free(backfill *b) {
    if (!b) return;
    if (b->timer) event_free(b->timer);
    if (b->timeout) event_free(b->timeout);
    bf_free_entities(b);
    bf_import_ids_free(b);
    free((char *)b->o.import_path);
    json_decref(b->prev);
    sbuf_free(&b->ev);
    sbuf_free(&b->st);
    free(b);
}
