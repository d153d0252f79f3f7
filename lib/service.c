/* service.c -- see service.h. */
#include "service.h"
#include "auth.h"
#include "log.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

struct service {
    struct event_base *base;
    struct event *sigint, *sigterm;
    void (*on_stop)(void *);
    void *on_stop_arg;
    int stopping;
    struct event *idle;
    struct timeval idle_tv;
    void (*on_idle)(void *);
    void *on_idle_arg;
};

static void service_signal_cb(evutil_socket_t sig, short what, void *arg) {
    (void)what;
    service *s = arg;
    log_info("signal %d: shutting down", (int)sig);
    service_stop(s);
}

/* Batch-sized buffers (request bodies, enriched records, storage bodies: 1 to
 * 8 MB each) come from the heap and are reused, instead of being mmap'd and
 * unmapped again per request as glibc does above its (adaptive, 128 KiB at
 * first) threshold: every fresh page is a page fault, and on this VM those
 * were a third of enrichment's CPU (bench/enrichment.sh: 23.7 -> 10.0 us per
 * event, issue 15). Peak RSS is the memory in use either way; a service that
 * calls service_on_idle() gives the free part back after a burst. */
static void service_malloc_tune(void) {
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

int service_new(const char *name, service **out) {
    signal(SIGPIPE, SIG_IGN);
    service_malloc_tune();
    if (log_init(name) != 0) return -1;
    service *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->base = event_base_new();
    if (!s->base) {
        free(s);
        return -1;
    }
    s->sigint = evsignal_new(s->base, SIGINT, service_signal_cb, s);
    s->sigterm = evsignal_new(s->base, SIGTERM, service_signal_cb, s);
    evsignal_add(s->sigint, NULL);
    evsignal_add(s->sigterm, NULL);
    *out = s;
    return 0;
}

struct event_base *service_base(service *s) { return s->base; }

static void service_idle_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    service *s = arg;
    if (s->on_idle) s->on_idle(s->on_idle_arg);
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

int service_on_idle(service *s, long idle_ms, void (*cb)(void *arg), void *arg) {
    if (!s->idle) s->idle = evtimer_new(s->base, service_idle_cb, s);
    if (!s->idle) return -1;
    s->idle_tv.tv_sec = idle_ms / 1000;
    s->idle_tv.tv_usec = (idle_ms % 1000) * 1000;
    s->on_idle = cb;
    s->on_idle_arg = arg;
    return 0;
}

void service_note_busy(service *s) {
    if (s && s->idle) evtimer_add(s->idle, &s->idle_tv);
}

void service_on_stop(service *s, void (*cb)(void *arg), void *arg) {
    s->on_stop = cb;
    s->on_stop_arg = arg;
}

int service_run(service *s) {
    event_base_dispatch(s->base);
    return 0;
}

void service_stop(service *s) {
    if (s->stopping) return;
    s->stopping = 1;
    if (s->on_stop) s->on_stop(s->on_stop_arg);
    event_base_loopexit(s->base, NULL);
}

void service_free(service *s) {
    if (!s) return;
    event_free(s->sigint);
    event_free(s->sigterm);
    if (s->idle) event_free(s->idle);
    event_base_free(s->base);
    free(s);
    auth_shutdown();
    log_shutdown();
}

long long service_now_us(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000000 + tv.tv_usec;
}

long long service_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int service_mkdirs(const char *dir, unsigned mode) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return errno = ENAMETOOLONG, -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, (mode_t)mode) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(path, (mode_t)mode) != 0 && errno != EEXIST) return -1;
    return 0;
}
