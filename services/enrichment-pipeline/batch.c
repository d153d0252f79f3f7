/* batch.c -- see batch.h. */
#include "batch.h"
#include "delivery.h"
#include "json_text.h"
#include "log.h"
#include "sbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_SOURCE "enrichment-pipeline"

void batch_free(batch *b) {
    sbuf_free(&b->records);
    sbuf_free(&b->dead_letters);
    json_decref(b->rejected);
    free(b->record_input);
    free(b->reject_reason);
    memset(b, 0, sizeof *b);
}

/* Remembers the reason of the entry about to be appended to b->rejected. 0/-1. */
static int batch_note_reason(batch *b, int reason) {
    size_t n = json_array_size(b->rejected);
    if (n == b->reject_cap) {
        size_t cap = b->reject_cap ? 2 * b->reject_cap : 16;
        unsigned char *m = realloc(b->reject_reason, cap);
        if (!m) return -1;
        b->reject_reason = m;
        b->reject_cap = cap;
    }
    b->reject_reason[n] = (unsigned char)reason;
    return 0;
}

void batch_log_rejects(const batch *b) {
    size_t i;
    const json_t *r;
    json_array_foreach(b->rejected, i, r) {
        if (i >= b->reject_cap || !b->reject_reason[i]) continue;
        /* The message quotes the event (an entity id...): log.c escapes it, so it cannot forge a line. */
        log_warn("event %lld dead-lettered (%s): %s", (long long)json_integer_value(json_object_get(r, "index")),
                 enrich_reason_label((enrich_reason)b->reject_reason[i]),
                 json_string_value(json_object_get(r, "error")));
    }
}

/* The raw event goes to the dead-letter store as received, with the reason. */
static int batch_reject(batch *b, size_t index, const json_t *raw, const enrich_reject *rej) {
    b->reasons[rej->reason]++;
    if (batch_note_reason(b, rej->reason)) return -1;
    json_t *dl = json_pack("{s:s, s:O, s:s}", "error", rej->message, "event", raw, "source", BATCH_SOURCE);
    json_t *r = json_pack("{s:I, s:s}", "index", (json_int_t)index, "error", rej->message);
    if (!dl || !r || json_array_append_new(b->rejected, r)) {
        json_decref(dl);
        return -1; /* append_new released what it was given */
    }
    if (b->dead_letters.len) sbuf_addc(&b->dead_letters, ',');
    json_text_dump(dl, &b->dead_letters);
    json_decref(dl);
    return sbuf_failed(&b->dead_letters) ? -1 : 0;
}

/* The records are written after room for the storage body's head, so the
 * body is made from them by appending only (batch_take_storage_body). */
static const char batch_head[] = "{\"events\":[";
#define BATCH_HEAD_LEN (sizeof batch_head - 1)

int batch_init(batch *b, size_t n) {
    memset(b, 0, sizeof *b);
    b->n = n;
    sbuf_init(&b->records);
    sbuf_add(&b->records, batch_head, BATCH_HEAD_LEN);
    sbuf_init(&b->dead_letters);
    b->rejected = json_array();
    b->record_cap = n ? n : 64;
    b->record_input = malloc(b->record_cap * sizeof *b->record_input);
    if (!b->rejected || !b->record_input || sbuf_failed(&b->records)) {
        batch_free(b);
        return -1;
    }
    return 0;
}

void batch_begin_record(batch *b, size_t index) {
    if (b->nrecords == b->record_cap) { /* the fast path counts events as it reads them */
        size_t *m = realloc(b->record_input, 2 * b->record_cap * sizeof *m);
        if (!m) {
            b->records.failed = 1; /* out of memory, as an sbuf says it */
            return;
        }
        b->record_input = m;
        b->record_cap *= 2;
    }
    if (b->nrecords) sbuf_addc(&b->records, ',');
    b->record_input[b->nrecords++] = index;
}

/* A dead letter made upstream (lib/delivery: websocket-ingestion refused the
 * event, or downstream refused it for good) is passed on as a dead letter:
 * its reason and raw text, never validated as an event (it is not one). */
static int batch_upstream_dead(batch *b, size_t index, const json_t *raw) {
    const char *err = json_string_value(json_object_get(raw, "error"));
    const char *src = json_string_value(json_object_get(raw, "source"));
    const json_t *ev = json_object_get(raw, "event");
    json_t *dl = json_pack("{s:s, s:O, s:s, s:O}", "error", err ? err : "dead letter without a reason", "event",
                           ev ? ev : json_null(), "source", src ? src : "unknown", "event_bytes",
                           json_object_get(raw, "event_bytes") ? json_object_get(raw, "event_bytes") : json_null());
    json_t *r = json_pack("{s:I, s:s}", "index", (json_int_t)index, "error", err ? err : "dead letter");
    if (batch_note_reason(b, 0)) {
        json_decref(dl);
        json_decref(r);
        return -1;
    }
    if (!dl || !r || json_array_append_new(b->rejected, r)) {
        json_decref(dl);
        return -1;
    }
    if (b->dead_letters.len) sbuf_addc(&b->dead_letters, ',');
    json_text_dump(dl, &b->dead_letters);
    json_decref(dl);
    return sbuf_failed(&b->dead_letters) ? -1 : 0;
}

int batch_add_event(batch *b, size_t index, const json_t *raw) {
    json_t *record;
    enrich_reject rej;
    const char *type = json_string_value(json_object_get(raw, "event_type"));
    if (type && !strcmp(type, DELIVERY_DEAD_TYPE)) return batch_upstream_dead(b, index, raw);
    if (enrich_event(raw, &record, &rej) != 0) return batch_reject(b, index, raw, &rej);
    batch_begin_record(b, index);
    json_text_dump(record, &b->records);
    json_decref(record);
    return sbuf_failed(&b->records) ? -1 : 0;
}

int batch_build(const json_t *events, batch *b) {
    if (batch_init(b, json_array_size(events))) return -1;
    for (size_t i = 0; i < b->n; i++) {
        if (batch_add_event(b, i, json_array_get(events, i))) {
            batch_free(b);
            return -1;
        }
    }
    return 0;
}

/* json_text rather than json_dumps: a third of the CPU for the same values
 * (storage stores its own canonical text of each record either way). */
char *batch_storage_body(const batch *b, size_t *len) {
    sbuf out;
    sbuf_init(&out);
    sbuf_reserve(&out, b->records.len + b->dead_letters.len + 40); /* one allocation, no doubling copies */
    sbuf_add(&out, b->records.data ? b->records.data : batch_head, b->records.data ? b->records.len : BATCH_HEAD_LEN);
    sbuf_adds(&out, "],\"dead_letters\":[");
    sbuf_add(&out, b->dead_letters.data ? b->dead_letters.data : "", b->dead_letters.len);
    sbuf_adds(&out, "]}");
    return sbuf_take(&out, len);
}

char *batch_take_storage_body(batch *b, size_t *len) {
    sbuf *r = &b->records; /* no second buffer: the records already follow the head */
    if (!r->data || sbuf_reserve(r, b->dead_letters.len + 24) != 0) return NULL;
    sbuf_adds(r, "],\"dead_letters\":[");
    sbuf_add(r, b->dead_letters.data ? b->dead_letters.data : "", b->dead_letters.len);
    sbuf_adds(r, "]}");
    sbuf_free(&b->dead_letters);
    if (sbuf_failed(r)) return NULL;
    return sbuf_take(r, len);
}

typedef struct batch_reject_entry {
    size_t index;
    const char *error;
} batch_reject_entry;

static int batch_entry_cmp(const void *a, const void *b) {
    size_t x = ((const batch_reject_entry *)a)->index, y = ((const batch_reject_entry *)b)->index;
    return x < y ? -1 : x > y;
}

/* Storage's rejects (indexes into its "events") as input positions. */
static int batch_storage_rejects(const batch *b, const json_t *rejected, batch_reject_entry *out, size_t *n,
                                 char *err, size_t errlen) {
    size_t i;
    json_t *r;
    json_array_foreach(rejected, i, r) {
        json_t *idx = json_object_get(r, "index");
        const char *msg = json_string_value(json_object_get(r, "error"));
        json_int_t j = json_integer_value(idx);
        if (!json_is_integer(idx) || j < 0 || (size_t)j >= b->nrecords) {
            snprintf(err, errlen, "storage answered a reject with a bad index");
            return -1;
        }
        out[(*n)++] = (batch_reject_entry){b->record_input[j], msg ? msg : "rejected by data-storage"};
    }
    return 0;
}

/* Merges our rejects with storage's, sorted by input position. */
static json_t *batch_merged_rejects(const batch *b, const json_t *storage_rejected, char *err, size_t errlen) {
    size_t total = json_array_size(b->rejected) + json_array_size(storage_rejected), n = 0, i;
    batch_reject_entry *all = malloc((total ? total : 1) * sizeof *all);
    if (!all) return NULL;
    json_t *r;
    json_array_foreach(b->rejected, i, r) {
        all[n++] = (batch_reject_entry){(size_t)json_integer_value(json_object_get(r, "index")),
                                        json_string_value(json_object_get(r, "error"))};
    }
    if (batch_storage_rejects(b, storage_rejected, all, &n, err, errlen)) {
        free(all);
        return NULL;
    }
    qsort(all, n, sizeof *all, batch_entry_cmp);
    json_t *out = json_array();
    for (i = 0; out && i < n; i++)
        json_array_append_new(out, json_pack("{s:I, s:s}", "index", (json_int_t)all[i].index, "error", all[i].error));
    free(all);
    return out;
}

int batch_map_reply(const batch *b, const char *body, size_t len, json_t **reply, char *err, size_t errlen) {
    json_error_t je;
    json_t *ans = json_loadb(body ? body : "", len, 0, &je);
    *reply = NULL;
    if (!json_is_object(ans) || !json_is_true(json_object_get(ans, "success"))) {
        snprintf(err, errlen, "data-storage answered 200 without {\"success\":true}");
        json_decref(ans);
        return -1;
    }
    json_t *rejected = json_object_get(ans, "rejected");
    if (rejected && !json_is_array(rejected)) {
        snprintf(err, errlen, "data-storage's \"rejected\" is not an array");
        json_decref(ans);
        return -1;
    }
    json_t *merged = batch_merged_rejects(b, rejected, err, errlen);
    if (!merged) {
        json_decref(ans);
        return -1;
    }
    *reply = json_pack("{s:b, s:I, s:I, s:I, s:I, s:o}", "success", 1, "processed", (json_int_t)b->n, "stored",
                       json_integer_value(json_object_get(ans, "stored")), "duplicates",
                       json_integer_value(json_object_get(ans, "duplicates")), "dead_lettered",
                       json_integer_value(json_object_get(ans, "dead_lettered")), "rejected", merged);
    json_decref(ans);
    if (!*reply) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}
