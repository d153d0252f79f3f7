/* fuzz_storage_text.c -- data-storage's request path on arbitrary bodies: the
 * text path (store_text_prepare, no jansson tree) against the general path
 * (jansson as lib/httpd reads, event_unpack_batch, store_batch_prepare).
 * Whenever the text path builds a batch, the general path must accept the
 * body and build the same items: same stored text, identity, time, entity,
 * type, domain. Declining is always allowed. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "store.h"
#include "store_text.h"

static void die(const char *what, const uint8_t *d, size_t n) {
    fprintf(stderr, "storage text differential: %s\ninput (%zu bytes): %.*s\n", what, n, (int)(n > 600 ? 600 : n),
            (const char *)d);
    abort();
}

static int general(const char *body, size_t len, store_batch *b, json_t **tree) {
    json_t *events, *dead = NULL;
    const char *err;
    json_error_t e;
    *tree = NULL;
    if (memchr(body, '\0', len)) return -1; /* lib/httpd refuses it first */
    *tree = json_loadb(body, len, JSON_ALLOW_NUL, &e);
    if (!*tree && json_error_code(&e) == json_error_numeric_overflow)
        *tree = json_loadb(body, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
    if (!*tree) return -1;
    if (json_is_object(*tree)) dead = json_object_get(*tree, "dead_letters");
    if (dead && !json_is_array(dead)) return -1;
    if (dead && !json_object_get(*tree, "events")) events = json_array();
    else if (event_unpack_batch(*tree, &events, &err) != 0) return -1;
    int rc = store_batch_prepare(b, events, dead);
    json_decref(events);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *body = (const char *)data;
    store_batch t, g;
    int rc = store_text_prepare(body, size, 10000, &t);
    if (rc < 0) die("store_text_prepare failed", data, size);
    if (rc == 1) return 0;
    json_t *tree = NULL;
    memset(&g, 0, sizeof g);
    if (general(body, size, &g, &tree) != 0) die("text path built a body the general path refuses", data, size);
    if (t.nitems != g.nitems) die("item counts differ", data, size);
    for (size_t i = 0; i < t.nitems; i++) {
        const store_item *a = &t.items[i], *e = &g.items[i];
        if (e->status != STORE_ITEM_PENDING) die("text path accepted an item the general path rejects", data, size);
        if (a->json_len != e->json_len || strcmp(a->json, e->json) || strcmp(a->event_id, e->event_id) ||
            a->time_us != e->time_us || strcmp(a->event_type, e->event_type) || strcmp(a->domain, e->domain) ||
            (!a->entity_id != !e->entity_id) || (a->entity_id && strcmp(a->entity_id, e->entity_id)))
            die("items differ", data, size);
        record_fields scanned; /* the writer's members, noted during the walk = found in the stored text */
        if (!a->fields.noted || record_fields_scan(&scanned, e->json, e->json_len) != 0 ||
            memcmp(a->fields.off, scanned.off, sizeof scanned.off) || memcmp(a->fields.len, scanned.len, sizeof scanned.len))
            die("record fields differ", data, size);
    }
    store_batch_free(&t);
    store_batch_free(&g);
    json_decref(tree);
    return 0;
}
