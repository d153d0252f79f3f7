/* test_influx_pending.c -- the batches kept while an InfluxDB restore runs
 * (influx_pending.c) at unit level: a kept batch applied after the restore
 * gives the entity list exactly what the write path gives when it applies the
 * batch at once (influx_entities_apply); only stored items are kept; the
 * bound refuses a batch whole, and bounds batches of duplicates only. The integration side (a restore held at a
 * proxy while batches finish, a failed batch meanwhile) is
 * storage_influx_restore against a real influxd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "influx_pending.h"

#include <stdio.h>
#include <string.h>

#define NREC 6
static const char *records[NREC] = {
    "{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.a\",\"time_fired\":\"2025-04-01T10:00:01Z\",\"state\":\"21.5\",\"value\":21.5}",
    "{\"event_type\":\"state_changed\",\"entity_id\":\"light.b\",\"time_fired\":\"2025-04-01T10:00:02Z\",\"state\":\"on\",\"value\":1}",
    "{\"event_type\":\"call_service\",\"entity_id\":\"light.b\",\"time_fired\":\"2025-04-01T10:00:03Z\"}",
    "{\"event_type\":\"homeassistant_start\",\"time_fired\":\"2025-04-01T10:00:04Z\"}",
    "{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.a\",\"time_fired\":\"2025-04-01T10:00:00Z\",\"state\":\"19\",\"value\":19}",
    "{\"event_type\":\"state_changed\",\"entity_id\":\"sensor.a\",\"time_fired\":\"2025-04-01T10:00:05Z\",\"state\":\"22\",\"value\":22}",
};

typedef struct fixture {
    store_item items[NREC];
    json_t *hold[NREC];
    store_batch b;
} fixture;

static void fixture_init(fixture *fx, const char *home) {
    memset(fx, 0, sizeof *fx);
    for (int i = 0; i < NREC; i++) {
        const char *h;
        assert_int_equal(influx_record_item(records[i], &fx->items[i], &h, &fx->hold[i]), 0);
    }
    fx->items[4].status = STORE_ITEM_DUPLICATE; /* not stored: neither applied nor kept */
    fx->b.items = fx->items;
    fx->b.nitems = NREC;
    fx->b.stored = NREC - 1;
    snprintf(fx->b.home_id, sizeof fx->b.home_id, "%s", home);
}

static void fixture_free(fixture *fx) {
    for (int i = 0; i < NREC; i++) json_decref(fx->hold[i]);
}

static void assert_same_entities(const influx_entities *a, const influx_entities *b) {
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const influx_entity *x = &a->e[i], *y = &b->e[i];
        assert_string_equal(x->id, y->id);
        assert_string_equal(influx_entity_home(x), influx_entity_home(y));
        assert_string_equal(x->domain ? x->domain : "-", y->domain ? y->domain : "-");
        assert_int_equal(x->count, y->count);
        assert_int_equal(x->last_ns, y->last_ns);
        assert_int_equal(x->has_state, y->has_state);
        if (x->has_state) assert_string_equal(x->state, y->state);
        assert_int_equal(x->state_ns, y->state_ns);
        assert_int_equal(x->changed_ns, y->changed_ns);
        assert_int_equal(x->numeric, y->numeric);
        assert_int_equal(x->mixed, y->mixed);
    }
}

/* Kept, then applied: the same list as applying the batch at once, twice over (two batches, two homes). */
static void test_kept_equals_applied(void **state) {
    (void)state;
    fixture f1, f2;
    fixture_init(&f1, "");
    fixture_init(&f2, "cabin");
    influx_entities direct = {0}, kept = {0};
    influx_pending p = {0};
    fixture *fx[2] = {&f1, &f2};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < NREC; i++)
            if (fx[k]->items[i].status == STORE_ITEM_STORED)
                assert_true(influx_entities_apply(&direct, &fx[k]->items[i], fx[k]->b.home_id, 0) >= 0);
        influx_pending_batch marks = {.stored = 5, .dead = 1, .prev = 10 + k, .settled = 11 + k, .settle_ns = 99};
        assert_int_equal(influx_pending_add(&p, &fx[k]->b, &marks), 0);
    }
    assert_int_equal(p.nb, 2);
    assert_int_equal(p.nf, 10); /* 5 stored items each: the duplicate is not kept */
    for (size_t k = 0; k < p.nb; k++) {
        const influx_pending_batch *pb = &p.b[k];
        assert_int_equal(pb->prev, 10 + (int)k);
        assert_int_equal(pb->stored, 5);
        assert_string_equal(pb->home, k ? "cabin" : "");
        for (size_t i = pb->first; i < pb->first + pb->n; i++) {
            influx_fact f;
            influx_pending_fact_at(&p, i, &f);
            assert_true(influx_entities_apply_fact(&kept, &f, pb->home, 0) >= 0);
        }
    }
    assert_int_equal(direct.n, 4); /* sensor.a and light.b in two homes; the event without entity makes none */
    assert_same_entities(&direct, &kept);
    const influx_entity *a = influx_entities_find(&kept, "sensor.a", NULL);
    assert_non_null(a);
    assert_int_equal(a->count, 2);
    assert_string_equal(a->state, "22"); /* the 10:00:00 duplicate was not applied */
    influx_entities_clear(&direct);
    influx_entities_clear(&kept);
    influx_pending_clear(&p);
    fixture_free(&f1);
    fixture_free(&f2);
}

/* A batch that would pass INFLUX_PENDING_MAX is refused whole (the restore then reads the feed). */
static void test_bound(void **state) {
    (void)state;
    fixture fx;
    fixture_init(&fx, "");
    influx_pending p = {0};
    influx_pending_batch marks = {0};
    size_t adds = 0;
    while (p.nf + 5 <= INFLUX_PENDING_MAX) {
        assert_int_equal(influx_pending_add(&p, &fx.b, &marks), 0);
        adds++;
    }
    assert_int_equal(influx_pending_add(&p, &fx.b, &marks), 1);
    assert_int_equal(p.nb, adds);
    assert_int_equal(p.nf, adds * 5);
    influx_fact f; /* the first fact's strings survived every growth of the text */
    influx_pending_fact_at(&p, 0, &f);
    assert_string_equal(f.entity_id, "sensor.a");
    assert_string_equal(f.state, "21.5");
    influx_pending_fact_at(&p, p.nf - 1, &f);
    assert_string_equal(f.entity_id, "sensor.a");
    assert_string_equal(f.state, "22");
    influx_pending_clear(&p);
    assert_int_equal(p.nf, 0);
    fixture_free(&fx);
}

/* Batches of duplicates only keep no event, yet each is a kept batch: INFLUX_PENDING_MAX_BATCHES bounds them
 * (before, only events were counted, so such batches were kept without limit). */
static void test_bound_batches(void **state) {
    (void)state;
    fixture fx;
    fixture_init(&fx, "");
    for (int i = 0; i < NREC; i++) fx.items[i].status = STORE_ITEM_DUPLICATE;
    fx.b.stored = 0;
    influx_pending p = {0};
    influx_pending_batch marks = {0};
    for (size_t i = 0; i < INFLUX_PENDING_MAX_BATCHES; i++) assert_int_equal(influx_pending_add(&p, &fx.b, &marks), 0);
    assert_int_equal(influx_pending_add(&p, &fx.b, &marks), 1);
    assert_int_equal(p.nb, INFLUX_PENDING_MAX_BATCHES);
    assert_int_equal(p.nf, 0);
    influx_pending_clear(&p);
    fixture_free(&fx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kept_equals_applied),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_bound_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
