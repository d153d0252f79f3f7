/* fuzz_influx_feed.c -- the feed's reader (influx_feed.c) on arbitrary /query
 * answers: homeiq_feed is a measurement anyone with write access to the
 * database can put points in, and the tail, the restore and the statistics'
 * recovery read it back. Each row of the answer (influx_answer_walk) goes
 * through influx_feed_row in both orders and influx_feed_head_row; what the
 * readers rely on must hold for any input: entries come with a positive
 * sequence above `after`, strictly increasing (decreasing when reversed),
 * every entry within the row's reported highest sequence, each event_id a
 * NUL-terminated string. Never a crash, a leak or an out-of-bounds read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "influx_answer.h"
#include "influx_feed.h"

typedef struct ff_state {
    int reverse;
    int64_t after, prev, max;
    int n;
} ff_state;

static int ff_entry(const influx_feed_entry *e, void *arg) {
    ff_state *st = arg;
    if (e->seq <= st->after) abort();
    if (st->n && (st->reverse ? e->seq >= st->prev : e->seq <= st->prev)) abort();
    if (e->event_id) (void)strlen(e->event_id);
    const char *texts[] = {e->entity_id, e->domain, e->event_type, e->area, e->home};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        if (texts[i]) (void)strlen(texts[i]);
    st->prev = e->seq;
    if (e->seq > st->max) st->max = e->seq;
    st->n++;
    return 0;
}

static int ff_row(const influx_answer_row *row, void *arg) {
    (void)arg;
    (void)influx_feed_head_row(row);
    for (int reverse = 0; reverse < 2; reverse++) {
        int64_t afters[] = {0, 1000};
        for (size_t a = 0; a < 2; a++) {
            ff_state st = {.reverse = reverse, .after = afters[a]};
            int64_t last = 0;
            if (influx_feed_row(row, st.after, reverse, ff_entry, &st, &last) < 0) continue; /* out of memory */
            if (st.n && st.max > last) abort(); /* every entry within the row's highest sequence */
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    (void)influx_answer_walk((const char *)data, size, -1, ff_row, NULL, err, sizeof err);
    return 0;
}
