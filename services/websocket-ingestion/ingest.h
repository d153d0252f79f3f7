/* ingest.h -- the websocket-ingestion process: its configuration and the
 * stages it wires together (HA client -> spool -> forwarder, plus the HTTP
 * API). main.c owns the struct and every stage in it; ingest_api.c serves
 * /health and /api/v1/events/forward from it.
 *
 * Why one context struct: the stages know nothing of each other (narrow
 * interfaces, Fluent Bit style); only this struct and the two callbacks in
 * main.c connect them, so the data flow is visible in one place. */
#ifndef HOMEIQ_INGEST_H
#define HOMEIQ_INGEST_H

#include <stdint.h>

#include "backfill.h"
#include "event.h"
#include "ingest_forwarder.h"
#include "ha_client.h"
#include "httpc.h"
#include "httpd.h"
#include "hwm.h"
#include "metrics.h"
#include "registry.h"
#include "service.h"
#include "spool.h"

typedef struct ingest_pending ingest_pending; /* a /forward request waiting for fsync */

typedef struct ingest {
    service *svc;
    struct event_base *base;
    spool *sp;
    httpc *hc;
    ingest_forwarder *fw;
    ha_client *ha;              /* NULL in forward-only mode (HOME_ASSISTANT_URL=none) */
    hwm *hw;                    /* high-water mark of this HA instance (NULL without HA) */
    backfill *bf;               /* history backfill after each subscribe (NULL without HA) */
    registry *reg;              /* area/device/label context on each event (NULL: REGISTRY=0 or no HA) */
    httpd *hd;

    char ha_url[1024];          /* ws(s) URL, for /health (no secrets in it) */
    char downstream_url[1024];
    char home_header[EVENT_HOME_MAX + 32]; /* "X-HomeIQ-Home: <HOMEIQ_HOME_ID>" */
    long long unhealthy_after_us; /* DOWNSTREAM_UNHEALTHY_S */
    long long started_us;

    uint64_t events_received;   /* from HA */
    uint64_t events_accepted;   /* via POST /api/v1/events/forward */
    uint64_t events_dropped;    /* refused: spool full (or record too large) */
    uint64_t events_refused;    /* from HA, refused by jscan_strict: spooled as dead letters */
    char quarantine_path[4200]; /* SPOOL_DIR/dead-letters.jsonl: dead letters downstream refused too */
    long long last_event_us;

    ingest_pending *pending_head, *pending_tail;
    int answered_at_stop;       /* /forward answers given while stopping: flush them before exit */

    metric *m_received, *m_accepted, *m_dropped_full, *m_dropped_big;
} ingest;

/* Routes /health and /api/v1/events/forward on in->hd. 0 or -1. */
int ingest_api_init(ingest *in);
/* The spool made records durable up to `durable_seq`: answer waiting requests. */
void ingest_api_durable(ingest *in, uint64_t durable_seq);
/* Answers every waiting request (shutdown) and frees them. */
void ingest_api_shutdown(ingest *in);
/* Registers the gauges read from the stages at scrape time. */
void ingest_api_metrics(ingest *in);

#endif
