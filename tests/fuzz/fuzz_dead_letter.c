/* fuzz_dead_letter.c -- lib/delivery's dead letter on arbitrary raw bytes and
 * reasons: always JSON that the strictest jansson reads (no NUL, valid UTF-8)
 * and jscan_strict accepts, keeping at most DELIVERY_DEAD_RAW_MAX bytes and
 * the exact size. A dead letter that could itself be refused would put the
 * event back in the line (issue 14). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "json_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t rl = size ? data[0] % 64 : 0;
    if (rl > size - (size ? 1 : 0)) rl = size ? size - 1 : 0;
    char reason[80];
    memcpy(reason, data + (size ? 1 : 0), rl);
    reason[rl] = '\0'; /* may be cut short by a NUL inside: fine */
    const char *raw = (const char *)data + (size ? 1 : 0) + rl;
    size_t n = size - (size ? 1 : 0) - rl;
    sbuf b;
    sbuf_init(&b);
    delivery_dead_letter(&b, "fuzz", reason, raw, n);
    if (sbuf_failed(&b)) abort();
    json_error_t e;
    json_t *j = json_loadb(b.data, b.len, 0, &e);
    if (!j || jscan_strict(b.data, b.len, NULL, NULL) != 0) abort();
    if ((size_t)json_integer_value(json_object_get(j, "event_bytes")) != n) abort();
    if (json_string_length(json_object_get(j, "event")) > 3 * DELIVERY_DEAD_RAW_MAX) abort();
    json_decref(j);
    sbuf_free(&b);
    return 0;
}
