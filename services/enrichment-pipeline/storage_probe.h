/* storage_probe.h -- is data-storage reachable? Probed in the background.
 *
 * Why: enrichment is stateless and healthy exactly when it can store, so its
 * GET /health reflects storage's: 503 {"reason":"storage_unreachable"} when
 * storage's /health does not answer 200. A timer probes every few seconds;
 * forward results update the state at once in between (a refused connection
 * on a real batch need not wait for the next probe). */
#ifndef HOMEIQ_STORAGE_PROBE_H
#define HOMEIQ_STORAGE_PROBE_H

#include "httpc.h"

#include <event2/event.h>

typedef struct storage_probe storage_probe;

/* Starts probing <storage_url>/health now and every interval_ms. */
int storage_probe_new(struct event_base *base, httpc *c, const char *storage_url, long interval_ms, long timeout_ms,
               storage_probe **out);
/* 1 when storage answered 200 on the last probe or forward, else 0. */
int storage_probe_ok(const storage_probe *h);
/* Why storage is considered down (empty when ok). */
const char *storage_probe_error(const storage_probe *h);
/* A forward result: reachable (status != 0 and < 500) or not, with why. */
void storage_probe_note(storage_probe *h, int ok, const char *why);
/* Stops the timer and ignores in-flight probe answers (call before httpc_free). */
void storage_probe_stop(storage_probe *h);
void storage_probe_free(storage_probe *h);

#endif
