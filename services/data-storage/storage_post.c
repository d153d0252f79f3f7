/* storage_post.c -- POST /api/v1/events (see storage_post.h).
 *
 * Why a file of its own: committing a request in bounded pieces -- the text
 * scan, building each piece, the slots that keep a slow backend from holding
 * every request's pieces at once, counting and answering -- is one job, apart
 * from routing, reads and health (storage_api.c).
 *
 * The ack contract lives here: a POST is answered from the backend's write
 * callback only, i.e. 200 after the durable commit, 503 when the backend could
 * not commit (the caller retries; storage is idempotent). Writes to InfluxDB
 * complete asynchronously, so a request may outlive its client connection: a
 * close callback (storage_api.c) detaches it and the answer is then dropped. */
#include "storage_post.h"
#include "json_text.h"
#include "log.h"
#include "service.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- POST /api/v1/events ----------------------------------------------
 *
 * A request's events are prepared and committed in pieces of at most
 * STORAGE_PIECE_BYTES of their text (issue 15): the body is validated once
 * (store_text_scan notes where each event is, copying nothing), then each
 * piece becomes a store_batch -- its records' stored text, or the jansson
 * trees of just its events -- is committed, and is freed before the next is
 * built. So storage holds the body once (libevent's input buffer) and one
 * bounded piece, whatever the batch size; a jansson tree of a whole batch
 * (10x its text) is never built for a valid body. The dead letters go with
 * the last piece. The answer comes after the last commit; a piece that cannot
 * be committed answers 503 at once, and the caller's retry finds the earlier
 * pieces' events as duplicates (identities make that harmless). A body the
 * scan declines (malformed: 400 with the position; duplicate keys, \u0000,
 * huge integers...) takes the general path, one tree of the whole body. */

static void storage_post_answer(storage_wait *p) {
    sbuf out;
    sbuf_init(&out);
    sbuf_printf(&out, "{\"success\":true,\"stored\":%zu,\"duplicates\":%zu,\"rejected\":[", p->stored, p->duplicates);
    sbuf_add(&out, p->rejected.data ? p->rejected.data : "", p->rejected.len);
    sbuf_printf(&out, "],\"dead_lettered\":%zu", p->dead_lettered);
    if (p->skipped) sbuf_printf(&out, ",\"skipped\":%zu", p->skipped); /* INFLUXDB_SCHEMA=homeassistant */
    sbuf_addc(&out, '}');
    storage_reply_json_text(p->req, 200, &out);
}

/* A committed piece: its counts and rejects join the answer's. */
static void storage_post_count(storage_wait *p, const store_batch *b) {
    size_t rejected = 0;
    for (size_t i = 0; i < b->nitems; i++) {
        const store_item *it = &b->items[i];
        if (it->status != STORE_ITEM_REJECTED) continue;
        sbuf_printf(&p->rejected, "%s{\"index\":%d,\"error\":", p->rejected.len ? "," : "", it->index);
        json_text_string(&p->rejected, it->error ? it->error : "rejected", it->error ? strlen(it->error) : 8);
        sbuf_addc(&p->rejected, '}');
        rejected++;
    }
    storage_api *a = p->api;
    metrics_add(a->m_batch_ok, 1);
    metrics_add(a->m_stored, (double)b->stored);
    metrics_add(a->m_dups, (double)b->duplicates);
    metrics_add(a->m_rejected, (double)rejected);
    metrics_add(a->m_dead, (double)b->dead_lettered);
    log_debug("batch: %zu stored, %zu duplicates, %zu rejected, %zu dead-lettered", b->stored, b->duplicates,
              rejected, b->dead_lettered);
    p->stored += b->stored;
    p->duplicates += b->duplicates;
    p->dead_lettered += b->dead_lettered;
    p->skipped += b->skipped;
}

static void storage_post_run(storage_wait *p);

/* ---- piece slots ----
 * A backend that answers later (InfluxDB, ClickHouse, SQLite's writer thread:
 * store_sqlite_writer.h) queues what it is
 * given: pieces of every request in flight would all be held at once. So at
 * most storage_pieces_out() pieces are with the backend -- a text backend
 * (ClickHouse) two, one writing and one ready behind it (InfluxDB: one per
 * write in flight, store.pieces = INFLUXDB_WRITES_INFLIGHT, default 2;
 * SQLite four, store_ops.pieces, so the pieces waiting behind a commit
 * share the next one); a backend reading jansson trees one, as its piece is a
 * tree of 5-10x its text (InfluxDB's burst-batch5000 peaked at 67.5 MB with two
 * trees, docs/BENCHMARKS.md) -- and other POSTs wait
 * here with nothing but their body, in order. A request keeps its slot from
 * its first piece to its answer (storage_post_release gives it back), so the
 * one under way finishes first instead of alternating pieces with the next.
 * SQLite without its thread (tests, tools) calls back before write_batch
 * returns: it never waits here. */
static int storage_pieces_out(const storage_api *a) {
    if (a->st->pieces) return a->st->pieces; /* InfluxDB: one per write in flight (INFLUXDB_WRITES_INFLIGHT) */
    return a->st->ops->pieces ? a->st->ops->pieces : a->st->ops->text_batches ? 2 : 1;
}

static void storage_gate_unlink(storage_wait *w) {
    if (!w->gated) return;
    storage_wait **pp = &w->api->gate;
    while (*pp && *pp != w) pp = &(*pp)->gate_next;
    if (*pp) *pp = w->gate_next;
    w->gated = 0;
    w->gate_next = NULL;
}

static void storage_gate_push(storage_wait *p) {
    storage_wait **pp = &p->api->gate;
    while (*pp) pp = &(*pp)->gate_next;
    p->gate_next = *pp;
    *pp = p;
    p->gated = 1;
}

/* A slot is free: the first waiting POST tries again from the loop. */
static void storage_gate_wake(storage_api *a) {
    static const struct timeval now = {0, 0};
    if (a->gate && a->pieces_out < storage_pieces_out(a)) evtimer_add(a->gate->step, &now);
}

/* 1: p may hand a piece to the backend now (it holds a slot); 0: it waits in the gate. */
static int storage_post_admit(storage_wait *p) {
    storage_api *a = p->api;
    if (!p->step || p->slot) return 1; /* no loop to wake it from: never waits / under way: keeps its slot */
    if (a->pieces_out >= storage_pieces_out(a) || (a->gate && a->gate != p)) {
        if (!p->gated) storage_gate_push(p);
        return 0;
    }
    storage_gate_unlink(p);
    p->slot = 1;
    a->pieces_out++;
    storage_gate_wake(a); /* a second slot may be free for the next in line */
    return 1;
}

static void storage_post_done(store_batch *b, int rc, const char *err, void *arg) {
    storage_wait *p = arg;
    storage_api *a = p->api;
    service_note_busy(a->opts.svc);
    if (rc != 0) {
        metrics_add(a->m_batch_fail, 1);
        log_warn("batch of %zu events not committed: %s", b->nitems, err ? err : "backend unavailable");
        snprintf(p->error, sizeof p->error, "%s", err ? err : "unknown error");
        p->failed = 1;
    } else {
        storage_post_count(p, b);
    }
    store_batch_free(&p->batch);
    json_decref(p->piece);
    p->piece = NULL;
    if (p->in_write) { /* called back before write_batch returned: storage_post_run goes on */
        p->wrote = 1;
        return;
    }
    /* Called back later (InfluxDB): the next piece starts from the loop, as
     * a backend may not expect a write from inside its own callback. */
    static const struct timeval now = {0, 0};
    if (p->step) evtimer_add(p->step, &now);
    else storage_post_run(p);
}

static void storage_post_step(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    storage_post_run(arg);
}

/* Reads events [from, to) with jansson, one tree per event (an element the
 * scan accepted is valid JSON on its own), into p->batch. 0/-1. */
static int storage_post_piece_json(storage_wait *p, size_t from, size_t to) {
    p->piece = json_array();
    for (size_t i = from; p->piece && i < to; i++) {
        const char *ev = p->tb.text + p->tb.ev[i].off;
        size_t len = p->tb.ev[i].len;
        json_error_t e;
        json_t *v = json_loadb(ev, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        if (!v && json_error_code(&e) == json_error_numeric_overflow)
            v = json_loadb(ev, len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
        if (!v || json_array_append_new(p->piece, v) != 0) return -1;
    }
    return p->piece ? store_batch_prepare(&p->batch, p->piece, NULL) : -1;
}

/* The dead letters (the last piece's). 0/-1. */
static int storage_post_piece_dead(storage_wait *p) {
    json_t *dead = json_loadb(p->tb.text + p->tb.dead.off, p->tb.dead.len, JSON_ALLOW_NUL, NULL);
    int rc = dead ? store_batch_add_dead_letters(&p->batch, dead) : -1;
    json_decref(dead);
    return rc;
}

/* Builds the next piece in p->batch: events from p->next while their text
 * fits STORAGE_PIECE_BYTES (one at least). 0/-1 (out of memory). */
static int storage_post_piece(storage_wait *p) {
    size_t from = p->next_ev, to = from, bytes = 0;
    while (to < p->tb.n && (to == from || bytes + p->tb.ev[to].len <= p->api->opts.piece_bytes)) bytes += p->tb.ev[to++].len;
    int rc = p->api->st->ops->text_batches ? store_text_prepare_range(&p->tb, from, to, &p->batch) : 1;
    if (rc > 0) rc = storage_post_piece_json(p, from, to); /* declined: an unusual or invalid event */
    for (size_t i = 0; rc == 0 && i < p->batch.nitems; i++) p->batch.items[i].index += (int)from;
    p->last = to == p->tb.n;
    if (rc == 0 && p->last && p->tb.dead.len) rc = storage_post_piece_dead(p);
    if (rc == 0) rc = store_batch_set_home(&p->batch, p->home[0] ? p->home : NULL);
    p->next_ev = to;
    return rc;
}

/* The next piece to commit (the general path's one: the whole body's tree),
 * built once the request holds a slot. 0/-1 (out of memory). */
static int storage_post_next(storage_wait *p) {
    if (!p->whole) return storage_post_piece(p);
    p->last = 1;
    int rc = store_batch_prepare(&p->batch, p->piece, p->dead);
    return rc == 0 ? store_batch_set_home(&p->batch, p->home[0] ? p->home : NULL) : rc;
}

/* Commits piece after piece until the last, then answers. The backend may
 * call back before write_batch returns (SQLite without its writer thread) or
 * later (InfluxDB, ClickHouse, SQLite's writer thread). */
static void storage_post_run(storage_wait *p) {
    storage_api *a = p->api;
    for (;;) {
        if (!p->req) break; /* the client is gone and its request freed (body text too): its retry will come */
        if (p->failed) {
            httpd_reply_error(p->req, 503, "storage backend unavailable: %s", p->error);
            break;
        }
        if (p->last) {
            metrics_observe(a->m_latency, (double)(service_mono_us() - p->t0_us) / 1e6);
            storage_post_answer(p);
            break;
        }
        if (!storage_post_admit(p)) return; /* storage_gate_wake runs us again */
        if (storage_post_next(p) != 0) {
            httpd_reply_error(p->req, 500, "out of memory");
            break;
        }
        p->in_write = 1;
        p->wrote = 0;
        a->st->ops->write_batch(a->st, &p->batch, storage_post_done, p);
        p->in_write = 0;
        if (!p->wrote) return; /* storage_post_done runs us again */
    }
    storage_wait_free(p); /* gives its slot back */
    storage_gate_wake(a);
}

/* Splits the body into the events array and the optional dead_letters. */
static int storage_post_unpack(struct evhttp_request *req, json_t *body, long max_batch, json_t **events,
                               json_t **dead) {
    const char *err = NULL;
    *dead = NULL;
    if (json_is_object(body) && json_object_get(body, "dead_letters")) {
        *dead = json_object_get(body, "dead_letters");
        if (!json_is_array(*dead)) {
            httpd_reply_error(req, 400, "dead_letters: must be an array");
            return -1;
        }
        if (!json_object_get(body, "events")) {
            *events = json_array();
            goto sizes;
        }
    }
    if (event_unpack_batch(body, events, &err) != 0) {
        httpd_reply_error(req, 400, "%s", err ? err : "expected an event, an array of events or {\"events\":[...]}");
        return -1;
    }
sizes:
    if ((long)json_array_size(*events) > max_batch || (long)json_array_size(*dead) > max_batch) {
        httpd_reply_error(req, 400, "batch too large: %zu events (MAX_BATCH is %ld)", json_array_size(*events),
                          max_batch);
        json_decref(*events);
        return -1;
    }
    return 0;
}

/* The request's home (X-HomeIQ-Home, absent = the default home): 0 with
 * *home (borrowed from req, NULL for the default), or -1 after answering 400. */
static int storage_post_home(struct evhttp_request *req, const char **home) {
    char why[192];
    *home = evhttp_find_header(evhttp_request_get_input_headers(req), EVENT_HOME_HEADER);
    if (!*home || event_home_check(*home, why, sizeof why) == 0) return 0;
    httpd_reply_error(req, 400, EVENT_HOME_HEADER ": %s", why);
    return -1;
}

static storage_wait *storage_post_wait(storage_api *a, struct evhttp_request *req, const char *home) {
    storage_wait *p = storage_wait_new(a, req);
    if (!p) return NULL;
    p->t0_us = service_mono_us();
    snprintf(p->home, sizeof p->home, "%s", home ? home : "");
    if (a->opts.svc && !(p->step = evtimer_new(service_base(a->opts.svc), storage_post_step, p))) {
        storage_wait_free(p);
        return NULL;
    }
    return p;
}

/* The body in pieces (the scan accepted it): 0 handled (answered or under
 * way), 1 not handled (use the general path). */
static int storage_post_pieces(struct evhttp_request *req, storage_api *a, const char *home) {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *text = len ? (const char *)evbuffer_pullup(in, -1) : NULL;
    store_text_body tb;
    int rc = store_text_scan(text, len, a->opts.max_batch, &tb);
    if (rc > 0) return 1;
    storage_wait *p = rc == 0 ? storage_post_wait(a, req, home) : NULL;
    if (!p) {
        store_text_body_free(&tb);
        httpd_reply_error(req, 500, "out of memory");
        return 0;
    }
    p->tb = tb;
    storage_post_run(p);
    return 0;
}

/* The general path: one jansson tree of the whole body (the scan declined it). */
static void storage_post_whole(struct evhttp_request *req, storage_api *a, const char *home) {
    json_t *body, *events, *dead;
    if (httpd_read_json(req, &body) != 0) return;
    if (storage_post_unpack(req, body, a->opts.max_batch, &events, &dead) != 0) {
        json_decref(body);
        return;
    }
    storage_wait *p = storage_post_wait(a, req, home);
    if (!p) {
        json_decref(events);
        json_decref(body);
        httpd_reply_error(req, 500, "out of memory");
        return;
    }
    p->body = body;
    p->piece = events; /* prepared once admitted (storage_post_next) */
    p->dead = dead;
    p->whole = 1;
    storage_post_run(p);
}

void storage_post_events(struct evhttp_request *req, storage_api *a) {
    const char *home;
    if (storage_maint_refuse_write(a->maint, req) || storage_post_home(req, &home) != 0) return;
    if (storage_post_pieces(req, a, home) != 0) storage_post_whole(req, a, home);
}

void storage_post_release(storage_wait *w) {
    storage_gate_unlink(w);
    if (w->slot) w->api->pieces_out--;
    w->slot = 0;
    store_batch_free(&w->batch);
    json_decref(w->body);
    json_decref(w->piece);
    if (w->step) event_free(w->step);
    store_text_body_free(&w->tb);
    sbuf_free(&w->rejected);
}

void storage_post_metrics(storage_api *a) {
    a->m_stored = metrics_counter("homeiq_storage_events_stored_total", "Events committed (new).", NULL);
    a->m_dups = metrics_counter("homeiq_storage_duplicates_total", "Events already stored (idempotent re-posts).", NULL);
    a->m_rejected = metrics_counter("homeiq_storage_rejected_total",
                                    "Events refused (validation or database) and dead-lettered.", NULL);
    a->m_dead = metrics_counter("homeiq_storage_dead_letters_total", "Dead letters written.", NULL);
    a->m_batch_ok = metrics_counter("homeiq_storage_batches_total", "Write batches by result.", "result=\"committed\"");
    a->m_batch_fail =
        metrics_counter("homeiq_storage_batches_total", "Write batches by result.", "result=\"unavailable\"");
    a->m_latency = metrics_histogram("homeiq_storage_batch_seconds", "Time from request to durable commit.", NULL,
                                     metrics_latency_bounds, metrics_latency_nbounds);
}
