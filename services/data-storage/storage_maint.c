/* storage_maint.c -- see storage_maint.h. */
#include "storage_maint.h"
#include "config.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

struct storage_maint {
    service *svc;
    store *st;
    struct event *timer;
    long long interval_ms, step_ms, min_free;
    char dir[4096];     /* "" when the backend keeps nothing on local disk */
    char db[4200];
    int low_logged;
    metric *m_steps, *m_fail;
};

/* ---- disk -------------------------------------------------------------- */

static long long storage_maint_free_bytes(const storage_maint *m) {
    struct statvfs v;
    if (!m->dir[0] || statvfs(m->dir, &v) != 0) return -1;
    return (long long)v.f_bavail * (long long)v.f_frsize;
}

static long long storage_maint_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

/* events.db + its WAL (the WAL holds up to ~32 MiB between checkpoints). */
static long long storage_maint_store_bytes(const storage_maint *m) {
    if (!m->dir[0]) return -1;
    char wal[4300];
    snprintf(wal, sizeof wal, "%s-wal", m->db);
    return storage_maint_file(m->db) + storage_maint_file(wal);
}

static double storage_maint_free_metric(void *arg) {
    return (double)storage_maint_free_bytes(arg);
}

static double storage_maint_size_metric(void *arg) {
    return (double)storage_maint_store_bytes(arg);
}

static int storage_maint_low(storage_maint *m, long long *free_bytes) {
    *free_bytes = storage_maint_free_bytes(m);
    return *free_bytes >= 0 && *free_bytes < m->min_free;
}

int storage_maint_refuse_write(storage_maint *m, struct evhttp_request *req) {
    long long fb;
    if (!m || !storage_maint_low(m, &fb)) {
        if (m && m->low_logged) log_info("disk space back: %lld bytes free in %s", fb, m->dir);
        if (m) m->low_logged = 0;
        return 0;
    }
    if (!m->low_logged) log_warn("disk low: %lld bytes free in %s, below STORAGE_MIN_FREE_BYTES=%lld: refusing writes",
                                 fb, m->dir, m->min_free);
    m->low_logged = 1;
    httpd_reply_error(req, 503, "disk_low: %lld bytes free in DATA_DIR, below STORAGE_MIN_FREE_BYTES=%lld; "
                      "nothing was stored (retry later; free space or purge)", fb, m->min_free);
    return 1;
}

int storage_maint_health(storage_maint *m, json_t *health, const char **reason) {
    if (!m || !m->dir[0]) return 0;
    long long fb;
    int low = storage_maint_low(m, &fb);
    json_object_set_new(health, "disk", json_pack("{s:I,s:I,s:I}", "free_bytes", (json_int_t)fb, "store_bytes",
                                                  (json_int_t)storage_maint_store_bytes(m), "min_free_bytes",
                                                  (json_int_t)m->min_free));
    if (!low) return 0;
    *reason = "disk_low";
    return -1;
}

/* ---- retention timer --------------------------------------------------- */

static void storage_maint_arm(storage_maint *m, long long ms) {
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(m->timer, &tv);
}

static void storage_maint_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    storage_maint *m = arg;
    int rc = m->st->ops->maintain(m->st, service_now_us());
    metrics_add(rc < 0 ? m->m_fail : m->m_steps, 1);
    storage_maint_arm(m, rc == 1 ? m->step_ms : rc < 0 ? m->step_ms * 10 : m->interval_ms);
}

const config_var storage_maint_vars[] = {STORAGE_MAINT_CONFIG_VARS, CONFIG_END};

int storage_maint_new(service *svc, store *st, storage_maint **out) {
    storage_maint *m = calloc(1, sizeof *m);
    if (!m) return -1;
    m->svc = svc;
    m->st = st;
    if (config_int(storage_maint_vars, "PURGE_INTERVAL_MS", &m->interval_ms) ||
        config_int(storage_maint_vars, "PURGE_STEP_MS", &m->step_ms) ||
        config_int(storage_maint_vars, "STORAGE_MIN_FREE_BYTES", &m->min_free)) {
        free(m);
        return -1;
    }
    if (strcmp(st->ops->name, "sqlite") == 0) {
        snprintf(m->dir, sizeof m->dir, "%s", config_text(NULL, "DATA_DIR"));
        snprintf(m->db, sizeof m->db, "%s/events.db", m->dir);
        metrics_gauge_fn("homeiq_storage_disk_free_bytes", "Free bytes (for unprivileged users) in DATA_DIR.", NULL,
                         storage_maint_free_metric, m);
        metrics_gauge_fn("homeiq_storage_store_bytes", "Size of events.db and its WAL.", NULL,
                         storage_maint_size_metric, m);
    }
    m->m_steps = metrics_counter("homeiq_storage_purge_steps_total", "Retention steps by result.", "result=\"ok\"");
    m->m_fail = metrics_counter("homeiq_storage_purge_steps_total", "Retention steps by result.", "result=\"failed\"");
    if (st->ops->maintain && svc) {
        m->timer = evtimer_new(service_base(svc), storage_maint_tick, m);
        if (!m->timer) {
            free(m);
            return -1;
        }
        storage_maint_arm(m, m->step_ms);   /* a first step soon after start */
    }
    *out = m;
    return 0;
}

void storage_maint_free(storage_maint *m) {
    if (!m) return;
    if (m->timer) event_free(m->timer);
    free(m);
}
