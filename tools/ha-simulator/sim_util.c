/* sim_util.c -- string buffers, deterministic randomness, HA time and ULID
 * formatting for the simulator.
 *
 * Why hand-rolled: events are built with snprintf templates rather than
 * jansson trees so one core can push tens of thousands of events a second;
 * these helpers are the pieces those templates need. */
#include "sim.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>
#include <stdio.h>

int simbuf_reserve(simbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int simbuf_add(simbuf *b, const void *data, size_t n)
{
    if (simbuf_reserve(b, n) != 0) return -1;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int simbuf_adds(simbuf *b, const char *s) { return simbuf_add(b, s, strlen(s)); }

int simbuf_printf(simbuf *b, const char *fmt, ...)
{
    va_list ap;
    if (simbuf_reserve(b, 256) != 0) return -1;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    if ((size_t)n >= b->cap - b->len) {
        if (simbuf_reserve(b, (size_t)n) != 0) return -1;
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return 0;
}

int simbuf_add_jstr(simbuf *b, const char *s)
{
    if (simbuf_reserve(b, strlen(s) + 2) != 0) return -1;
    b->p[b->len++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            if (simbuf_add(b, e, 2) != 0) return -1;
        } else if (*p < 0x20) {
            if (simbuf_printf(b, "\\u%04x", *p) != 0) return -1;
        } else {
            if (simbuf_add(b, p, 1) != 0) return -1;
        }
    }
    return simbuf_add(b, "\"", 1);
}

int simbuf_state_head(simbuf *b, const char *entity_id, const char *skey, const char *state, const char *akey,
                      const char *attrs_json)
{
    if (simbuf_adds(b, "{\"entity_id\":") || simbuf_add_jstr(b, entity_id)) return -1;
    if (simbuf_printf(b, ",\"%s\":", skey) || simbuf_add_jstr(b, state)) return -1;
    if (simbuf_printf(b, ",\"%s\":", akey)) return -1;
    return simbuf_adds(b, attrs_json);
}

void simbuf_free(simbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

void sim_seed(uint64_t seed) { rng_state = seed ? seed * 0x9E3779B97F4A7C15ull : 0x9E3779B97F4A7C15ull; }

uint64_t sim_rand(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

double sim_rand01(void) { return (double)(sim_rand() >> 11) / 9007199254740992.0; }

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* 48-bit millisecond time + 80 random bits; the low 32 bits of the random
 * part are a process-wide counter, so ids are unique even with a fixed seed. */
void sim_ulid(long long ts_us, char out[27])
{
    static uint32_t counter;
    uint64_t ms = (uint64_t)(ts_us / 1000);
    for (int i = 9; i >= 0; i--) {
        out[i] = crockford[ms & 31];
        ms >>= 5;
    }
    uint64_t hi = sim_rand() & 0xFFFFFFFFFFull;          /* 40 bits */
    uint64_t lo = ((sim_rand() & 0xFFull) << 32) | ++counter; /* 40 bits */
    for (int i = 17; i >= 10; i--) {
        out[i] = crockford[hi & 31];
        hi >>= 5;
    }
    for (int i = 25; i >= 18; i--) {
        out[i] = crockford[lo & 31];
        lo >>= 5;
    }
    out[26] = '\0';
}

void sim_isotime(long long ts_us, char out[40])
{
    time_t sec = (time_t)(ts_us / 1000000);
    int us = (int)(ts_us % 1000000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char buf[128];
    if (us)
        snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, us);
    else
        snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d+00:00", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    size_t n = strnlen(buf, 39);
    memcpy(out, buf, n);
    out[n] = '\0';
}

void sim_epoch_float(long long ts_us, char out[32])
{
    int n = snprintf(out, 32, "%lld.%06lld", ts_us / 1000000, ts_us % 1000000);
    while (n > 0 && out[n - 1] == '0') out[--n] = '\0';
    if (out[n - 1] == '.') {
        out[n++] = '0';
        out[n] = '\0';
    }
}

/* CPython's datetime.fromtimestamp(f, UTC).microsecond, which is how HA turns
 * the float from time.time() into the ISO last_updated it fires
 * (_PyTime_DoubleToDenominator: modf, fraction * 1e6 in double arithmetic,
 * round half to even). The simulator derives its ISO times from its floats
 * this way so that its two representations disagree exactly as HA's do. */
long long sim_py_us(double epoch_s)
{
    double ip, fp = modf(epoch_s, &ip);
    fp = nearbyint(fp * 1e6);
    if (fp >= 1e6) {
        fp -= 1e6;
        ip += 1.0;
    } else if (fp < 0) {
        fp += 1e6;
        ip -= 1.0;
    }
    return (long long)ip * 1000000 + (long long)fp;
}

/* repr(float): the shortest digits that read back as the same double. */
void sim_pyfloat(double v, char out[32])
{
    for (int p = 10; p <= 17; p++) {
        snprintf(out, 32, "%.*g", p, v);
        if (strtod(out, NULL) == v) break;
    }
    if (!strpbrk(out, ".en")) strncat(out, ".0", 31 - strlen(out));
}
