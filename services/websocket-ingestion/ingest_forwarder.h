/* ingest_forwarder.h -- sends spooled events downstream (enrichment-pipeline) and
 * trims the spool only after downstream acknowledged them.
 *
 * Why a separate stage: receiving from HA must never wait for downstream, and
 * downstream being slow, down or restarting must never lose an event. The
 * forwarder reads the spool in order, in batches (FORWARD_BATCH_MAX events or
 * FORWARD_LINGER_MS after the first unsent one), keeps a window of at most
 * FORWARD_MAX_INFLIGHT batches sent and not yet acknowledged (so memory and
 * re-sends after a crash stay bounded), and acknowledges batches to the
 * spool strictly in order: the spool's ack cursor never passes a batch that
 * has not been answered 200 (a 200 with "rejected" entries is an ack too:
 * downstream dead-lettered those). What other answers mean is lib/delivery's
 * contract: RETRY (503, connection errors, timeouts) re-sends the same events
 * with exponential backoff; REFUSED (4xx, e.g. 400, 413, 422) splits the batch
 * until the refused events are single and sends each as a dead letter (reason
 * + raw bytes), so no event can hold the line for good. A connection cut
 * after a body >= 1 MiB follows lib/delivery's cut rule (delivery_cut: retried
 * until the third cut of the same body while enrichment's /health said
 * healthy, then refused like a 4xx). While a batch is
 * retried or split, no new batch starts. A batch is at most
 * FORWARD_BATCH_MAX_BYTES of text including its last record; a record that
 * cannot fit alone is dead-lettered at once.
 */
#ifndef HOMEIQ_INGEST_FORWARDER_H
#define HOMEIQ_INGEST_FORWARDER_H

#include <stddef.h>
#include <stdint.h>

#include "httpc.h"
#include "spool.h"

struct event_base;

typedef struct forwarder forwarder;

#define FORWARDER_MAX_INFLIGHT 64

typedef struct forwarder_opts {
    const char *url;            /* full URL of POST .../api/v1/events */
    size_t batch_max;           /* events per request */
    size_t batch_max_bytes;     /* about this many payload bytes per request */
    long linger_ms;             /* wait for a full batch at most this long */
    int max_inflight;           /* 1..FORWARDER_MAX_INFLIGHT */
    long timeout_ms;            /* per request */
    long retry_min_ms, retry_max_ms;
    const char *quarantine_path; /* where a dead letter downstream refused too is kept (copied; may be NULL) */
    const char *home_header;    /* "X-HomeIQ-Home: <id>" sent with every request, or NULL (borrowed) */
} forwarder_opts;

typedef struct forwarder_stats {
    uint64_t events_acked;      /* events downstream answered 200 for (incl. rejected) */
    uint64_t events_rejected;   /* of those, rejected by downstream validation */
    uint64_t events_dead_lettered; /* refused for good (or too large): sent on as dead letters */
    uint64_t events_quarantined;   /* even the dead letter was refused: kept in quarantine_path */
    uint64_t batches_split;        /* batches split to isolate refused events */
    uint64_t cuts;                 /* requests >= 1 MiB whose connection closed without an answer */
    uint64_t batches_ok, batches_failed;
    int inflight;
    int retrying;               /* a batch waits for a retry */
    long long last_ok_us;       /* wall clock of the last 200, 0 = never */
    long long failing_since_us; /* monotonic start of the current failure streak, 0 = none */
    long last_status;           /* last HTTP status (0 = connection error) */
    char last_error[160];       /* short description of the last failure */
} forwarder_stats;

/* The forwarder does not own `hc` or `sp`. It installs itself as the spool's
 * written-listener only if the caller forwards forwarder_kick from its own. */
int forwarder_new(struct event_base *base, httpc *hc, spool *sp, const forwarder_opts *o, forwarder **out);

/* New records reached the spool: send what can be sent. */
void forwarder_kick(forwarder *f);

void forwarder_get_stats(const forwarder *f, forwarder_stats *st);

/* Stops sending; responses still arriving (httpc_free cancels them) are ignored.
 * Call before httpc_free, then forwarder_free. */
void forwarder_stop(forwarder *f);
void forwarder_free(forwarder *f);

#endif
