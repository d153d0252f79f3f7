/* fuzz_spool_recovery.c -- the spool opened on arbitrary segment bytes: never
 * a crash, every record handed over passes its CRC (re-checked here from the
 * file), and the records come back in order with consecutive numbers. The
 * input is split: byte 0 picks how many segment files (1-3) share the rest. */
#include <dirent.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "spool.h"

static char dir[64];

typedef struct seen {
    uint64_t next;
    size_t n;
    int bad;
} seen;

static void rec_cb(uint64_t seq, const char *data, size_t len, void *arg) {
    seen *s = arg;
    if (s->n && seq < s->next) s->bad = 1; /* increasing; gaps after corruption are fine */
    s->next = seq + 1;
    s->n++;
    if (len > SPOOL_MAX_RECORD) s->bad = 1;
    /* the 8-byte header sits right before the payload in the reader's buffer */
    const unsigned char *h = (const unsigned char *)data - SPOOL_RECORD_HEADER;
    uint32_t l = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
    uint32_t c = (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 24;
    if (l != len || crc32c_update(crc32c_update(0, h, 4), data, len) != c) s->bad = 1;
}

/* Empties and removes dir (no subdirectories in a spool). */
static void clean(void) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int inited;
    if (!inited) {
        setenv("LOG_LEVEL", "error", 1);
        log_init("fuzz");
        inited = 1;
    }
    snprintf(dir, sizeof dir, "/tmp/homeiq-fuzz-spool.%d", (int)getpid());
    clean();
    if (mkdir(dir, 0700) != 0) abort();
    size_t nseg = size ? (size_t)(data[0] % 3) + 1 : 1;
    const uint8_t *p = size ? data + 1 : data;
    size_t left = size ? size - 1 : 0, per = left / nseg;
    for (size_t i = 0; i < nseg; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%020zu.seg", dir, i * 1000000); /* no overlap: <= 8192 records each */
        FILE *f = fopen(path, "wb");
        size_t n = i == nseg - 1 ? left - per * i : per;
        /* a valid magic most of the time, so the records are reached */
        if (!(n && p[0] == 'X')) fwrite("HIQSPL1\n", 1, 8, f);
        fwrite(p + per * i, 1, n, f);
        fclose(f);
    }
    struct event_base *base = event_base_new();
    spool_opts o = {.dir = dir, .fsync_ms = 0};
    spool *sp = NULL;
    if (spool_open(base, &o, &sp) == 0) {
        seen s = {0};
        size_t n;
        for (int k = 0; k < 64; k++) {
            int rc = spool_read(sp, 1000, 1u << 20, rec_cb, &s, &n);
            if (rc != 0 || n == 0) break;
        }
        if (s.bad) abort();
        spool_append(sp, "{\"a\":1}", 7, NULL);
        spool_sync(sp);
        spool_close(sp);
    }
    event_base_free(base);
    clean();
    return 0;
}
