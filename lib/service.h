/* service.h -- the process scaffolding every HomeIQ binary shares: one libevent
 * loop, SIGPIPE ignored, SIGINT/SIGTERM turned into a clean loop exit so that
 * buffers are flushed and leak checkers see every allocation freed. */
#ifndef HOMEIQ_SERVICE_H
#define HOMEIQ_SERVICE_H

#include <event2/event.h>

typedef struct service service;

/* Creates the loop and installs the signal handlers. 0 on success. */
int service_new(const char *name, service **out);
struct event_base *service_base(service *s);

/* Called once on SIGINT/SIGTERM, before the loop is asked to exit; lets the
 * program stop accepting work and flush. Optional. */
void service_on_stop(service *s, void (*cb)(void *arg), void *arg);

/* Runs the loop until a signal or service_stop(). Returns 0. */
int service_run(service *s);
void service_stop(service *s);
void service_free(service *s);

/* Gives memory back after a burst: once service_note_busy() has not been
 * called for idle_ms, runs cb (optional: drop caches) and returns the heap's
 * free pages to the kernel (malloc_trim), so RSS falls back towards its idle
 * size instead of staying at the burst's high-water mark. 0/-1. */
int service_on_idle(service *s, long idle_ms, void (*cb)(void *arg), void *arg);
/* Marks work done now (cheap: re-arms one timer). No-op without service_on_idle(). */
void service_note_busy(service *s);

/* Monotonic and wall clocks in microseconds. */
long long service_now_us(void);
long long service_mono_us(void);

/* Creates `dir` and its missing parents with `mode` (existing ones are kept
 * as they are). 0, or -1 with errno set. */
int service_mkdirs(const char *dir, unsigned mode);

#endif
