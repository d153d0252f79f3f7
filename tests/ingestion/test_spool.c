/* test_spool.c -- unit tests of the ingestion spool: append/read/ack, group
 * fsync, segment rotation and trimming, the full limit, torn-tail and
 * corruption handling on reopen, and the persisted ack cursor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "spool.h"

typedef struct fixture {
    char dir[256];
    struct event_base *base;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/homeiq-spool-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->base = event_base_new();
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    DIR *d = opendir(f->dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(f->dir);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* Runs the loop for `ms` milliseconds. */
static void run_loop_ms(fixture *f, int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
}

/* The number in the ack file, or -1 while there is none. */
static long long ack_file_value(const char *path) {
    FILE *fp = fopen(path, "r");
    unsigned long long v;
    int ok = fp && fscanf(fp, "%llu", &v) == 1;
    if (fp) fclose(fp);
    return ok ? (long long)v : -1;
}

static spool *open_spool(fixture *f, uint64_t max_bytes, uint64_t seg_bytes, long fsync_ms) {
    spool_opts o = {.dir = f->dir, .max_bytes = max_bytes, .segment_bytes = seg_bytes, .fsync_ms = fsync_ms};
    spool *s = NULL;
    assert_int_equal(spool_open(f->base, &o, &s), 0);
    return s;
}

/* Collects read records as "seq:payload" lines. */
typedef struct collected {
    uint64_t seqs[4096];
    char payload[4096][64];
    size_t n;
} collected;

static void collect_cb(uint64_t seq, const char *data, size_t len, void *arg) {
    collected *c = arg;
    assert_true(c->n < 4096);
    c->seqs[c->n] = seq;
    size_t l = len < 63 ? len : 63;
    memcpy(c->payload[c->n], data, l);
    c->payload[c->n][l] = '\0';
    c->n++;
}

static void append_n(spool *s, int from, int n) {
    char buf[64];
    for (int i = from; i < from + n; i++) {
        int l = snprintf(buf, sizeof buf, "{\"n\":%d}", i);
        assert_int_equal(spool_append(s, buf, (size_t)l, NULL), 0);
    }
}

static size_t read_all(spool *s, collected *c) {
    size_t n, total = 0;
    do {
        assert_int_equal(spool_read(s, 100, 1 << 20, collect_cb, c, &n), 0);
        total += n;
    } while (n > 0);
    return total;
}

static int count_segments(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".seg")) n++;
    closedir(d);
    return n;
}

static void last_segment_path(const char *dir, char *out, size_t len) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char best[300] = "";
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".seg") && strcmp(e->d_name, best) > 0) snprintf(best, sizeof best, "%s", e->d_name);
    closedir(d);
    snprintf(out, len, "%s/%s", dir, best);
}

static void test_crc32c_known_value(void **state) {
    (void)state;
    /* The standard check value of CRC-32C. */
    assert_int_equal(crc32c_update(0, "123456789", 9), 0xE3069283u);
    /* Incremental == one shot. */
    uint32_t c = crc32c_update(0, "12345", 5);
    assert_int_equal(crc32c_update(c, "6789", 4), 0xE3069283u);
}

static void test_append_read_in_order(void **state) {
    fixture *f = *state;
    spool *s = open_spool(f, 0, 0, 100);
    uint64_t seq;
    assert_int_equal(spool_append(s, "{\"a\":1}", 7, &seq), 0);
    assert_int_equal(seq, 0);
    append_n(s, 1, 9);
    /* Nothing readable before the write at the end of the loop turn. */
    collected *c = calloc(1, sizeof *c);
    size_t n;
    assert_int_equal(spool_read(s, 100, 1 << 20, collect_cb, c, &n), 0);
    assert_int_equal(n, 0);
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    assert_int_equal(read_all(s, c), 10);
    assert_string_equal(c->payload[0], "{\"a\":1}");
    assert_string_equal(c->payload[9], "{\"n\":9}");
    for (size_t i = 0; i < 10; i++) assert_int_equal(c->seqs[i], i);
    assert_int_equal(spool_unread(s), 0);
    spool_stats st;
    spool_get_stats(s, &st);
    assert_int_equal(st.next_seq, 10);
    assert_int_equal(st.read_seq, 10);
    assert_int_equal(st.acked_seq, 0);
    spool_close(s);
    free(c);
}

static void test_read_limits(void **state) {
    fixture *f = *state;
    spool *s = open_spool(f, 0, 0, 100);
    append_n(s, 0, 50);
    spool_sync(s);
    collected *c = calloc(1, sizeof *c);
    size_t n;
    assert_int_equal(spool_read(s, 7, 1 << 20, collect_cb, c, &n), 0);
    assert_int_equal(n, 7);
    /* The byte limit stops early but always gives at least one record. */
    assert_int_equal(spool_read(s, 100, 1, collect_cb, c, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(c->seqs[7], 7);
    spool_close(s);
    free(c);
}

static int durable_calls;
static uint64_t durable_last;
static int written_calls;
static void on_durable(uint64_t seq, void *arg) {
    (void)arg;
    durable_calls++;
    durable_last = seq;
}
static void on_written(void *arg) {
    (void)arg;
    written_calls++;
}

static void test_group_fsync_timer(void **state) {
    fixture *f = *state;
    spool *s = open_spool(f, 0, 0, 30);
    durable_calls = written_calls = 0;
    spool_set_listener(s, on_written, on_durable, NULL);
    append_n(s, 0, 500);
    spool_stats st;
    spool_get_stats(s, &st);
    assert_int_equal(st.durable_seq, 0);
    event_base_loop(f->base, EVLOOP_NONBLOCK); /* the write, no fsync yet */
    assert_int_equal(written_calls, 1);
    spool_get_stats(s, &st);
    assert_int_equal(st.written_seq, 500);
    assert_int_equal(st.durable_seq, 0);
    /* the group fsync: waited for (up to 10 s), not given a fixed window --
     * an fsync takes 37-75 ms here, more on a busy machine */
    for (int i = 0; i < 1000 && durable_calls == 0; i++) run_loop_ms(f, 10);
    spool_get_stats(s, &st);
    assert_int_equal(st.durable_seq, 500);
    assert_int_equal(st.fsyncs, 1); /* one fsync for the whole group */
    assert_int_equal(durable_calls, 1);
    assert_int_equal(durable_last, 500);
    spool_close(s);
}

static void test_reopen_resends_unacked(void **state) {
    fixture *f = *state;
    spool *s = open_spool(f, 0, 0, 100);
    append_n(s, 0, 20);
    spool_sync(s);
    collected *c = calloc(1, sizeof *c);
    assert_int_equal(read_all(s, c), 20);
    assert_int_equal(spool_ack(s, 12), 0);
    spool_close(s);

    s = open_spool(f, 0, 0, 100);
    spool_stats st;
    spool_get_stats(s, &st);
    assert_int_equal(st.next_seq, 20);
    assert_int_equal(st.acked_seq, 12);
    assert_int_equal(spool_unread(s), 8);
    memset(c, 0, sizeof *c);
    assert_int_equal(read_all(s, c), 8);
    assert_int_equal(c->seqs[0], 12);
    assert_string_equal(c->payload[0], "{\"n\":12}");
    /* New records continue the numbering. */
    uint64_t seq;
    assert_int_equal(spool_append(s, "{}", 2, &seq), 0);
    assert_int_equal(seq, 20);
    spool_close(s);
    free(c);
}

static void test_ack_clamped_to_read(void **state) {
    fixture *f = *state;
    spool *s = open_spool(f, 0, 0, 100);
    append_n(s, 0, 10);
    spool_sync(s);
    collected *c = calloc(1, sizeof *c);
    size_t n;
    assert_int_equal(spool_read(s, 4, 1 << 20, collect_cb, c, &n), 0);
    assert_int_equal(spool_ack(s, 100), 0);
    spool_stats st;
    spool_get_stats(s, &st);
    assert_int_equal(st.acked_seq, 4);
    spool_close(s);
    free(c);
}

static void test_torn_tail_detected_and_skipped(void **state) {
    fixture *f = *state;
    spool *s = open_spool(f, 0, 0, 100);
    append_n(s, 0, 5);
    spool_close(s);
    char path[512];
    last_segment_path(f->dir, path, sizeof path);
    struct stat st0;
    stat(path, &st0);
    /* A crash in the middle of a write: header of a 100-byte record, 10 bytes of it. */
    int fd = open(path, O_WRONLY | O_APPEND);
    unsigned char hdr[8] = {100, 0, 0, 0, 1, 2, 3, 4};
    assert_int_equal(write(fd, hdr, 8), 8);
    assert_int_equal(write(fd, "0123456789", 10), 10);
    close(fd);

    s = open_spool(f, 0, 0, 100);
    spool_stats st;
    spool_get_stats(s, &st);
    assert_int_equal(st.next_seq, 5);
    assert_int_equal(st.torn_bytes, 18);
    struct stat st1;
    stat(path, &st1);
    assert_int_equal(st1.st_size, st0.st_size); /* truncated back */
    append_n(s, 5, 2);
    spool_sync(s);
    collected *c = calloc(1, sizeof *c);
    assert_int_equal(read_all(s, c), 7);
    assert_string_equal(c->payload[5], "{\"n\":5}");
    assert_string_equal(c->payload[6], "{\"n\":6}");
    spool_close(s);
    free(c);
}

static void test_zeroed_tail_and_bad_crc(void **state) {
    fixture *f = *state;
    spool *s = open_spool(f, 0, 0, 100);
    append_n(s, 0, 6);
    spool_close(s);
    char path[512];
    last_segment_path(f->dir, path, sizeof path);
    /* Flip one payload byte of record 3 ("{"n":3}" = 7 bytes + 8 header each). */
    int fd = open(path, O_RDWR);
    off_t off = 8 + 3 * (8 + 7) + 8 + 5;
    char b = 'X';
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    /* And zeros after the end, as a file system may leave after a crash. */
    char zeros[64] = {0};
    struct stat st0;
    fstat(fd, &st0);
    assert_int_equal(pwrite(fd, zeros, sizeof zeros, st0.st_size), (ssize_t)sizeof zeros);
    close(fd);

    s = open_spool(f, 0, 0, 100);
    spool_stats st;
    spool_get_stats(s, &st);
    assert_int_equal(st.next_seq, 3); /* records 0..2 survive; nothing misread */
    collected *c = calloc(1, sizeof *c);
    assert_int_equal(read_all(s, c), 3);
    assert_string_equal(c->payload[2], "{\"n\":2}");
    spool_close(s);
    free(c);
}

static void test_segments_rotate_and_trim(void **state) {
    fixture *f = *state;
    spool *s = open_spool(f, 0, 64 * 1024, 100);
    char rec[1000];
    memset(rec, 'x', sizeof rec);
    for (int i = 0; i < 300; i++) assert_int_equal(spool_append(s, rec, sizeof rec, NULL), 0);
    spool_sync(s);
    int segs = count_segments(f->dir);
    assert_true(segs >= 4);
    collected *c = calloc(1, sizeof *c);
    size_t n, total = 0;
    do {
        assert_int_equal(spool_read(s, 50, 1 << 20, collect_cb, c, &n), 0);
        total += n;
        c->n = 0;
    } while (n > 0);
    assert_int_equal(total, 300);
    /* Acking a part deletes only whole segments below the cursor. */
    assert_int_equal(spool_ack(s, 100), 0);
    int after = count_segments(f->dir);
    assert_true(after < segs);
    assert_true(after >= segs - 2);
    spool_stats st;
    spool_get_stats(s, &st);
    assert_true(st.bytes < 300 * 1008);
    /* Acking everything leaves one (new) segment. */
    assert_int_equal(spool_ack(s, 300), 0);
    assert_int_equal(count_segments(f->dir), 1);
    spool_close(s);

    s = open_spool(f, 0, 64 * 1024, 100);
    spool_get_stats(s, &st);
    assert_int_equal(st.next_seq, 300);
    assert_int_equal(spool_unread(s), 0);
    spool_close(s);
    free(c);
}

static void test_read_across_segments_after_reopen(void **state) {
    fixture *f = *state;
    spool *s = open_spool(f, 0, 64 * 1024, 100);
    char rec[2000];
    for (int i = 0; i < 200; i++) {
        memset(rec, 'a' + (i % 26), sizeof rec);
        int l = snprintf(rec, 20, "%d;", i);
        rec[l] = 'x';
        assert_int_equal(spool_append(s, rec, sizeof rec, NULL), 0);
    }
    spool_sync(s);
    collected *c = calloc(1, sizeof *c);
    size_t n;
    assert_int_equal(spool_read(s, 70, 1 << 30, collect_cb, c, &n), 0);
    assert_int_equal(spool_ack(s, 70), 0);
    spool_close(s);
    s = open_spool(f, 0, 64 * 1024, 100);
    memset(c, 0, sizeof *c);
    assert_int_equal(read_all(s, c), 130);
    for (size_t i = 0; i < 130; i++) {
        char want[20];
        snprintf(want, sizeof want, "%zu;", i + 70);
        assert_memory_equal(c->payload[i], want, strlen(want));
        assert_int_equal(c->seqs[i], i + 70);
    }
    spool_close(s);
    free(c);
}

/* The oldest segment file of `dir` (names are the zero-padded first seq). */
static void first_segment_path(const char *dir, char *out, size_t len) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    char best[256] = "";
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".seg") && (!best[0] || strcmp(e->d_name, best) < 0)) snprintf(best, sizeof best, "%s", e->d_name);
    closedir(d);
    assert_true(best[0] != '\0');
    assert_true((size_t)snprintf(out, len, "%s/%.255s", dir, best) < len);
}

/* 200 records "i;xxxx" of 2000 bytes over 64 KiB segments (about 32 per segment). */
static void fill_segments(spool *s) {
    char rec[2000];
    for (int i = 0; i < 200; i++) {
        memset(rec, 'a' + (i % 26), sizeof rec);
        int l = snprintf(rec, 20, "%d;", i);
        rec[l] = 'x';
        assert_int_equal(spool_append(s, rec, sizeof rec, NULL), 0);
    }
    spool_sync(s);
}

/* Every delivered record is the one written under its seq: nothing shifted, nothing invented. */
static void assert_payloads_match_seqs(const collected *c, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char want[24];
        snprintf(want, sizeof want, "%llu;", (unsigned long long)c->seqs[i]);
        assert_memory_equal(c->payload[i], want, strlen(want));
        if (i) assert_true(c->seqs[i] > c->seqs[i - 1]);
    }
}

/* docs/SPOOL.md "Recovery on start": corruption in an OLDER segment (a closed,
 * fsync'ed one) is handled like a torn tail: the valid records before it are
 * kept, the rest of that segment is skipped (their seqs are not reused), and
 * every later segment is read intact. */
static void test_corrupt_record_in_older_segment(void **state) {
    fixture *f = *state;
    spool *s = open_spool(f, 0, 64 * 1024, 100);
    fill_segments(s);
    spool_close(s);
    assert_true(count_segments(f->dir) >= 4);
    char path[512];
    first_segment_path(f->dir, path, sizeof path);
    /* Flip a payload byte of the 11th record (magic + 10 records of 8 + 2000 bytes): its CRC fails. */
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t at = 8 + 10 * (8 + 2000) + 8 + 500;
    assert_int_equal(pwrite(fd, "#", 1, at), 1);
    close(fd);

    s = open_spool(f, 0, 64 * 1024, 100);
    collected *c = calloc(1, sizeof *c);
    size_t n = read_all(s, c);
    assert_payloads_match_seqs(c, n);
    assert_int_equal(c->seqs[0], 0);
    assert_int_equal(c->seqs[9], 9);      /* the records before the damage */
    assert_true(c->seqs[10] > 10);       /* the damaged one and the rest of its segment are skipped */
    assert_int_equal(c->seqs[n - 1], 199); /* every later segment intact, to the end */
    assert_true(n >= 200 - 32 && n < 200);
    /* new records follow the old numbering */
    append_n(s, 1000, 1);
    spool_sync(s);
    spool_stats st;
    spool_get_stats(s, &st);
    assert_int_equal(st.next_seq, 201);
    spool_close(s);
    free(c);
}

/* A segment whose magic is damaged is reset to an empty segment; the others are read intact. */
static void test_bad_header_in_older_segment(void **state) {
    fixture *f = *state;
    spool *s = open_spool(f, 0, 64 * 1024, 100);
    fill_segments(s);
    spool_close(s);
    char path[512];
    first_segment_path(f->dir, path, sizeof path);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "XXXXXXXX", 8, 0), 8);
    close(fd);

    s = open_spool(f, 0, 64 * 1024, 100);
    collected *c = calloc(1, sizeof *c);
    size_t n = read_all(s, c);
    assert_true(n > 0);
    assert_payloads_match_seqs(c, n);
    assert_true(c->seqs[0] > 0);           /* the first segment's records are gone (logged) */
    assert_int_equal(c->seqs[n - 1], 199); /* the later ones all delivered */
    assert_int_equal(n, 200 - c->seqs[0]);  /* ... without a gap after the reset segment */
    spool_close(s);
    free(c);
}

static void test_full_keeps_oldest(void **state) {
    fixture *f = *state;
    spool *s = open_spool(f, 256 * 1024, 0, 100);
    char rec[1000];
    memset(rec, 'y', sizeof rec);
    int ok = 0, rc;
    while ((rc = spool_append(s, rec, sizeof rec, NULL)) == 0) ok++;
    assert_int_equal(rc, SPOOL_EFULL);
    assert_true(ok > 200 && ok <= 260);
    spool_stats st;
    spool_get_stats(s, &st);
    assert_true(st.full);
    assert_true(st.bytes <= 256 * 1024);
    assert_false(spool_fits(s, 1, sizeof rec));
    spool_sync(s);
    /* The oldest record is still there. */
    collected *c = calloc(1, sizeof *c);
    size_t n;
    assert_int_equal(spool_read(s, 1, 1, collect_cb, c, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(c->seqs[0], 0);
    /* Reading and acking everything frees space again. */
    while (1) {
        c->n = 0;
        assert_int_equal(spool_read(s, 100, 1 << 20, collect_cb, c, &n), 0);
        if (!n) break;
    }
    assert_int_equal(spool_ack(s, (uint64_t)ok), 0);
    spool_get_stats(s, &st);
    assert_false(st.full);
    assert_int_equal(spool_append(s, rec, sizeof rec, NULL), 0);
    spool_close(s);
    free(c);
}

static void test_ack_cursor_survives_restart(void **state) {
    fixture *f = *state;
    spool *s = open_spool(f, 0, 0, 10);
    append_n(s, 0, 30);
    collected *c = calloc(1, sizeof *c);
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    assert_int_equal(read_all(s, c), 30);
    spool_ack(s, 25);
    /* Let the timer save the cursor (waited for: the ack file says 25), then
     * "crash": no spool_close. */
    char p[512];
    snprintf(p, sizeof p, "%s/ack", f->dir);
    for (int i = 0; i < 1000 && ack_file_value(p) != 25; i++) run_loop_ms(f, 10);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    unsigned long long v = 0;
    assert_int_equal(fscanf(fp, "%llu", &v), 1);
    fclose(fp);
    assert_int_equal(v, 25);
    spool_close(s);
    free(c);
}

static void test_second_opener_refused(void **state) {
    fixture *f = *state;
    spool *s = open_spool(f, 0, 0, 100);
    spool_opts o = {.dir = f->dir, .fsync_ms = 100};
    spool *s2 = NULL;
    assert_int_equal(spool_open(f->base, &o, &s2), -1);
    spool_close(s);
    assert_int_equal(spool_open(f->base, &o, &s2), 0);
    spool_close(s2);
}

static void test_big_record(void **state) {
    fixture *f = *state;
    spool *s = open_spool(f, 0, 0, 100);
    size_t big = 3 * 1024 * 1024 + 17;
    char *rec = malloc(big);
    for (size_t i = 0; i < big; i++) rec[i] = (char)('a' + i % 26);
    assert_int_equal(spool_append(s, rec, big, NULL), 0);
    assert_int_equal(spool_append(s, "{}", 2, NULL), 0);
    spool_sync(s);
    spool_close(s);
    s = open_spool(f, 0, 0, 100);
    collected *c = calloc(1, sizeof *c);
    assert_int_equal(read_all(s, c), 2);
    assert_memory_equal(c->payload[0], rec, 63);
    assert_string_equal(c->payload[1], "{}");
    assert_int_equal(spool_append(s, rec, SPOOL_MAX_RECORD + 1, NULL), -1);
    spool_close(s);
    free(rec);
    free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_value),
        cmocka_unit_test_setup_teardown(test_append_read_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_fsync_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_resends_unacked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_clamped_to_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_detected_and_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zeroed_tail_and_bad_crc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segments_rotate_and_trim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_across_segments_after_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record_in_older_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_header_in_older_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_keeps_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_cursor_survives_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_opener_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
