/* store_clickhouse.c -- the ClickHouse backend (STORAGE_BACKEND=clickhouse).
 *
 * Why it looks like this (docs/CLICKHOUSE.md has the long form):
 *  - Everything goes over ClickHouse's HTTP interface through httpc on the
 *    event loop. A POST is answered from ClickHouse's 200 for the INSERT, so
 *    "200 only after the commit" holds; on a cluster the INSERT goes into the
 *    Distributed table with insert_distributed_sync=1, so the 200 comes only
 *    after every shard the batch touches wrote its part (choosing the shard
 *    ourselves would duplicate ClickHouse's sharding logic).
 *  - Idempotent: the event id is in the replacing key (ReplacingMergeTree),
 *    so a re-sent event collapses into its twin on merge; reads are exact
 *    before that with LIMIT 1 BY event_id (no FINAL: it would merge every part
 *    a query touches). To report duplicates, a batch first asks which of its
 *    ids exist (home + entities + time window: primary key and partitions
 *    prune it) and writes only the new ones.
 *  - A batch is two INSERTs (events, then dead letters). Dead letters are
 *    keyed by a hash of their text, so a batch retried after the first INSERT
 *    went through stores nothing twice either.
 *  - CLICKHOUSE_URL may list several servers: a transport error, 502, 503 or
 *    504 moves to the next one (each at most once per request); the one that
 *    worked is used first from then on.
 *  - The schema is created (IF NOT EXISTS) and its version checked at start
 *    and after every outage, never on the request path; until it is ready,
 *    writes and reads answer 503 and /health says why.
 *  - On a cluster the health probe reads system.one from every shard
 *    (cluster() table function): a whole shard down turns /health 503
 *    clickhouse_shard_unreachable with ClickHouse's message, which names the
 *    shard's server, while it is down -- not only after a write failed. */
#include "store_clickhouse.h"
#include "clickhouse_read.h"
#include "clickhouse_registry.h"
#include "clickhouse_retention.h"
#include "clickhouse_rowbinary.h"
#include "clickhouse_stats.h"
#include "clickhouse_sql.h"
#include "config.h"
#include "httpc.h"
#include "json_text.h"
#include "log.h"
#include "service.h"
#include "url.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CH_MAX_URLS 8
#define CH_MAX_STATEMENTS 10
#define CH_MAX_UPGRADES 16

typedef struct store_clickhouse {
    store base;
    struct event_base *evb;
    httpc *http;
    char *urls[CH_MAX_URLS];
    int nurls, cur;                 /* cur: the server tried first */
    char *db, *cluster, *userpwd;
    long timeout_ms, ping_ms;
    int up, schema_ready, schema_newer, init_inflight, ping_inflight, closing;
    int write_failed;               /* the last batch got an error from ClickHouse (e.g. a shard down) */
    int shard_down;                 /* cluster: the last probe could not reach every shard */
    char cluster_error[400];        /* ... and ClickHouse's message (names the server) */
    long stored_version;
    char last_error[400];
    struct event *ping_timer;
    char *stmts[CH_MAX_STATEMENTS];
    int nstmts, init_step;
    char *upgrades[CH_MAX_UPGRADES]; /* an older store's upgrade (ch_schema_upgrade_statements) */
    int nupgrades, upgrade_step;
    long settle_ms;                 /* CLICKHOUSE_FEED_SETTLE_MS */
    long quorum;                    /* CLICKHOUSE_INSERT_QUORUM (cluster only; 0 = off) */
    struct ch_job *jobs;            /* batches in flight (their stored_at bounds the feed's horizon) */
    ch_retention *retention;        /* RETENTION_DAYS, NULL when 0 */
    ch_stats *stats;                /* CLICKHOUSE_STATISTICS, NULL when 0 */
} store_clickhouse;

/* ---- requests with failover ------------------------------------------- */

typedef void (*ch_done_fn)(store_clickhouse *s, const httpc_response *r, void *arg);

typedef struct ch_call {
    store_clickhouse *s;
    char *params;       /* URL query string after '?', may be "" */
    char *body;
    size_t len;
    long timeout_ms;
    int tried;
    ch_done_fn fn;
    void *arg;
} ch_call;

static void ch_set_down(store_clickhouse *s, const char *why) {
    if (s->up) log_warn("clickhouse unreachable: %s", why);
    s->up = 0;
    s->schema_ready = 0; /* checked again when it is back (it may be a new server) */
    snprintf(s->last_error, sizeof s->last_error, "%s", why);
}

static void ch_error_text(const httpc_response *r, char *out, size_t n) {
    if (r->status == 0) {
        snprintf(out, n, "%s", r->error ? r->error : "no response");
        return;
    }
    /* ClickHouse's text: "Code: 60, e.displayText() = DB::Exception: ..." -- one line */
    size_t len = r->body_len;
    while (len && (r->body[len - 1] == '\n' || r->body[len - 1] == ' ')) len--;
    snprintf(out, n, "HTTP %ld: %.*s", r->status, (int)(len > 300 ? 300 : len), r->body ? r->body : "");
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

static int ch_retry_elsewhere(long status) { return status == 0 || status == 502 || status == 503 || status == 504; }

static void ch_call_send(ch_call *c);

static void ch_call_done(const httpc_response *r, void *arg) {
    ch_call *c = arg;
    store_clickhouse *s = c->s;
    if (!s->closing && ch_retry_elsewhere(r->status) && c->tried < s->nurls) {
        char why[256];
        ch_error_text(r, why, sizeof why);
        log_warn("clickhouse %s: %s; trying the next server", s->urls[s->cur], why);
        s->cur = (s->cur + 1) % s->nurls;
        ch_call_send(c);
        return;
    }
    if (r->status == 200 && !s->up && !s->closing) {
        log_info("clickhouse at %s is reachable", s->urls[s->cur]);
        s->up = 1;
    }
    if (r->status == 0 && !s->closing) {
        char why[256];
        ch_error_text(r, why, sizeof why);
        ch_set_down(s, why);
    }
    c->fn(s, r, c->arg);
    free(c->params);
    free(c->body);
    free(c);
}

static void ch_call_send(ch_call *c) {
    store_clickhouse *s = c->s;
    c->tried++;
    sbuf url;
    sbuf_init(&url);
    sbuf_printf(&url, "%s/?%s", s->urls[s->cur], c->params);
    const char *headers[] = {"Content-Type: text/plain; charset=utf-8", NULL};
    httpc_request req = {.method = "POST", .url = url.data, .headers = headers, .body = c->body, .body_len = c->len,
                         .timeout_ms = c->timeout_ms, .userpwd = s->userpwd};
    if (sbuf_failed(&url) || httpc_send(s->http, &req, ch_call_done, c) != 0) {
        sbuf_free(&url);
        httpc_response res = {.status = 0, .body = "", .error = "cannot start request"};
        c->tried = s->nurls; /* no point trying the others */
        ch_call_done(&res, c);
        return;
    }
    sbuf_free(&url);
}

/* POSTs `body` (taken: freed here) with URL parameters `params` (copied).
 * fn is called exactly once. */
static void ch_post(store_clickhouse *s, const char *params, char *body, size_t len, long timeout_ms, ch_done_fn fn,
                    void *arg) {
    ch_call *c = calloc(1, sizeof *c);
    char *p = strdup(params ? params : "");
    if (!c || !p) {
        free(c);
        free(p);
        free(body);
        httpc_response res = {.status = 0, .body = "", .error = "out of memory"};
        fn(s, &res, arg);
        return;
    }
    *c = (ch_call){.s = s, .params = p, .body = body, .len = len, .timeout_ms = timeout_ms, .fn = fn, .arg = arg};
    ch_call_send(c);
}

/* A query in the body; big IN lists need more than the default 256 KiB. On a
 * cluster, an IN subquery runs on each shard over its local table: every copy
 * of an event and every row of an entity live on one shard (the sharding key);
 * an INSERT in a query (statistics) answers after every shard wrote it. */
#define CH_QUERY_PARAMS "max_query_size=67108864&distributed_product_mode=local&insert_distributed_sync=1"

static void ch_query(store_clickhouse *s, sbuf *sql, ch_done_fn fn, void *arg) {
    if (sbuf_failed(sql)) {
        sbuf_free(sql);
        httpc_response res = {.status = 0, .body = "", .error = "out of memory"};
        fn(s, &res, arg);
        return;
    }
    size_t len;
    char *text = sbuf_take(sql, &len);
    ch_post(s, CH_QUERY_PARAMS, text, len, s->timeout_ms, fn, arg);
}

/* ---- schema at start-up ------------------------------------------------ */

static void ch_init_next(store_clickhouse *s);

static void ch_init_fail(store_clickhouse *s, const httpc_response *r, const char *what) {
    char why[256];
    ch_error_text(r, why, sizeof why);
    if (r->status != 0) log_error("clickhouse schema: %s failed: %s", what, why);
    snprintf(s->last_error, sizeof s->last_error, "%s: %s", what, why);
    s->init_inflight = 0; /* the next ping starts over (every step is idempotent) */
}

static void ch_init_version_row_done(store_clickhouse *s, const httpc_response *r, void *arg) {
    (void)arg;
    if (s->closing) return;
    if (r->status != 200) {
        ch_init_fail(s, r, "recording the schema version");
        return;
    }
    s->stored_version = CH_SCHEMA_VERSION;
    s->init_step++;
    ch_init_next(s);
}

static void ch_upgrades_free(store_clickhouse *s) {
    for (int i = 0; i < s->nupgrades; i++) free(s->upgrades[i]);
    s->nupgrades = 0;
}

static void ch_upgrade_next(store_clickhouse *s);

static void ch_upgrade_done(store_clickhouse *s, const httpc_response *r, void *arg) {
    (void)arg;
    if (s->closing) return;
    /* a start that ran it but did not record the version: already there */
    if (r->status != 200 && !(r->status == 500 && r->body && strstr(r->body, "already exists"))) {
        ch_init_fail(s, r, "upgrading the schema");
        return;
    }
    s->upgrade_step++;
    ch_upgrade_next(s);
}

/* The upgrade's statements one by one, then the version row. */
static void ch_upgrade_next(store_clickhouse *s) {
    if (s->upgrade_step < s->nupgrades) {
        char *sql = strdup(s->upgrades[s->upgrade_step]);
        if (!sql) {
            s->init_inflight = 0;
            return;
        }
        ch_post(s, CH_QUERY_PARAMS, sql, strlen(sql), s->timeout_ms * 6, ch_upgrade_done, NULL);
        return;
    }
    sbuf q;
    sbuf_init(&q);
    sbuf_printf(&q, "INSERT INTO %s.homeiq_schema VALUES (%d, now())", s->db, CH_SCHEMA_VERSION);
    ch_query(s, &q, ch_init_version_row_done, NULL);
}

static void ch_init_version_done(store_clickhouse *s, const httpc_response *r, void *arg) {
    (void)arg;
    if (s->closing) return;
    if (r->status != 200) {
        ch_init_fail(s, r, "reading the schema version");
        return;
    }
    s->stored_version = strtol(r->body ? r->body : "0", NULL, 10);
    if (s->stored_version > CH_SCHEMA_VERSION) {
        log_error("clickhouse database %s has schema version %ld; this binary knows up to %d: not writing to it",
                  s->db, s->stored_version, CH_SCHEMA_VERSION);
        s->schema_newer = 1;
        s->init_inflight = 0;
        return;
    }
    if (s->stored_version == CH_SCHEMA_VERSION) {
        s->init_step += 2;
        ch_init_next(s);
        return;
    }
    /* 0: new (created at this version above); 1..: upgraded first */
    s->init_step++;
    ch_upgrades_free(s);
    if (s->stored_version > 0) {
        s->nupgrades = ch_schema_upgrade_statements(s->db, s->cluster, s->stored_version, s->upgrades, CH_MAX_UPGRADES);
        if (s->nupgrades < 0) {
            s->nupgrades = 0;
            s->init_inflight = 0;
            return;
        }
        log_info("clickhouse database %s: schema version %ld -> %d (%d statements)", s->db, s->stored_version,
                 CH_SCHEMA_VERSION, s->nupgrades);
    }
    s->upgrade_step = 0;
    ch_upgrade_next(s);
}

static void ch_init_stmt_done(store_clickhouse *s, const httpc_response *r, void *arg) {
    (void)arg;
    if (s->closing) return;
    if (r->status != 200) {
        ch_init_fail(s, r, "creating the schema");
        return;
    }
    s->init_step++;
    ch_init_next(s);
}

/* Steps: the CREATE statements, the version read, the version row, ready. */
static void ch_init_next(store_clickhouse *s) {
    if (s->init_step < s->nstmts) {
        char *sql = strdup(s->stmts[s->init_step]);
        if (!sql) {
            s->init_inflight = 0;
            return;
        }
        /* ON CLUSTER waits for every host: give it longer */
        ch_post(s, CH_QUERY_PARAMS, sql, strlen(sql), s->timeout_ms * 6, ch_init_stmt_done, NULL);
        return;
    }
    if (s->init_step == s->nstmts) {
        sbuf q;
        sbuf_init(&q);
        ch_schema_version_query(&q, s->db);
        ch_query(s, &q, ch_init_version_done, NULL);
        return;
    }
    s->init_inflight = 0;
    if (!s->schema_ready)
        log_info("clickhouse schema v%d ready in database %s%s%s", CH_SCHEMA_VERSION, s->db,
                 s->cluster ? " on cluster " : "", s->cluster ? s->cluster : "");
    s->schema_ready = 1;
}

static void ch_init_start(store_clickhouse *s) {
    if (s->init_inflight || s->schema_ready || s->schema_newer || s->closing) return;
    s->init_inflight = 1;
    s->init_step = 0;
    ch_init_next(s);
}

/* ---- health: /ping ------------------------------------------------------ */

static void ch_ping_done(store_clickhouse *s, const httpc_response *r, void *arg) {
    (void)arg;
    s->ping_inflight = 0;
    if (s->closing) return;
    if (r->status == 200) {
        if (s->shard_down) log_info("clickhouse cluster %s: every shard answers again", s->cluster);
        s->shard_down = 0;
        ch_init_start(s);
        return;
    }
    char why[sizeof s->cluster_error - 8];
    ch_error_text(r, why, sizeof why);
    if (s->cluster && r->status != 0 && s->up) {
        /* the server answered, but not every shard did: writes touching only
         * live shards still go through, so this is not "unreachable" */
        if (!s->shard_down) log_warn("clickhouse cluster %s: a shard is unreachable: %s", s->cluster, why);
        s->shard_down = 1;
        snprintf(s->cluster_error, sizeof s->cluster_error, "%s", why);
        ch_init_start(s);
        return;
    }
    ch_set_down(s, why);
}

static void ch_ping(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    store_clickhouse *s = arg;
    if (s->ping_inflight || s->closing) return;
    s->ping_inflight = 1;
    /* SELECT rather than /ping: it also proves the user may query; on a
     * cluster it touches one replica of every shard (the cluster name is a
     * checked identifier) */
    char *q = NULL;
    if (s->cluster) {
        size_t n = strlen(s->cluster) + 64;
        if ((q = malloc(n))) snprintf(q, n, "SELECT count() FROM cluster('%s', system.one)", s->cluster);
    } else {
        q = strdup("SELECT 1");
    }
    ch_post(s, "", q, q ? strlen(q) : 0, s->timeout_ms, ch_ping_done, NULL);
}

/* ---- writes ------------------------------------------------------------- */

typedef struct ch_job {
    struct ch_job *prev, *next;     /* s->jobs */
    store_clickhouse *s;
    store_batch *b;
    store_write_cb cb;
    void *arg;
    const char *home;       /* the batch's home, "default" for "" */
    char **existing;        /* sorted ids already stored */
    size_t nexisting;
} ch_job;

static void ch_job_end(ch_job *j, int rc, const char *err) {
    if (j->prev) j->prev->next = j->next;
    else j->s->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
    j->cb(j->b, rc, err, j->arg);
    for (size_t i = 0; i < j->nexisting; i++) free(j->existing[i]);
    free(j->existing);
    free(j);
}

static void ch_job_fail(ch_job *j, const httpc_response *r, const char *what) {
    char why[300], msg[360];
    ch_error_text(r, why, sizeof why);
    snprintf(msg, sizeof msg, "clickhouse %s: %s", what, why);
    if (r->status != 0) {
        /* ClickHouse answered but could not do it (a shard or replica down,
         * ZooKeeper gone...): /health says so, with its message, until a
         * batch goes through again */
        snprintf(j->s->last_error, sizeof j->s->last_error, "%s", msg);
        j->s->write_failed = 1;
    }
    ch_job_end(j, -1, msg);
}

static int ch_cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int ch_item_cmp(const void *a, const void *b) {
    const store_item *x = *(store_item *const *)a, *y = *(store_item *const *)b;
    int c = strcmp(x->event_id, y->event_id);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* Marks the second and later copies of an id inside the batch DUPLICATE. */
static int ch_mark_batch_twins(store_batch *b) {
    store_item **v = malloc((b->nitems ? b->nitems : 1) * sizeof *v);
    if (!v) return -1;
    size_t n = 0;
    for (size_t i = 0; i < b->nitems; i++)
        if (b->items[i].status == STORE_ITEM_PENDING) v[n++] = &b->items[i];
    qsort(v, n, sizeof *v, ch_item_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i]->event_id, v[i - 1]->event_id) == 0) v[i]->status = STORE_ITEM_DUPLICATE;
    free(v);
    return 0;
}

static int64_t ch_clamp_seconds(int64_t us) {
    int64_t s = us / 1000000;
    return s < 0 ? 0 : s > 4294967295LL ? 4294967295LL : s; /* DateTime: 1970..2106 */
}

static void ch_json_field(sbuf *b, const char *key, const char *v) {
    sbuf_printf(b, ",\"%s\":", key);
    json_text_string(b, v ? v : "", v ? strlen(v) : 0);
}

/* The events INSERT's columns, in the order ch_event_row writes them. */
#define CH_EVENT_INSERT_COLUMNS                                                                                      \
    "home_id, event_id, time, time_us, entity_id, domain, event_type, stored_at_us, record, " CH_REGISTRY_COLUMN_NAMES

/* One event as RowBinary (clickhouse_rowbinary.h): the record's bytes as stored. */
static int ch_event_row(sbuf *b, store_item *it, const char *home, int64_t stored_at_us, sbuf *scratch) {
    ch_rb_string(b, home, strlen(home));
    ch_rb_string(b, it->event_id, strlen(it->event_id));
    ch_rb_u32(b, (uint32_t)ch_clamp_seconds(it->time_us));
    ch_rb_i64(b, it->time_us);
    ch_rb_string(b, it->entity_id ? it->entity_id : "", it->entity_id ? strlen(it->entity_id) : 0);
    ch_rb_string(b, it->domain, strlen(it->domain));
    ch_rb_string(b, it->event_type ? it->event_type : "", it->event_type ? strlen(it->event_type) : 0);
    ch_rb_i64(b, stored_at_us);
    ch_rb_string(b, it->json, it->json_len);
    return ch_registry_row(b, it, scratch); /* schema v3: clickhouse_registry.h */
}

/* hex of the first 16 bytes of SHA-256 over source, error and text */
static int ch_dead_key(const store_dead_letter *d, char out[33]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(ctx, d->source, strlen(d->source)) && EVP_DigestUpdate(ctx, "\x1f", 1) &&
             EVP_DigestUpdate(ctx, d->error, strlen(d->error)) && EVP_DigestUpdate(ctx, "\x1f", 1) &&
             EVP_DigestUpdate(ctx, d->raw, strlen(d->raw)) && EVP_DigestFinal_ex(ctx, md, &n);
    EVP_MD_CTX_free(ctx);
    if (!ok) return -1;
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static int ch_dead_rows(sbuf *b, const store_batch *bt, const char *home, int64_t now_us) {
    for (size_t i = 0; i < bt->ndead; i++) {
        const store_dead_letter *d = &bt->dead[i];
        char key[33];
        if (ch_dead_key(d, key) != 0) return -1;
        sbuf_adds(b, "{\"home_id\":");
        json_text_string(b, home, strlen(home));
        sbuf_printf(b, ",\"dl_key\":\"%s\",\"id\":%lld,\"received_at\":%lld,\"received_at_us\":%lld,\"seq\":%zu", key,
                    (long long)(now_us * 1000 + (int64_t)(i % 1000)), (long long)ch_clamp_seconds(now_us),
                    (long long)now_us, i);
        ch_json_field(b, "source", d->source);
        ch_json_field(b, "error", d->error);
        ch_json_field(b, "raw", d->raw);
        sbuf_adds(b, "}\n");
    }
    return 0;
}

/* On a cluster: answer only after every shard the rows go to has them
 * (insert_distributed_sync), and with CLICKHOUSE_INSERT_QUORUM=N only after N
 * replicas of each such shard have them (insert_quorum, ClickHouse 1.1+ so
 * 18.16 too). The quorum wait is bounded below our own request timeout, so a
 * replica lost mid-insert gives ClickHouse's error (-> 503), not our timeout. */
static void ch_insert_params(const store_clickhouse *s, sbuf *p) {
    if (!s->cluster) return;
    sbuf_adds(p, "&insert_distributed_sync=1");
    if (s->quorum > 0)
        sbuf_printf(p, "&insert_quorum=%ld&insert_quorum_timeout=%ld", s->quorum,
                    s->timeout_ms > 2000 ? s->timeout_ms - 1000 : s->timeout_ms / 2);
}

/* INSERT INTO <db>.<target> FORMAT <format>; target may name columns. */
static void ch_insert(ch_job *j, const char *target, const char *format, sbuf *rows, ch_done_fn fn) {
    store_clickhouse *s = j->s;
    sbuf p, q;
    sbuf_init(&p);
    sbuf_init(&q);
    sbuf_printf(&q, "INSERT INTO %s.%s FORMAT %s", s->db, target, format);
    sbuf_adds(&p, "query=");
    if (!sbuf_failed(&q)) ch_urlencode(&p, q.data);
    ch_insert_params(s, &p);
    sbuf_free(&q);
    if (sbuf_failed(&p) || sbuf_failed(rows)) {
        sbuf_free(&p);
        sbuf_free(rows);
        httpc_response res = {.status = 0, .body = "", .error = "out of memory"};
        fn(s, &res, j);
        return;
    }
    size_t len;
    char *body = sbuf_take(rows, &len);
    ch_post(s, p.data, body, len, s->timeout_ms, fn, j);
    sbuf_free(&p);
}

static void ch_stats_done(int rc, const char *err, void *arg) {
    ch_job *j = arg;
    if (rc != 0) {
        /* the events are stored, their statistics not: no ack; the re-sent
         * batch (duplicates then) recomputes the same entities */
        httpc_response res = {.status = 0, .body = "", .error = err};
        ch_job_fail(j, &res, "statistics");
        return;
    }
    j->s->write_failed = 0;
    ch_job_end(j, 0, NULL);
}

static void ch_job_finish(ch_job *j) {
    store_batch *b = j->b;
    for (size_t i = 0; i < b->nitems; i++) {
        store_item *it = &b->items[i];
        if (it->status == STORE_ITEM_PENDING) it->status = STORE_ITEM_STORED, b->stored++;
        else if (it->status == STORE_ITEM_DUPLICATE) b->duplicates++;
    }
    b->dead_lettered = b->ndead;
    if (j->s->stats) { /* before the ack, as the other backends */
        ch_stats_batch(j->s->stats, b, j->home, ch_stats_done, j);
        return;
    }
    j->s->write_failed = 0;
    ch_job_end(j, 0, NULL);
}

static void ch_dead_done(store_clickhouse *s, const httpc_response *r, void *arg) {
    (void)s;
    ch_job *j = arg;
    if (r->status != 200) ch_job_fail(j, r, "dead-letter insert");
    else ch_job_finish(j);
}

static void ch_write_dead(ch_job *j) {
    if (j->b->ndead == 0) {
        ch_job_finish(j);
        return;
    }
    sbuf rows;
    sbuf_init(&rows);
    if (ch_dead_rows(&rows, j->b, j->home, j->b->stored_at_us) != 0) {
        sbuf_free(&rows);
        httpc_response res = {.status = 0, .body = "", .error = "out of memory"};
        ch_job_fail(j, &res, "dead letters");
        return;
    }
    ch_insert(j, "dead_letters", "JSONEachRow", &rows, ch_dead_done);
}

static void ch_events_done(store_clickhouse *s, const httpc_response *r, void *arg) {
    (void)s;
    ch_job *j = arg;
    if (r->status != 200) ch_job_fail(j, r, "insert");
    else ch_write_dead(j);
}

static void ch_write_events(ch_job *j) {
    store_batch *b = j->b;
    sbuf rows, scratch;
    sbuf_init(&rows);
    sbuf_init(&scratch);
    size_t n = 0;
    for (size_t i = 0; i < b->nitems; i++) {
        store_item *it = &b->items[i];
        if (it->status != STORE_ITEM_PENDING) continue;
        if (ch_event_row(&rows, it, j->home, b->stored_at_us, &scratch) != 0) rows.failed = 1;
        n++;
    }
    sbuf_free(&scratch);
    if (n == 0) {
        sbuf_free(&rows);
        ch_write_dead(j);
        return;
    }
    ch_insert(j, "events (" CH_EVENT_INSERT_COLUMNS ")", "RowBinary", &rows, ch_events_done);
}

/* The answer of the duplicate query: one id per line. */
static int ch_existing_parse(ch_job *j, const char *body, size_t len) {
    size_t cap = 0;
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if (n == EVENT_ID_LEN - 1) {
            if (j->nexisting == cap) {
                cap = cap ? cap * 2 : 64;
                char **v = realloc(j->existing, cap * sizeof *v);
                if (!v) return -1;
                j->existing = v;
            }
            if (!(j->existing[j->nexisting] = strndup(p, n))) return -1;
            j->nexisting++;
        }
        p = nl ? nl + 1 : end;
    }
    if (j->nexisting) qsort(j->existing, j->nexisting, sizeof *j->existing, ch_cmp_str);
    return 0;
}

static void ch_dups_done(store_clickhouse *s, const httpc_response *r, void *arg) {
    (void)s;
    ch_job *j = arg;
    if (r->status != 200) {
        ch_job_fail(j, r, "duplicate check");
        return;
    }
    if (ch_existing_parse(j, r->body ? r->body : "", r->body_len) != 0) {
        ch_job_end(j, -1, "out of memory");
        return;
    }
    store_batch *b = j->b;
    for (size_t i = 0; i < b->nitems; i++) {
        store_item *it = &b->items[i];
        const char *key = it->event_id;
        if (it->status == STORE_ITEM_PENDING && j->nexisting &&
            bsearch(&key, j->existing, j->nexisting, sizeof *j->existing, ch_cmp_str))
            it->status = STORE_ITEM_DUPLICATE;
    }
    ch_write_events(j);
}

/* Which of the batch's ids are stored already: same home, its entities, its
 * time window (so the primary key and the month partitions prune the scan).
 * A live batch spans milliseconds to seconds: then every id of its entities
 * in its window is asked for, without the list of the batch's own ids (its
 * parse cost ClickHouse 4x the rest of the query: 17 vs 4 ms of server CPU
 * for a burst's batch of 1,000; bench/clickhouse_cost.sh), and the answer's
 * other ids (events of the window not in the batch) match nothing here. */
#define CH_DUP_WINDOW_US 5000000LL
static void ch_check_dups(ch_job *j) {
    store_clickhouse *s = j->s;
    store_batch *b = j->b;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    size_t n = 0;
    sbuf q, ents;
    sbuf_init(&q);
    sbuf_init(&ents);
    const char **ev = malloc((b->nitems ? b->nitems : 1) * sizeof *ev);
    size_t nev = 0;
    for (size_t i = 0; i < b->nitems; i++) {
        const store_item *it = &b->items[i];
        if (it->status != STORE_ITEM_PENDING) continue;
        n++;
        if (ev) ev[nev++] = it->entity_id ? it->entity_id : "";
        if (it->time_us < lo) lo = it->time_us;
        if (it->time_us > hi) hi = it->time_us;
    }
    if (n == 0 || !ev) {
        free(ev);
        sbuf_free(&ents);
        if (n == 0) ch_write_events(j);
        else ch_job_end(j, -1, "out of memory");
        return;
    }
    /* each entity once: a burst's batch of 1,000 names ~50 (the IN list's
     * parse was a third of the check's server CPU) */
    qsort(ev, nev, sizeof *ev, ch_cmp_str);
    for (size_t i = 0; i < nev; i++) {
        if (i && strcmp(ev[i], ev[i - 1]) == 0) continue;
        if (ents.len) sbuf_addc(&ents, ',');
        ch_quote(&ents, ev[i]);
    }
    free(ev);
    sbuf_printf(&q, "SELECT event_id FROM %s.events WHERE home_id = ", s->db);
    ch_quote(&q, j->home);
    sbuf_printf(&q, " AND time >= toDateTime(%lld) AND time <= toDateTime(%lld) AND time_us >= %lld AND time_us <= %lld",
                (long long)ch_clamp_seconds(lo), (long long)ch_clamp_seconds(hi), (long long)lo, (long long)hi);
    sbuf_adds(&q, " AND entity_id IN (");
    sbuf_add(&q, ents.data ? ents.data : "", ents.len);
    sbuf_addc(&q, ')');
    if (hi - lo > CH_DUP_WINDOW_US) { /* a wide window (backfill, import): only the batch's ids */
        sbuf_adds(&q, " AND event_id IN (");
        size_t k = 0;   /* listed only here: a live batch's 1,000 ids would be formatted for nothing */
        for (size_t i = 0; i < b->nitems; i++) {
            if (b->items[i].status != STORE_ITEM_PENDING) continue;
            if (k++) sbuf_addc(&q, ',');
            sbuf_printf(&q, "'%s'", b->items[i].event_id);
        }
        sbuf_addc(&q, ')');
    }
    sbuf_adds(&q, " FORMAT TabSeparated");
    int failed = sbuf_failed(&ents);
    sbuf_free(&ents);
    if (failed) q.failed = 1;
    if (!s->cluster || s->quorum == 0) {
        ch_query(s, &q, ch_dups_done, j);
        return;
    }
    /* with a quorum, rows of an INSERT that did not reach it (a replica died
     * mid-batch: 503) must not count as stored, or the retry would be acked
     * with them on fewer replicas than asked: read only quorum-written parts */
    if (sbuf_failed(&q)) {
        sbuf_free(&q);
        httpc_response res = {.status = 0, .body = "", .error = "out of memory"};
        ch_dups_done(s, &res, j);
        return;
    }
    size_t len;
    char *text = sbuf_take(&q, &len);
    ch_post(s, CH_QUERY_PARAMS "&select_sequential_consistency=1", text, len, s->timeout_ms, ch_dups_done, j);
}

static void store_ch_write_batch(store *base, store_batch *b, store_write_cb cb, void *arg) {
    store_clickhouse *s = (store_clickhouse *)base;
    if (!s->up || !s->schema_ready) {
        cb(b, -1, s->schema_newer ? "clickhouse schema is newer than this binary" : s->last_error, arg);
        return;
    }
    ch_job *j = calloc(1, sizeof *j);
    if (!j || ch_mark_batch_twins(b) != 0) {
        free(j);
        cb(b, -1, "out of memory", arg);
        return;
    }
    *j = (ch_job){.s = s, .b = b, .cb = cb, .arg = arg, .home = b->home_id[0] ? b->home_id : EVENT_HOME_DEFAULT};
    b->stored_at_us = service_now_us();
    j->next = s->jobs;
    if (s->jobs) s->jobs->prev = j;
    s->jobs = j;
    ch_check_dups(j);
}

/* ---- reads -------------------------------------------------------------- */

typedef struct ch_read {
    store_rows_cb cb;
    void *arg;
    int dead;
} ch_read;

/* One row of a read's answer (ctx: ch_read_rows). */
typedef struct ch_read_rows {
    const ch_read *rd;
    store_rows *rows;
} ch_read_rows;

static int ch_read_row(void *ctx, json_t *o) {
    const ch_read *rd = ((ch_read_rows *)ctx)->rd;
    store_rows *rows = ((ch_read_rows *)ctx)->rows;
    int rc = -1;
    if (rd->dead) {
        const char *id = json_string_value(json_object_get(o, "id"));
        const char *at = json_string_value(json_object_get(o, "received_at_us"));
        if (id && at)
            rc = store_rows_add_dead(rows, strtoll(id, NULL, 10), strtoll(at, NULL, 10),
                                     json_string_value(json_object_get(o, "source")),
                                     json_string_value(json_object_get(o, "error")),
                                     json_string_value(json_object_get(o, "raw")));
    } else {
        const json_t *rec = json_object_get(o, "record");
        const char *eid = json_string_value(json_object_get(o, "event_id"));
        const char *at = json_string_value(json_object_get(o, "stored_at_us"));
        if (json_is_string(rec) && eid && at)
            rc = store_rows_add_event(rows, json_string_value(rec), json_string_length(rec), eid,
                                      strtoll(at, NULL, 10));
    }
    return rc;
}

static void ch_read_done(store_clickhouse *s, const httpc_response *r, void *arg) {
    ch_read *rd = arg;
    store_rows rows = {0};
    char why[300];
    int rc = 0;
    if (r->status != 200) {
        ch_error_text(r, why, sizeof why);
        if (r->status != 0) log_warn("clickhouse query failed: %s", why);
        rc = -1;
    } else if (ch_json_lines(r->body ? r->body : "", r->body_len, ch_read_row, &(ch_read_rows){rd, &rows}) != 0) {
        snprintf(why, sizeof why, "unreadable row from clickhouse");
        rc = -1;
    }
    (void)s;
    rd->cb(&rows, rc, rc ? why : NULL, rd->arg);
    store_rows_free(&rows);
    free(rd);
}

static void ch_read_start(store_clickhouse *s, sbuf *q, int dead, store_rows_cb cb, void *arg) {
    ch_read *rd = calloc(1, sizeof *rd);
    if (!rd || !s->up || !s->schema_ready) {
        free(rd);
        sbuf_free(q);
        store_rows none = {0};
        cb(&none, -1, s->schema_ready ? "out of memory" : "clickhouse not ready", arg);
        return;
    }
    *rd = (ch_read){.cb = cb, .arg = arg, .dead = dead};
    ch_query(s, q, ch_read_done, rd);
}

static void store_ch_query(store *base, const store_filter *f, store_rows_cb cb, void *arg) {
    store_clickhouse *s = (store_clickhouse *)base;
    sbuf q;
    sbuf_init(&q);
    sbuf_printf(&q, "SELECT record, event_id, stored_at_us FROM %s.events WHERE 1", s->db);
    ch_where_eq(&q, "home_id", f->home_id);
    ch_where_eq(&q, "entity_id", f->entity_id);
    ch_where_eq(&q, "domain", f->domain);
    ch_where_eq(&q, "event_type", f->event_type);
    ch_registry_where(&q, f);
    if (f->has_start) sbuf_printf(&q, " AND time_us >= %lld", (long long)f->start_us);
    if (f->has_end) sbuf_printf(&q, " AND time_us < %lld", (long long)f->end_us);
    ch_retention_filter(s->retention, &q);
    /* exact before merges: one row per identity (copies are the same event) */
    sbuf_printf(&q, " ORDER BY time_us DESC, event_id DESC LIMIT 1 BY event_id LIMIT %ld, %ld FORMAT JSONEachRow",
                f->offset, f->limit);
    ch_read_start(s, &q, 0, cb, arg);
}

static void store_ch_dead_letters_home(store *base, const char *home, long limit, store_rows_cb cb, void *arg) {
    store_clickhouse *s = (store_clickhouse *)base;
    sbuf q;
    sbuf_init(&q);
    sbuf_printf(&q,
                "SELECT toString(id) AS id, toString(received_at_us) AS received_at_us, source, error, raw FROM "
                "%s.dead_letters WHERE 1",
                s->db);
    ch_where_eq(&q, "home_id", home);
    sbuf_printf(&q, " ORDER BY received_at_us DESC, seq DESC LIMIT 1 BY home_id, dl_key LIMIT %ld FORMAT JSONEachRow",
                limit);
    ch_read_start(s, &q, 1, cb, arg);
}

static void store_ch_dead_letters(store *base, long limit, store_rows_cb cb, void *arg) {
    store_ch_dead_letters_home(base, NULL, limit, cb, arg);
}

/* ---- for clickhouse_read.c ------------------------------------------------ */

typedef struct ch_select {
    ch_answer_fn fn;
    void *arg;
} ch_select;

static void ch_select_done(store_clickhouse *s, const httpc_response *r, void *arg) {
    (void)s;
    ch_select *c = arg;
    if (r->status == 200) {
        c->fn(0, r->body ? r->body : "", r->body_len, NULL, c->arg);
    } else {
        char why[300];
        ch_error_text(r, why, sizeof why);
        if (r->status != 0) log_warn("clickhouse query failed: %s", why);
        c->fn(-1, NULL, 0, why, c->arg);
    }
    free(c);
}

void ch_store_select(store *base, sbuf *sql, ch_answer_fn fn, void *arg) {
    store_clickhouse *s = (store_clickhouse *)base;
    ch_select *c = calloc(1, sizeof *c);
    if (!c || !s->up || !s->schema_ready) {
        free(c);
        sbuf_free(sql);
        fn(-1, NULL, 0, s->schema_ready && s->up ? "out of memory" : "clickhouse not ready", arg);
        return;
    }
    *c = (ch_select){.fn = fn, .arg = arg};
    ch_query(s, sql, ch_select_done, c);
}

void ch_store_insert(store *base, const char *query, sbuf *data, ch_answer_fn fn, void *arg) {
    store_clickhouse *s = (store_clickhouse *)base;
    ch_select *c = calloc(1, sizeof *c);
    sbuf p;
    sbuf_init(&p);
    sbuf_adds(&p, "query=");
    ch_urlencode(&p, query);
    ch_insert_params(s, &p);
    if (!c || !s->up || !s->schema_ready || sbuf_failed(&p) || sbuf_failed(data)) {
        free(c);
        sbuf_free(&p);
        sbuf_free(data);
        fn(-1, NULL, 0, s->schema_ready && s->up ? "out of memory" : "clickhouse not ready", arg);
        return;
    }
    *c = (ch_select){.fn = fn, .arg = arg};
    size_t len;
    char *body = sbuf_take(data, &len);
    ch_post(s, p.data, body, len, s->timeout_ms, ch_select_done, c);
    sbuf_free(&p);
}

const char *ch_store_db(store *base) { return ((store_clickhouse *)base)->db; }

void ch_store_visible(store *base, sbuf *q) { ch_retention_filter(((store_clickhouse *)base)->retention, q); }

int64_t ch_store_cutoff_s(store *base) {
    return ch_retention_cutoff_s(((store_clickhouse *)base)->retention, service_now_us());
}

static void store_ch_stats_fetch(store *base, const char *home, const char *entity_id, int hourly, int64_t start_us,
                                 int64_t end_us, store_stats_cb cb, void *arg) {
    ch_stats_fetch(((store_clickhouse *)base)->stats, home, entity_id, hourly, start_us, end_us, cb, arg);
}

int64_t ch_store_feed_horizon(store *base, int64_t now_us) {
    store_clickhouse *s = (store_clickhouse *)base;
    int64_t h = now_us - (int64_t)s->settle_ms * 1000;
    for (const ch_job *j = s->jobs; j; j = j->next)
        if (j->b->stored_at_us - 1 < h) h = j->b->stored_at_us - 1;
    return h < 0 ? 0 : h;
}

/* ---- health, info, close ------------------------------------------------ */

static int store_ch_health(store *base, const char **reason) {
    store_clickhouse *s = (store_clickhouse *)base;
    if (!s->up) *reason = "clickhouse_unreachable";
    else if (s->schema_newer) *reason = "clickhouse_schema_newer";
    else if (!s->schema_ready) *reason = "clickhouse_schema_not_ready";
    else if (s->shard_down) *reason = "clickhouse_shard_unreachable";
    else if (s->write_failed) *reason = "clickhouse_write_failed";
    else return 0;
    return -1;
}

static json_t *store_ch_info(store *base) {
    store_clickhouse *s = (store_clickhouse *)base;
    json_t *urls = json_array();
    for (int i = 0; i < s->nurls; i++) json_array_append_new(urls, json_string(s->urls[i]));
    json_t *o = json_pack("{s:s,s:o,s:s,s:s,s:s?,s:b,s:b,s:i,s:I}", "backend", "clickhouse", "urls", urls, "url",
                          s->urls[s->cur], "database", s->db, "cluster", s->cluster, "reachable", s->up,
                          "schema_ready", s->schema_ready, "schema_version", CH_SCHEMA_VERSION, "stored_schema_version",
                          (json_int_t)s->stored_version);
    if (o && (!s->up || !s->schema_ready || s->write_failed) && s->last_error[0])
        json_object_set_new(o, "last_error", json_string(s->last_error));
    if (o && s->shard_down) json_object_set_new(o, "cluster_error", json_string(s->cluster_error));
    if (o) json_object_set_new(o, "retention", ch_retention_info(s->retention));
    if (o) json_object_set_new(o, "statistics", ch_stats_info(s->stats));
    return o;
}

static void store_ch_close(store *base) {
    store_clickhouse *s = (store_clickhouse *)base;
    s->closing = 1;
    if (s->ping_timer) event_free(s->ping_timer);
    httpc_free(s->http); /* in-flight calls complete now (cancelled): their batches get rc -1 */
    ch_retention_free(s->retention);
    ch_stats_free(s->stats);
    for (int i = 0; i < s->nurls; i++) free(s->urls[i]);
    for (int i = 0; i < s->nstmts; i++) free(s->stmts[i]);
    ch_upgrades_free(s);
    free(s->db);
    free(s->cluster);
    free(s->userpwd);
    free(s);
}

static const store_ops store_clickhouse_ops = {
    .name = "clickhouse",
    .text_batches = 1, /* reads only item fields and text */
    .write_batch = store_ch_write_batch,
    .query = store_ch_query,
    .dead_letters = store_ch_dead_letters,
    .health = store_ch_health,
    .info = store_ch_info,
    /* dashboard reads and homes: clickhouse_read.c */
    .feed = ch_read_feed,
    .entities = ch_read_entities,
    .series = ch_read_series,
    .stats = ch_read_stats,
    .homes = ch_read_homes,
    .registry = ch_registry_read, /* clickhouse_registry.c */
    .dead_letters_home = store_ch_dead_letters_home,
    .stats_fetch_home = store_ch_stats_fetch, /* clickhouse_stats.c */
    .home_reads = STORE_HOME_FEED | STORE_HOME_ENTITIES | STORE_HOME_SERIES | STORE_HOME_STATS | STORE_HOME_DEAD |
                  STORE_HOME_STATISTICS | STORE_HOME_REGISTRY,
    .close = store_ch_close,
};

/* ---- configuration -------------------------------------------------------- */

/* Defaults and ranges are the table's (store_clickhouse.h), written once. */
static const config_var ch_vars[] = {CLICKHOUSE_CONFIG_VARS, CONFIG_END};

static int ch_config_urls(store_clickhouse *s) {
    const char *list = config_text(ch_vars, "CLICKHOUSE_URL");
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n && (*p == ' ')) p++, n--;
        while (n && p[n - 1] == ' ') n--;
        n = url_trim_len(p, n); /* no trailing '/': paths are joined with one */
        if (n) {
            if (s->nurls == CH_MAX_URLS) {
                log_error("CLICKHOUSE_URL: at most %d servers", CH_MAX_URLS);
                return -1;
            }
            if (!(s->urls[s->nurls] = strndup(p, n))) return -1;
            if (strncmp(s->urls[s->nurls], "http://", 7) != 0 && strncmp(s->urls[s->nurls], "https://", 8) != 0) {
                log_error("CLICKHOUSE_URL: %s is not an http(s):// URL", s->urls[s->nurls]);
                free(s->urls[s->nurls]);
                return -1;
            }
            s->nurls++;
        }
        p = comma ? comma + 1 : p + strlen(p);
    }
    if (s->nurls == 0) log_error("CLICKHOUSE_URL: no server given");
    return s->nurls ? 0 : -1;
}

static int ch_config(store_clickhouse *s) {
    long long timeout, ping, settle, quorum;
    if (ch_config_urls(s) != 0 || config_int(ch_vars, "CLICKHOUSE_TIMEOUT_MS", &timeout) ||
        config_int(ch_vars, "CLICKHOUSE_PING_INTERVAL_MS", &ping) ||
        config_int(ch_vars, "CLICKHOUSE_FEED_SETTLE_MS", &settle) || config_int(ch_vars, "CLICKHOUSE_INSERT_QUORUM", &quorum))
        return -1;
    s->quorum = (long)quorum;
    s->settle_ms = (long)settle;
    s->timeout_ms = (long)timeout;
    s->ping_ms = (long)ping;
    const char *db = config_text(ch_vars, "CLICKHOUSE_DATABASE");
    const char *cluster = config_text(ch_vars, "CLICKHOUSE_CLUSTER");
    if (!ch_ident_ok(db) || (cluster && !ch_ident_ok(cluster))) {
        log_error("CLICKHOUSE_%s: must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*, at most 64)",
                  ch_ident_ok(db) ? "CLUSTER" : "DATABASE");
        return -1;
    }
    s->db = strdup(db);
    s->cluster = cluster ? strdup(cluster) : NULL;
    const char *user = config_text(ch_vars, "CLICKHOUSE_USER");
    char *pass = config_secret("CLICKHOUSE_PASSWORD");
    size_t n = strlen(user) + (pass ? strlen(pass) : 0) + 2;
    s->userpwd = malloc(n);
    if (s->userpwd) snprintf(s->userpwd, n, "%s:%s", user, pass ? pass : "");
    free(pass);
    if (!s->db || (cluster && !s->cluster) || !s->userpwd) return -1;
    s->nstmts = ch_schema_statements(s->db, s->cluster, s->stmts, CH_MAX_STATEMENTS);
    return s->nstmts > 0 ? 0 : -1;
}

int store_clickhouse_open(struct event_base *base, store **out) {
    store_clickhouse *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->base.ops = &store_clickhouse_ops;
    s->evb = base;
    snprintf(s->last_error, sizeof s->last_error, "not connected yet");
    if (ch_config(s) != 0 || httpc_new(base, &s->http) != 0) {
        store_ch_close(&s->base);
        return -1;
    }
    s->ping_timer = event_new(base, -1, EV_PERSIST, ch_ping, s);
    struct timeval tv = {s->ping_ms / 1000, (s->ping_ms % 1000) * 1000};
    if (!s->ping_timer || event_add(s->ping_timer, &tv) != 0) {
        store_ch_close(&s->base);
        return -1;
    }
    log_info("clickhouse store: %s%s (%d server%s), database %s%s%s", s->urls[0], s->nurls > 1 ? ", ..." : "",
             s->nurls, s->nurls > 1 ? "s" : "", s->db, s->cluster ? ", cluster " : "", s->cluster ? s->cluster : "");
    if (ch_retention_new(base, &s->base, s->db, s->cluster, &s->retention) != 0 ||
        ch_stats_new(&s->base, s->db, &s->stats) != 0) {
        store_ch_close(&s->base);
        return -1;
    }
    ch_ping(-1, 0, s);
    *out = &s->base;
    return 0;
}
