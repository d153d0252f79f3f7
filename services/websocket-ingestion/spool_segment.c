/* spool_segment.c -- the spool's segment files: the record format, the
 * buffered reader, and finding, checking and creating segments.
 *
 * Segment file "<first_seq, 20 digits>.seg": an 8-byte magic, then records
 * [u32 len][u32 crc32c(len bytes + payload)][payload]. The checksum covers the
 * length, so a torn or zeroed header is never taken for a record. On open,
 * every segment is scanned: a torn tail (a crash during a write) is cut, and a
 * segment without a valid header becomes a valid empty one. Format and
 * recovery rules: docs/SPOOL.md. Runs on the loop thread only.
 */
#include "spool_int.h"
#include "crc32c.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- little helpers ---------------------------------------------------- */

static void spool_segment_put_u32(char *p, uint32_t v) {
    p[0] = (char)(v & 0xff);
    p[1] = (char)((v >> 8) & 0xff);
    p[2] = (char)((v >> 16) & 0xff);
    p[3] = (char)((v >> 24) & 0xff);
}

static uint32_t spool_segment_get_u32(const char *p) {
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static uint32_t spool_segment_crc(const char *hdr, const char *data, size_t len) {
    uint32_t c = crc32c_update(0, hdr, 4);
    return crc32c_update(c, data, len);
}

void spool_segment_encode(char *out, const char *data, size_t len) {
    spool_segment_put_u32(out, (uint32_t)len);
    memcpy(out + SPOOL_RECORD_HEADER, data, len);
    spool_segment_put_u32(out + 4, spool_segment_crc(out, data, len));
}

void spool_segment_path(const spool *s, uint64_t first_seq, char *out, size_t outlen) {
    snprintf(out, outlen, "%s/%020" PRIu64 ".seg", s->dir, first_seq);
}

static int spool_segment_fsync_dir(const spool *s) {
    int fd = open(s->dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* ---- buffered reader --------------------------------------------------- */

void spool_segment_rd_reset(spool_segment_rd *r, int fd, uint64_t off) {
    r->fd = fd;
    r->off = off;
    r->pos = r->len = 0;
}

/* Makes `need` bytes available at r->buf + r->pos. 0 = available, 1 = the file
 * ends first (r->len - r->pos bytes are there), -1 = I/O error. */
static int spool_segment_rd_need(spool_segment_rd *r, size_t need) {
    if (r->len - r->pos >= need) return 0;
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->off += r->pos;
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->cap < need || r->cap < SPOOL_RBUF_MIN) {
        size_t ncap = need > SPOOL_RBUF_MIN ? need : SPOOL_RBUF_MIN;
        char *nb = realloc(r->buf, ncap);
        if (!nb) return -1;
        r->buf = nb;
        r->cap = ncap;
    }
    while (r->len < need) {
        ssize_t n = pread(r->fd, r->buf + r->len, r->cap - r->len, (off_t)(r->off + r->len));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) return 1;
        r->len += (size_t)n;
    }
    return 0;
}

/* Next record at the reader. 0 = data and len set (reader advanced), 1 = clean
 * end of file, 2 = invalid or torn record (reader not advanced), -1 = I/O error. */
int spool_segment_rd_record(spool_segment_rd *r, const char **data, size_t *len) {
    int rc = spool_segment_rd_need(r, SPOOL_RECORD_HEADER);
    if (rc < 0) return -1;
    if (rc == 1) return r->len == r->pos ? 1 : 2;
    const char *h = r->buf + r->pos;
    uint32_t l = spool_segment_get_u32(h), crc = spool_segment_get_u32(h + 4);
    if (l > SPOOL_MAX_RECORD) return 2;
    rc = spool_segment_rd_need(r, SPOOL_RECORD_HEADER + (size_t)l);
    if (rc < 0) return -1;
    if (rc == 1) return 2;
    h = r->buf + r->pos;
    if (spool_segment_crc(h, h + SPOOL_RECORD_HEADER, l) != crc) return 2;
    *data = h + SPOOL_RECORD_HEADER;
    *len = l;
    r->pos += SPOOL_RECORD_HEADER + (size_t)l;
    return 0;
}

/* ---- segments ---------------------------------------------------------- */

int spool_segment_push(spool *s, uint64_t first_seq, uint64_t nrec, uint64_t bytes) {
    if (s->nsegs == s->capsegs) {
        size_t ncap = s->capsegs ? s->capsegs * 2 : 16;
        spool_seg *n = realloc(s->segs, ncap * sizeof *n);
        if (!n) return -1;
        s->segs = n;
        s->capsegs = ncap;
    }
    s->segs[s->nsegs++] = (spool_seg){first_seq, nrec, bytes};
    s->bytes += bytes;
    return 0;
}

static int spool_segment_cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the segment files: sorted first_seq values, malloc'd. */
int spool_segment_list(const spool *s, uint64_t **out, size_t *n) {
    DIR *d = opendir(s->dir);
    if (!d) return -1;
    uint64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l != 24 || strcmp(e->d_name + 20, ".seg") != 0) continue;
        if (strspn(e->d_name, "0123456789") != 20) continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                free(v);
                closedir(d);
                return -1;
            }
            v = nv;
        }
        v[cnt++] = strtoull(e->d_name, NULL, 10);
    }
    closedir(d);
    if (cnt) qsort(v, cnt, sizeof *v, spool_segment_cmp_u64);
    *out = v;
    *n = cnt;
    return 0;
}

/* Checks one segment: counts valid records, cuts an invalid/torn tail. */
int spool_segment_scan(spool *s, uint64_t first_seq, int is_last, uint64_t *nrec, uint64_t *bytes) {
    char path[4200];
    spool_segment_path(s, first_seq, path, sizeof path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        log_error("spool: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    char magic[SPOOL_MAGIC_LEN];
    ssize_t m = pread(fd, magic, sizeof magic, 0);
    uint64_t valid = SPOOL_MAGIC_LEN, count = 0;
    int rc = 1;
    if (m != SPOOL_MAGIC_LEN || memcmp(magic, SPOOL_MAGIC, SPOOL_MAGIC_LEN) != 0) {
        log_warn("spool: %s has no valid header (%lld bytes); treating it as empty", path, (long long)st.st_size);
        valid = 0;
        rc = 2;
    } else {
        spool_segment_rd r = {0};
        spool_segment_rd_reset(&r, fd, SPOOL_MAGIC_LEN);
        const char *data;
        size_t len;
        while ((rc = spool_segment_rd_record(&r, &data, &len)) == 0) count++;
        valid = r.off + r.pos;
        free(r.buf);
        if (rc < 0) {
            log_error("spool: read error in %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    close(fd);
    if ((uint64_t)st.st_size > valid) {
        uint64_t cut = (uint64_t)st.st_size - valid;
        s->torn_bytes += cut;
        if (is_last)
            log_warn("spool: torn tail in %s: %" PRIu64 " bytes after record %" PRIu64 " skipped (crash during a write)",
                     path, cut, first_seq + count);
        else
            log_error("spool: corrupt record in %s after record %" PRIu64 ": %" PRIu64 " bytes dropped", path,
                      first_seq + count, cut);
        if (truncate(path, (off_t)valid) != 0) {
            log_error("spool: cannot truncate %s: %s", path, strerror(errno));
            return -1;
        }
    }
    if (valid == 0) { /* rewrite the header so the file is a valid empty segment */
        int wfd = open(path, O_WRONLY | O_TRUNC);
        if (wfd < 0 || write(wfd, SPOOL_MAGIC, SPOOL_MAGIC_LEN) != SPOOL_MAGIC_LEN || fdatasync(wfd) != 0) {
            log_error("spool: cannot rewrite %s: %s", path, strerror(errno));
            if (wfd >= 0) close(wfd);
            return -1;
        }
        close(wfd);
        valid = SPOOL_MAGIC_LEN;
    }
    *nrec = count;
    *bytes = valid;
    return 0;
}

/* Creates segment `first_seq` and makes it the write target. */
int spool_segment_new(spool *s, uint64_t first_seq) {
    char path[4200];
    spool_segment_path(s, first_seq, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_error("spool: cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    if (write(fd, SPOOL_MAGIC, SPOOL_MAGIC_LEN) != SPOOL_MAGIC_LEN || fdatasync(fd) != 0 || spool_segment_fsync_dir(s) != 0) {
        log_error("spool: cannot initialise %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    if (spool_segment_push(s, first_seq, 0, SPOOL_MAGIC_LEN) != 0) {
        close(fd);
        return -1;
    }
    s->wfd = fd;
    return 0;
}

int spool_segment_open_last(spool *s) {
    char path[4200];
    spool_segment_path(s, s->segs[s->nsegs - 1].first_seq, path, sizeof path);
    s->wfd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (s->wfd < 0) {
        log_error("spool: cannot open %s for writing: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

