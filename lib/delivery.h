/* delivery.h -- the delivery contract of one hop (ingestion -> enrichment,
 * enrichment -> storage): what an answer means, what to do next, how long to
 * wait, and how an event that a hop refuses for good leaves the line.
 *
 * Why one place: the promise is "every event is stored exactly once or
 * dead-lettered with its reason; none can block the ones behind it". When each
 * client decided on its own which answers to retry, ingestion retried every
 * non-200 forever and one poisoned event stopped the pipeline for good. Like
 * nginx's proxy_next_upstream rules, the mapping of HTTP statuses and
 * transport errors onto outcomes is written once, here (delivery_classify),
 * and both clients use it; servers answer in the same vocabulary
 * (delivery_answer_status).
 *
 * Outcomes:
 *   STORED   the hop made the whole batch durable (200). Move on.
 *   RETRY    nothing was (necessarily) kept: the hop is down, overloaded, or
 *            answered something it should not have. Send the same events
 *            again after delivery_backoff_ms; identities make it harmless.
 *   REFUSED  the hop will never take this batch as it is (400, 413, 422, any
 *            other 4xx but 408/429). The sender SPLITS it (halves, in order)
 *            until the refused events are isolated; a single refused event
 *            is replaced by a dead letter (delivery_dead_letter) that carries
 *            the reason and the raw bytes escaped as one JSON string, so it
 *            cannot be refused for its content.
 *   SUSPECT  the connection closed after a large body was sent without an
 *            answer. Most often the peer crashed or restarted with the body
 *            in flight; sometimes a limit (a proxy) cuts that body every
 *            time, or the body itself crashes the peer. So a cut is RETRIED
 *            first: a sender counts cuts of the exact same body
 *            (delivery_cut, "strikes") and only the DELIVERY_SUSPECT_TRIES-th
 *            cut, each while the peer was otherwise healthy (its last probe
 *            or answer was good), refuses the body: split like REFUSED, a
 *            single event dead-lettered. A real refusal (413, any other 4xx
 *            but 408/429) refuses at once.
 *
 * Ownership: everything here is stateless; callers own their buffers. */
#ifndef HOMEIQ_DELIVERY_H
#define HOMEIQ_DELIVERY_H

#include <stddef.h>
#include <stdint.h>

#include "sbuf.h"

typedef enum {
    DELIVERY_STORED = 0,
    DELIVERY_RETRY,
    DELIVERY_REFUSED,
    DELIVERY_SUSPECT,
} delivery_outcome;

/* A body at least this large whose connection closed without an answer is
 * SUSPECT rather than RETRY. */
#define DELIVERY_BIG_BODY (1u << 20)
/* Cuts of one body (while the peer was healthy) before it counts as refused. */
#define DELIVERY_SUSPECT_TRIES 3
/* How many distinct cut bodies a sender remembers (the oldest is forgotten). */
#define DELIVERY_CUT_SLOTS 32
/* How many raw bytes of a refused event a dead letter keeps (InfluxDB string
 * fields are limited to 64 KiB; JSON escaping can grow text up to 6x). */
#define DELIVERY_DEAD_RAW_MAX (8u * 1024)
/* The event_type that marks a dead letter travelling in an event batch. */
#define DELIVERY_DEAD_TYPE "homeiq_dead_letter"
/* The status a server answers for a batch it refuses for good (the events
 * themselves, not the server's state, are the problem). */
#define DELIVERY_REFUSED_STATUS 422

/* status: the HTTP status, or 0 when there was no answer; transport_error:
 * why there was none (httpc's text, may be NULL); body_len: the request body
 * size. */
delivery_outcome delivery_classify(long status, const char *transport_error, size_t body_len);

/* The strikes of bodies that were cut (SUSPECT), kept by a sender that
 * cannot count per batch itself (enrichment answers its caller and forgets
 * the batch; the caller sends the same bytes again). Zero-initialised;
 * owned by the sender, no allocation. */
typedef struct delivery_cut_slot {
    uint64_t digest;            /* delivery_body_digest of the body */
    size_t len;                 /* its length (0: slot free) */
    int strikes;
} delivery_cut_slot;
typedef struct delivery_cuts {
    delivery_cut_slot slot[DELIVERY_CUT_SLOTS];
    unsigned next;              /* slot to reuse when none is free */
} delivery_cuts;

/* A 64-bit digest of a body (FNV-1a over words), to recognise the same bytes again. */
uint64_t delivery_body_digest(const void *body, size_t len);

/* A SUSPECT answer for this body: counts a strike when peer_healthy, and
 * answers RETRY until the DELIVERY_SUSPECT_TRIES-th strike, then REFUSED
 * (and forgets the body). */
delivery_outcome delivery_cut(delivery_cuts *t, uint64_t digest, size_t len, int peer_healthy);

/* The body was stored or refused: forget its strikes. */
void delivery_cut_clear(delivery_cuts *t, uint64_t digest, size_t len);

/* What a server answers for an outcome of its own downstream hop:
 * STORED 200, RETRY 503, REFUSED/SUSPECT DELIVERY_REFUSED_STATUS. */
int delivery_answer_status(delivery_outcome o);

const char *delivery_outcome_name(delivery_outcome o);

/* Exponential backoff: min_ms doubled per consecutive failure (failures >= 1)
 * up to max_ms, +-20 % jitter so that several senders do not retry in step. */
long delivery_backoff_ms(int failures, long min_ms, long max_ms);

/* Appends a dead-letter event to out:
 *   {"event_type":"homeiq_dead_letter","source":S,"error":R,
 *    "event_bytes":N,"event_truncated":B,"event":"<raw as a JSON string>"}
 * The raw bytes are kept up to DELIVERY_DEAD_RAW_MAX (cut at a UTF-8
 * boundary); bytes that are not valid UTF-8 (and NUL) become U+FFFD, so the
 * text is valid JSON every reader accepts, whatever the raw bytes were. */
void delivery_dead_letter(sbuf *out, const char *source, const char *reason, const char *raw, size_t len);

#endif
