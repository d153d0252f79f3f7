/* validate.c -- the validate stage; see validate.h for why it is one place. */
#include "validate.h"

#include "event.h"
#include "json_text.h"

#include <string.h>

/* Latest time we format: 9999-12-31T23:59:59.999999Z. */

/* One side of the dot: [a-z0-9_]+, no leading/trailing '_', no "__". */
static int validate_entity_part(const char *p, size_t n, const char **why) {
    if (n == 0) return *why = "empty domain or object id", -1;
    if (p[0] == '_' || p[n - 1] == '_') return *why = "leading or trailing underscore", -1;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return *why = "only lowercase a-z, 0-9 and _ are allowed", -1;
        if (c == '_' && i + 1 < n && p[i + 1] == '_') return *why = "double underscore", -1;
    }
    return 0;
}

int validate_entity_id(const char *s, size_t len, size_t *domain_len, const char **why) {
    if (len == 0) return *why = "empty", -1;
    if (len > VALIDATE_ENTITY_ID_MAX) return *why = "longer than 255 characters", -1;
    if (memchr(s, '\0', len)) return *why = "contains NUL", -1;
    const char *dot = memchr(s, '.', len);
    if (!dot) return *why = "no '.' between domain and object id", -1;
    size_t dlen = (size_t)(dot - s);
    if (memchr(dot + 1, '.', len - dlen - 1)) return *why = "more than one '.'", -1;
    if (validate_entity_part(s, dlen, why) || validate_entity_part(dot + 1, len - dlen - 1, why)) return -1;
    *domain_len = dlen;
    return 0;
}

/* state_changed needs a valid entity_id; other events keep one only if valid. */
static int validate_entity(const input_view *v, validate_result *out, enrich_reject *rej) {
    const json_t *e = v->entity_id;
    const char *why = NULL;
    if (!v->is_state_changed) {
        if (json_is_string(e) &&
            validate_entity_id(json_string_value(e), json_string_length(e), &out->domain_len, &why) == 0)
            out->entity_id = json_string_value(e);
        return 0;
    }
    if (!e || json_is_null(e)) return enrich_fail(rej, ENRICH_MISSING_ENTITY_ID, "state_changed without entity_id");
    if (!json_is_string(e)) return enrich_fail(rej, ENRICH_BAD_ENTITY_ID, "entity_id is not a string");
    if (validate_entity_id(json_string_value(e), json_string_length(e), &out->domain_len, &why))
        return enrich_fail(rej, ENRICH_BAD_ENTITY_ID, "entity_id \"%.*s\" is invalid: %s",
                           json_text_utf8_prefix(json_string_value(e), json_string_length(e), 100),
                           json_string_value(e), why);
    out->entity_id = json_string_value(e);
    return 0;
}

static int validate_time(const input_view *v, validate_result *out, enrich_reject *rej) {
    if (!v->time || json_is_null(v->time)) return enrich_fail(rej, ENRICH_MISSING_TIME, "missing %s", v->time_key);
    if (!json_is_string(v->time)) return enrich_fail(rej, ENRICH_BAD_TIME, "%s is not a string", v->time_key);
    const char *t = json_string_value(v->time);
    int tl = json_text_utf8_prefix(t, json_string_length(v->time), 64); /* quoted whole characters only */
    int64_t us;
    if (event_time_parse(t, &us) != 0)
        return enrich_fail(rej, ENRICH_BAD_TIME, "%s \"%.*s\" is not an RFC 3339 time", v->time_key, tl, t);
    if (us < 0 || us > EVENT_TIME_MAX_US)
        return enrich_fail(rej, ENRICH_BAD_TIME, "%s \"%.*s\" is out of range (1970..9999)", v->time_key, tl,
                           t);
    out->time_us = us;
    return 0;
}

int validate_event(const input_view *v, validate_result *out, enrich_reject *rej) {
    memset(out, 0, sizeof *out);
    return validate_entity(v, out, rej) || validate_time(v, out, rej) ? -1 : 0;
}
