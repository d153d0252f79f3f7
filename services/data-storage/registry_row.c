/* registry_row.c -- see registry_row.h. */
#include "registry_row.h"

#include "event.h"
#include "json_text.h"
#include "store.h"

#include <string.h>

void registry_context(sbuf *o, const record_fields *rf, const char *json) {
    for (int k = RF_CONTEXT_FIRST; k < RF_N; k++) {
        sbuf_adds(o, k > RF_CONTEXT_FIRST ? ",\"" : "{\"");
        sbuf_adds(o, record_fields_name(k));
        sbuf_adds(o, "\":");
        size_t n;
        const char *v = record_fields_at(rf, json, k, &n);
        if (v) sbuf_add(o, v, n);
        else sbuf_adds(o, k == RF_LABELS ? "[]" : "null");
    }
    sbuf_addc(o, '}');
}

void registry_row(sbuf *o, const char *entity_id, int64_t since_us, int64_t seen_us, const char *home,
                  const char *context, size_t context_len) {
    char since[EVENT_TIME_LEN], seen[EVENT_TIME_LEN];
    event_time_format(since_us, since);
    event_time_format(seen_us, seen);
    sbuf_adds(o, "{\"entity_id\":");
    json_text_string(o, entity_id ? entity_id : "", entity_id ? strlen(entity_id) : 0);
    sbuf_printf(o, ",\"since\":\"%s\",\"last_seen\":\"%s\"", since, seen);
    if (home && strcmp(home, EVENT_HOME_DEFAULT) != 0) { /* issue 18: another home's row says so, as its records do */
        sbuf_adds(o, ",\"" STORE_HOME_KEY "\":");
        json_text_string(o, home, strlen(home));
    }
    if (context && context_len > 2) {
        sbuf_addc(o, ',');
        sbuf_add(o, context + 1, context_len - 1); /* the context's members and its '}' */
    } else {
        sbuf_addc(o, '}');
    }
}
