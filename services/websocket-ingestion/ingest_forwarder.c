/* ingest_forwarder.c -- see ingest_forwarder.h.
 *
 * Batches live in a ring in spool order. A batch's body is built once
 * ("[" rec "," rec ... "]": records are raw event objects) and kept until the
 * batch is acknowledged, so a retry re-sends exactly the same events. It is
 * sent by reference (httpc_shared), never copied into a request: one copy of
 * each batch in flight (issue 15).
 *
 * What an answer means is lib/delivery's business (delivery_classify). A
 * batch downstream refuses for good is split in place: the batch keeps its
 * records and sends sub-ranges [lo,hi) in order (halves, the pending right
 * halves on a small stack) until the refused events are single; each of those
 * is replaced by a dead letter (delivery_dead_letter), and the batch is done
 * when its last range got through. The spool is acknowledged as before.
 *
 * A connection cut after a large body (SUSPECT) follows lib/delivery's cut
 * rule, as enrichment's storage client does: enrichment's /health is probed
 * at once, and delivery_cut answers RETRY (the same body again after the
 * backoff) until the DELIVERY_SUSPECT_TRIES-th cut of the same bytes while
 * the probe said healthy; only then is the body refused (split, a single
 * event dead-lettered with the reason). */
#include "ingest_forwarder.h"
#include "event.h"
#include "auth.h"

#include "delivery.h"
#include "log.h"
#include "metrics.h"
#include "service.h"

#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FWD_SPLIT_DEPTH 64 /* pending right halves: log2 of any batch size */
#define FWD_SOURCE "websocket-ingestion"

typedef enum { FWD_SENDING, FWD_DONE, FWD_RETRY_WAIT } ingest_forwarder_state;

typedef struct ingest_forwarder_batch {
    ingest_forwarder *f;
    uint64_t first_seq, end_seq; /* [first, end) */
    size_t count;
    char *body;
    size_t len, cap;
    httpc_shared *shared;        /* body, once sent (NULL: body is ours alone) */
    size_t *roff;                /* where record i starts in body */
    size_t rcap;
    ingest_forwarder_state state;
    int attempts;
    struct event *retry_ev;
    /* splitting (see the top of the file): the range in flight is [lo,hi) */
    int split;
    size_t lo, hi;
    size_t ends[FWD_SPLIT_DEPTH];
    int nends;
    int dead;                    /* the range in flight is the dead letter of record lo */
    char reason[300];            /* why record lo is dead-lettered */
    sbuf sub;                    /* the body of the range in flight */
    size_t sent_len;
    uint64_t sent_digest;        /* delivery_body_digest of a body >= DELIVERY_BIG_BODY, else 0 */
    char cut_error[160];         /* a cut (SUSPECT) waiting for the probe: the transport error */
} ingest_forwarder_batch;

struct ingest_forwarder {
    struct event_base *base;
    httpc *hc;
    spool *sp;
    ingest_forwarder_opts o;
    char *url;
    char *quarantine;
    char *health_url;           /* enrichment's /health (probed after a cut), NULL = unknown */
    delivery_cuts cuts;         /* strikes per cut body (lib/delivery's cut rule) */

    ingest_forwarder_batch ring[INGEST_FORWARDER_MAX_INFLIGHT];
    int head, count;            /* ring[head] is the oldest */
    int retrying;
    int stopped;

    struct event *linger_ev;
    int linger_armed, linger_expired;
    int failures;               /* consecutive */
    struct event *read_retry_ev; /* the spool could not be read: try again */
    int read_failures;

    ingest_forwarder_stats st;
    metric *m_dead, *m_split, *m_cuts;
    metric *m_events, *m_rejected, *m_batches_ok, *m_batches_failed, *m_latency, *m_batch_size;
};

/* ---- batch building ------------------------------------------------------ */

static int ingest_forwarder_body_add(ingest_forwarder_batch *b, const char *data, size_t len) {
    size_t need = b->len + len + 2;
    if (need > b->cap) {
        size_t ncap = b->cap ? b->cap : 64 * 1024;
        while (ncap < need) ncap *= 2;
        char *nb = realloc(b->body, ncap);
        if (!nb) return -1;
        b->body = nb;
        b->cap = ncap;
    }
    memcpy(b->body + b->len, data, len);
    b->len += len;
    return 0;
}

typedef struct ingest_forwarder_fill {
    ingest_forwarder_batch *b;
    size_t max_bytes;
    uint64_t *dead_count;
    int oom;
} ingest_forwarder_fill;

/* A record no batch can carry ("[" rec "]" over FORWARD_BATCH_MAX_BYTES, which
 * must stay below what downstream accepts) goes out as its dead letter at
 * once: retrying it could never succeed. */
static int ingest_forwarder_add_oversized(ingest_forwarder_fill *fl, uint64_t seq, const char *data, size_t len) {
    char why[200];
    snprintf(why, sizeof why, "event of %zu bytes is larger than a forward batch may be (FORWARD_BATCH_MAX_BYTES=%zu)",
             len, fl->max_bytes);
    log_error("forwarder: record %" PRIu64 ": %s; dead-lettered", seq, why);
    sbuf dl;
    sbuf_init(&dl);
    delivery_dead_letter(&dl, FWD_SOURCE, why, data, len);
    int rc = sbuf_failed(&dl) ? -1 : ingest_forwarder_body_add(fl->b, dl.data, dl.len);
    sbuf_free(&dl);
    (*fl->dead_count)++;
    return rc;
}

static void ingest_forwarder_record_cb(uint64_t seq, const char *data, size_t len, void *arg) {
    ingest_forwarder_fill *fl = arg;
    ingest_forwarder_batch *b = fl->b;
    if (b->count == 0) b->first_seq = seq;
    if (b->count == b->rcap) {
        size_t ncap = b->rcap ? b->rcap * 2 : 64;
        size_t *n = realloc(b->roff, ncap * sizeof *n);
        if (!n) fl->oom = 1;
        else b->roff = n, b->rcap = ncap;
    }
    if (fl->oom || ingest_forwarder_body_add(b, b->count ? "," : "[", 1) != 0) {
        fl->oom = 1;
        return;
    }
    b->roff[b->count] = b->len;
    if (len + 2 > fl->max_bytes ? ingest_forwarder_add_oversized(fl, seq, data, len) != 0 : ingest_forwarder_body_add(b, data, len) != 0)
        fl->oom = 1;
    b->count++;
    b->end_seq = seq + 1;
}

/* Record i's text inside the batch body. */
static void ingest_forwarder_record_span(const ingest_forwarder_batch *b, size_t i, const char **p, size_t *n) {
    size_t end = i + 1 < b->count ? b->roff[i + 1] - 1 : b->len - 1; /* before ',' or ']' */
    *p = b->body + b->roff[i];
    *n = end - b->roff[i];
}

/* The body of the range in flight: records [lo,hi), or record lo's dead letter. */
static int ingest_forwarder_build_sub(ingest_forwarder_batch *b) {
    if (sbuf_failed(&b->sub)) sbuf_free(&b->sub);
    sbuf_reset(&b->sub);
    sbuf_addc(&b->sub, '[');
    if (b->dead) {
        const char *p;
        size_t n;
        ingest_forwarder_record_span(b, b->lo, &p, &n);
        delivery_dead_letter(&b->sub, FWD_SOURCE, b->reason, p, n);
    } else {
        const char *p0, *p1;
        size_t n1;
        ingest_forwarder_record_span(b, b->lo, &p0, &n1);
        ingest_forwarder_record_span(b, b->hi - 1, &p1, &n1);
        sbuf_add(&b->sub, p0, (size_t)(p1 + n1 - p0));
    }
    sbuf_addc(&b->sub, ']');
    return sbuf_failed(&b->sub) ? -1 : 0;
}

/* ---- sending ------------------------------------------------------------ */

static void ingest_forwarder_response_cb(const httpc_response *res, void *arg);
static void ingest_forwarder_pump(ingest_forwarder *f);
static void ingest_forwarder_cut(ingest_forwarder *f, ingest_forwarder_batch *b, const httpc_response *res);

static void ingest_forwarder_send(ingest_forwarder_batch *b) {
    ingest_forwarder *f = b->f;
    /* auth_header() is NULL without a token: it ends the list, so it is last */
    const char *headers[] = {"Content-Type: application/json",
                             f->o.home_header ? f->o.home_header : "X-HomeIQ-Home: " EVENT_HOME_DEFAULT, auth_header(),
                             NULL};
    httpc_request req = {
        .method = "POST", .url = f->url, .headers = headers,
        .body = b->split ? b->sub.data : b->body, .body_len = b->split ? b->sub.len : b->len,
        .timeout_ms = f->o.timeout_ms,
    };
    if (!b->split && (b->shared || (b->shared = httpc_shared_new(b->body)))) req.body_shared = b->shared; /* else copied */
    b->sent_len = req.body_len;
    b->sent_digest = req.body_len >= DELIVERY_BIG_BODY ? delivery_body_digest(req.body, req.body_len) : 0;
    b->state = FWD_SENDING;
    b->attempts++;
    f->st.inflight++;
    if (httpc_send(f->hc, &req, ingest_forwarder_response_cb, b) != 0) {
        /* Could not even start: treat as a connection error. */
        httpc_response res = {.status = 0, .body = "", .error = "cannot start request"};
        ingest_forwarder_response_cb(&res, b);
    }
}

static long ingest_forwarder_backoff_ms(ingest_forwarder *f) {
    return delivery_backoff_ms(f->failures, f->o.retry_min_ms, f->o.retry_max_ms);
}

static void ingest_forwarder_retry_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    ingest_forwarder_batch *b = arg;
    if (b->f->stopped) return;
    ingest_forwarder_send(b);
}

/* The batch is done with its body: reused when no request still holds it
 * (a connection may, after an early answer), else left to the last holder. */
static void ingest_forwarder_unshare(ingest_forwarder_batch *b) {
    if (!b->shared) return;
    b->body = httpc_shared_release(b->shared);
    b->shared = NULL;
    if (!b->body) b->cap = 0;
}

/* Acknowledges the finished batches at the head of the ring, in order. */
static void ingest_forwarder_ack_head(ingest_forwarder *f) {
    uint64_t upto = 0;
    int acked = 0;
    while (f->count > 0 && f->ring[f->head].state == FWD_DONE) {
        ingest_forwarder_batch *b = &f->ring[f->head];
        upto = b->end_seq;
        f->st.events_acked += b->count;
        metrics_add(f->m_events, (double)b->count);
        b->len = 0;
        b->count = 0;
        b->attempts = 0;
        b->split = b->dead = 0;
        sbuf_free(&b->sub);
        ingest_forwarder_unshare(b);
        if (b->cap > (2u << 20)) { /* an unusually big batch: do not keep its buffer */
            free(b->body);
            b->body = NULL;
            b->cap = 0;
        }
        f->head = (f->head + 1) % f->o.max_inflight;
        f->count--;
        acked = 1;
    }
    if (acked && spool_ack(f->sp, upto) != 0) log_error("forwarder: cannot move the spool's ack cursor");
}

/* 200 body: {"success":true,"processed":N,"rejected":[{"index":i,"error":...}],...}. */
static void ingest_forwarder_count_rejected(ingest_forwarder *f, ingest_forwarder_batch *b, const httpc_response *res) {
    json_t *j = json_loadb(res->body, res->body_len, 0, NULL);
    json_t *rej = j ? json_object_get(j, "rejected") : NULL;
    size_t n = json_is_array(rej) ? json_array_size(rej) : 0;
    if (n > 0) {
        f->st.events_rejected += n;
        metrics_add(f->m_rejected, (double)n);
        json_t *first = json_array_get(rej, 0);
        const char *err = json_string_value(json_object_get(first, "error"));
        log_warn("forwarder: downstream rejected %zu of %zu event(s) (dead-lettered there), first: %s", n, b->count,
                 err ? err : "?");
    }
    json_decref(j);
}

static void ingest_forwarder_note_failure(ingest_forwarder *f, ingest_forwarder_batch *b, const httpc_response *res) {
    f->failures++;
    f->st.batches_failed++;
    metrics_add(f->m_batches_failed, 1);
    f->st.last_status = res->status;
    if (!f->st.failing_since_us) f->st.failing_since_us = service_mono_us();
    if (res->status == 0)
        snprintf(f->st.last_error, sizeof f->st.last_error, "%s", res->error ? res->error : "connection error");
    else
        snprintf(f->st.last_error, sizeof f->st.last_error, "HTTP %ld: %.120s", res->status, res->body);
    long delay = ingest_forwarder_backoff_ms(f);
    /* The first failure of a streak and every 10th after it are logged. */
    if (f->failures == 1 || f->failures % 10 == 0)
        log_warn("forwarder: batch of %zu event(s) (seq %" PRIu64 "..) failed (%s), attempt %d; retrying in %ld ms",
                 b->count, b->first_seq, f->st.last_error, b->attempts, delay);
    b->state = FWD_RETRY_WAIT;
    f->retrying++;
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_add(b->retry_ev, &tv);
}

/* Last resort: downstream refused even the dead letter of one event (it is
 * broken or older than this contract). The event goes to a local file next
 * to the spool, so it is still not lost, and the line moves on. */
static void ingest_forwarder_quarantine(ingest_forwarder *f, ingest_forwarder_batch *b, const httpc_response *res) {
    f->st.events_quarantined++;
    log_error("forwarder: downstream refused the dead letter of record %" PRIu64 " (HTTP %ld: %.160s); kept in %s",
              b->first_seq + b->lo, res->status, res->body, f->o.quarantine_path ? f->o.quarantine_path : "the log");
    if (!f->o.quarantine_path) {
        log_error("forwarder: dead letter: %.*s", (int)b->sub.len, b->sub.data);
        return;
    }
    int fd = open(f->o.quarantine_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_error("forwarder: cannot open %s; dead letter: %.*s", f->o.quarantine_path, (int)b->sub.len, b->sub.data);
        return;
    }
    /* the sub body is "[dead letter]": one JSON line without the brackets */
    ssize_t w = write(fd, b->sub.data + 1, b->sub.len - 2);
    w += write(fd, "\n", 1);
    if (w != (ssize_t)b->sub.len - 1 || fdatasync(fd) != 0)
        log_error("forwarder: cannot write %s; dead letter: %.*s", f->o.quarantine_path, (int)b->sub.len, b->sub.data);
    close(fd);
}

/* The range in flight got through: next range, or the batch is done. */
static void ingest_forwarder_range_done(ingest_forwarder *f, ingest_forwarder_batch *b) {
    if (!b->split || (b->hi >= b->count && b->nends == 0)) {
        b->state = FWD_DONE;
        ingest_forwarder_ack_head(f);
        return;
    }
    b->lo = b->hi;
    b->hi = b->ends[--b->nends];
    b->dead = 0;
    b->attempts = 0;
    if (ingest_forwarder_build_sub(b) != 0) {
        httpc_response oom = {.status = 0, .body = "", .error = "out of memory building a batch"};
        ingest_forwarder_note_failure(f, b, &oom);
        return;
    }
    ingest_forwarder_send(b);
}

/* Downstream refuses the range in flight for good (or cut a large body
 * DELIVERY_SUSPECT_TRIES times while healthy). */
static void ingest_forwarder_refused(ingest_forwarder *f, ingest_forwarder_batch *b, const httpc_response *res) {
    if (!b->split) {
        b->split = 1;
        b->lo = 0;
        b->hi = b->count;
        b->nends = 0;
        f->st.batches_split++;
        metrics_add(f->m_split, 1);
    }
    size_t n = b->hi - b->lo;
    char answer[200];
    if (res->status) snprintf(answer, sizeof answer, "HTTP %ld: %.160s", res->status, res->body);
    else snprintf(answer, sizeof answer, "%s after a %zu-byte request", res->error ? res->error : "no answer", b->sent_len);
    if (b->dead) { /* even the dead letter: keep it locally, move on */
        ingest_forwarder_quarantine(f, b, res);
        ingest_forwarder_range_done(f, b);
        return;
    }
    if (n > 1 && b->nends < FWD_SPLIT_DEPTH) {
        log_warn("forwarder: downstream refused %zu event(s) (seq %" PRIu64 "..): %s; splitting", n,
                 b->first_seq + b->lo, answer);
        b->ends[b->nends++] = b->hi;
        b->hi = b->lo + n / 2;
    } else {
        snprintf(b->reason, sizeof b->reason, "refused by %s: %s", f->url, answer);
        log_error("forwarder: record %" PRIu64 " %s; dead-lettered", b->first_seq + b->lo, b->reason);
        b->dead = 1;
        f->st.events_dead_lettered++;
        metrics_add(f->m_dead, 1);
    }
    b->attempts = 0;
    if (ingest_forwarder_build_sub(b) != 0) {
        httpc_response oom = {.status = 0, .body = "", .error = "out of memory building a batch"};
        ingest_forwarder_note_failure(f, b, &oom);
        return;
    }
    ingest_forwarder_send(b);
}

/* ---- a cut connection (lib/delivery's cut rule) ---------------------------- */

/* The probe of enrichment's /health after a cut answered: count the strike
 * (only when healthy) and act on delivery_cut's verdict. */
static void ingest_forwarder_probe_cb(const httpc_response *res, void *arg) {
    ingest_forwarder_batch *b = arg;
    ingest_forwarder *f = b->f;
    f->st.inflight--;
    if (f->stopped) return;
    int healthy = res->status == 200;
    delivery_outcome d = delivery_cut(&f->cuts, b->sent_digest, b->sent_len, healthy);
    log_warn("forwarder: downstream cut a %zu-byte request (%s; its /health: %s): %s", b->sent_len, b->cut_error,
             healthy ? "healthy" : (res->status ? "unhealthy" : "unreachable"),
             d == DELIVERY_REFUSED ? "refused after repeated cuts" : "retried");
    httpc_response cut = {.status = 0, .body = "", .error = b->cut_error};
    if (d == DELIVERY_REFUSED) {
        ingest_forwarder_refused(f, b, &cut);
    } else {
        ingest_forwarder_note_failure(f, b, &cut);
    }
    ingest_forwarder_pump(f);
}

/* The connection closed after a body >= DELIVERY_BIG_BODY without an answer:
 * probe enrichment now; the batch holds the line meanwhile. */
static void ingest_forwarder_cut(ingest_forwarder *f, ingest_forwarder_batch *b, const httpc_response *res) {
    f->st.cuts++;
    metrics_add(f->m_cuts, 1);
    snprintf(b->cut_error, sizeof b->cut_error, "%s", res->error ? res->error : "connection closed");
    b->state = FWD_RETRY_WAIT; /* holds the line (ingest_forwarder_pump) until the probe answered */
    f->st.inflight++;
    httpc_request probe = {.method = "GET", .url = f->health_url, .timeout_ms = f->o.timeout_ms < 5000 ? f->o.timeout_ms : 5000};
    if (!f->health_url || httpc_send(f->hc, &probe, ingest_forwarder_probe_cb, b) != 0) {
        /* no probe possible: the strike counts as healthy only without a URL to ask */
        httpc_response none = {.status = f->health_url ? 0 : 200, .body = "", .error = "no probe"};
        ingest_forwarder_probe_cb(&none, b);
    }
}

static void ingest_forwarder_response_cb(const httpc_response *res, void *arg) {
    ingest_forwarder_batch *b = arg;
    ingest_forwarder *f = b->f;
    f->st.inflight--;
    if (f->stopped) return;
    metrics_observe(f->m_latency, res->total_s);
    delivery_outcome o = delivery_classify(res->status, res->error, b->sent_len);
    if (o == DELIVERY_SUSPECT) { /* the probe's answer decides (ingest_forwarder_probe_cb) */
        ingest_forwarder_cut(f, b, res);
        ingest_forwarder_pump(f);
        return;
    }
    if (b->sent_digest && o != DELIVERY_RETRY) delivery_cut_clear(&f->cuts, b->sent_digest, b->sent_len);
    if (o == DELIVERY_STORED) {
        if (f->failures) log_info("forwarder: downstream answers again (after %d failed attempt(s))", f->failures);
        f->failures = 0;
        f->st.failing_since_us = 0;
        f->st.last_ok_us = service_now_us();
        f->st.last_status = 200;
        f->st.batches_ok++;
        metrics_add(f->m_batches_ok, 1);
        ingest_forwarder_count_rejected(f, b, res);
        ingest_forwarder_range_done(f, b);
    } else if (o == DELIVERY_RETRY) {
        ingest_forwarder_note_failure(f, b, res);
    } else {
        ingest_forwarder_refused(f, b, res);
    }
    ingest_forwarder_pump(f);
}

/* ---- the pump ------------------------------------------------------------ */

static void ingest_forwarder_linger_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    ingest_forwarder *f = arg;
    f->linger_armed = 0;
    f->linger_expired = 1;
    ingest_forwarder_pump(f);
}

static int ingest_forwarder_inflight_slots(const ingest_forwarder *f) {
    return f->count < f->o.max_inflight;
}

static void ingest_forwarder_read_retry_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    ingest_forwarder_pump(arg);
}

/* The spool could not be read (or a batch not built): nothing was skipped,
 * try again with backoff (no new record may come to kick us). */
static void ingest_forwarder_read_failed(ingest_forwarder *f) {
    f->read_failures++;
    long d = delivery_backoff_ms(f->read_failures, f->o.retry_min_ms, f->o.retry_max_ms);
    struct timeval tv = {d / 1000, (d % 1000) * 1000};
    evtimer_add(f->read_retry_ev, &tv);
}

/* Starts as many batches as allowed: full ones at once, a partial one when
 * nothing is in flight or the linger time since it became pending has passed. */
/* Bytes of the batches in flight (each request body is held until acked). */
static size_t ingest_forwarder_inflight_bytes(const ingest_forwarder *f) {
    size_t n = 0;
    for (int i = 0; i < f->count; i++) n += f->ring[(f->head + i) % f->o.max_inflight].len;
    return n;
}

/* How many bytes the next batch may read: batch_max_bytes, or less when
 * others are in flight and FORWARD_INFLIGHT_MAX_BYTES is near; 0 = wait. The
 * first record is always taken whatever its size (spool_read), so one batch
 * alone can always go, and a record too large for any batch is still judged
 * against batch_max_bytes (ingest_forwarder_record_cb), never against this room. */
static size_t ingest_forwarder_read_room(const ingest_forwarder *f) {
    size_t room = f->o.batch_max_bytes, held;
    if (!f->o.inflight_max_bytes || f->count == 0) return room;
    held = ingest_forwarder_inflight_bytes(f);
    if (held >= f->o.inflight_max_bytes) return 0;
    return f->o.inflight_max_bytes - held < room ? f->o.inflight_max_bytes - held : room;
}

static void ingest_forwarder_pump(ingest_forwarder *f) {
    if (f->stopped) return;
    /* A batch being retried holds the line: no new requests until it got through. */
    f->retrying = 0;
    for (int i = 0; i < f->count; i++) {
        const ingest_forwarder_batch *b = &f->ring[(f->head + i) % f->o.max_inflight];
        if (b->state == FWD_RETRY_WAIT || (b->state == FWD_SENDING && (b->attempts > 1 || b->split))) f->retrying++;
    }
    f->st.retrying = f->retrying > 0;
    while (!f->retrying && ingest_forwarder_inflight_slots(f)) {
        uint64_t readable = spool_readable(f->sp);
        if (readable == 0) break;
        /* Linger only while a request is in flight (like Nagle): an idle
         * pipeline sends at once, so a quiet home sees no added latency,
         * and a busy one still gets full batches. */
        if (readable < f->o.batch_max && !f->linger_expired && f->count > 0) {
            if (!f->linger_armed) {
                struct timeval tv = {f->o.linger_ms / 1000, (f->o.linger_ms % 1000) * 1000};
                evtimer_add(f->linger_ev, &tv);
                f->linger_armed = 1;
            }
            break;
        }
        size_t room = ingest_forwarder_read_room(f);
        if (room == 0) break; /* the bytes in flight are at FORWARD_INFLIGHT_MAX_BYTES: an ack pumps again */
        int idx = (f->head + f->count) % f->o.max_inflight;
        ingest_forwarder_batch *b = &f->ring[idx];
        b->len = 0;
        b->count = 0;
        b->attempts = 0;
        b->split = b->dead = 0;
        spool_stats before;
        spool_get_stats(f->sp, &before); /* where this read starts, to put the cursor back */
        uint64_t from = before.read_seq;
        ingest_forwarder_fill fl = {b, f->o.batch_max_bytes, &f->st.events_dead_lettered, 0};
        size_t n = 0;
        int rc = spool_read(f->sp, f->o.batch_max, room, ingest_forwarder_record_cb, &fl, &n);
        if (n > 0 && (fl.oom || ingest_forwarder_body_add(b, "]", 1) != 0)) {
            /* The records were read: put the cursor back so none is skipped. */
            log_error("forwarder: out of memory building a batch; reading again later");
            spool_rewind(f->sp, from);
            rc = -1;
            n = 0;
        }
        if (rc != 0 || n == 0) {
            if (rc != 0) ingest_forwarder_read_failed(f);
            break;
        }
        f->read_failures = 0;
        f->count++;
        metrics_observe(f->m_batch_size, (double)n);
        ingest_forwarder_send(b);
        if (f->stopped) return;
    }
    if (spool_readable(f->sp) == 0 || f->retrying) {
        /* nothing pending: the next record starts a new linger period */
        f->linger_expired = 0;
        if (f->linger_armed) {
            evtimer_del(f->linger_ev);
            f->linger_armed = 0;
        }
    }
}

void ingest_forwarder_kick(ingest_forwarder *f) { ingest_forwarder_pump(f); }

/* ---- life cycle ---------------------------------------------------------- */

int ingest_forwarder_new(struct event_base *base, httpc *hc, spool *sp, const ingest_forwarder_opts *o, ingest_forwarder **out) {
    ingest_forwarder *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->base = base;
    f->hc = hc;
    f->sp = sp;
    f->o = *o;
    if (f->o.batch_max < 1) f->o.batch_max = 1;
    if (f->o.batch_max_bytes < 1) f->o.batch_max_bytes = 8u << 20;
    if (f->o.max_inflight < 1) f->o.max_inflight = 1;
    if (f->o.max_inflight > INGEST_FORWARDER_MAX_INFLIGHT) f->o.max_inflight = INGEST_FORWARDER_MAX_INFLIGHT;
    if (f->o.retry_min_ms < 1) f->o.retry_min_ms = 100;
    if (f->o.retry_max_ms < f->o.retry_min_ms) f->o.retry_max_ms = f->o.retry_min_ms;
    f->o.url = NULL;
    f->url = strdup(o->url);
    f->o.quarantine_path = NULL;
    f->quarantine = o->quarantine_path ? strdup(o->quarantine_path) : NULL;
    f->o.quarantine_path = f->quarantine;
    /* <base>/api/v1/events -> <base>/health (main.c builds the URL that way) */
    static const char ev_path[] = "/api/v1/events";
    size_t ul = strlen(o->url), pl = sizeof ev_path - 1;
    if (ul > pl && strcmp(o->url + ul - pl, ev_path) == 0 && (f->health_url = malloc(ul - pl + 8)))
        snprintf(f->health_url, ul - pl + 8, "%.*s/health", (int)(ul - pl), o->url);
    f->linger_ev = evtimer_new(base, ingest_forwarder_linger_cb, f);
    f->read_retry_ev = evtimer_new(base, ingest_forwarder_read_retry_cb, f);
    if (!f->url || !f->linger_ev || !f->read_retry_ev) {
        ingest_forwarder_free(f);
        return -1;
    }
    for (int i = 0; i < INGEST_FORWARDER_MAX_INFLIGHT; i++) {
        f->ring[i].f = f;
        f->ring[i].retry_ev = evtimer_new(base, ingest_forwarder_retry_cb, &f->ring[i]);
        if (!f->ring[i].retry_ev) {
            ingest_forwarder_free(f);
            return -1;
        }
    }
    f->m_events = metrics_counter("homeiq_ingestion_events_forwarded_total",
                                  "Events acknowledged by downstream (spool trimmed past them)", NULL);
    f->m_rejected = metrics_counter("homeiq_ingestion_events_rejected_total",
                                    "Events downstream rejected (dead-lettered there, acked here)", NULL);
    f->m_dead = metrics_counter("homeiq_ingestion_events_dead_lettered_total",
                                "Events downstream refused for good, sent on as dead letters", NULL);
    f->m_split = metrics_counter("homeiq_ingestion_forward_splits_total",
                                 "Batches split to isolate events downstream refused", NULL);
    f->m_cuts = metrics_counter("homeiq_ingestion_forward_cuts_total",
                                "Forward requests of >= 1 MiB whose connection closed without an answer", NULL);
    f->m_batches_ok = metrics_counter("homeiq_ingestion_forward_batches_total", "Forward requests by outcome",
                                      "result=\"ok\"");
    f->m_batches_failed = metrics_counter("homeiq_ingestion_forward_batches_total", "Forward requests by outcome",
                                          "result=\"failed\"");
    f->m_latency = metrics_histogram("homeiq_ingestion_forward_seconds", "Forward request duration", NULL,
                                     metrics_latency_bounds, metrics_latency_nbounds);
    static const double size_bounds[] = {1, 10, 50, 100, 250, 500, 1000, 5000};
    f->m_batch_size = metrics_histogram("homeiq_ingestion_forward_batch_events", "Events per forward request", NULL,
                                        size_bounds, sizeof size_bounds / sizeof size_bounds[0]);
    *out = f;
    return 0;
}

void ingest_forwarder_get_stats(const ingest_forwarder *f, ingest_forwarder_stats *st) { *st = f->st; }

void ingest_forwarder_stop(ingest_forwarder *f) {
    if (!f) return;
    f->stopped = 1;
    if (f->linger_ev) evtimer_del(f->linger_ev);
    if (f->read_retry_ev) evtimer_del(f->read_retry_ev);
    for (int i = 0; i < INGEST_FORWARDER_MAX_INFLIGHT; i++)
        if (f->ring[i].retry_ev) evtimer_del(f->ring[i].retry_ev);
}

void ingest_forwarder_free(ingest_forwarder *f) {
    if (!f) return;
    for (int i = 0; i < INGEST_FORWARDER_MAX_INFLIGHT; i++) {
        if (f->ring[i].retry_ev) event_free(f->ring[i].retry_ev);
        ingest_forwarder_unshare(&f->ring[i]);
        free(f->ring[i].body);
        free(f->ring[i].roff);
        sbuf_free(&f->ring[i].sub);
    }
    if (f->linger_ev) event_free(f->linger_ev);
    if (f->read_retry_ev) event_free(f->read_retry_ev);
    free(f->quarantine);
    free(f->health_url);
    free(f->url);
    free(f);
}
