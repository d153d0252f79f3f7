/* event.c -- see event.h. */
#include "event.h"

#include <ctype.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

int event_unpack_batch(json_t *body, json_t **events, const char **err) {
    if (json_is_array(body)) {
        *events = json_incref(body);
        return 0;
    }
    if (!json_is_object(body)) {
        *err = "body must be an event object, an array of events, or {\"events\":[...]}";
        return -1;
    }
    json_t *list = json_object_get(body, "events");
    if (list) {
        if (!json_is_array(list)) {
            *err = "\"events\" must be an array";
            return -1;
        }
        *events = json_incref(list);
        return 0;
    }
    *events = json_array();
    json_array_append(*events, body);
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t event_days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int event_digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int event_time_parse(const char *s, int64_t *us) {
    if (!s) return -1;
    const char *p = s;
    int Y, M, D, h, m, sec, frac_us = 0;
    if (event_digits(&p, 4, &Y) || *p++ != '-' || event_digits(&p, 2, &M) || *p++ != '-' ||
        event_digits(&p, 2, &D))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ') return -1;
    p++;
    if (event_digits(&p, 2, &h) || *p++ != ':' || event_digits(&p, 2, &m) || *p++ != ':' ||
        event_digits(&p, 2, &sec))
        return -1;
    if (*p == '.' || *p == ',') {
        p++;
        int n = 0;
        if (!isdigit((unsigned char)*p)) return -1;
        while (isdigit((unsigned char)*p)) {
            if (n < 6) frac_us = frac_us * 10 + (*p - '0');
            n++, p++;
        }
        if (n > 9) return -1;
        for (; n < 6; n++) frac_us *= 10;
    }
    int offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
        if (event_digits(&p, 2, &oh)) return -1;
        if (*p == ':') p++;
        if (*p && event_digits(&p, 2, &om)) return -1;
        if (oh > 23 || om > 59) return -1;
        offset_s = sign * (oh * 3600 + om * 60);
    }
    /* a time without offset is taken as UTC */
    if (*p) return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 || m > 59 || sec > 60) return -1;
    int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (M == 2 && D == 29 && !leap) return -1;
    int64_t days = event_days_from_civil(Y, (unsigned)M, (unsigned)D);
    int64_t t = days * 86400 + h * 3600 + m * 60 + sec - offset_s;
    *us = t * 1000000 + frac_us;
    return 0;
}

void event_time_format(int64_t us, char out[EVENT_TIME_LEN]) {
    int64_t secs = us / 1000000, frac = us % 1000000;
    if (frac < 0) frac += 1000000, secs--;
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) rem += 86400, days--;
    /* civil_from_days */
    int64_t z = days + 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = (int64_t)yoe + era * 400 + (m <= 2);
    if (y >= 0 && y <= 9999) { /* by hand: snprintf was most of the cost of a 10,000-row answer */
        int fields[] = {(int)(y / 100), (int)(y % 100), (int)m, (int)d, (int)(rem / 3600), (int)(rem % 3600 / 60),
                        (int)(rem % 60)};
        static const char seps[7] = {0, 0, '-', '-', 'T', ':', ':'}; /* before each field */
        char *p = out;
        for (int i = 0; i < 7; i++) {
            if (seps[i]) *p++ = seps[i];
            *p++ = (char)('0' + fields[i] / 10);
            *p++ = (char)('0' + fields[i] % 10);
        }
        *p++ = '.';
        for (int i = 5; i >= 0; i--, frac /= 10) p[i] = (char)('0' + frac % 10);
        memcpy(p + 6, "Z", 2);
        return;
    }
    char buf[96];
    snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02d.%06lldZ", (long long)y, m, d, (int)(rem / 3600),
             (int)(rem % 3600 / 60), (int)(rem % 60), (long long)frac);
    size_t n = strnlen(buf, EVENT_TIME_LEN - 1);
    memcpy(out, buf, n);
    out[n] = '\0';
}

static const char *event_str_or_empty(const json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

int event_identity(const json_t *record, char out[EVENT_ID_LEN]) {
    const char *tf = json_string_value(json_object_get(record, "time_fired"));
    if (!tf) return -1;
    return event_identity_parts(event_str_or_empty(record, "event_type"), event_str_or_empty(record, "entity_id"), tf,
                                event_str_or_empty(record, "context_id"), out);
}

static int event_identity_hash(const char *event_type, const char *entity_id, const char *time_fired,
                               const char *context_id, char out[EVENT_ID_LEN]);

int event_identity_state_changed(const char *entity_id, int64_t time_us, char out[EVENT_ID_LEN]) {
    char tf[EVENT_TIME_LEN];
    event_time_format(time_us, tf);
    return event_identity_hash("state_changed", entity_id, tf, "", out);
}

int event_identity_parts(const char *event_type, const char *entity_id, const char *time_fired,
                         const char *context_id, char out[EVENT_ID_LEN]) {
    if (strcmp(event_type, "state_changed") == 0) {
        int64_t us;
        if (event_time_parse(time_fired, &us) != 0) return -1;
        return event_identity_state_changed(entity_id, us, out);
    }
    return event_identity_hash(event_type, entity_id, time_fired, context_id, out);
}

int event_time_from_epoch(double epoch_s, int64_t *us) {
    /* 253402300800 = 10000-01-01: the range event_time_format writes */
    if (!isfinite(epoch_s) || epoch_s < 0 || epoch_s >= 253402300800.0) return -1;
    double ip, fp = modf(epoch_s, &ip);
    fp = nearbyint(fp * 1e6); /* the default rounding mode: half to even, as _PyTime_RoundHalfEven */
    if (fp >= 1e6) {
        fp -= 1e6;
        ip += 1.0;
    }
    *us = (int64_t)ip * 1000000 + (int64_t)fp;
    return 0;
}

/* An identity's text: the first 16 bytes of its digest in lowercase hex. */
static void event_id_hex(const unsigned char *md, char out[EVENT_ID_LEN]) {
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[32] = '\0';
}

static int event_identity_hash(const char *event_type, const char *entity_id, const char *time_fired,
                               const char *context_id, char out[EVENT_ID_LEN]) {
    const char *parts[4] = {event_type, entity_id, time_fired, context_id};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    /* Fetched once: OpenSSL 3 looks the algorithm up on every EVP_sha256()
     * init and allocates a context per call -- two thirds of the cost of an
     * identity, paid for every stored event. The processes are single-threaded
     * (one event loop); both live until exit. */
    static EVP_MD *sha256;
    static EVP_MD_CTX *ctx;
    if (!sha256) sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!ctx) ctx = EVP_MD_CTX_new();
    if (!sha256 || !ctx || !EVP_DigestInit_ex(ctx, sha256, NULL)) return -1;
    /* The parts joined in one buffer when they fit: one update instead of
     * eight (each update is a call through EVP's provider, ~250 instructions;
     * storage hashes every event it stores). Same bytes either way. */
    char joined[512];
    size_t n = 0;
    for (int i = 0; i < 4 && n <= sizeof joined; i++) {
        size_t len = strlen(parts[i]);
        if (len + 1 > sizeof joined - n) {
            n = sizeof joined + 1;
            break;
        }
        memcpy(joined + n, parts[i], len);
        n += len;
        joined[n++] = '\x1f';
    }
    if (n <= sizeof joined) {
        EVP_DigestUpdate(ctx, joined, n);
    } else {
        for (int i = 0; i < 4; i++) {
            /* a unit separator keeps ("a","bc") and ("ab","c") apart */
            EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]));
            EVP_DigestUpdate(ctx, "\x1f", 1);
        }
    }
    if (!EVP_DigestFinal_ex(ctx, md, &mdlen)) return -1;
    event_id_hex(md, out);
    return 0;
}

int event_home_is_default(const char *home) {
    return !home || !*home || strcmp(home, EVENT_HOME_DEFAULT) == 0;
}

int event_home_check(const char *home, char *err, size_t errlen) {
    size_t n = home ? strlen(home) : 0;
    if (n == 0 || n > EVENT_HOME_MAX) {
        snprintf(err, errlen, "home id must be 1 to %d characters", EVENT_HOME_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = home[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (alnum || (i > 0 && (c == '_' || c == '-'))) continue;
        snprintf(err, errlen, "home id: byte %zu is not allowed (lowercase a-z, 0-9, '_' and '-', starting with a letter "
                              "or digit)", i);
        return -1;
    }
    return 0;
}

int event_identity_home(const char *home, const char *v2, char out[EVENT_ID_LEN]) {
    if (event_home_is_default(home)) {
        if (out != v2) memmove(out, v2, EVENT_ID_LEN);
        return 0;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) && EVP_DigestUpdate(ctx, "\0home\x1f", 6) &&
             EVP_DigestUpdate(ctx, home, strlen(home)) && EVP_DigestUpdate(ctx, "\x1f", 1) &&
             EVP_DigestUpdate(ctx, v2, strnlen(v2, EVENT_ID_LEN - 1)) && EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    if (!ok || mdlen < 16) return -1;
    event_id_hex(md, out);
    return 0;
}

static int event_check_type(const json_t *rec, const char *key, int (*ok)(const json_t *), const char *what,
                            char *err, size_t errlen) {
    const json_t *v = json_object_get(rec, key);
    if (!v || json_is_null(v) || ok(v)) return 0;
    snprintf(err, errlen, "%s must be %s or null", key, what);
    return -1;
}

static int event_is_string(const json_t *v) { return json_is_string(v); }
static int event_is_number(const json_t *v) { return json_is_number(v); }
static int event_is_object(const json_t *v) { return json_is_object(v); }

int event_record_check(const json_t *record, char *err, size_t errlen) {
    if (!json_is_object(record)) {
        snprintf(err, errlen, "event must be a JSON object");
        return -1;
    }
    const char *type = json_string_value(json_object_get(record, "event_type"));
    if (!type || !*type) {
        snprintf(err, errlen, "missing event_type");
        return -1;
    }
    const json_t *tf = json_object_get(record, "time_fired");
    int64_t us;
    if (!tf) {
        snprintf(err, errlen, "missing time_fired");
        return -1;
    }
    if (!json_is_string(tf) || event_time_parse(json_string_value(tf), &us) != 0) {
        snprintf(err, errlen, "time_fired is not an RFC 3339 time");
        return -1;
    }
    const json_t *eid = json_object_get(record, "entity_id");
    if (eid && !json_is_null(eid) && (!json_is_string(eid) || json_string_length(eid) == 0)) {
        snprintf(err, errlen, "entity_id must be a non-empty string");
        return -1;
    }
    if ((!eid || json_is_null(eid)) && strcmp(type, "state_changed") == 0) {
        snprintf(err, errlen, "missing entity_id");
        return -1;
    }
    static const char *const strs[] = {"state", "old_state", "domain", "object_id", "origin", "context_id",
                                       "context_parent_id", "context_user_id", "unit_of_measurement",
                                       "device_class", "state_class", "friendly_name"};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (event_check_type(record, strs[i], event_is_string, "a string", err, errlen)) return -1;
    static const char *const nums[] = {"value", "old_value", "duration_in_state"};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if (event_check_type(record, nums[i], event_is_number, "a number", err, errlen)) return -1;
    if (event_check_type(record, "attributes", event_is_object, "an object", err, errlen)) return -1;
    if (event_check_type(record, "data", event_is_object, "an object", err, errlen)) return -1;
    return 0;
}

static int event_id_part_ok(const char *s, size_t n) {
    if (n == 0 || s[0] == '_' || s[n - 1] == '_') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return 0;
        if (c == '_' && i + 1 < n && s[i + 1] == '_') return 0;
    }
    return 1;
}

int event_entity_split(const char *entity_id, char *domain, size_t dlen, const char **object_id) {
    if (!entity_id) return -1;
    const char *dot = strchr(entity_id, '.');
    if (!dot || strchr(dot + 1, '.')) return -1;
    size_t n = (size_t)(dot - entity_id);
    if (!event_id_part_ok(entity_id, n) || !event_id_part_ok(dot + 1, strlen(dot + 1))) return -1;
    if (n >= dlen) return -1;
    memcpy(domain, entity_id, n);
    domain[n] = '\0';
    *object_id = dot + 1;
    return 0;
}
