/* delivery.c -- see delivery.h. The table below is the whole retry policy. */
#include "delivery.h"

#include "json_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

delivery_outcome delivery_classify(long status, const char *transport_error, size_t body_len) {
    if (status == 200) return DELIVERY_STORED;
    if (status == 0) {
        const char *e = transport_error ? transport_error : "";
        /* Refused connections, timeouts and cancels say nothing about the body. */
        int about_peer = strstr(e, "refused") || strstr(e, "time") || strstr(e, "cancel") ||
                         strstr(e, "resolve") || strstr(e, "to connect") || strstr(e, "create a connection") ||
                         strstr(e, "memory");
        return body_len >= DELIVERY_BIG_BODY && !about_peer ? DELIVERY_SUSPECT : DELIVERY_RETRY;
    }
    if (status == 408 || status == 429) return DELIVERY_RETRY; /* the peer's state, not the events */
    if (status >= 400 && status < 500) return DELIVERY_REFUSED;
    /* 5xx: down or overloaded; 1xx/3xx/other 2xx: a peer breaking the
     * contract; either way nothing is known to be kept. */
    return DELIVERY_RETRY;
}

int delivery_answer_status(delivery_outcome o) {
    switch (o) {
    case DELIVERY_STORED: return 200;
    case DELIVERY_RETRY: return 503;
    case DELIVERY_REFUSED:
    case DELIVERY_SUSPECT: return DELIVERY_REFUSED_STATUS;
    }
    return 503;
}

const char *delivery_outcome_name(delivery_outcome o) {
    switch (o) {
    case DELIVERY_STORED: return "stored";
    case DELIVERY_RETRY: return "retry";
    case DELIVERY_REFUSED: return "refused";
    case DELIVERY_SUSPECT: return "suspect";
    }
    return "?";
}

long delivery_backoff_ms(int failures, long min_ms, long max_ms) {
    if (min_ms < 1) min_ms = 1;
    if (max_ms < min_ms) max_ms = min_ms;
    long d = min_ms;
    for (int i = 1; i < failures && d < max_ms; i++) d *= 2;
    if (d > max_ms) d = max_ms;
    long j = d / 5;
    if (j > 0) d += (long)(random() % (2 * j + 1)) - j;
    return d > 0 ? d : 1;
}

/* FNV-1a over 8-byte words in four independent lanes (one multiply per 8 bytes, four
 * in flight), then the tail bytewise: a byte-at-a-time FNV cost ingestion 5 % of its CPU
 * per event (issue 15). Only ever compared with itself, within one process. */
uint64_t delivery_body_digest(const void *body, size_t len) {
    const unsigned char *u = body;
    const uint64_t prime = 1099511628211ull;
    uint64_t h[4] = {1469598103934665603ull, 0x9e3779b97f4a7c15ull, 0xc2b2ae3d27d4eb4full, 0x165667b19e3779f9ull};
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, u + i + 8 * k, 8);
            h[k] = (h[k] ^ w) * prime;
        }
    }
    uint64_t r = h[0];
    for (int k = 1; k < 4; k++) r = (r ^ h[k] ^ (h[k] >> 29)) * prime;
    for (; i < len; i++) r = (r ^ u[i]) * prime;
    return (r ^ (r >> 32) ^ len) * prime;
}

static delivery_cut_slot *delivery_cut_find(delivery_cuts *t, uint64_t digest, size_t len) {
    for (int i = 0; i < DELIVERY_CUT_SLOTS; i++)
        if (t->slot[i].len == len && t->slot[i].digest == digest && len) return &t->slot[i];
    return NULL;
}

delivery_outcome delivery_cut(delivery_cuts *t, uint64_t digest, size_t len, int peer_healthy) {
    delivery_cut_slot *s = delivery_cut_find(t, digest, len);
    if (!peer_healthy) return DELIVERY_RETRY; /* the peer was down anyway: says nothing about the body */
    if (!s) {
        for (int i = 0; i < DELIVERY_CUT_SLOTS && !s; i++)
            if (!t->slot[i].len) s = &t->slot[i];
        if (!s) s = &t->slot[t->next++ % DELIVERY_CUT_SLOTS];
        *s = (delivery_cut_slot){.digest = digest, .len = len ? len : 1, .strikes = 0};
    }
    if (++s->strikes < DELIVERY_SUSPECT_TRIES) return DELIVERY_RETRY;
    *s = (delivery_cut_slot){0};
    return DELIVERY_REFUSED;
}

void delivery_cut_clear(delivery_cuts *t, uint64_t digest, size_t len) {
    delivery_cut_slot *s = delivery_cut_find(t, digest, len);
    if (s) *s = (delivery_cut_slot){0};
}

/* raw as a JSON string: valid UTF-8 kept, everything else U+FFFD. */
static void delivery_raw_string(sbuf *out, const char *raw, size_t len) {
    static const char repl[] = "\xEF\xBF\xBD";
    const unsigned char *u = (const unsigned char *)raw;
    sbuf_addc(out, '"');
    size_t i = 0, run = 0;
    while (i < len) {
        unsigned char c = u[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            run++, i++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = json_text_utf8_len(u + i, len - i);
            if (n) {
                run += n, i += n;
                continue;
            }
        }
        sbuf_add(out, raw + i - run, run);
        run = 0;
        if (c == 0 || c >= 0x80) sbuf_add(out, repl, 3);
        else json_text_escape_char(out, c);
        i++;
    }
    sbuf_add(out, raw + i - run, run);
    sbuf_addc(out, '"');
}

void delivery_dead_letter(sbuf *out, const char *source, const char *reason, const char *raw, size_t len) {
    size_t keep = len;
    if (keep > DELIVERY_DEAD_RAW_MAX) keep = (size_t)json_text_utf8_prefix(raw, len, DELIVERY_DEAD_RAW_MAX);
    sbuf_adds(out, "{\"event_type\":\"" DELIVERY_DEAD_TYPE "\",\"source\":");
    delivery_raw_string(out, source, strlen(source));
    sbuf_adds(out, ",\"error\":");
    delivery_raw_string(out, reason, strlen(reason));
    sbuf_printf(out, ",\"event_bytes\":%zu,\"event_truncated\":%s,\"event\":", len, keep < len ? "true" : "false");
    delivery_raw_string(out, raw, keep);
    sbuf_addc(out, '}');
}
