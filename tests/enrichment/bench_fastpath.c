/* bench_fastpath.c -- CPU cost of enriching one request body, jansson path vs
 * fast path, without sockets (for callgrind / perf; not a test).
 * Usage: bench_fastpath jansson|fast FILE [REPEAT]   (TZ as the service uses it) */
#include "batch.h"
#include "event.h"
#include "fastpath.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s jansson|fast FILE [REPEAT]\n", argv[0]);
        return 2;
    }
    int fast = strcmp(argv[1], "fast") == 0, repeat = argc > 3 ? atoi(argv[3]) : 1;
    FILE *fp = fopen(argv[2], "rb");
    if (!fp) return 2;
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *body = malloc((size_t)len + 1);
    if (!body || fread(body, 1, (size_t)len, fp) != (size_t)len) return 2;
    fclose(fp);
    tzset();
    size_t events = 0, out = 0, nfast = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    for (int r = 0; r < repeat; r++) {
        batch b;
        if (!fast || fastpath_build(body, (size_t)len, 1000000, &b) != FASTPATH_BUILT) {
            json_error_t e;
            json_t *v = json_loadb(body, (size_t)len, JSON_ALLOW_NUL, &e), *list;
            const char *err;
            if (!v || event_unpack_batch(v, &list, &err) || batch_build(list, &b)) return 1;
            json_decref(v);
            json_decref(list);
        }
        size_t n;
        char *text = batch_storage_body(&b, &n);
        events += b.n;
        nfast += b.fast;
        out += n;
        free(text);
        batch_free(&b);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%s: %zu events (%zu fast), %.2f us/event, %zu bytes out\n", argv[1], events, nfast, s * 1e6 / (double)events,
           out);
    free(body);
    return 0;
}
